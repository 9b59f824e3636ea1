"""Precision resolution: `auto` on a CPU follows a measured bf16-vs-fp32 probe, and a sweep keeps one precision."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from hotstart.errors import HotStartError
from hotstart.experiments.sweep import sweep_precision
from hotstart.training import precision as precision_module
from hotstart.training.precision import (
    BF16_MIN_SPEEDUP,
    cpu_bf16_speedup,
    pick_precision,
)

CPU = torch.device("cpu")


@pytest.fixture()
def fresh_probe() -> Iterator[None]:
    """The probe's once-per-process cache emptied before and after, so a test sees a real measurement
    and leaves none of its own behind."""
    precision_module.cpu_bf16_speedup.cache_clear()
    yield
    precision_module.cpu_bf16_speedup.cache_clear()


def _timings(monkeypatch: pytest.MonkeyPatch, fp32_s: float, bf16_s: float) -> list[torch.dtype]:
    """Make the probe's timer report `fp32_s` for the first function it times and `bf16_s` for the
    second, after really running each once; returns the dtype of every matmul those runs computed."""
    dtypes: list[torch.dtype] = []
    matmul = torch.Tensor.__matmul__

    def spy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = matmul(a, b)
        dtypes.append(out.dtype)
        return out

    times = iter((fp32_s, bf16_s))

    def fake_median_seconds(fn, repeats: int) -> float:
        fn()
        return next(times)

    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    monkeypatch.setattr(precision_module, "_median_seconds", fake_median_seconds)
    return dtypes


def test_the_probe_divides_the_fp32_time_by_the_bf16_time(monkeypatch: pytest.MonkeyPatch, fresh_probe: None) -> None:
    dtypes = _timings(monkeypatch, fp32_s=0.3, bf16_s=0.1)
    assert cpu_bf16_speedup(size=16, repeats=1) == pytest.approx(3.0)
    assert dtypes == [torch.float32, torch.bfloat16]  # it timed an fp32 matmul, then one under bf16 autocast


def test_the_probe_measures_once_per_process(monkeypatch: pytest.MonkeyPatch, fresh_probe: None) -> None:
    dtypes = _timings(monkeypatch, fp32_s=0.1, bf16_s=0.2)
    assert cpu_bf16_speedup(size=16) == pytest.approx(0.5)
    assert cpu_bf16_speedup(size=16) == pytest.approx(0.5)
    assert len(dtypes) == 2  # the second call ran and timed nothing again


@pytest.mark.parametrize(("fp32_s", "bf16_s", "expected"), [(0.2, 0.1, "bf16"), (0.1, 0.2, "fp32"),
                                                             (0.11, 0.1, "fp32")])
def test_auto_on_a_cpu_decides_from_the_measured_ratio(monkeypatch: pytest.MonkeyPatch, fresh_probe: None,
                                                        fp32_s: float, bf16_s: float, expected: str) -> None:
    _timings(monkeypatch, fp32_s, bf16_s)
    assert pick_precision("auto", CPU) == expected


def test_the_real_probe_measures_a_positive_finite_speedup(fresh_probe: None) -> None:
    speedup = cpu_bf16_speedup(size=64, repeats=1)
    assert speedup > 0 and math.isfinite(speedup)


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


def test_a_half_finished_run_pins_the_precision_it_started_in(tmp_path: Path) -> None:
    # A member grid resumed on a machine whose probe picks otherwise must resume, not be refused.
    run = tmp_path / "runs" / "family-mae"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "state.safetensors").write_bytes(b"")
    (run / "config.yaml").write_text("train:\n  precision: bf16\n")
    assert sweep_precision(tmp_path, "auto", "cpu", "family.json") == "bf16"
    with pytest.raises(HotStartError, match="trained in bf16"):
        sweep_precision(tmp_path, "fp32", "cpu", "family.json")


def test_a_member_grid_record_pins_the_precision(tmp_path: Path) -> None:
    (tmp_path / "family.json").write_text(json.dumps({"scale": "cpu", "precision": "bf16"}))
    assert sweep_precision(tmp_path, "auto", "cpu", "family.json") == "bf16"
    assert sweep_precision(tmp_path, "auto", "cpu") in ("fp32", "bf16")  # another record name: not pinned by it
