"""PixelGPT's objective: predict the next patch of a rendered line (shared/papers/pixelgpt-dualgpt.md).

What it hands the shared loop (objective.py):

    batch      one line per corpus sequence (training/lines.py), cut to the batch's longest line: the
               decoder is causal and the loss stops at each line's end, so the padding after the
               longest line changes nothing but the time a step takes
    loss       the pixel LM's (models/pixel_lm.py): MSE on the next position's pixels, or PIXAR's
               per-pixel Bernoulli likelihood with --head bernoulli
    evaluate   val_loss: the mean over the first eval_sequences validation lines of each line's
               mean position loss (per language too, as an mae run logs it), beside the mean-glyph
               predictor's (floor_loss); with one character per cell also the next-character accuracy of
               the predicted cells read back (val_acc), the rank of the true character among the
               vocabulary's glyphs by the model's own score (val_rank1_acc, val_rank10_acc), and the
               floors of those accuracies: every cell blank (floor_blank_acc), the most frequent
               character everywhere (floor_most_frequent_acc)
    plot       generations/SAMPLES.png at every evaluation: for the first validation lines, the truth
               and, after its first half, the model's greedy continuation, position by position

Our reading where the papers are silent: as for the MAE, a line is one sequence of a prepared corpus,
not sentences packed until the line is full.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

from ..analysis.readback import GlyphReader
from ..config import flag, to_dict
from ..data.prepared import PAD_ID
from ..models.pixel_lm import PixelLM, PixelLMConfig, masked_mean
from ..render.line import line_image
from .config import TrainConfig, line_train_defaults
from .lines import CorpusLines, LineObjective
from .objective import evaluating, trainable
from .precision import Precision

PLOTTED_LINES = 2
"""Validation lines continued in each generation plot."""


@dataclass
class NextPatchRunConfig:
    """A next-patch run: which prepared corpus, which model, how to train it."""

    data: str = field(metadata=flag(by_hand=True))
    """Folder written by `hotstart prepare`; each sequence becomes one line (max_patches >= seq_len + 1
    holds a Chinese sequence and its end patch)."""
    model: PixelLMConfig = field(default_factory=PixelLMConfig)
    train: TrainConfig = field(default_factory=line_train_defaults)
    """The same settings as the family's other line models unless given (line_train_defaults)."""
    objective: str = field(default="next-patch", metadata=flag(cli=False))
    """What the run learns (training/objective.py)."""


