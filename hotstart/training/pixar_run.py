"""PIXAR's objective (shared/papers/pixar.md): next-patch prediction over binary 8x8 patches, L = 2 per
decoder position, by likelihood (stage 1); then, from a stage-1 run's weights, a given number of steps
with PIXAR's adversarial loss added (stage 2, models/pixar.py).

    hotstart train --objective pixar --data D --out stage1
    hotstart train --objective pixar --stage 2 --stage1-run stage1 --max-samples 6400 --data D --out stage2

Stage 1 is PixelGPT's objective (next_patch_run.py) with PIXAR's defaults. Stage 2 takes its model
settings from the stage-1 run, logs the likelihood as val_loss (expected to rise a little as the
generations sharpen), the discriminator's accuracy on validation lines and the last step's loss
parts, and is not stopped by patience: its length is --max-samples (PIXAR: 200 steps). Its last
checkpoint, not best.safetensors (the lowest likelihood loss, usually the start), is the sharpened model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import flag, from_dict, to_dict
from ..errors import HotStartError
from ..models.pixar import AdversarialConfig, AdversarialPixelLM
from ..models.pixel_lm import PixelLM, PixelLMConfig
from ..render.line import LineRenderConfig
from .checkpoint import load_weights
from .config import TrainConfig, line_train_defaults
from .next_patch_run import NextPatch
from .objective import evaluating
from .precision import Precision

STAGE1_OBJECTIVES = ("pixar", "next-patch")
"""Runs a stage 2 may start from: a pixar stage-1 run, or any PixelGPT run."""


def pixar_model_defaults() -> PixelLMConfig:
    """PIXAR's line and head: binary 8x8 patches, L = 2 patches per position, a per-pixel Bernoulli
    head (on the toolkit's Llama-style decoder, the size given)."""
    return PixelLMConfig(line=LineRenderConfig(patch=8, mode="binary", max_patches=256), head="bernoulli", patch_len=2)


@dataclass
class PixarRunConfig:
    """A PIXAR run: stage 1 (likelihood) or stage 2 (adversarial, from a stage-1 run)."""

    data: str = field(metadata=flag(by_hand=True))
    """Folder written by `hotstart prepare` (one line per sequence)."""
    model: PixelLMConfig = field(default_factory=pixar_model_defaults)
    """Stage 2: replaced by the stage-1 run's."""
    train: TrainConfig = field(default_factory=line_train_defaults)
    stage: int = 1
    """1: likelihood | 2: adversarial, from adversarial.stage1_run."""
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    """Stage 2's settings."""
    objective: str = field(default="pixar", metadata=flag(cli=False))


class Pixar(NextPatch):
    """PIXAR stage 1 (NextPatch with PIXAR's defaults) or stage 2 (adversarial)."""

    name = "pixar"
    run_config = PixarRunConfig
    config: PixarRunConfig

    @classmethod
    def saved_model(cls, config: PixarRunConfig) -> PixelLM:
        """Stage 1: the pixel LM; stage 2: with its discriminator, which its checkpoints hold too."""
        return AdversarialPixelLM(config.model, config.adversarial) if config.stage == 2 else PixelLM(config.model)

    def check(self) -> None:
        """Stage 2: the stage-1 run must be a finished pixel LM; its model settings become this run's."""
        cfg = self.config
        if cfg.stage not in (1, 2):
            raise HotStartError(f"--stage must be 1 (likelihood) or 2 (adversarial), got {cfg.stage}")
        if cfg.stage == 1 and cfg.adversarial.stage1_run:
            raise HotStartError("--stage1-run names where stage 2 starts; add --stage 2, or drop --stage1-run")
        cfg.adversarial.validate()  # at stage 1 too: a bad stage-2 option is a typo, not something to keep for later
        if cfg.stage == 2:
            cfg.model = stage1_model(cfg.adversarial)
            # absolute, as the corpus path: a resume from another folder, or by another spelling, finds it
            cfg.adversarial.stage1_run = str(Path(cfg.adversarial.stage1_run).resolve())
            self.stops_early = False
        super().check()

    def build_model(self, progress: bool) -> PixelLM:
        """Stage 1: a fresh pixel LM. Stage 2: the stage-1 weights and a fresh discriminator."""
        if self.config.stage == 1:
            return super().build_model(progress)
        adv = self.config.adversarial
        model = AdversarialPixelLM(self.config.model, adv)
        stage1 = PixelLM(self.config.model)
        load_weights(stage1, Path(adv.stage1_run) / "checkpoints" / f"{adv.stage1_checkpoint}.safetensors")
        model.load_state_dict(stage1.state_dict(), strict=False)  # all but the discriminator, which starts fresh
        if self.config.train.compile:
            model.decoder.compile()
        return model

    @torch.no_grad()
    def evaluate(self, model: nn.Module, precision: Precision) -> dict[str, float]:
        """NextPatch's metrics; stage 2 adds the discriminator's accuracy on the validation lines (real
        judged real, predictions judged fake) and the last training step's loss parts."""
        metrics = super().evaluate(model, precision)
        if self.config.stage == 1:
            return metrics
        shares = []
        with evaluating(model):
            for _, index in self.validation_batches():
                patches, lengths = self._patches(index)
                with precision.autocast():
                    shares.append(model.discriminator_accuracy(patches.to(precision.device), lengths.to(precision.device)))
        real, fake = np.mean(shares, axis=0) if shares else (np.nan, np.nan)
        parts = {f"train_{k}": v for k, v in model.last_parts.items()}
        return {**metrics, "val_disc_real_acc": float(real), "val_disc_fake_acc": float(fake), **parts}

    def summary_fields(self) -> dict[str, Any]:
        """NextPatch's fields, the stage and (stage 2) where it started and its adversarial settings."""
        fields = {**super().summary_fields(), "objective": self.name, "stage": self.config.stage}
        if self.config.stage == 2:
            fields["adversarial"] = to_dict(self.config.adversarial)
        return fields

    def describe(self) -> str:
        """pixar stage N, its decoder and size."""
        cfg = self.config.model
        return f"pixar stage {self.config.stage} {cfg.decoder} {cfg.size} ({cfg.head} head, L = {cfg.patch_len})"

    def parameter_counts(self, model: nn.Module) -> dict[str, int]:
        """NextPatch's parts; stage 2 adds the discriminator (trained alongside, not part of the LM)."""
        counts = super().parameter_counts(model)
        if self.config.stage == 2:
            total = counts.pop("total")
            counts["discriminator"] = sum(p.numel() for p in model.discriminator.parameters())
            counts["total"] = total
        return counts


def stage1_model(adv: AdversarialConfig) -> PixelLMConfig:
    """The model settings of the stage-1 run stage 2 starts from, after checking it can start there."""
    if not adv.stage1_run:
        raise HotStartError("--stage 2 starts from a stage-1 model; pass --stage1-run RUN (a finished --objective pixar "
                            "or next-patch run)")
    from .run_folder import open_run

    run = Path(adv.stage1_run)
    folder = open_run(run, name=f"--stage1-run {run}", fix="pass the --out of a stage-1 run")
    saved = folder.saved
    if folder.objective not in STAGE1_OBJECTIVES or saved.get("stage", 1) != 1:
        what = f"--objective {folder.objective}" + (f" stage {saved['stage']}" if "stage" in saved else "")
        raise HotStartError(f"--stage1-run {run} is a run of {what}; stage 2 starts from a pixar stage-1 or next-patch run")
    weights = folder.weights(adv.stage1_checkpoint)
    if not weights.is_file():
        raise HotStartError(f"--stage1-run {run} has no {adv.stage1_checkpoint} checkpoint ({weights}); let stage 1 "
                            "finish (hotstart train ... --resume) or pass --stage1-checkpoint best")
    return from_dict(PixelLMConfig, saved["model"])
