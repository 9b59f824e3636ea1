"""torchrun with 2 CPU processes (gloo) trains the same model as 1 process with the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hotstart.cli import main
from hotstart.data import PreparedCorpus

# Each rank computes the mean loss of its half batch and DDP averages the gradients; with full
# (pad-free) sequences that equals the one-process gradient up to float summation order, so the
# curves agree to ~1e-7 in practice. The stated tolerance leaves room for other BLAS builds.
TOLERANCE = 1e-4


def args(corpus: PreparedCorpus, out: Path) -> list[str]:
    return ["train", "--data", str(corpus.path), "--input", "vision", "--encoder", "simp", "--size", "tiny",
            "--batch-size", "16", "--max-samples", "96", "--eval-every", "32", "--precision", "fp32",
            "--device", "cpu", "--out", str(out), "--quiet"]


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_process_torchrun_matches_one_process(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    assert main(args(tiny_corpus, tmp_path / "one")) == 0
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "hotstart", *args(tiny_corpus, tmp_path / "two")],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "processes 2" in result.stderr
    one, two = rows(tmp_path / "one"), rows(tmp_path / "two")
    assert [r["samples"] for r in one] == [r["samples"] for r in two] == [0, 32, 64, 96]
    for a, b in zip(one, two):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=TOLERANCE)
        assert (a["train_loss"] is None and b["train_loss"] is None) or \
            b["train_loss"] == pytest.approx(a["train_loss"], rel=TOLERANCE)
    assert one[-1]["val_loss"] < one[0]["val_loss"]  # it trained
    assert (tmp_path / "two" / "summary.json").is_file()


def test_a_batch_that_does_not_split_over_the_processes_is_refused(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("WORLD_SIZE", "3")  # what torchrun --nproc_per_node 3 sets
    assert main(args(tiny_corpus, tmp_path / "r")) == 2
    assert "does not split evenly over 3 processes" in capsys.readouterr().err