class NextPatch(LineObjective):
    """Next-patch prediction with a PixelLM over rendered lines."""

    name = "next-patch"
    progress_metric = "val_loss"
    run_config = NextPatchRunConfig
    writes = "pixels"
    config: NextPatchRunConfig

    @classmethod
    def saved_model(cls, config: NextPatchRunConfig) -> PixelLM:
        return PixelLM(config.model)

    def check(self) -> None:
        """The line objectives' checks; with one character per cell, the glyph reader for val_acc."""
        super().check()
        cfg = self.config.model
        self.reader = GlyphReader(cfg.line, self.corpus.vocab) if cfg.line.cell == "char" else None
        self._floor: float | None = None
        self._most_frequent = self.corpus.vocab.most_frequent

    def _patches(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, P, P[, C]) lines cut to the longest one (whole positions), and their (B,) lengths."""
        return line_patches(self.lines, index, self.config.model.patch_len)

    def batch(self, index: np.ndarray, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The lines of sequences `index` (nothing random: the same at every step)."""
        return self._patches(index)

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The pixel LM's mean position loss."""
        patches, lengths = batch
        return model(patches, lengths)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, precision: Precision) -> dict[str, float]:
        """Mean over validation lines of each line's mean position loss, per language where several;
        with one character per patch, also val_acc: the next-character accuracy of the predicted
        patches read back as characters (read_back_accuracy)."""
        losses, hits, ranked = [], np.zeros(2, dtype=np.int64), np.zeros(5, dtype=np.int64)
        with evaluating(model):
            for _, index in self.validation_batches():
                patches, lengths = self._patches(index)
                with precision.autocast():
                    per_position, used, out = model.position_outputs(patches.to(precision.device), lengths.to(precision.device))
                losses.extend(masked_mean(per_position, used, dim=1).tolist())
                if self.reader is not None:
                    tokens = self.corpus.sequences(index)
                    hits += read_back_accuracy(model, self.reader, out, tokens, lengths)
                    ranked += ranking_accuracy(model, self.reader, out, tokens, lengths, self._most_frequent)
        # no line counted (all cut at max_patches, or drawn by name): no accuracy, rather than a made-up 0
        accuracy = {"val_acc": float(hits[0] / hits[1])} if hits[1] else {}
        if ranked[4]:
            accuracy.update({name: float(n / ranked[4]) for name, n in zip(
                ("val_rank1_acc", "val_rank10_acc", "floor_blank_acc", "floor_most_frequent_acc"), ranked[:4])})
        val_loss, per_language = self.line_loss_metrics(losses)
        return {"val_loss": val_loss, "floor_loss": self._floor_loss(model), **accuracy, **per_language}

    def _floor_loss(self, model: PixelLM) -> float:
        """The validation loss of the mean-glyph predictor: every position predicted as the mean of the validation
        positions' targets (for a Bernoulli head, each pixel's share of ink as its probability), measured as
        val_loss is. Computed at the first evaluation and kept: the validation lines never change."""
        if self._floor is None:
            batches = []
            for _, index in self.validation_batches():
                patches, lengths = self._patches(index)
                target = model._targets(model.group(patches)).float()  # pure tensor functions, on the CPU
                batches.append((target, torch.arange(target.shape[1])[None, :] * self.config.model.patch_len < lengths[:, None]))
            mean = sum(t[u].sum(0) for t, u in batches) / max(sum(int(u.sum()) for _, u in batches), 1)
            per_line = []
            for target, used in batches:
                if self.config.model.head == "mse":
                    loss = ((target - mean) ** 2).mean(-1)
                else:
                    loss = F.binary_cross_entropy(mean.clamp(1e-6, 1 - 1e-6).expand_as(target), target, reduction="none").mean(-1)
                per_line += masked_mean(loss, used, dim=1).tolist()
            self._floor = float(np.mean(per_line)) if per_line else math.nan
        return self._floor

    def after_evaluation(self, model: nn.Module, run_dir: Path, row: dict[str, Any]) -> None:
        """generations/SAMPLES.png: the first validation lines, and each continued from its first half."""
        patches, lengths = self._patches(self._val[:PLOTTED_LINES])
        device, patch_len, rows = next(model.parameters()).device, self.config.model.patch_len, []
        with evaluating(model):
            for line, length in zip(patches, lengths.tolist()):
                prompt = max(1, length // 2)
                new = math.ceil((length - prompt + prompt % patch_len) / patch_len)  # the prompt's last partial position too
                shown = model.generate(line[None, :prompt].to(device), new)[0, :length].float().cpu()
                rows.append((line[:length], shown, prompt))
        out = run_dir / "generations"
        out.mkdir(exist_ok=True)
        generation_plot(rows, f"{row['samples']:,} samples, val_loss {row['val_loss']:.4f}").save(out / f"{row['samples']:09d}.png")

    def summary_fields(self) -> dict[str, Any]:
        """Decoder, head, line geometry, and how many validation lines were cut at max_patches."""
        cfg = self.config.model
        return {"objective": self.name, "size": cfg.size, "decoder": cfg.decoder, "head": cfg.head,
                "norm_target": cfg.norm_target, "patch_len": cfg.patch_len, "line": to_dict(cfg.line), **self.line_summary()}

    def describe(self) -> str:
        """next-patch, its decoder and size."""
        cfg = self.config.model
        return f"next-patch {cfg.decoder} {cfg.size} ({cfg.head} head)"

    def parameter_counts(self, model: nn.Module) -> dict[str, int]:
        """Patch embedding (with the start vector), decoder, head, total: trainable parameters."""
        return {"patch_embed": trainable(model.patch_embed) + model.wpe_start.numel(), "decoder": trainable(model.decoder),
                "head": trainable(model.head), "total": trainable(model)}


def line_patches(lines: CorpusLines, index: np.ndarray, patch_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, P, P[, C]) the lines of sequences `index` cut to the longest one (whole positions of
    `patch_len` patches), and their (B,) lengths: the decoder is causal and the loss stops at each
    line's end, so what lies after the longest line changes nothing but the time a step takes."""
    if not len(index):
        cfg = lines.renderer.cfg
        return torch.zeros(0, patch_len, cfg.patch, cfg.patch, *((3,) if cfg.mode == "rgb" else ())), torch.zeros(0, dtype=torch.long)
    drawn = lines.render(index)
    longest = int(drawn.lengths.max())
    keep = min(math.ceil(longest / patch_len) * patch_len, drawn.patches.shape[1])
    return torch.from_numpy(drawn.patches[:, :keep]), torch.from_numpy(drawn.lengths)


def read_back_accuracy(model: PixelLM, reader: GlyphReader, out: torch.Tensor, tokens: torch.Tensor,
                       lengths: torch.Tensor) -> np.ndarray:
    """[correct, counted] next-character predictions of a batch of char-cell lines, from the head's
    (B, T, L*P*P*C) outputs: cell t (t >= 1, as HotStart predicts tokens 1..S-1 of a sequence) is read
    back as its nearest glyph and compared with how token t is drawn (training/evaluate.py's metric on
    the same sequences). With L > 1 patches per position, the later cells of a position are predicted
    from the cells before the position, so they are 2..L characters ahead (our reading: counted alike).
    Lines whose cells do not line up with their tokens (a sequence of specials only, drawn by name) are
    left out."""
    seq_len = tokens.shape[1]
    pixels = model.ungroup(model._binarised(model.pixels(out.float())))[:, 1:seq_len].cpu()  # (B, <= S-1, P, P[, C])
    targets = tokens[:, 1 : 1 + pixels.shape[1]]  # a batch of lines cut at max_patches holds fewer cells
    aligned = (lengths == seq_len + 1)[:, None] & (targets != PAD_ID)
    correct = (reader.read(pixels) == reader.drawn_as(targets)) & aligned
    return np.array([int(correct.sum()), int(aligned.sum())])


def ranking_accuracy(model: PixelLM, reader: GlyphReader, out: torch.Tensor, tokens: torch.Tensor,
                     lengths: torch.Tensor, most_frequent: int) -> np.ndarray:
    """[top-1, top-10, all-blank, most-frequent, counted] over the cells read_back_accuracy counts: whether the
    character drawn in cell t is the one the model scores best, or among its ten best, of every glyph the reader
    knows (the vocabulary's distinct drawings, a blank cell and the end patch), scored by the model's own
    likelihood (our reading of ranking without a sharp image): squared distance to the predicted pixels for an
    mse head, the glyph's Bernoulli log-likelihood under the predicted ink probabilities for a bernoulli head; and
    the floors on the same cells: every cell blank, every cell the most frequent character."""
    from ..analysis.readback import BLANK

    seq_len = tokens.shape[1]
    cells = model.ungroup(out.float())[:, 1:seq_len].cpu()  # (B, <= S-1, P, P[, C]) head outputs per cell
    targets = tokens[:, 1 : 1 + cells.shape[1]]
    aligned = (lengths == seq_len + 1)[:, None] & (targets != PAD_ID)
    flat, bank = cells.flatten(2)[aligned], reader.bank  # (n, D), (K, D)
    truth = reader.drawn_as(targets[aligned])
    if model.config.head == "mse":
        score = -torch.cdist(flat, bank) if len(flat) else flat.new_zeros(0, len(bank))
    else:  # log p(glyph) = sum g log sigmoid(x) + (1 - g) log sigmoid(-x), for binary or grey glyphs alike
        score = F.logsigmoid(flat) @ bank.T + F.logsigmoid(-flat) @ (1 - bank).T
    top = reader.ids[score.topk(min(10, len(bank)), dim=-1).indices] if len(flat) else torch.zeros(0, 1, dtype=torch.long)
    common = reader.drawn_as(torch.tensor([most_frequent]))
    return np.array([int((top[:, 0] == truth).sum()), int((top == truth[:, None]).any(-1).sum()),
                     int((truth == BLANK).sum()), int((truth == common).sum()), len(truth)])


def generation_plot(rows: list[tuple[torch.Tensor, torch.Tensor, int]], title: str) -> Image.Image:
    """Two strips per line: the truth, then the prompt (its first `prompt` patches) and the model's
    continuation, with a mark where the continuation starts."""
    strips = [(line_image(truth.numpy()).convert("L"), line_image(shown.numpy()).convert("L"), prompt, truth.shape[1])
              for truth, shown, prompt in rows]
    pad, top = 8, 24
    width = max(s[0].width for s in strips) + 2 * pad
    height = top + sum(2 * s[0].height + 3 * pad for s in strips)
    image = Image.new("L", (max(width, 420), height), 255)
    draw = ImageDraw.Draw(image)
    draw.text((pad, 6), f"truth | prompt + greedy continuation   {title}", fill=0)
    y = top
    for truth, shown, prompt, patch in strips:
        image.paste(truth, (pad, y))
        image.paste(shown, (pad, y + truth.height + pad))
        x = pad + prompt * patch
        draw.line([(x, y + truth.height + pad - 3), (x, y + 2 * truth.height + pad + 2)], fill=0)
        y += 2 * truth.height + 3 * pad
    return image

