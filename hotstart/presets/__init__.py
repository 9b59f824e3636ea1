"""Named run presets: the paper's experiments as partial run configs (`hotstart train --preset NAME`), one YAML
file each in this folder; a new preset is a new file.

A preset fills model and train settings; the data folder, the output folder and any option given on the
command line still come from the command line. `hotstart presets` lists them.

The paper's protocol (sec. "Loss & Training"): GPT-2 small, batch 128, AdamW 0.01, OneCycle max 1.5e-3,
quadratic curriculum, early stopping with patience 7: TrainConfig's defaults, so the paper-* files set only
the decoder and the input. The OneCycle's start (max / 25) and span (1,000,000 samples) are our reading: the
paper gives neither (TrainConfig says more). cpu-* keep the protocol with the small-cpu decoder and stop at the
end of the hot-start window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HOME = Path(__file__).parent


def _load() -> dict[str, dict[str, Any]]:
    """{name: settings} of every preset file here, by name."""
    return {path.stem: yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(HOME.glob("*.yaml"))}


PRESETS: dict[str, dict[str, Any]] = _load()


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`base` with `update` merged in, recursively for nested mappings (neither is modified)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
