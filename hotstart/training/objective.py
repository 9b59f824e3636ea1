"""What a kind of run brings to the one training loop: its model, its batches, its loss, its evaluation.

The loop (loop.py) owns everything every run shares: the sample order and the schedule (by samples
seen), precision, torchrun, checkpoints and exact resume, the metrics rows, early stopping and the
summary. An objective owns only what differs between model families:

    next-char   HotStart's index and vision LMs (run.py): sequences of character IDs, cross-entropy
    mae         PIXEL-M4's masked autoencoder (mae_run.py): rendered lines, masked-patch pixel loss
    mlm         a character BERT (mlm_run.py), the MAE's index baseline: masked-character cross-entropy
    next-patch  PixelGPT (next_patch_run.py): rendered lines, the next patch's pixels
    pixar       PIXAR (pixar_run.py): binary lines by likelihood, then an adversarial stage 2
    dual        DualGPT (dual_run.py): character IDs, lines, and lines paired with their text

so the loop has no branch on the kind of model it trains. The line objectives (mae, next-patch, pixar, dual)
share a base, lines.py's LineObjective.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..data.prepared import PreparedCorpus
from .precision import Precision

Batch = torch.Tensor | tuple[torch.Tensor, ...]
"""What `Objective.batch` returns and `Objective.loss` takes: tensors on the CPU; the loop moves them."""


class Objective(ABC):
    """One kind of run: the run config it reads (`config`, with .data, .model and .train) and the corpus."""

    name: ClassVar[str]
    """The `objective:` value of config.yaml and of `hotstart train --objective`."""
    progress_metric: ClassVar[str]
    """The key of `evaluate`'s result the progress bar shows beside the loss."""
    run_config: ClassVar[type]
    """The dataclass its config.yaml is read into."""
    writes: ClassVar[str] = ""
    """What `hotstart generate` draws from a run of it: "characters", "pixels", or "" (an encoder: nothing)."""
    stops_early: bool = True
    """False where patience must not end the run: PIXAR's stage 2, whose val_loss (the likelihood) is
    not what it optimises, and is expected to rise."""

    @classmethod
    def saved_model(cls, config: Any) -> nn.Module | None:
        """The untrained model a checkpoint of this kind fills, built from its saved run config alone (for
        training/run_folder.py); None where the model needs its corpus to be built (next-char's glyph bank)."""
        return None

    def __init__(self, config: Any, corpus: PreparedCorpus) -> None:
        """Keep the run's config and its prepared corpus; `check` then settles what depends on both."""
        self.config, self.corpus = config, corpus

    @abstractmethod
    def check(self) -> None:
        """Fill the fields the corpus decides (a vocabulary size) and raise HotStartError where the
        settings cannot train on this corpus. Runs before anything is written."""

    @abstractmethod
    def build_model(self, progress: bool) -> nn.Module:
        """The model, freshly initialised from the torch seed the loop has just set."""

    @abstractmethod
    def write_run_files(self, run_dir: Path) -> None:
        """config.yaml and whatever else rebuilds the run from its folder (vocabulary, render settings)."""

    @abstractmethod
    def batch(self, index: np.ndarray, step: int) -> Batch:
        """The training batch of corpus sequences `index` at optimiser step `step`. A pure function of
        its arguments and the config (any randomness seeded by them), so a resumed run sees the same."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The scalar training loss of `model` (possibly wrapped for torchrun) on `batch`."""

    @abstractmethod
    def evaluate(self, model: nn.Module, precision: Precision) -> dict[str, float]:
        """Validation metrics, `val_loss` first (best checkpoint and early stopping follow it); every
        key becomes a column of metrics.jsonl. Deterministic, so a resumed run logs the same rows."""

    def after_evaluation(self, model: nn.Module, run_dir: Path, row: dict[str, Any]) -> None:
        """Anything written beside an evaluation's metrics row (a plot); nothing by default."""

    @abstractmethod
    def summary_fields(self) -> dict[str, Any]:
        """What summary.json says about the model, before the loop's own fields."""

    def describe(self) -> str:
        """A few words on the model, for the log line above its parameter counts."""
        return self.name

    def parameter_counts(self, model: nn.Module) -> dict[str, int]:
        """Parameters by part, `total` last; the whole model by default."""
        return {"total": sum(p.numel() for p in model.parameters())}


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode for the block, back in the mode it was in afterwards (an evaluation mid-training)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def trainable(module: nn.Module) -> int:
    """The trainable parameters of `module` (a part of a model, for parameter_counts)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def validation_sample(corpus: PreparedCorpus, n: int | None) -> np.ndarray:
    """The first `n` validation sequences (all for None); from a corpus of several languages, the
    first n / languages of each, so every language weighs alike in val_loss (the mae and mlm objectives)."""
    val, languages = corpus.val_index, corpus.sequence_languages[corpus.val_index]
    names = np.unique(languages)
    if n is None or len(names) < 2:
        return val[:n] if n else val
    return np.sort(np.concatenate([val[languages == name][: max(1, n // len(names))] for name in names]))
