"""Precision resolution: `auto` on a CPU follows a measured bf16-vs-fp32 probe, and a sweep keeps one precision."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from hotstart import precision as precision_module
from hotstart.errors import HotStartError
from hotstart.precision import BF16_MIN_SPEEDUP, cpu_bf16_speedup, pick_precision
from hotstart.sweep import sweep_precision

CPU = torch.device("cpu")


def test_the_probe_measures_a_positive_finite_speedup_once_per_process() -> None:
    speedup = cpu_bf16_speedup(size=256, repeats=3)
    assert speedup > 0 and math.isfinite(speedup)
    assert cpu_bf16_speedup(size=256, repeats=3) == speedup  # cached: a second call does not re-measure


@pytest.mark.parametrize(("speedup", "expected"), [(2.3, "bf16"), (BF16_MIN_SPEEDUP, "bf16"),
                                                    (1.1, "fp32"), (0.57, "fp32")])
def test_auto_on_a_cpu_takes_bf16_only_when_the_probe_shows_it_clearly_faster(
        monkeypatch: pytest.MonkeyPatch, speedup: float, expected: str) -> None:
    monkeypatch.setattr(precision_module, "cpu_bf16_speedup", lambda: speedup)
    assert pick_precision("auto", CPU) == expected


def test_an_explicit_precision_skips_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> float:
        raise AssertionError("the probe ran although a precision was given")

    monkeypatch.setattr(precision_module, "cpu_bf16_speedup", fail)
    assert pick_precision("fp32", CPU) == "fp32"
    assert pick_precision("bf16", CPU) == "bf16"


def _finished_run(out: Path, name: str, precision: str) -> None:
    run = out / "runs" / name
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"environment": {"precision": precision}}))


def test_a_sweep_keeps_the_precision_its_runs_trained_in(tmp_path: Path) -> None:
    assert sweep_precision(tmp_path, "fp32", "cpu") == "fp32"  # nothing trained yet: as asked
    _finished_run(tmp_path, "hot-index-s0", "fp32")
    assert sweep_precision(tmp_path, "auto", "cpu") == "fp32"  # whatever auto would pick here
    with pytest.raises(HotStartError, match="trained in fp32.*pass --precision fp32"):
        sweep_precision(tmp_path, "bf16", "cpu")
    _finished_run(tmp_path, "hot-index-s1", "bf16")
    with pytest.raises(HotStartError, match="different precisions \\(bf16, fp32\\)"):
        sweep_precision(tmp_path, "auto", "cpu")


def test_sweep_json_pins_the_precision_before_any_run_finishes(tmp_path: Path) -> None:
    (tmp_path / "sweep.json").write_text(json.dumps({"scale": "cpu", "precision": "bf16"}))
    assert sweep_precision(tmp_path, "auto", "cpu") == "bf16"
