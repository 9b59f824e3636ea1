"""Recovery: resuming runs whose corpus changed under them, runs killed before their first evaluation,
and sweeps that resume a half-finished run or meet a failed one."""

from __future__ import annotations

import importlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus, Vocab
from hotstart.errors import HotStartError
from hotstart.experiments.sweep import RunSpec, SweepConfig, run_sweep

TIMING = ("samples_per_s", "wall_s")  # the only columns a resumed run may differ in
train_module = importlib.import_module("hotstart.training.loop")  # the package also exports a function `train`


def index_args(data: Path, out: Path, *extra: str) -> list[str]:
    """A tiny index run of 96 samples in fp32, evaluated every 32 (4 evaluations with the one at 0)."""
    return ["train", "--data", str(data), "--size", "tiny", "--dropout", "0.1", "--batch-size", "16",
            "--max-samples", "96", "--eval-every", "32", "--schedule", "cosine", "--warmup-samples", "16",
            "--precision", "fp32", "--device", "cpu", "--out", str(out), "--quiet", *extra]


def rows_without_timing(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def without_timing(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in TIMING}


def interrupt_after_state(monkeypatch: pytest.MonkeyPatch, saves: int) -> None:
    """Ctrl-C the next run right after its `saves`-th training state reached the disk (0: right before
    the first one), which is where a kill leaves a run between evaluations."""
    real = train_module.save_training_state
    count = [0]

    def save_then_interrupt(*args, **kwargs) -> None:
        if count[0] == saves:
            raise KeyboardInterrupt
        real(*args, **kwargs)
        count[0] += 1
        if count[0] == saves:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_training_state", save_then_interrupt)


# ---------------------------------------------------------------- resume after the corpus was re-prepared


def _prepare(text_file: Path, out: Path, *extra: str) -> PreparedCorpus:
    assert main(["prepare", "--corpus", str(text_file), "--out", str(out), "--seq-len", "32", "--val-sequences", "32",
                 "--split-lines", "--quiet", *extra]) == 0
    return PreparedCorpus.load(out)


def _other_min_freq(text: str, tmp: Path, vocab) -> tuple[str, list[str]]:
    return text, ["--min-freq", "3"]  # drops the characters seen twice: a smaller vocabulary


def _swapped_characters(text: str, tmp: Path, vocab) -> tuple[str, list[str]]:
    # the two most frequent CJK characters trade places in the text: the same number of entries,
    # but two ids now stand for each other's character
    a, b = [ch for ch in vocab.chars if "\u4e00" <= ch <= "\u9fff"][:2]
    return text.translate({ord(a): b, ord(b): a}), ["--min-freq", "2"]


def _other_seed(text: str, tmp: Path, vocab) -> tuple[str, list[str]]:
    return text, ["--min-freq", "2", "--seed", "1"]  # the same vocabulary, other validation sequences


@pytest.mark.parametrize(("reprepare", "refusal"), [
    pytest.param(_other_min_freq, "has another vocabulary than the run was started with (it was re-prepared)",
                 id="min-freq-3"),
    pytest.param(_swapped_characters, "has another vocabulary than the run was started with (it was re-prepared)",
                 id="same-size-other-characters"),
    pytest.param(_other_seed, "was re-prepared since the run started (other settings, text or split)", id="seed-1"),
])
def test_resume_refuses_a_corpus_reprepared_under_the_run_in_one_line(
        reprepare: Callable, refusal: str, news_text_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    before = _prepare(news_text_file, data, "--min-freq", "2")
    interrupt_after_state(monkeypatch, 2)
    assert main(index_args(data, run)) == 130  # killed after its evaluations at 0 and 32 samples
    monkeypatch.undo()
    vocab_file, rows = (run / "vocab.json").read_bytes(), rows_without_timing(run)
    state = run / "checkpoints" / "state.safetensors"
    assert len(train_module.training_state_progress(state)["rows"]) == 2 and not (run / "summary.json").exists()

    text, options = reprepare(news_text_file.read_text(encoding="utf-8"), tmp_path, before.vocab)
    (tmp_path / "edited.txt").write_text(text, encoding="utf-8")
    after = _prepare(tmp_path / "edited.txt", data, "--overwrite", *options)
    assert (after.vocab.tokens, after.val_index.tolist()) != (before.vocab.tokens, before.val_index.tolist())

    capsys.readouterr()
    assert main([*index_args(data, run), "--resume"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert f"the corpus at {data} {refusal}" in errors[0], errors[0]
    assert errors[0].endswith("; prepare the corpus the run started on into another folder, or pass --overwrite to "
                              "start again"), errors[0]
    # the run is left as it was: its vocabulary and evaluations still match its weights
    assert (run / "vocab.json").read_bytes() == vocab_file and rows_without_timing(run) == rows


def _state_recording(path: Path, progress: dict) -> Path:
    """A training state (of a stand-in model) whose header holds `progress`."""
    import torch

    model = torch.nn.Linear(2, 2)
    train_module.save_training_state(path, model, torch.optim.AdamW(model.parameters()),
                                     torch.amp.GradScaler("cpu", enabled=False), progress)
    return path


def test_a_training_state_from_before_the_corpus_check_resumes_on_the_same_vocabulary(
        tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    # states written before the corpus fingerprint was recorded have no "corpus" key: the vocabulary
    # saved beside the run is then the only check, and it passes on the corpus the run started on
    tiny_corpus.vocab.save(tmp_path / "vocab.json")
    old_state = _state_recording(tmp_path / "old.safetensors", {"samples": 32})
    train_module._check_same_corpus(tmp_path, tiny_corpus, old_state)
    train_module._check_same_corpus(tmp_path, tiny_corpus, _state_recording(
        tmp_path / "new.safetensors", {"samples": 32, "corpus": tiny_corpus.fingerprint()}))
    with pytest.raises(HotStartError, match="was re-prepared since the run started"):
        train_module._check_same_corpus(tmp_path, tiny_corpus, _state_recording(
            tmp_path / "other.safetensors", {"samples": 32, "corpus": "0123456789abcdef"}))
    # ... and refuses another vocabulary, which such an old state cannot tell
    tokens = list(tiny_corpus.vocab.tokens)
    tokens[-2:] = tokens[-1], tokens[-2]  # two ids stand for each other's character
    Vocab(tokens, tiny_corpus.vocab.counts).save(tmp_path / "vocab.json")
    with pytest.raises(HotStartError, match="has another vocabulary than the run was started with"):
        train_module._check_same_corpus(tmp_path, tiny_corpus, old_state)


# ---------------------------------------------------------------- interrupted between evaluations


def test_a_run_interrupted_after_an_evaluation_resumes_in_process_to_the_uninterrupted_metrics(
        reference_run: Path, tiny_corpus: PreparedCorpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    args = index_args(tiny_corpus.path, run)
    interrupt_after_state(monkeypatch, 2)  # the state holds the evaluation at 32 samples, metrics.jsonl not yet
    assert main(args) == 130
    monkeypatch.undo()
    assert len(rows_without_timing(run)) == 1
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert f"resuming {run} at 32 samples" in capsys.readouterr().err
    # the rows are rewritten from the state, and the weights, optimiser moments and RNG continue exactly
    assert rows_without_timing(run) == rows_without_timing(reference_run)
    reference = json.loads((reference_run / "summary.json").read_text())
    resumed = json.loads((run / "summary.json").read_text())
    assert without_timing(resumed["final"]) == without_timing(reference["final"])


# ---------------------------------------------------------------- killed before the first evaluation


@pytest.fixture(scope="module")
def reference_run(tiny_corpus: PreparedCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted tiny index run: the metrics every recovered run must end with."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(index_args(tiny_corpus.path, out)) == 0
    return out


def _config_only(reference: Path, run: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    run.mkdir()
    shutil.copy2(reference / "config.yaml", run / "config.yaml")  # killed right after writing its settings


def _interrupted_in_first_evaluation(reference: Path, run: Path, args: list[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    interrupt_after_state(monkeypatch, 0)  # best.safetensors written, the training state not yet
    assert main(args) == 130
    monkeypatch.undo()
    assert (run / "checkpoints" / "best.safetensors").exists()


@pytest.mark.parametrize("kill", [_config_only, _interrupted_in_first_evaluation], ids=["config-only", "in-first-eval"])
def test_a_run_killed_before_its_first_evaluation_resumes_from_zero_to_the_uninterrupted_metrics(
        kill: Callable, reference_run: Path, tiny_corpus: PreparedCorpus, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    args = index_args(tiny_corpus.path, run)
    kill(reference_run, run, args, monkeypatch)
    assert not (run / "checkpoints" / "state.safetensors").exists() and not (run / "summary.json").exists()
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert "resuming" not in capsys.readouterr().err  # nothing to resume from: it started over
    assert rows_without_timing(run) == rows_without_timing(reference_run)
    assert len(rows_without_timing(run)) == 4
    reference = json.loads((reference_run / "summary.json").read_text())
    resumed = json.loads((run / "summary.json").read_text())
    assert without_timing(resumed["final"]) == without_timing(reference["final"])


@pytest.mark.subprocess
def test_a_run_killed_with_sigkill_right_after_start_resumes_from_zero(reference_run: Path, tiny_corpus: PreparedCorpus,
                                                                       tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = index_args(tiny_corpus.path, run)
    proc = subprocess.Popen([sys.executable, "-m", "hotstart", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not (run / "config.yaml").exists():
            time.sleep(0.001)
    finally:  # killed as soon as its run folder has settings, at the deadline, or when the test fails
        proc.kill()
        code = proc.wait(timeout=60)
    assert code == -signal.SIGKILL, "the run finished before it could be killed"
    assert (run / "config.yaml").exists() and not (run / "checkpoints" / "state.safetensors").exists()
    assert main([*args, "--resume"]) == 0
    assert rows_without_timing(run) == rows_without_timing(reference_run)


# ---------------------------------------------------------------- sweeps


def _sweep(tiny_corpus: PreparedCorpus, out: Path, seeds: tuple[int, ...] = (0,)) -> SweepConfig:
    """The hot index runs of the rq2 grid at smoke scale (1,024 samples, 5 evaluations) on the tiny corpus."""
    return SweepConfig(grid="rq2", out=str(out), scale="smoke", seeds=seeds, only=["hot-index"],
                       data=str(tiny_corpus.path), device="cpu", precision="fp32")


@pytest.mark.slow
def test_a_sweep_resumes_a_half_finished_run_to_the_metrics_of_an_uninterrupted_one(
        tiny_corpus: PreparedCorpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    assert run_sweep(_sweep(tiny_corpus, tmp_path / "whole"), progress=False) == [
        {"run": "hot-index-s0", "status": "trained"}]
    interrupt_after_state(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C ends the sweep after the run's second evaluation
        run_sweep(_sweep(tiny_corpus, tmp_path / "halted"), progress=False)
    monkeypatch.undo()
    halted, whole = tmp_path / "halted" / "runs" / "hot-index-s0", tmp_path / "whole" / "runs" / "hot-index-s0"
    assert (halted / "checkpoints" / "state.safetensors").exists() and not (halted / "summary.json").exists()

    capsys.readouterr()
    assert run_sweep(_sweep(tiny_corpus, tmp_path / "halted"), progress=False) == [
        {"run": "hot-index-s0", "status": "trained"}]
    err = capsys.readouterr().err
    assert "resuming hot-index-s0" in err and f"resuming {halted} at 256 samples" in err  # not trained again
    assert rows_without_timing(halted) == rows_without_timing(whole)
    assert len(rows_without_timing(whole)) == 5  # 0, 256, 512, 768, 1,024 samples
    ours, theirs = (json.loads((run / "summary.json").read_text()) for run in (halted, whole))
    assert without_timing(ours["final"]) == without_timing(theirs["final"])
    assert without_timing(ours["best"]) == without_timing(theirs["best"])
    assert (ours["samples"], ours["steps"], ours["stop_reason"]) == (theirs["samples"], theirs["steps"], "max_samples")
    spread = [{k: {s: v for s, v in stats.items() if s != "command"} for k, stats in
               json.loads((run / "embeddings.json").read_text()).items()} for run in (halted, whole)]
    assert spread[0] == spread[1]


@pytest.mark.slow
def test_a_sweep_goes_on_after_a_diverged_run_and_reports_it(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    real = RunSpec.run_config

    def absurd_lr_for_seed_0(spec: RunSpec, scale, data):
        cfg = real(spec, scale, data)
        if spec.seed == 0:
            cfg.train.lr_max = 1e30  # diverges within a few steps
        return cfg

    monkeypatch.setattr(RunSpec, "run_config", absurd_lr_for_seed_0)
    out = tmp_path / "sweep"
    capsys.readouterr()
    statuses = run_sweep(_sweep(tiny_corpus, out, seeds=(0, 1)), progress=False)
    err = capsys.readouterr().err
    assert [s["run"] for s in statuses] == ["hot-index-s0", "hot-index-s1"]
    assert statuses[0]["status"].startswith("failed: ") and "lower --lr-max" in statuses[0]["status"]
    assert statuses[1]["status"] == "trained"
    assert "run hot-index-s0 failed: " in err and "1 of 2 runs finished, 1 failed" in err
    # the run after the failed one is complete; the failed one records why it stopped and keeps no last weights
    good = json.loads((out / "runs" / "hot-index-s1" / "summary.json").read_text())
    assert good["stop_reason"] == "max_samples" and good["samples"] == 1024
    bad = out / "runs" / "hot-index-s0"
    assert json.loads((bad / "summary.json").read_text())["stop_reason"] in train_module.DIVERGED
    assert not (bad / "checkpoints" / "last.safetensors").exists()
    # a rerun does not train it again, but still reports it as failed, and the command exits with an error
    capsys.readouterr()
    again = run_sweep(_sweep(tiny_corpus, out, seeds=(0, 1)), progress=False)
    assert again[0]["status"].startswith("failed before (non_finite") and f"delete {bad}" in again[0]["status"]
    assert again[1]["status"] == "done before" and "1 of 2 runs finished, 1 failed" in capsys.readouterr().err
    assert main(["sweep", "rq2", "--scale", "smoke", "--out", str(out), "--data", str(tiny_corpus.path),
                 "--seeds", "0,1", "--only", "index", "--quiet"]) == 2
    assert "error: 1 of 2 runs failed (hot-index-s0)" in capsys.readouterr().err
