"""The report's section on characters never seen in training (grid `unseen`, data/holdout.py): for every
run that held characters out, next-character accuracy right after a held-out character against right
after a seen one, and how often a held-out character that is the answer ranks in the top 10."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .formatting import percent
from .runs import Run

FLOOR_MARGIN = 0.005
"""A run whose best accuracy is within this of the most-frequent-character floor learned nothing."""


def unseen_section(runs: list[Run], out: Path, floor: float | None = None) -> tuple[str, list[dict[str, Any]]]:
    """Markdown and CSV rows for the runs with held-out characters; writes unseen.png into `out`. A run whose
    best accuracy stays within FLOOR_MARGIN of `floor` (always the most frequent character) is marked as a
    failed run: its held-out figures say nothing."""
    held_runs = sorted((r for r in runs if (r.axes.get("holdout") or 0) > 0 and r.rows), key=lambda r: r.name)
    if not held_runs:
        return "No run held characters out (`hotstart sweep unseen`).", []
    rows = []
    for run in held_runs:
        last = run.rows[-1]
        vocab = run.config["model"].get("vocab_size") or 0
        rows.append({"run": run.name, "kind": run.axes["kind"], "head": run.axes.get("head", "linear"),
                     "holdout": run.axes["holdout"], "held_out": (run.summary or {}).get("held_out"),
                     "samples": last["samples"], "finished": run.summary is not None, "val_acc": last.get("val_acc"),
                     "after_seen": last.get("val_acc_after_seen"), "after_held": last.get("val_acc_after_heldout"),
                     "held_positions": last.get("val_heldout_positions"), "top10": last.get("val_heldout_top10"),
                     "held_answers": last.get("val_heldout_answers"), "top10_chance": 10 / vocab if vocab else None,
                     "learned_nothing": floor is not None and max(r["val_acc"] for r in run.rows) <= floor + FLOOR_MARGIN})
    lines = [("Each run trains without a share of the characters, drawn alike from 5 frequency bands: as inputs they "
             "are <unk>, as targets ignored and out of the softmax. At evaluation, a vision model reads a held-out "
             "character's glyph, an index model only <unk>. Accuracy after a held-out (or a seen) character counts the "
             "positions right after one whose answer was trained on; top-10 is how often a held-out character that is "
             "the answer ranks among the 10 highest-scoring characters of the whole vocabulary (chance: 10 / vocabulary)."),
             "", ("| run | input | head | held out | sequences | accuracy (%) | after a seen character (%) | "
             "after a held-out character (%) | positions | held-out answer in top 10 (%) | answers | chance (%) |"),
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['run']}{' (failed: learned nothing)' * r['learned_nothing']} | {r['kind']} | {r['head']} | {r['held_out'] or ''} | {r['samples']:,}"
                     f"{'' if r['finished'] else ' (in progress)'} | {percent(r['val_acc'])} | {percent(r['after_seen'])} | "
                     f"{percent(r['after_held'])} | {r['held_positions'] or 0:,} | {percent(r['top10'])} | "
                     f"{r['held_answers'] or 0:,} | {percent(r['top10_chance'])} |")
    if failed := [r["run"] for r in rows if r["learned_nothing"]]:
        lines += ["", (f"{', '.join(failed)} never trained: {'its' if len(failed) == 1 else 'their'} best accuracy stayed "
                       f"within {100 * FLOOR_MARGIN:.1f} pp of always predicting the most frequent character "
                       f"({100 * floor:.2f}%). A failed run, not a result: its held-out figures say nothing about "
                       "unseen characters.")]
    _plot(rows, out / "unseen.png")
    lines += ["", "![unseen characters](unseen.png)"]
    return "\n".join(lines), rows


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Grouped bars per run: accuracy after a seen and after a held-out character, held-out top-10."""
    from ..plot import plot_grouped_bars

    measures = (("after_seen", "after a seen character"), ("after_held", "after a held-out character"),
                ("top10", "held-out answer in top 10"))
    plot_grouped_bars([r["run"] for r in rows], {label: [100 * (r[key] or 0) for r in rows] for key, label in measures},
                      path, "%", rotation=10)
