"""The GPU script of the hot start (scripts/gpu_hot_start.sh) runs end to end on a CPU at smoke scale, so
that it runs unchanged the first time a GPU is lent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hotstart.data.prepared import PrepareConfig, prepare

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_hot_start.sh"


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_gpu_script_trains_the_controls_and_the_explain_rows_and_reports_them(news_text_file, tmp_path) -> None:
    # a corpus of the few dozen most frequent characters: a 40x40 glyph encoder's cost grows with the distinct
    # characters of a batch, and six runs of it must fit the suite's time
    data = tmp_path / "data"
    prepare(PrepareConfig(corpus=str(news_text_file), seq_len=32, val_sequences=32, min_freq=200, split_lines=True), data,
            progress=False)
    env = {**os.environ, "SCALE": "smoke", "DEVICE": "cpu", "PRECISION": "fp32", "SEEDS": "0", "DATA": str(data), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = tmp_path / "hot"
    done = subprocess.run(["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted(p.name for p in (out / "runs").iterdir() if (p / "summary.json").is_file())
    assert runs == ["hot-index-s0", "hot-orig-8x8-s0", "hot-simp-40x40-pool0-patch1-ainit0.02-s0",
                    "hot-simp-40x40-pool0-patch1-noise-s0", "hot-simp-40x40-pool0-patch1-perm1-s0",
                    "hot-simp-40x40-pool0-patch1-s0"]
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Pixels or parametrisation: the controls" in report and (out / "controls.csv").is_file()
    assert "gpu_hot_start: smoke scale" in done.stdout
    # rerunning resumes: every run is found finished, nothing trains again
    again = subprocess.run(["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0 and "training hot-" not in again.stderr
