"""DualGPT's objective (shared/papers/pixelgpt-dualgpt.md): one decoder trained on character IDs, on
rendered lines and on the two paired (models/dual_lm.py).

What it hands the shared loop (objective.py):

    batch      the batch's sequences split in a fixed order into text (IDs), pixel lines and pairs
               (a line, then its IDs), by --pixel-text-ratio and --pair-share
    loss       the kinds' mean losses weighted by their sequences (models/dual_lm.py)
    evaluate   on the same validation sequences: val_text_loss and val_acc (next-character, HotStart's
               metric), val_pixel_loss (PixelGPT's), val_pair_acc (characters read from their own line,
               then continued), and val_loss, the three weighted by the training mix
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..analysis.readback import GlyphReader
from ..config import flag, to_dict
from ..data.prepared import PAD_ID
from ..models.dual_lm import DualLM, DualLMConfig
from ..models.pixel_lm import masked_mean
from ..render.line import LineRenderConfig
from .config import TrainConfig, line_train_defaults
from .lines import LineObjective
from .next_patch_run import line_patches, ranking_accuracy
from .objective import evaluating, trainable
from .precision import Precision


@dataclass
class DualRunConfig:
    """A DualGPT run: which prepared corpus, which model, how to train it."""

    data: str = field(metadata=flag(by_hand=True))
    """Folder written by `hotstart prepare`."""
    model: DualLMConfig = field(default_factory=DualLMConfig)
    train: TrainConfig = field(default_factory=line_train_defaults)
    objective: str = field(default="dual", metadata=flag(cli=False))


class Dual(LineObjective):
    """DualGPT: next character, next patch, and text read from its line, on one decoder."""

    name = "dual"
    progress_metric = "val_acc"
    run_config = DualRunConfig
    writes = "pixels"
    config: DualRunConfig

    @classmethod
    def saved_model(cls, config: DualRunConfig) -> DualLM:
        return DualLM(config.model)

    def line_settings(self) -> LineRenderConfig:
        return self.config.model.pixel.line

    def compiled_part(self, model: nn.Module) -> nn.Module:
        return model.pixel.decoder

    def settle_model(self) -> None:
        """The vocabulary and sequence length come from the corpus."""
        cfg = self.config.model
        cfg.vocab_size, cfg.seq_len = len(self.corpus.vocab), self.corpus.seq_len
        cfg.validate()

    def check(self) -> None:
        """The line objectives' checks (the lines drawn as PixelGPT's); with one character per cell, the glyph
        reader that ranks the pixel path's next character as a next-patch run's is."""
        super().check()
        line = self.line_settings()
        self.reader = GlyphReader(line, self.corpus.vocab) if line.cell == "char" else None
        self._most_frequent = self.corpus.vocab.most_frequent

    def batch(self, index: np.ndarray, step: int) -> tuple[torch.Tensor, ...]:
        """(text IDs, line patches, line lengths, pair patches, pair IDs): the first sequences of the
        batch as text, the next as lines, the last as pairs (nothing random, the same at every step)."""
        n = self.config.model.split(len(index))
        text, pixels, pair = np.split(index, [n["text"], n["text"] + n["pixels"]])
        patch_len = self.config.model.pixel.patch_len
        patches, lengths = line_patches(self.lines, pixels, patch_len)
        pair_patches, _ = line_patches(self.lines, pair, patch_len)
        return self.corpus.sequences(text), patches, lengths, pair_patches, self.corpus.sequences(pair)

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The mix's weighted loss."""
        return model(*batch)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, precision: Precision) -> dict[str, float]:
        """Every validation sequence as text, as a line and as a pair; val_loss weighs them as training does."""
        sums = dict.fromkeys(("text_loss", "text_correct", "text_count", "pixel_loss", "pair_correct", "pair_count", "pair_loss"), 0.0)
        lines, device, patch_len = 0, precision.device, self.config.model.pixel.patch_len
        ranked = np.zeros(5, dtype=np.int64)
        with evaluating(model):
            for _, index in self.validation_batches():
                ids = self.corpus.sequences(index).to(device)
                patches, lengths = line_patches(self.lines, index, patch_len)
                patches, lengths = patches.to(device), lengths.to(device)
                with precision.autocast():
                    text_logits = model.text_logits(ids).float()
                    per_position, used, out = model.pixel.position_outputs(patches, lengths)
                    pixel_losses = masked_mean(per_position, used, dim=1)
                    pair_logits = model.pair_logits(patches, ids).float()
                if self.reader is not None:
                    ranked += ranking_accuracy(model.pixel, self.reader, out, ids.cpu(), lengths.cpu(), self._most_frequent)
                for kind, logits, targets in (("text", text_logits, ids[:, 1:]), ("pair", pair_logits, ids)):
                    mask = targets != PAD_ID
                    losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
                    sums[f"{kind}_loss"] += float(losses[mask.flatten()].sum())
                    sums[f"{kind}_correct"] += float(((logits.argmax(-1) == targets) & mask).sum())
                    sums[f"{kind}_count"] += float(mask.sum())
                sums["pixel_loss"] += float(pixel_losses.float().sum())
                lines += len(index)
        text_loss = sums["text_loss"] / max(sums["text_count"], 1)
        pair_loss = sums["pair_loss"] / max(sums["pair_count"], 1)
        pixel_loss = sums["pixel_loss"] / max(lines, 1)
        shares = self.config.model.shares()
        mixed = shares["text"] * text_loss + shares["pixels"] * pixel_loss + shares["pair"] * pair_loss
        return {"val_loss": mixed if lines else math.nan, "val_acc": sums["text_correct"] / max(sums["text_count"], 1),
                "val_text_loss": text_loss, "val_pixel_loss": pixel_loss, "val_pair_loss": pair_loss,
                "val_pair_acc": sums["pair_correct"] / max(sums["pair_count"], 1),
                **({"val_pixel_rank1_acc": float(ranked[0] / ranked[4]), "val_pixel_rank10_acc": float(ranked[1] / ranked[4]),
                    "floor_blank_acc": float(ranked[2] / ranked[4]), "floor_most_frequent_acc": float(ranked[3] / ranked[4])}
                   if ranked[4] else {})}

    def summary_fields(self) -> dict[str, Any]:
        """Decoder, pixel head, line geometry and the data mix."""
        cfg = self.config.model
        return {"objective": self.name, "size": cfg.pixel.size, "decoder": cfg.pixel.decoder, "head": cfg.pixel.head,
                "patch_len": cfg.pixel.patch_len, "line": to_dict(cfg.pixel.line), "shares": cfg.shares(),
                **self.line_summary()}

    def describe(self) -> str:
        """dual, its decoder and size, and the mix."""
        cfg = self.config.model
        shares = ", ".join(f"{k} {v:.2f}" for k, v in cfg.shares().items())
        return f"dual {cfg.pixel.decoder} {cfg.pixel.size} ({shares})"

    def parameter_counts(self, model: nn.Module) -> dict[str, int]:
        """Character embedding, patch embedding (with the start vector), decoder, heads, total."""
        pixel = model.pixel
        return {"char_embed": trainable(model.wte), "patch_embed": trainable(pixel.patch_embed) + pixel.wpe_start.numel(),
                "decoder": trainable(pixel.decoder), "pixel_head": trainable(pixel.head), "char_head": trainable(model.lm_head),
                "total": trainable(model)}
