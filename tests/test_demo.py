"""The demo end to end at the tiny size: built-in corpus, both runs, table, plots."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotstart.data.prepared import PreparedCorpus
from hotstart.experiments.demo import DemoConfig, hot_start_table, run_demo


def test_hot_start_table_pairs_rows_by_samples_and_computes_the_ratio() -> None:
    index = [{"samples": 0, "val_acc": 0.0}, {"samples": 2048, "val_acc": 0.04}, {"samples": 4096, "val_acc": 0.05}]
    vision = [{"samples": 0, "val_acc": 0.001}, {"samples": 2048, "val_acc": 0.06}, {"samples": 4096, "val_acc": 0.05}]
    lines = hot_start_table(index, vision, "vision-8x8").splitlines()
    assert lines[2] == "| 0 | 0.00 | 0.10 | +0.10 | n/a |"
    assert lines[3] == "| 2,048 | 4.00 | 6.00 | +2.00 | 1.50 |"
    assert lines[4] == "| 4,096 | 5.00 | 5.00 | +0.00 | 1.00 |"


@pytest.mark.slow
def test_demo_runs_end_to_end_and_reuses_finished_runs(inews_corpus: PreparedCorpus, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = DemoConfig(out=str(tmp_path / "demo"), max_samples=256, size="tiny", eval_sequences=16)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "data").symlink_to(inews_corpus.path)  # the demo reuses a corpus prepared there
    table = run_demo(cfg, progress=False)
    out = Path(cfg.out)
    for name in ("hot_start.md", "curves.png", "glyphs.png", "demo.json", "index/summary.json",
                 "vision-8x8/summary.json", "data/meta.json"):
        assert (out / name).is_file(), name
    assert "| 256 |" in table and "hotstart demo" in (out / "hot_start.md").read_text()
    capsys.readouterr()
    assert run_demo(cfg, progress=False) == table  # finished runs are reused, same table
    assert "reusing the finished run" in capsys.readouterr().out
