"""Plots of training curves against samples seen (the x axis every hot-start comparison shares)."""

from __future__ import annotations

import json
from collections.abc import Sequence
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
    return _save(fig, out)


LINE_STYLES = (("-", "o"), ("--", "^"), ("-.", "s"), (":", "D"), ("-", "v"), ("--", "x"))


def draw_band_curves(ax: plt.Axes, curves: dict[str, list[list[dict[str, Any]]]],
                     reference: tuple[str, float] | None = None, title: str = "",
                     paper: dict[str, tuple[Sequence[int], Sequence[float]]] | None = None,
                     colors: dict[str, str] | None = None, metric: str = "val_acc") -> None:
    """On `ax`: per label, the mean of `metric` (accuracy in %) over its runs (seeds) with a min-max
    band, and the paper's points for that label (samples, accuracy %) as hollow squares in the same
    colour, if given. `colors` fixes a label's colour (say, one model in every panel); others take
    matplotlib's cycle. Rows without `metric` (runs from older versions) are left out."""
    scale = 100 if metric == "val_acc" else 1
    for i, (label, runs) in enumerate(curves.items()):
        runs = [rows for rows in runs if any(r.get(metric) is not None for r in rows)]
        by_samples: dict[int, list[float]] = {}
        for rows in runs:
            for r in rows:
                if r.get(metric) is not None:
                    by_samples.setdefault(r["samples"], []).append(scale * r[metric])
        xs = sorted(x for x, ys in by_samples.items() if len(ys) == len(runs))  # points every seed reached
        if not xs:
            continue
        mean = [sum(by_samples[x]) / len(by_samples[x]) for x in xs]
        # a line style and marker of its own, each later curve thinner and on top, so curves that
        # coincide (say two on the same plateau) stay visible
        linestyle, marker = LINE_STYLES[i % len(LINE_STYLES)]
        (line,) = ax.plot(xs, mean, linestyle=linestyle, marker=marker, markersize=max(6 - i, 3),
                          linewidth=max(3.0 - 0.6 * i, 1.0), zorder=2 + i,
                          markerfacecolor="none" if i % 2 else None, label=f"{label} (n={len(runs)})",
                          **({"color": colors[label]} if colors and label in colors else {}))
        if len(runs) > 1:
            ax.fill_between(xs, [min(by_samples[x]) for x in xs], [max(by_samples[x]) for x in xs],
                            color=line.get_color(), alpha=0.2, linewidth=0)
        if paper and label in paper:
            ax.plot(*paper[label], linestyle=":", marker="s", markersize=4, markerfacecolor="none",
                    color=line.get_color(), label=f"{label}, paper")
    if reference is not None:
        ax.axhline(100 * reference[1], color="grey", linestyle="--", linewidth=1, label=reference[0])
    ax.set_xlabel("training samples (sequences) seen")
    ax.set_ylabel("validation accuracy (%)" if metric == "val_acc" else metric)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_panels(panels: list[tuple[str, dict[str, list[list[dict[str, Any]]]]]], out: str | Path,
                reference: tuple[str, float] | None = None, columns: int = 2,
                paper: dict[str, tuple[Sequence[int], Sequence[float]]] | None = None,
                colors: dict[str, str] | None = None, metric: str = "val_acc") -> Path:
    """One `draw_band_curves` panel per (title, curves), in a grid, saved to `out`; `paper`,
    `colors` and `metric` as there."""
    rows = -(-len(panels) // columns)
    cols = min(columns, len(panels))
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 3.9 * rows), dpi=110, squeeze=False)
    for ax, (title, curves) in zip(axes.flat, panels):
        draw_band_curves(ax, curves, reference, title, paper, colors, metric)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    return _save(fig, out)


def _save(fig: plt.Figure, out: str | Path) -> Path:
    """Lay out, write and close a figure; its path."""
    from .options import write_file

    fig.tight_layout()
    try:
        return write_file(out, fig.savefig)
    finally:
        plt.close(fig)


def plot_series(xs: list[float], series: dict[str, list[float | None]], out: str | Path, xlabel: str,
                ylabel: str, title: str = "", hlines: dict[str, float] | None = None, logx: bool = False) -> Path:
    """Lines of y against shared x values (None leaves a gap), plus labelled horizontal lines.

    Past the colour cycle's 10 colours the next of LINE_STYLES follows, so no two series look alike; with
    many series the legend sits beside the axes, where it cannot hide a line."""
    many = len(series) > 6
    fig, ax = plt.subplots(figsize=(10.5, 4.6) if many else (7, 4.2), dpi=120)
    for i, (label, ys) in enumerate(series.items()):
        points = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if points:
            linestyle, marker = LINE_STYLES[i // 10 % len(LINE_STYLES)]
            ax.plot([p[0] for p in points], [p[1] for p in points], color=f"C{i % 10}", linestyle=linestyle,
                    marker=marker, label=label)
    for label, y in (hlines or {}).items():
        ax.axhline(y, linestyle="--", linewidth=1, color="grey" if "frequent" in label else "black", label=label)
    if logx:
        ax.set_xscale("log")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())  # no "6x10^0" labels between ours
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, **({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if many else {}))
    return _save(fig, out)


def plot_grouped_bars(groups: list[str], bars: dict[str, list[float]], out: str | Path, ylabel: str,
                      rotation: float = 0) -> Path:
    """A group of bars per x label, one bar per series (`bars`: series -> a value per group)."""
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=120)
    width = 0.8 / max(len(bars), 1)
    for i, (label, values) in enumerate(bars.items()):
        ax.bar([x + i * width for x in range(len(groups))], values, width, label=label)
    ax.set_xticks([x + width * (len(bars) - 1) / 2 for x in range(len(groups))], groups, fontsize=7 if rotation else 8,
                  rotation=rotation)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, out)


def plot_line_panels(panels: dict[str, dict[str, list[tuple[float, float]]]], out: str | Path, ylabel: str) -> Path:
    """A panel per title, side by side with a shared y axis; in each, a line of (x, y) points per series."""
    fig, axes = plt.subplots(1, len(panels), figsize=(10, 3.4), dpi=120, sharey=True, squeeze=False)
    for ax, (title, lines) in zip(axes[0], panels.items()):
        for label, points in lines.items():
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=label)
        ax.set_title(title, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=7)
    return _save(fig, out)


def plot_heat_maps(rows: list[list[tuple[str, list[list[float]], list[list[int]]]]], out: str | Path) -> Path:
    """A grid of heat maps, each (title, values, outline): `outline` is a 0/1 mask drawn as a contour."""
    import numpy as np

    columns = max(len(row) for row in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(2.4 * columns, 2.3 * len(rows)), dpi=120, squeeze=False)
    for ax_row, row in zip(axes, rows):
        for ax, (title, values, outline) in zip(ax_row, row):
            ax.imshow(np.array(values), cmap="magma")
            ax.contour(np.array(outline, dtype=float), levels=[0.5], colors="cyan", linewidths=0.8)
            ax.set_title(title, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    return _save(fig, out)


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


def mark_scales(ax: plt.Axes, scales: dict[str, float]) -> None:
    """Dashed vertical lines at the given x values (a log x axis widened to hold them), each labelled: where a
    paper says its method works, beside how far a run got."""
    for label, x in scales.items():
        ax.axvline(x, color="0.4", linestyle="--", linewidth=1)
        ax.text(x, ax.get_ylim()[1], " " + label, rotation=90, va="top", ha="right", fontsize=6, color="0.3")
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ax.set_xlim(low, max(high, 2 * max(scales.values(), default=high)))
