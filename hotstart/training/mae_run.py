"""PIXEL-M4's objective: reconstruct the masked patches of rendered lines (shared/papers/pixel-m4.md).

What it hands the shared loop (objective.py):

    batch      one line per corpus sequence (a prepared corpus of seq_len ~ max_patches characters),
               rendered by render/line.py, and its span mask, drawn from (seed, step, sequence): a
               resumed run masks exactly what the uninterrupted run would have
    loss       ViTMAE's MSE on the masked patches' normalised pixels (models/mae.py)
    evaluate   val_loss on the first eval_sequences validation lines under fixed masks, so the
               curve moves only with the weights
    plot       reconstructions/SAMPLES.png at every evaluation: the input, what the encoder saw,
               and the reconstruction, for the first validation lines

Our reading where the paper is silent: a line is one sequence of a prepared corpus (its <sep>
between documents and <unk> drawn as spaces), not sentences packed until the line is full; a line
longer than max_patches is cut at a whole character (the run's summary says how many were).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from ..config import flag, to_dict
from ..models.mae import MAEConfig, PixelMAE, span_mask
from ..render.line import line_image
from .config import TrainConfig
from .lines import LineObjective
from .objective import evaluating, trainable
from .precision import Precision

PLOTTED_LINES = 2
"""Validation lines drawn in each reconstruction plot."""


@dataclass
class MAERunConfig:
    """A masked-autoencoder run: which prepared corpus, which model, how to train it."""

    data: str = field(metadata=flag(by_hand=True))
    """Folder written by `hotstart prepare`; each sequence becomes one line (--seq-len 528 fills 529 CJK patches)."""
    model: MAEConfig = field(default_factory=MAEConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    objective: str = field(default="mae", metadata=flag(cli=False))
    """What the run learns (training/objective.py)."""


class MaskedPatches(LineObjective):
    """Masked-patch reconstruction with a PixelMAE over rendered lines."""

    name = "mae"
    progress_metric = "val_loss"
    run_config = MAERunConfig
    config: MAERunConfig

    @classmethod
    def saved_model(cls, config: MAERunConfig) -> PixelMAE:
        return PixelMAE(config.model)

    def freeze_refusal(self) -> str:
        return "an mae run has none to freeze"

    def compiled_part(self, model: nn.Module) -> nn.Module:
        return model.mae

    def check(self) -> None:
        """The line objectives' checks; then the validation lines' fixed masks and how full a line is."""
        super().check()
        self._val_masks = self._masks(self._val, self.val_line_patches, stream=1)
        languages = self.corpus.sequence_languages[self._val]
        # how full a line is (PIXEL packs text until it is full; one sequence per line does not)
        self.line_patches = {str(name) or "all": float(np.median(self.val_line_patches[languages == name]))
                             for name in np.unique(languages)}

    def _masks(self, index: np.ndarray, lengths: np.ndarray, stream: int, step: int = 0) -> np.ndarray:
        """(B, N) span masks, each line's drawn from (seed, stream, step, its sequence index): training
        (stream 0) and validation (stream 1) never share masks, and sharding a batch changes none."""
        cfg = self.config.model
        rows = [span_mask(lengths[b : b + 1], cfg.max_patches, cfg.n_masked, cfg.max_span,
                          np.random.default_rng([self.config.train.seed, stream, step, int(i)]))
                for b, i in enumerate(np.asarray(index).tolist())]
        return np.concatenate(rows)

    def batch(self, index: np.ndarray, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, P, P[, C]) line patches and their (B, N) span mask at `step`."""
        lines = self.lines.render(index)
        mask = self._masks(index, lines.lengths, 0, step)
        return torch.from_numpy(lines.patches), torch.from_numpy(mask)

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """ViTMAE's loss on the masked patches."""
        patches, mask = batch
        loss, _ = model(patches, mask)
        return loss

    @torch.no_grad()
    def evaluate(self, model: nn.Module, precision: Precision) -> dict[str, float]:
        """Mean loss over the validation lines under their fixed masks (every line masks the same
        count), and per language where the corpus has several (val_loss_en, ...)."""
        losses = []
        with evaluating(model):
            for start, index in self.validation_batches():
                patches = torch.from_numpy(self.lines.render(index).patches)
                mask = torch.from_numpy(self._val_masks[start : start + len(index)])
                with precision.autocast():
                    losses.extend(model.line_losses(patches.to(precision.device), mask.to(precision.device)).tolist())
        val_loss, per_language = self.line_loss_metrics(losses)
        return {"val_loss": val_loss, **self._floor_losses(model), **per_language}

    @torch.no_grad()
    def _floor_losses(self, model: nn.Module) -> dict[str, float]:
        """The validation loss, measured as val_loss is (each line's mean over its masked patches, then the mean
        over lines), of two predictors that know nothing of the line: every masked patch predicted as zeros
        (floor_zero_loss; with norm_pix_loss, each patch's own mean) and as the mean of the validation lines'
        masked targets (floor_mean_loss). Computed at the first evaluation and kept."""
        if getattr(self, "_floors", None) is None:
            targets, masks = [], []
            for start, index in self.validation_batches():
                image = model.to_image(torch.from_numpy(self.lines.render(index).patches).to(next(model.parameters()).device))
                target = model.mae.patchify(image).float().cpu()
                if self.config.model.norm_pix_loss:
                    target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
                targets.append(target)
                masks.append(torch.from_numpy(self._val_masks[start : start + len(index)]))
            mean = sum(t[m].sum(0) for t, m in zip(targets, masks)) / max(sum(int(m.sum()) for m in masks), 1)
            per_line = {"floor_zero_loss": [], "floor_mean_loss": []}
            for target, mask in zip(targets, masks):
                for name, guess in (("floor_zero_loss", torch.zeros_like(mean)), ("floor_mean_loss", mean)):
                    loss = ((target - guess) ** 2).mean(-1)
                    per_line[name] += ((loss * mask).sum(1) / mask.sum(1).clamp(min=1)).tolist()
            self._floors = {name: float(np.mean(values)) if values else math.nan for name, values in per_line.items()}
        return self._floors

    def after_evaluation(self, model: nn.Module, run_dir: Path, row: dict[str, Any]) -> None:
        """reconstructions/SAMPLES.png: input, masked input and reconstruction of the first validation lines."""
        index = self._val[:PLOTTED_LINES]
        patches = torch.from_numpy(self.lines.render(index).patches)
        mask = torch.from_numpy(self._val_masks[: len(index)])
        with evaluating(model), torch.no_grad():
            shown = model.reconstruct(patches.to(next(model.parameters()).device), mask).float().cpu()
        out = run_dir / "reconstructions"
        out.mkdir(exist_ok=True)
        reconstruction_plot(patches, mask, shown, self.config.model, f"{row['samples']:,} samples, "
                            f"val_loss {row['val_loss']:.4f}").save(out / f"{row['samples']:09d}.png")

    def summary_fields(self) -> dict[str, Any]:
        """Model size, line geometry, masking, and how many validation lines were cut at max_patches."""
        cfg = self.config.model
        return {"objective": self.name, "size": cfg.size, "line": to_dict(cfg.line), "mask_ratio": cfg.mask_ratio,
                "max_span": cfg.max_span, **self.line_summary(), "val_line_patches_median": self.line_patches}

    def describe(self) -> str:
        """mae and its size."""
        return f"mae {self.config.model.size}"

    def parameter_counts(self, model: nn.Module) -> dict[str, int]:
        """Encoder (ViT), decoder (the light MAE decoder), total: trainable parameters."""
        return {"encoder": trainable(model.mae.vit), "decoder": trainable(model.mae.decoder), "total": trainable(model)}


