"""Run folders as records: each run's settings read from its config.yaml, its evaluations, its summary.

A report recognises what a run is from its config.yaml, never from its folder name or a log, so a run
trained by hand with `hotstart train` sits in the same tables as one a sweep trained. A run still in
progress counts with the evaluations it has reached.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import load_yaml
from ..errors import HotStartError
from ..models.decoder import DECODER_SIZES
from ..plot import read_metrics
from ..training.checkpoint import read_json
from .embeddings import read_embeddings


@dataclass
class Run:
    """One run folder as the report sees it: its settings (axes), evaluations and summary."""

    name: str
    axes: dict[str, Any]
    rows: list[dict[str, Any]]
    summary: dict[str, Any] | None
    config: dict[str, Any]
    embeddings: dict[str, dict[str, Any]] | None = None  # embeddings.json: input-vector spread per checkpoint

    @property
    def best(self) -> dict[str, Any] | None:
        """The evaluation with the lowest validation loss (the best checkpoint's)."""
        return min(self.rows, key=lambda r: r["val_loss"]) if self.rows else None


def _size_name(decoder: dict[str, Any]) -> str:
    for name, size in DECODER_SIZES.items():
        if (size.n_layer, size.n_head, size.n_embd) == (decoder["n_layer"], decoder["n_head"], decoder["n_embd"]):
            return name
    return f"{decoder['n_layer']}x{decoder['n_embd']}"


def run_axes(cfg: dict[str, Any]) -> dict[str, Any]:
    """The settings a report groups by, read from a run's config.yaml."""
    inp, tc = cfg["model"]["input"], cfg["train"]
    vision = inp["kind"] == "vision"
    if tc.get("schedule", "onecycle") == "onecycle":
        schedule = "paper" if tc.get("lr_max", 1.5e-3) == 1.5e-3 else f"onecycle-{tc['lr_max']:g}"
    else:
        schedule = "warmup"
    protocol = "hot" if tc.get("max_samples") is not None and tc["max_samples"] == tc.get("dense_until") else "final"
    encoder = inp["encoder"] if vision else {}
    return {
        "protocol": protocol,
        "kind": inp["kind"],
        "encoder": inp["encoder"]["name"] if vision else None,
        "res": inp["render"]["res"] if vision else None,
        "crop": inp["render"]["crop"] if vision else None,
        "pixel_norm": inp["pixel_norm"] if vision else None,
        "output_norm": inp["output_norm"] if vision else None,
        "embed_init_std": None if vision else inp.get("embed_init_std", 0.02),
        "size": _size_name(cfg["model"]["decoder"]),
        "schedule": schedule,
        "seed": tc.get("seed", 0),
        # the hot-start investigation's settings (grid `explain`), at their defaults in older configs
        "encoder_norm": encoder.get("norm", "group") if vision else None,
        "encoder_size": encoder.get("size", "ours") if vision else None,
        "pool": encoder.get("pool", 4) if vision else None,
        "patch": encoder.get("patch", 0) if vision else None,
        "input_scale": inp.get("input_scale", "none") if vision else None,
        "center": inp.get("center", False) if vision else None,
        "tie_head": cfg["model"].get("tie_head", False),
        "onecycle_div": tc.get("onecycle_div", 25.0) if schedule != "warmup" else None,
        # the OneCycle's span where it is a setting of its own (final and warm-up runs span their budget)
        "span": tc.get("schedule_samples") if protocol == "hot" and schedule != "warmup" else None,
        "curriculum": tc.get("curriculum_order", "fresh"),
        # characters never trained on (grid `unseen`), at their defaults in older configs
        "holdout": (cfg.get("holdout") or {}).get("share", 0.0),
        "head": cfg["model"].get("head", "linear"),
        # the hot start's controls (grid `controls`), at their defaults in older configs
        "glyph_permute": inp.get("glyph_permute") if vision else None,
        "glyph_source": inp.get("glyph_source", "font") if vision else None,
        "adapter_init_std": encoder.get("adapter_init_std", 0.0) if vision else None,
    }


def load_runs(paths: list[str | Path]) -> tuple[list[Run], list[dict[str, Any]], dict[str, Any] | None]:
    """Runs under the given sweep or run folders, the sweeps' records, and a throughput measurement."""
    runs, sweeps, throughput = [], [], None
    for path in map(Path, paths):
        if (path / "config.yaml").is_file():
            folders = [path]
        elif (path / "runs").is_dir():
            folders = sorted(p for p in (path / "runs").iterdir() if (p / "config.yaml").is_file())
            if (path / "sweep.json").is_file():
                sweeps.append({"path": str(path), **read_json(path / "sweep.json", "sweep record")})
            if (path / "throughput.json").is_file():
                throughput = read_json(path / "throughput.json", "throughput measurement")
        else:
            raise HotStartError(f"{path} is neither a run folder (config.yaml) nor a sweep folder (runs/); "
                                "pass folders written by `hotstart train` or `hotstart sweep`")
        specs = sweeps[-1].get("runs", {}) if sweeps and sweeps[-1]["path"] == str(path) else {}
        for folder in folders:
            rows = read_metrics(folder) if (folder / "metrics.jsonl").is_file() else []
            if not rows:
                continue  # created but not evaluated yet
            cfg = load_yaml(folder / "config.yaml")
            summary = read_json(folder / "summary.json", "run summary") if (folder / "summary.json").is_file() else None
            axes = run_axes(cfg)
            if folder.name in specs:  # a sweep knows which protocol it ran; otherwise it is inferred
                axes["protocol"] = specs[folder.name]["protocol"]
            runs.append(Run(folder.name, axes, rows, summary, cfg, read_embeddings(folder)))
    if not runs:
        raise HotStartError(f"no evaluated runs under {', '.join(map(str, paths))}; train some first")
    return runs, sweeps, throughput


# The hot-start investigation's axes at their defaults (what `run_axes` gives a config without them).
NEW_AXIS_DEFAULTS: dict[str, Any] = {"encoder_norm": "group", "encoder_size": "ours", "pool": 4, "patch": 0,
                                     "input_scale": "none", "center": False, "tie_head": False, "onecycle_div": 25.0,
                                     "span": None, "curriculum": "fresh", "holdout": 0.0, "head": "linear",
                                     "glyph_permute": None, "glyph_source": "font", "adapter_init_std": 0.0}


class Selector:
    """Picks runs by settings, taking the paper's setting for every axis not named."""

    def __init__(self, runs: list[Run]) -> None:
        self.runs = runs
        sizes = [r.axes["size"] for r in runs]
        self.base_size = max(set(sizes), key=sizes.count)  # the sweep's own decoder size

    def __call__(self, protocol: str, kind: str, **axes: Any) -> list[Run]:
        want = {"protocol": protocol, "kind": kind, "size": self.base_size, "schedule": "paper", "tie_head": False,
                "curriculum": "fresh", "holdout": 0.0, "head": "linear", **axes}
        if want["schedule"] != "warmup":
            want = {"onecycle_div": 25.0, "span": None, **want}
        if kind == "vision":
            want = {"encoder": "simp", "res": 8, "crop": 1.0, "pixel_norm": "standardize",
                    "output_norm": "layernorm", "encoder_norm": "group", "encoder_size": "ours", "pool": 4,
                    "patch": 0, "input_scale": "none", "center": False, "glyph_permute": None,
                    "glyph_source": "font", "adapter_init_std": 0.0, **want}
        else:
            want = {"embed_init_std": 0.02, **want}
        # an axis a run does not name (axes made before that setting existed) is at its default
        return [r for r in self.runs if all(r.axes.get(k, NEW_AXIS_DEFAULTS.get(k)) == v for k, v in want.items())]

    def paper_setting(self) -> dict[str, list[Run]]:
        """The hot-start runs of index and vision 8x8 in the paper's setting: what every ablation
        variant is measured against (and drawn in the same two colours in every panel)."""
        return {"index": self("hot", "index"), "vision": self("hot", "vision")}


def acc_at(rows: list[dict[str, Any]], samples: int) -> tuple[float | None, bool]:
    """Accuracy at `samples`, linearly interpolated between evaluations; (value, was interpolated)."""
    points = sorted((r["samples"], r["val_acc"]) for r in rows)
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 == samples:
            return y0, False
        if x0 < samples < x1:
            return y0 + (y1 - y0) * (samples - x0) / (x1 - x0), True
    if points and points[-1][0] == samples:
        return points[-1][1], False
    return None, False


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def acc_stats(runs: list[Run], samples: int) -> tuple[float | None, float | None, int, bool]:
    """Mean and sd over runs (seeds) of the accuracy at `samples`, how many runs reached it, and
    whether any value was interpolated between evaluations."""
    values, interpolated = [], False
    for run in runs:
        value, interp = acc_at(run.rows, samples)
        if value is not None:
            values.append(value)
            interpolated |= interp
    if not values:
        return None, None, 0, False
    mean, sd = mean_sd(values)
    return mean, sd, len(values), interpolated


def final_metrics(runs: list[Run]) -> dict[str, Any] | None:
    """Mean over runs (seeds) of the best checkpoint's accuracy and perplexity, and what ended them."""
    bests = [r.best for r in runs if r.summary and r.best]
    if not bests:
        return None
    return {"acc": statistics.fmean(b["val_acc"] for b in bests), "ppl": statistics.fmean(b["val_ppl"] for b in bests),
            "n": len(bests), "samples": max(r.summary["samples"] for r in runs if r.summary),
            "stops": sorted({r.summary["stop_reason"] for r in runs if r.summary})}
