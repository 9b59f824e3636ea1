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


def _defaults() -> dict[str, Any]:
    """Every axis's default, taken from the config dataclasses (what a config written before a setting existed
    trained with, and what a field left out means): one place, so a new field's default is read, not retyped."""
    from ..data.holdout import HoldoutConfig
    from ..models.encoders import EncoderConfig
    from ..models.hotstart_lm import InputConfig, ModelConfig
    from ..training.config import TrainConfig

    enc, inp, model, train = EncoderConfig(), InputConfig(), ModelConfig(vocab_size=0), TrainConfig()
    return {"encoder": enc.name, "res": inp.render.res, "crop": inp.render.crop, "pixel_norm": inp.pixel_norm,
            "output_norm": inp.output_norm, "embed_init_std": inp.embed_init_std, "encoder_norm": enc.norm,
            "encoder_size": enc.size, "pool": enc.pool, "patch": enc.patch, "input_scale": inp.input_scale,
            "center": inp.center, "tie_head": model.tie_head, "onecycle_div": train.onecycle_div, "span": None,
            "curriculum": train.curriculum_order, "holdout": HoldoutConfig().share, "head": model.head,
            "glyph_permute": inp.glyph_permute, "glyph_source": inp.glyph_source,
            "adapter_init_std": enc.adapter_init_std, "seed": train.seed, "lr_max": train.lr_max,
            "schedule": train.schedule}


DEFAULTS = _defaults()
VISION_AXES = ("encoder", "res", "crop", "pixel_norm", "output_norm", "encoder_norm", "encoder_size", "pool", "patch",
               "input_scale", "center", "glyph_permute", "glyph_source", "adapter_init_std")
"""Axes only a vision run has (None for an index run)."""
AXIS_ORDER = ("protocol", "kind", "encoder", "res", "crop", "pixel_norm", "output_norm", "embed_init_std", "size",
              "schedule", "seed", "encoder_norm", "encoder_size", "pool", "patch", "input_scale", "center", "tie_head",
              "onecycle_div", "span", "curriculum", "holdout", "head", "glyph_permute", "glyph_source",
              "adapter_init_std")
"""The axes in the order the report's CSV files give them."""


def run_axes(cfg: dict[str, Any]) -> dict[str, Any]:
    """The settings a report groups by, read from a run's config.yaml; a setting a config does not hold is at
    its default (DEFAULTS)."""
    d = DEFAULTS
    inp, tc = cfg["model"]["input"], cfg["train"]
    vision = inp["kind"] == "vision"
    if tc.get("schedule", d["schedule"]) == "onecycle":
        schedule = "paper" if tc.get("lr_max", d["lr_max"]) == d["lr_max"] else f"onecycle-{tc['lr_max']:g}"
    else:
        schedule = "warmup"
    protocol = "hot" if tc.get("max_samples") is not None and tc["max_samples"] == tc.get("dense_until") else "final"
    encoder, render = (inp["encoder"], inp["render"]) if vision else ({}, {})
    # where each vision axis sits in config.yaml (the rest are the input's own fields)
    found = {"encoder": encoder.get("name"), "res": render.get("res"), "crop": render.get("crop"),
             "encoder_norm": encoder.get("norm"), "encoder_size": encoder.get("size"), "pool": encoder.get("pool"),
             "patch": encoder.get("patch"), "adapter_init_std": encoder.get("adapter_init_std"),
             **{k: inp.get(k) for k in ("pixel_norm", "output_norm", "input_scale", "center", "glyph_permute", "glyph_source")}}
    given = lambda key: found[key] if key in found and (found[key] is not None or key == "glyph_permute") else d[key]
    axes = {
        "protocol": protocol,
        "kind": inp["kind"],
        **{key: given(key) if vision else None for key in VISION_AXES},
        "embed_init_std": None if vision else inp.get("embed_init_std", d["embed_init_std"]),
        "size": _size_name(cfg["model"]["decoder"]),
        "schedule": schedule,
        "seed": tc.get("seed", d["seed"]),
        "tie_head": cfg["model"].get("tie_head", d["tie_head"]),
        "onecycle_div": tc.get("onecycle_div", d["onecycle_div"]) if schedule != "warmup" else None,
        # the OneCycle's span where it is a setting of its own (final and warm-up runs span their budget)
        "span": tc.get("schedule_samples") if protocol == "hot" and schedule != "warmup" else None,
        "curriculum": tc.get("curriculum_order", d["curriculum"]),
        "holdout": (cfg.get("holdout") or {}).get("share", d["holdout"]),
        "head": cfg["model"].get("head", d["head"]),
    }
    return {key: axes[key] for key in AXIS_ORDER}  # the CSV columns' order


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


class Selector:
    """Picks runs by settings, taking the paper's setting for every axis not named."""

    def __init__(self, runs: list[Run]) -> None:
        self.runs = runs
        sizes = [r.axes["size"] for r in runs]
        self.base_size = max(set(sizes), key=sizes.count)  # the sweep's own decoder size

    def __call__(self, protocol: str, kind: str, **axes: Any) -> list[Run]:
        d = DEFAULTS
        want = {"protocol": protocol, "kind": kind, "size": self.base_size, "schedule": "paper",
                **{k: d[k] for k in ("tie_head", "curriculum", "holdout", "head")}, **axes}
        if want["schedule"] != "warmup":
            want = {"onecycle_div": d["onecycle_div"], "span": None, **want}
        if kind == "vision":
            want = {**{k: d[k] for k in VISION_AXES}, **want}
        else:
            want = {"embed_init_std": d["embed_init_std"], **want}
        # an axis a run does not name (axes made before that setting existed) is at its default
        return [r for r in self.runs if all(r.axes.get(k, d.get(k)) == v for k, v in want.items())]

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
