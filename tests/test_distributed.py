"""torchrun with 2 CPU processes (gloo) trains the same model as 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus

# Each rank computes the mean loss of its half batch and DDP averages the gradients; with full
# (pad-free) sequences that equals the one-process gradient up to float summation order, so losses
# agree to ~1e-6 in practice. The tolerances leave a little room for other BLAS builds
# while staying far below how far the weights move (checked below), so a broken gradient
# synchronisation (each rank stepping on its own half batch) fails.
TOLERANCE = 1e-5
WEIGHT_TOLERANCE = 1e-4
"""Weights: Adam divides by the gradient's running size, so rounding in parameters with tiny gradients
shows up as ~1e-5 absolute; the weights themselves move ~2e-2 in these six steps."""


def args(corpus: PreparedCorpus, out: Path, *extra: str) -> list[str]:
    # a warm-up of one step to a high lr: the weights move far in six steps, so a rank that skipped
    # the gradient average would end measurably elsewhere
    return ["train", "--data", str(corpus.path), "--input", "vision", "--encoder", "simp", "--size", "tiny",
            "--batch-size", "16", "--max-samples", "96", "--eval-every", "32", "--schedule", "cosine",
            "--warmup-samples", "16", "--lr-max", "3e-3", "--precision", "fp32", "--device", "cpu",
            "--out", str(out), "--quiet", *extra]


def torchrun(*hotstart_args: str) -> subprocess.Popen:
    """`torchrun --nproc_per_node 2 -m hotstart ...` in its own process group (so a kill reaches every rank)."""
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "hotstart", *hotstart_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    """Wait for a torchrun to end (killing it on timeout, so no rank outlives the test); its stderr."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, err[-3000:]
    return err


def kill_processes_naming(text: str) -> None:
    """SIGKILL every process whose command line contains `text` (torchrun's workers run in process
    groups of their own, so killing the launcher's group would leave them training)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass  # ended meanwhile


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_rows(one: list[dict], two: list[dict]) -> None:
    assert [r["samples"] for r in one] == [r["samples"] for r in two]
    for a, b in zip(one, two):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=TOLERANCE)
        assert b["val_acc"] == pytest.approx(a["val_acc"], abs=1e-9)
        assert (a["train_loss"] is None and b["train_loss"] is None) or \
            b["train_loss"] == pytest.approx(a["train_loss"], rel=TOLERANCE)


@pytest.mark.slow
def test_two_process_torchrun_ends_at_the_weights_of_one_process(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    assert main(args(tiny_corpus, tmp_path / "one")) == 0
    assert "processes 2" in finish(torchrun(*args(tiny_corpus, tmp_path / "two")))
    one, two = rows(tmp_path / "one"), rows(tmp_path / "two")
    assert [r["samples"] for r in one] == [0, 32, 64, 96]
    assert_same_rows(one, two)
    assert one[-1]["val_loss"] < one[0]["val_loss"] - 0.1  # it trained
    a, b = (load_file(tmp_path / run / "checkpoints" / "last.safetensors") for run in ("one", "two"))
    assert a.keys() == b.keys()
    differ = max((a[k] - b[k]).abs().max().item() for k in a)
    assert differ < WEIGHT_TOLERANCE, f"weights differ by {differ}"
    # and the weights moved far beyond that tolerance, so the comparison has teeth
    start = _initial_weights(tmp_path / "one")
    assert max((a[k] - start[k]).abs().max().item() for k in a) > 100 * WEIGHT_TOLERANCE


def _initial_weights(run: Path) -> dict[str, torch.Tensor]:
    """The weights `run` started from, rebuilt from its config and seed."""
    from hotstart.training.run import load_run

    return load_run(run, "init", progress=False).model.state_dict()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the ranks to kill through /proc")
def test_a_killed_torchrun_resumes_under_torchrun_to_the_one_process_metrics(tiny_corpus: PreparedCorpus,
                                                                             tmp_path: Path) -> None:
    longer = ["--max-samples", "512", "--dense-until", "512", "--eval-sequences", "16"]
    assert main(args(tiny_corpus, tmp_path / "one", *longer)) == 0
    killed = tmp_path / "two"
    proc = torchrun(*args(tiny_corpus, killed, *longer))
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (killed / "metrics.jsonl").exists() and len((killed / "metrics.jsonl").read_text().splitlines()) >= 3:
            break
        time.sleep(0.005)
    kill_processes_naming(str(killed))  # every rank, as a machine failure would
    proc.communicate()
    assert not (killed / "summary.json").exists(), "the run finished before it could be killed"
    assert "resuming" in finish(torchrun(*args(tiny_corpus, killed, *longer), "--resume"))
    assert_same_rows(rows(tmp_path / "one"), rows(killed))


@pytest.mark.slow
def test_early_stopping_under_torchrun_stops_every_rank_where_one_process_stops(tiny_corpus: PreparedCorpus,
                                                                               tmp_path: Path) -> None:
    # lr 0.3 makes the validation loss worse after the first steps; patience 1 then stops the run
    unstable = ["--lr-max", "0.3", "--patience", "1", "--max-samples", "512", "--dense-until", "512"]
    assert main(args(tiny_corpus, tmp_path / "one", *unstable)) == 0
    finish(torchrun(*args(tiny_corpus, tmp_path / "two", *unstable)), timeout=180)  # a rank left waiting would hang
    summaries = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("one", "two")]
    assert [s["stop_reason"] for s in summaries] == ["early_stopping"] * 2
    assert summaries[0]["samples"] == summaries[1]["samples"] < 512
    assert_same_rows(rows(tmp_path / "one"), rows(tmp_path / "two"))


def test_a_batch_that_does_not_split_over_the_processes_is_refused(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("WORLD_SIZE", "3")  # what torchrun --nproc_per_node 3 sets
    assert main(args(tiny_corpus, tmp_path / "r")) == 2
    assert "does not split evenly over 3 processes" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_processes_train_the_masked_autoencoder_as_one_does(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    # every line masks the same number of patches, so the mean of two half batches' losses is the
    # whole batch's, and each rank's masks are those of its lines in the one-process batch
    mae = ["train", "--objective", "mae", "--data", str(tiny_corpus.path), "--size", "tiny", "--max-patches", "49",
           "--batch-size", "8", "--max-samples", "48", "--eval-every", "16", "--eval-sequences", "8",
           "--lr-max", "3e-3", "--warmup-samples", "8", "--precision", "fp32", "--device", "cpu", "--quiet"]
    assert main([*mae, "--out", str(tmp_path / "one")]) == 0
    finish(torchrun(*mae, "--out", str(tmp_path / "two")))
    one, two = rows(tmp_path / "one"), rows(tmp_path / "two")
    assert [r["samples"] for r in one] == [r["samples"] for r in two] == [0, 16, 32, 48]
    for a, b in zip(one, two):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=TOLERANCE)
        assert (a["train_loss"] is None and b["train_loss"] is None) or \
            b["train_loss"] == pytest.approx(a["train_loss"], rel=TOLERANCE)
    assert one[-1]["val_loss"] != one[0]["val_loss"]  # the weights moved, so agreement means something
