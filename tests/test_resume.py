"""Kill a run with SIGKILL, resume it, and get exactly the metrics of a run that was never killed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus

TIMING = ("samples_per_s", "wall_s")  # the only columns a resumed run may differ in


def train_args(corpus: PreparedCorpus, out: Path, precision: str = "fp32") -> list[str]:
    # dropout 0.1: a resumed run must continue the dropout masks' random stream exactly (the RNG state)
    return ["train", "--data", str(corpus.path), "--input", "vision", "--encoder", "opt", "--size", "tiny",
            "--dropout", "0.1", "--batch-size", "16", "--max-samples", "1024", "--eval-every", "32",
            "--dense-until", "1024", "--eval-sequences", "16", "--schedule", "cosine", "--warmup-samples", "64",
            "--precision", precision, "--device", "cpu", "--out", str(out), "--quiet"]


def rows_without_timing(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_metrics(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                        precision: str) -> None:
    assert main(train_args(tiny_corpus, tmp_path / "reference", precision)) == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "hotstart", *train_args(tiny_corpus, killed, precision)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = killed / "metrics.jsonl"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= 4:
                break
            time.sleep(0.005)
    finally:  # killed at the fourth row, at the deadline, or when the test fails: never left running
        proc.kill()
        code = proc.wait(timeout=60)
    assert code == -signal.SIGKILL, "the run finished before it could be killed"
    rows_at_kill = len(rows_without_timing(killed))
    assert 4 <= rows_at_kill < len(rows_without_timing(tmp_path / "reference"))
    assert not (killed / "summary.json").exists()

    assert main([*train_args(tiny_corpus, killed, precision), "--resume"]) == 0
    assert rows_without_timing(killed) == rows_without_timing(tmp_path / "reference")
    reference = json.loads((tmp_path / "reference" / "summary.json").read_text())
    resumed = json.loads((killed / "summary.json").read_text())
    assert {k: resumed["final"][k] for k in resumed["final"] if k not in TIMING} == \
           {k: reference["final"][k] for k in reference["final"] if k not in TIMING}


def test_resume_refuses_other_settings(tiny_corpus: PreparedCorpus, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = train_args(tiny_corpus, tmp_path / "run")
    args[args.index("--max-samples") + 1] = "64"
    assert main(args) == 0
    # a finished run is returned as it is: not trained on, nothing rewritten
    files = {name: (tmp_path / "run" / name).read_bytes() for name in ("summary.json", "metrics.jsonl")}
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert f"{tmp_path / 'run'} has already finished; nothing to resume" in capsys.readouterr().err
    assert all((tmp_path / "run" / name).read_bytes() == content for name, content in files.items())
    (tmp_path / "run" / "summary.json").unlink()
    other = [*args, "--resume", "--seed", "5"]
    capsys.readouterr()
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "train.seed" in err


def test_a_truncated_training_state_is_refused_in_one_line(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    args = train_args(tiny_corpus, tmp_path / "run")
    args[args.index("--max-samples") + 1] = "64"
    assert main(args) == 0
    (tmp_path / "run" / "summary.json").unlink()
    state = tmp_path / "run" / "checkpoints" / "state.safetensors"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    capsys.readouterr()
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and "corrupt or truncated" in errors[0] and err[-1] == errors[0]
    assert not any("Traceback" in line for line in err)


@pytest.mark.subprocess
def test_a_truncated_checkpoint_is_refused_by_eval(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    args = train_args(tiny_corpus, tmp_path / "run")
    args[args.index("--max-samples") + 1] = "32"
    assert main(args) == 0
    best = tmp_path / "run" / "checkpoints" / "best.safetensors"
    best.write_bytes(best.read_bytes()[:100])
    result = subprocess.run([sys.executable, "-m", "hotstart", "eval", str(tmp_path / "run"), "--quiet"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "corrupt or truncated" in lines[0], result.stderr


def test_a_resumed_auto_run_keeps_the_precision_it_started_in(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    from hotstart.training import precision

    run = tmp_path / "run"
    args = [*train_args(tiny_corpus, run)[:-7], "--max-samples", "64", "--eval-every", "32", "--dense-until", "64",
            "--precision", "auto", "--device", "cpu", "--out", str(run), "--quiet"]
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: 0.5)  # this CPU: bf16 slower, auto takes fp32
    assert main(args) == 0
    assert json.loads((run / "summary.json").read_text())["environment"]["precision"] == "fp32"
    (run / "summary.json").unlink()  # as if killed after its last evaluation
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: 3.0)  # now auto alone would take bf16
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert json.loads((run / "summary.json").read_text())["environment"]["precision"] == "fp32"
    # and says why it did not decide again
    assert "device cpu, precision fp32 (auto when the run started; kept on resume), processes 1\n" in capsys.readouterr().err


def test_the_gradient_scaler_state_survives_a_resume(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    # fp16 (the only precision with a loss scaler) trains on CUDA alone, so the round trip is checked here
    from hotstart.training.checkpoint import load_training_state, save_training_state

    model = torch.nn.Linear(4, 4)
    optimizer = torch.optim.AdamW(model.parameters())
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=7)
    scaler._lazy_init_scale_growth_tracker(torch.device("cpu"))
    scaler._growth_tracker.fill_(3)  # three good steps towards the next growth of the scale
    save_training_state(tmp_path / "state.safetensors", model, optimizer, scaler, {"step": 5})
    restored = torch.amp.GradScaler("cpu")
    assert load_training_state(tmp_path / "state.safetensors", model, optimizer, restored) == {"step": 5}
    assert restored.state_dict() == scaler.state_dict()
    assert restored.get_scale() == 2.0**10 and restored.state_dict()["_growth_tracker"] == 3


def test_a_finished_run_resumed_with_other_settings_names_them_and_a_larger_budget_continues_it(
        tiny_corpus: PreparedCorpus, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    run = tmp_path / "run"
    args = train_args(tiny_corpus, run)
    args[args.index("--max-samples") + 1] = "32"
    assert main(args) == 0
    before = (run / "summary.json").read_bytes()
    for changed, named in ((["--lr-max", "1e-2"], "train.lr_max"), (["--seed", "3"], "train.seed"),
                           (["--max-samples", "16"], "train.max_samples")):
        capsys.readouterr()
        assert main([*args, "--resume", *changed]) == 2
        err = capsys.readouterr().err
        assert f"cannot resume {run} with other settings ({named})" in err, err
        assert (run / "summary.json").read_bytes() == before  # refused: nothing rewritten
    # a larger --max-samples, alone, continues the finished run from its state; a continuation stopped before it
    # wrote its summary (config.yaml already says 64, summary.json still 32) is continued too
    longer = [*args, "--resume"]
    longer[longer.index("--max-samples") + 1] = "64"
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("max_samples: 32", "max_samples: 64"))
    assert main(longer) == 0
    assert "finished at its --max-samples; continuing to 64" in capsys.readouterr().err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["samples"] == 64 and summary["stop_reason"] == "max_samples"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["samples"] == 64 and [r["samples"] for r in rows].count(32) == 1
    assert "max_samples: 64" in (run / "config.yaml").read_text()
