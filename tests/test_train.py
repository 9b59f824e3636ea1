"""The training loop on a tiny real corpus: schedule, metrics schema, checkpoints, reloading."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch

from hotstart.data import PreparedCorpus
from hotstart.encoders import EncoderConfig
from hotstart.errors import HotStartError
from hotstart.evaluate import evaluate, evaluate_run
from hotstart.model import InputConfig, ModelConfig, decoder_size
from hotstart.precision import resolve
from hotstart.render import RenderConfig
from hotstart.train import RunConfig, TrainConfig, eval_due, load_run, lr_at, train

METRIC_KEYS = {"samples", "step", "epoch", "lr", "train_loss", "val_loss", "val_acc", "val_ppl", "input_mean_cosine",
               "input_near_duplicates", "samples_per_s", "wall_s"}


def run_config(corpus: PreparedCorpus, kind: str, **train_kw) -> RunConfig:
    inp = InputConfig(kind=kind, encoder=EncoderConfig(name="simp"), render=RenderConfig(res=8))
    tc = TrainConfig(batch_size=16, eval_every=64, dense_until=128, eval_every_late=128, precision="fp32", **train_kw)
    return RunConfig(data=str(corpus.path), model=ModelConfig(vocab_size=0, input=inp, decoder=decoder_size("tiny")), train=tc)


def test_onecycle_matches_torch_onecyclelr() -> None:
    cfg = TrainConfig(lr_max=1.5e-3)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.5e-3, total_steps=100, anneal_strategy="cos")
    for step in range(100):
        assert math.isclose(lr_at(step, cfg, 100), opt.param_groups[0]["lr"], rel_tol=1e-6, abs_tol=1e-12), step
        opt.step()
        sched.step()


def test_cosine_schedule_warms_up_then_decays_to_the_floor() -> None:
    cfg = TrainConfig(schedule="cosine", lr_max=1e-3, warmup_samples=128 * 10, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg, 100) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))
    assert lr_at(100, cfg, 100) == pytest.approx(1e-4)


def test_evaluation_points_are_dense_then_sparse() -> None:
    cfg = TrainConfig(eval_every=2048, dense_until=16384, eval_every_late=16384)
    points = [s for s in range(128, 70000, 128) if eval_due(s - 128, s, cfg)]
    assert points == [2048 * k for k in range(1, 9)] + [32768, 49152, 65536]


def test_training_writes_metrics_checkpoints_and_summary(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    summary = train(run_config(tiny_corpus, "vision", max_samples=256), tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["samples"] for r in rows] == [0, 64, 128, 256]
    assert all(set(r) == METRIC_KEYS for r in rows)
    assert rows[0]["train_loss"] is None and all(r["train_loss"] > 0 for r in rows[1:])
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]  # it learns something
    assert all(0 <= r["val_acc"] <= 1 and r["val_ppl"] == pytest.approx(math.exp(r["val_loss"])) for r in rows)
    for name in ("config.yaml", "vocab.json", "render.json", "summary.json", "checkpoints/best.safetensors",
                 "checkpoints/last.safetensors"):
        assert (tmp_path / "run" / name).is_file(), name
    assert summary["samples"] == 256 and summary["stop_reason"] == "max_samples"
    assert summary["environment"]["precision"] == "fp32"


@pytest.mark.parametrize("kind", ["index", "vision"])
def test_a_run_folder_rebuilds_the_trained_model(tiny_corpus: PreparedCorpus, tmp_path: Path, kind: str) -> None:
    train(run_config(tiny_corpus, kind, max_samples=128), tmp_path / "run", progress=False)
    last = load_run(tmp_path / "run", checkpoint="last", progress=False)
    val = tiny_corpus.sequences(tiny_corpus.val_index)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    again = evaluate(last.model, val, resolve("cpu", "fp32"), batch_size=16)
    assert again["val_loss"] == pytest.approx(rows[-1]["val_loss"], rel=1e-5)
    result = evaluate_run(tmp_path / "run", checkpoint="last", device="cpu", precision="fp32", progress=False)
    assert result["val_acc"] == pytest.approx(rows[-1]["val_acc"])


def test_eval_can_re_render_glyphs_without_retraining(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    train(run_config(tiny_corpus, "vision", max_samples=128), tmp_path / "run", progress=False)
    plain = evaluate_run(tmp_path / "run", device="cpu", precision="fp32", progress=False)
    cropped = evaluate_run(tmp_path / "run", render_overrides={"crop": 0.5, "res": 20}, device="cpu",
                           precision="fp32", progress=False)
    assert cropped["render"]["crop"] == 0.5 and cropped["render"]["res"] == 20
    assert cropped["val_loss"] != plain["val_loss"]


def test_an_existing_run_is_not_overwritten_silently(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    train(run_config(tiny_corpus, "index", max_samples=32), tmp_path / "run", progress=False)
    with pytest.raises(HotStartError, match="already holds a run"):
        train(run_config(tiny_corpus, "index", max_samples=32), tmp_path / "run", progress=False)
    train(run_config(tiny_corpus, "index", max_samples=32), tmp_path / "run", progress=False, overwrite=True)


def test_freezing_the_decoder_trains_only_input_and_head(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    train(run_config(tiny_corpus, "vision", max_samples=64, freeze_decoder=True), tmp_path / "run", progress=False)
    trained = load_run(tmp_path / "run", checkpoint="last", progress=False).model
    torch.manual_seed(0)
    from hotstart.train import build_model

    cfg = run_config(tiny_corpus, "vision")
    cfg.model.vocab_size = len(tiny_corpus.vocab)
    fresh = build_model(cfg.model, tiny_corpus.vocab, progress=False)
    for (name, a), b in zip(trained.decoder.state_dict().items(), fresh.decoder.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(trained.lm_head.weight, fresh.lm_head.weight)


def test_early_stopping_ends_the_run_after_patience_evaluations(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    # lr so high that the loss cannot keep improving: the run must stop on its own
    summary = train(run_config(tiny_corpus, "index", lr_max=3.0, schedule="cosine", warmup_samples=16,
                               patience=2, max_samples=4096), tmp_path / "run", progress=False)
    assert summary["stop_reason"] == "early_stopping"
    assert summary["samples"] < 4096


def test_training_refuses_to_start_without_disk_space_for_checkpoints(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 30, 10 << 30, 1 << 20))  # 1 MiB free
    with pytest.raises(HotStartError, match="MiB free"):
        train(run_config(tiny_corpus, "index", max_samples=32), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_diverging_run_skips_non_finite_steps_then_stops_with_a_clear_error(tiny_corpus: PreparedCorpus,
                                                                             tmp_path: Path) -> None:
    # an absurd learning rate blows the weights up after the first update; every later loss is inf/nan
    cfg = run_config(tiny_corpus, "index", lr_max=1e30, schedule="cosine", warmup_samples=16, max_samples=4096,
                     max_bad_steps=5)
    with pytest.raises(HotStartError, match="non-finite loss"):
        train(cfg, tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "non_finite_loss" and summary["skipped_steps"] == 5
    assert (tmp_path / "run" / "checkpoints" / "best.safetensors").is_file()
    assert not (tmp_path / "run" / "checkpoints" / "last.safetensors").exists()


def test_a_run_saved_before_a_setting_existed_resumes_with_its_default(tmp_path: Path) -> None:
    from hotstart.config import save_yaml, to_dict
    from hotstart.train import _check_same_config

    cfg = RunConfig(data="data", model=ModelConfig(vocab_size=10), train=TrainConfig(max_samples=64))
    saved = to_dict(cfg)
    del saved["train"]["compile"]  # as written by a version without that option
    save_yaml(saved, tmp_path / "config.yaml")
    _check_same_config(tmp_path, cfg)  # no error: the missing setting is at its default
    cfg.train.compile = True
    with pytest.raises(HotStartError, match=r"other settings \(train.compile\)"):
        _check_same_config(tmp_path, cfg)
