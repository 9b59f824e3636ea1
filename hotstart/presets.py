"""Named run presets: the paper's experiments as partial RunConfigs (`hotstart train --preset NAME`).

A preset fills model and train settings; the data folder, the output folder and any option given
on the command line still come from the command line. `hotstart presets` lists them.
"""

from __future__ import annotations

from typing import Any

# The paper's protocol (sec. "Loss & Training"): GPT-2 small, batch 128, AdamW 0.01, OneCycle max
# 1.5e-3, quadratic curriculum, early stopping with patience 7. The OneCycle's start (max / 25) and
# span (1,000,000 samples) are our reading: the paper gives neither (TrainConfig says more).
# `cpu-*` keep the protocol with the small-cpu decoder and stop at the end of the hot-start window.
_PAPER = {"decoder": {"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024, "dropout": 0.1}}
_CPU = {"decoder": {"n_layer": 4, "n_head": 4, "n_embd": 256, "n_positions": 1024, "dropout": 0.0}}
_HOT_START_WINDOW = {"max_samples": 16384}


def _vision(res: int, crop: float = 1.0, encoder: str = "simp") -> dict[str, Any]:
    return {"kind": "vision", "encoder": {"name": encoder}, "render": {"res": res, "crop": crop}}


PRESETS: dict[str, dict[str, Any]] = {
    "paper-index": {"model": {**_PAPER, "input": {"kind": "index"}}},
    "paper-vision-8x8": {"model": {**_PAPER, "input": _vision(8)}},
    "paper-vision-40x40": {"model": {**_PAPER, "input": _vision(40)}},
    "paper-vision-8x8-crop50": {"model": {**_PAPER, "input": _vision(8, crop=0.5)}},
    "paper-vision-8x8-orig": {"model": {**_PAPER, "input": _vision(8, encoder="orig")}},
    "cpu-index": {"model": {**_CPU, "input": {"kind": "index"}}, "train": _HOT_START_WINDOW},
    "cpu-vision-8x8": {"model": {**_CPU, "input": _vision(8)}, "train": _HOT_START_WINDOW},
    "cpu-vision-40x40": {"model": {**_CPU, "input": _vision(40)}, "train": _HOT_START_WINDOW},
}


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`base` with `update` merged in, recursively for nested mappings (neither is modified)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
