"""Evaluation: next-character loss, top-1 accuracy and perplexity on held-out sequences.

One function serves every input path and every caller (the training loop's scheduled
evaluations, `hotstart eval`, the demo). Metrics are averaged over target positions, with <pad>
targets excluded, so they mean the same thing at any batch size.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..data.prepared import PAD_ID
from ..models.hotstart_lm import HotStartLM
from .precision import Precision, resolve
from .run import load_run


@torch.no_grad()
def evaluate(model: HotStartLM, sequences: torch.Tensor, precision: Precision, batch_size: int = 128) -> dict[str, float]:
    """Loss, accuracy and perplexity of `model` on (N, L) token sequences (predicting tokens 1..L-1)."""
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for start in range(0, sequences.shape[0], batch_size):
        batch = sequences[start : start + batch_size].to(precision.device, non_blocking=True)
        inputs, targets = batch[:, :-1], batch[:, 1:]  # (B, L-1) each
        with precision.autocast():
            logits, _ = model(inputs)  # (B, L-1, V)
        logits = logits.float()
        mask = targets != PAD_ID
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
        total_loss += loss[mask.flatten()].sum().item()
        correct += ((logits.argmax(-1) == targets) & mask).sum().item()
        count += mask.sum().item()
    model.train(was_training)
    mean_loss = total_loss / max(count, 1)
    return {
        "val_loss": mean_loss,
        "val_acc": correct / max(count, 1),
        "val_ppl": math.exp(min(mean_loss, 50.0)),  # capped so an untrained model does not overflow
        "val_tokens": count,
    }


def evaluate_run(
    run_dir: str | Path,
    checkpoint: str = "best",
    sequences: int | None = None,
    render_overrides: dict[str, Any] | None = None,
    device: str = "auto",
    precision: str = "auto",
    batch_size: int = 128,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a run folder on its corpus's validation set, optionally re-rendering its glyphs.

    `render_overrides` (res, crop, margin, font, face, ...) re-renders a vision model's glyph bank
    with other settings, keeping the trained weights: the robustness test of the paper's RQ4
    without retraining. Returns the metrics plus what was evaluated.
    """
    prec = resolve(device, precision)
    run = load_run(run_dir, checkpoint=checkpoint, render_overrides=render_overrides, progress=progress)
    run.model.to(prec.device)
    index = run.corpus.val_index if sequences is None else run.corpus.val_index[:sequences]
    metrics = evaluate(run.model, run.corpus.sequences(index), prec, batch_size)
    return {
        "run": str(run_dir),
        "checkpoint": checkpoint,
        "input": run.config.model.input.kind,
        "render": run.render_settings,
        "sequences": len(index),
        "precision": prec.name,
        **metrics,
    }


def most_frequent_accuracy(corpus: PreparedCorpus, index: np.ndarray) -> float:  # noqa: F821
    """Accuracy of always predicting the corpus's most frequent character (a plateau early models sit on)."""
    top = max(range(len(corpus.vocab)), key=lambda i: (corpus.vocab.counts[i], -i))
    targets = corpus.sequences(index)[:, 1:]
    mask = targets != PAD_ID
    return float(((targets == top) & mask).sum() / mask.sum().clamp_min(1))
