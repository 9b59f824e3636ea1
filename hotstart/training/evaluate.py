"""Evaluation: next-character loss, top-1 accuracy and perplexity on held-out sequences.

One function serves every input path and every caller (the training loop's scheduled
evaluations, `hotstart eval`, the demo). Metrics are averaged over target positions, with <pad>
targets excluded, so they mean the same thing at any batch size.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..data.prepared import PAD_ID, SPECIALS
from ..models.hotstart_lm import HotStartLM
from ..render.glyph import RenderConfig
from ..render.perturb import Perturbation, lookalikes, perturb_glyphs, swap_lookalikes
from .precision import Precision, resolve
from .run import load_run


@torch.no_grad()
def evaluate(model: HotStartLM, sequences: torch.Tensor, precision: Precision, batch_size: int = 128,
             inputs: torch.Tensor | None = None) -> dict[str, float]:
    """Loss, accuracy and perplexity of `model` on (N, L) token sequences (predicting tokens 1..L-1);
    `inputs`, when given, is what the model reads instead of the sequences themselves (an index model
    reads held-out characters as <unk>, data/holdout.py)."""
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    read = sequences if inputs is None else inputs
    for start in range(0, sequences.shape[0], batch_size):
        batch = sequences[start : start + batch_size].to(precision.device, non_blocking=True)
        inputs_, targets = read[start : start + batch_size, :-1].to(precision.device), batch[:, 1:]  # (B, L-1) each
        with precision.autocast():
            logits, _ = model(inputs_)  # (B, L-1, V)
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


@torch.no_grad()
def held_out_metrics(model: HotStartLM, sequences: torch.Tensor, inputs: torch.Tensor, held: torch.Tensor,
                     precision: Precision, batch_size: int = 128, top: int = 10) -> dict[str, float]:
    """What a model makes of characters it never trained on (data/holdout.py), on (N, L) sequences read
    as `inputs`: next-character accuracy right after a held-out character and right after a seen one
    (targets that are held out left out of both), and how often a held-out character that is the
    answer is among the `top` highest-scoring characters of the whole vocabulary."""
    was_training = model.training
    model.eval()
    is_held = torch.zeros(model.config.vocab_size, dtype=torch.bool)
    is_held[held] = True
    counts = dict.fromkeys(("after_held", "after_held_correct", "after_seen", "after_seen_correct", "answer_held",
                            "answer_held_top"), 0)
    for start in range(0, sequences.shape[0], batch_size):
        targets = sequences[start : start + batch_size, 1:]
        before = sequences[start : start + batch_size, :-1]
        with precision.autocast():
            logits, _ = model(inputs[start : start + batch_size, :-1].to(precision.device))
        logits = logits.float().cpu()
        right = logits.argmax(-1) == targets
        answer_ok = (targets != PAD_ID) & ~is_held[targets]
        for name, where in (("after_held", is_held[before] & answer_ok),
                            ("after_seen", ~is_held[before] & (before >= len(SPECIALS)) & answer_ok)):
            counts[name] += int(where.sum())
            counts[f"{name}_correct"] += int((right & where).sum())
        answer_held = is_held[targets]
        rank = (logits > logits.gather(-1, targets[..., None])).sum(-1)  # characters scored above the answer
        counts["answer_held"] += int(answer_held.sum())
        counts["answer_held_top"] += int(((rank < top) & answer_held).sum())
    model.train(was_training)
    share = lambda hit, of: counts[hit] / counts[of] if counts[of] else None
    return {"val_acc_after_heldout": share("after_held_correct", "after_held"),
            "val_acc_after_seen": share("after_seen_correct", "after_seen"),
            f"val_heldout_top{top}": share("answer_held_top", "answer_held"),
            "val_heldout_positions": counts["after_held"], "val_heldout_answers": counts["answer_held"]}


def evaluate_run(
    run_dir: str | Path,
    checkpoint: str = "best",
    sequences: int | None = None,
    render_overrides: dict[str, Any] | None = None,
    device: str = "auto",
    precision: str = "auto",
    batch_size: int = 128,
    progress: bool = True,
    perturbation: Perturbation | None = None,
) -> dict[str, Any]:
    """Evaluate a run folder on its corpus's validation set, optionally re-rendering its glyphs.

    `render_overrides` (res, crop, margin, font, face, ...) re-renders a vision model's glyph bank
    with other settings, keeping the trained weights: the robustness test of the paper's RQ4
    without retraining. `perturbation` adds noise or stroke dropout to the glyphs, or swaps a share of
    the input characters for look-alikes (render/perturb.py). Returns the metrics plus what was evaluated.
    """
    prec = resolve(device, precision)
    if perturbation is not None:
        perturbation.validate()
    run = load_run(run_dir, checkpoint=checkpoint, render_overrides=render_overrides, progress=progress)
    vision = run.config.model.input.kind == "vision"
    if perturbation is not None and perturbation.touches_glyphs and vision:
        run.model.input.set_glyphs(perturb_glyphs(run.model.input.glyphs.cpu(), perturbation))
    run.model.to(prec.device)
    index = run.corpus.val_index if sequences is None else run.corpus.val_index[:sequences]
    seqs = run.corpus.sequences(index)
    inputs = None
    if perturbation is not None and perturbation.confusable_share > 0:
        table = lookalikes(run.corpus.vocab, run.config.model.input.render if vision else RenderConfig())
        inputs = swap_lookalikes(seqs, table, perturbation.confusable_share, perturbation.seed)
    metrics = evaluate(run.model, seqs, prec, batch_size, inputs=inputs)
    return {
        "run": str(run_dir),
        "checkpoint": checkpoint,
        "input": run.config.model.input.kind,
        "render": run.render_settings,
        **({"perturbation": asdict(perturbation)} if perturbation is not None else {}),
        **({"swapped": float((inputs != seqs).sum() / (seqs >= len(SPECIALS)).sum().clamp(min=1))} if inputs is not None else {}),
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