def reconstruction_plot(patches: torch.Tensor, mask: torch.Tensor, shown: torch.Tensor, cfg: MAEConfig,
                        title: str) -> Image.Image:
    """One row per line: the input, what the encoder saw (masked patches grey), the reconstruction;
    each as the square grid ViTMAE reads (row by row)."""
    grids = []
    for b in range(patches.shape[0]):
        seen = patches[b].clone()
        seen[mask[b]] = 0.5
        grids.append([_grid(x, cfg) for x in (patches[b], seen, shown[b])])
    side, pad, top = grids[0][0].width, 8, 24
    image = Image.new("L", (3 * side + 4 * pad, len(grids) * (side + pad) + pad + top), 255)
    draw = ImageDraw.Draw(image)
    draw.text((pad, 6), f"input | masked ({cfg.mask_ratio:.0%}, spans <= {cfg.max_span}) | reconstruction   {title}", fill=0)
    for r, row in enumerate(grids):
        for c, grid in enumerate(row):
            image.paste(grid, (pad + c * (side + pad), top + r * (side + pad)))
    return image


def _grid(patches: torch.Tensor, cfg: MAEConfig) -> Image.Image:
    """(N, P, P[, C]) patches -> the G x G grid image, black ink on white."""
    g, p = cfg.grid, cfg.patch
    rows = [line_image(patches[r * g : (r + 1) * g].numpy()) for r in range(g)]
    image = Image.new(rows[0].mode, (g * p, g * p))
    for r, row in enumerate(rows):
        image.paste(row, (0, r * p))
    return image.convert("L")
