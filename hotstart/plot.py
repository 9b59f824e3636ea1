"""Plots of training curves against samples seen (the x axis every hot-start comparison shares)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_curves(curves: dict[str, list[dict[str, Any]]], out: str | Path, metric: str = "val_acc",
                reference: tuple[str, float] | None = None, title: str = "") -> Path:
    """One line per run of `metric` against samples; `reference` = (label, y) draws a dashed line."""
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, rows in curves.items():
        xs = [r["samples"] for r in rows if r.get(metric) is not None]
        ys = [r[metric] * (100 if metric == "val_acc" else 1) for r in rows if r.get(metric) is not None]
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    if reference is not None:
        ref_label, ref_y = reference
        ax.axhline(ref_y * (100 if metric == "val_acc" else 1), color="grey", linestyle="--", linewidth=1, label=ref_label)
    ax.set_xlabel("training samples (sequences) seen")
    ax.set_ylabel("validation accuracy (%)" if metric == "val_acc" else metric)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


class NullBoard:
    """A do-nothing TensorBoard stand-in, so the training loop logs without an `if`."""

    def log(self, row: dict[str, Any]) -> None:
        """Ignore a metrics row."""

    def close(self) -> None:
        """Nothing to close."""


class TensorBoard(NullBoard):
    """Every numeric metrics.jsonl column as a TensorBoard scalar, with samples seen as the step."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            from .errors import HotStartError

            raise HotStartError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
        self.writer = SummaryWriter(str(log_dir))

    def log(self, row: dict[str, Any]) -> None:
        """Write the row's numbers at step = samples."""
        for key, value in row.items():
            if key != "samples" and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, global_step=row["samples"])
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()
