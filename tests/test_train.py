"""The training loop on a tiny real corpus: schedule, metrics schema, checkpoints, reloading."""

from __future__ import annotations

import importlib
import itertools
import json
import math
from pathlib import Path

import pytest
import torch

from hotstart.data.prepared import PreparedCorpus
from hotstart.errors import HotStartError
from hotstart.models.decoder import decoder_size
from hotstart.models.encoders import EncoderConfig
from hotstart.models.hotstart_lm import InputConfig, ModelConfig
from hotstart.render.glyph import RenderConfig
from hotstart.training.config import TrainConfig
from hotstart.training.evaluate import evaluate, evaluate_run
from hotstart.training.loop import eval_due, lr_at, train
from hotstart.training.precision import resolve
from hotstart.training.run import RunConfig, load_run

METRIC_KEYS = {"samples", "step", "epoch", "lr", "train_loss", "val_loss", "val_acc", "val_ppl", "input_mean_cosine",
               "input_near_duplicates", "samples_per_s", "wall_s"}


def run_config(corpus: PreparedCorpus, kind: str, **train_kw) -> RunConfig:
    inp = InputConfig(kind=kind, encoder=EncoderConfig(name="simp"), render=RenderConfig(res=8))
    tc = TrainConfig(batch_size=16, eval_every=64, dense_until=128, eval_every_late=128, precision="fp32", device="cpu",
                     **train_kw)
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


@pytest.mark.parametrize(("every", "dense_until", "late"), [(4, 16, 8), (3, 10, 4), (4, 8, 1), (5, 5, 2), (1, 3, 1)])
def test_an_evaluation_is_due_exactly_when_a_step_crosses_an_evaluation_point(every: int, dense_until: int,
                                                                             late: int) -> None:
    # the points: multiples of `every` up to dense_until, then dense_until + multiples of `late`
    cfg = TrainConfig(eval_every=every, dense_until=dense_until, eval_every_late=late)
    points = {*range(every, dense_until + 1, every), *range(dense_until + late, 80, late)}
    for before, after in itertools.combinations(range(60), 2):
        assert eval_due(before, after, cfg) == any(before < p <= after for p in points), (before, after)


def test_the_lr_past_the_end_of_a_onecycle_schedule_stays_at_its_final_lr() -> None:
    cfg = TrainConfig(lr_max=1.5e-3)
    final = 1.5e-3 / cfg.onecycle_div / cfg.onecycle_final_div
    for step in (99, 100, 101, 150):
        assert lr_at(step, cfg, 100) == pytest.approx(final, rel=1e-9), step


def test_a_cosine_schedule_of_one_step_ends_at_the_floor() -> None:
    # schedule_samples <= batch_size: one step at lr_max, every step after it at the floor
    cfg = TrainConfig(schedule="cosine", lr_max=1e-3, warmup_samples=0, min_lr_ratio=0.1)
    assert lr_at(0, cfg, 1) == pytest.approx(1e-3)
    assert lr_at(1, cfg, 1) == lr_at(5, cfg, 1) == pytest.approx(1e-4)


def test_training_writes_metrics_checkpoints_and_summary(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    cfg = run_config(tiny_corpus, "vision", max_samples=256)
    capsys.readouterr()
    summary = train(cfg, tmp_path / "run", progress=False)
    err = capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["samples"] for r in rows] == [0, 64, 128, 256]
    assert all(set(r) == METRIC_KEYS for r in rows)
    # one step per batch of 16, and the lr column is the schedule's lr at that step (1,000,000 samples long)
    assert [r["step"] for r in rows] == [0, 4, 8, 16] and summary["steps"] == 16
    assert all(r["lr"] == lr_at(r["step"], cfg.train, math.ceil(1_000_000 / 16)) for r in rows)
    assert rows[0]["samples_per_s"] is None and all(r["samples_per_s"] > 0 for r in rows[1:])
    assert rows[0]["train_loss"] is None and all(r["train_loss"] > 0 for r in rows[1:])
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]  # it learns something
    assert all(0 <= r["val_acc"] <= 1 and r["val_ppl"] == pytest.approx(math.exp(r["val_loss"])) for r in rows)
    for name in ("config.yaml", "vocab.json", "render.json", "summary.json", "checkpoints/best.safetensors",
                 "checkpoints/last.safetensors"):
        assert (tmp_path / "run" / name).is_file(), name
    assert summary["samples"] == 256 and summary["stop_reason"] == "max_samples"
    assert summary["environment"]["precision"] == "fp32"
    assert not (tmp_path / "run" / "tensorboard").exists()  # only with --tensorboard
    # progress=False draws no progress bar, and a run without skipped steps warns of none
    assert "\r" not in err and "seq/s" not in err and "steps were skipped" not in err, err


def test_a_run_whose_length_is_not_an_evaluation_point_still_ends_with_an_evaluation(
        tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    summary = train(run_config(tiny_corpus, "index", max_samples=32), tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["samples"] for r in rows] == [0, 32]  # evaluations are due every 64 samples, and at the end
    assert summary["final"] == rows[-1]


def test_a_decoder_exactly_as_long_as_the_corpus_sequences_is_accepted(tiny_corpus: PreparedCorpus,
                                                                      tmp_path: Path) -> None:
    cfg = run_config(tiny_corpus, "index", max_samples=16)
    cfg.model.decoder.n_positions = tiny_corpus.seq_len - 1
    with pytest.raises(HotStartError, match=f"n_positions {tiny_corpus.seq_len - 1} < corpus seq_len"):
        train(cfg, tmp_path / "short", progress=False)
    cfg.model.decoder.n_positions = tiny_corpus.seq_len
    assert train(cfg, tmp_path / "run", progress=False)["stop_reason"] == "max_samples"


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
    from hotstart.training.run import build_model

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
    # it stops at the patience-th evaluation without a new best, not one later
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) - 1 - rows.index(summary["best"]) == 2


def test_training_refuses_to_start_without_disk_space_for_checkpoints(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 30, 10 << 30, 1 << 20))  # 1 MiB free
    with pytest.raises(HotStartError, match="MiB free"):
        train(run_config(tiny_corpus, "index", max_samples=32), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_weights_blown_up_by_the_lr_end_the_run_at_the_next_evaluation(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # an absurd learning rate blows the weights up after the first update: later losses are inf/nan and
    # skipped, and the next evaluation finds a non-finite validation loss, records nothing and stops
    saved = _saved_states(monkeypatch)
    cfg = run_config(tiny_corpus, "index", lr_max=1e30, schedule="cosine", warmup_samples=16, max_samples=4096,
                     max_bad_steps=5)
    with pytest.raises(HotStartError, match=r"went non-finite; its last finite state \(the evaluation at 0 samples\)"):
        train(cfg, tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "non_finite_weights" and summary["skipped_steps"] == 3
    assert summary["best"]["samples"] == 0
    _assert_only_finite_state_on_disk(tmp_path / "run", saved)


def test_a_run_saved_before_a_setting_existed_resumes_with_its_default(tmp_path: Path) -> None:
    from hotstart.config import save_yaml, to_dict
    from hotstart.training.loop import _check_same_config

    cfg = RunConfig(data="data", model=ModelConfig(vocab_size=10), train=TrainConfig(max_samples=64))
    saved = to_dict(cfg)
    del saved["train"]["compile"]  # as written by a version without that option
    save_yaml(saved, tmp_path / "config.yaml")
    _check_same_config(tmp_path, cfg)  # no error: the missing setting is at its default
    cfg.train.compile = True
    with pytest.raises(HotStartError, match=r"other settings \(train.compile\)"):
        _check_same_config(tmp_path, cfg)


def _saved_states(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record the bytes of every training state the loop writes, in order."""
    train_module = importlib.import_module("hotstart.training.loop")  # the package exports a function of that name

    saved: list[bytes] = []
    real = train_module.save_training_state

    def recording(path, *args, **kwargs):
        real(path, *args, **kwargs)
        saved.append(Path(path).read_bytes())

    monkeypatch.setattr(train_module, "save_training_state", recording)
    return saved


def _assert_only_finite_state_on_disk(run: Path, saved_states: list[bytes]) -> None:
    """The state file is byte for byte the last one written, every tensor on disk is finite, and every
    metrics row is finite and matches the rows the state holds."""
    from safetensors.torch import load_file

    from hotstart.training.checkpoint import training_state_progress

    state_path = run / "checkpoints" / "state.safetensors"
    assert saved_states and state_path.read_bytes() == saved_states[-1]
    for name in ("state", "best"):
        tensors = load_file(run / "checkpoints" / f"{name}.safetensors")
        assert tensors and all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point()), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == training_state_progress(state_path)["rows"]
    assert all(math.isfinite(v) for row in rows for v in row.values() if isinstance(v, float))
    assert not (run / "checkpoints" / "last.safetensors").exists()


def test_a_warmup_shorter_than_a_batch_never_exceeds_lr_max() -> None:
    # 32 warm-up samples in batches of 128: the warm-up ends inside the first step
    cfg = TrainConfig(schedule="cosine", warmup_samples=32, batch_size=128, lr_max=1e-3)
    assert lr_at(0, cfg, 100) == pytest.approx(1e-3)
    for warmup, batch in itertools.product((1, 32, 100, 128, 200, 2048), (16, 100, 128)):
        cfg = TrainConfig(schedule="cosine", warmup_samples=warmup, batch_size=batch, lr_max=1e-3)
        assert max(lr_at(step, cfg, 50) for step in range(60)) <= 1e-3, (warmup, batch)


@pytest.mark.parametrize("option", ["onecycle_div", "onecycle_final_div"])
def test_onecycle_divisors_below_one_are_refused(option: str) -> None:
    with pytest.raises(HotStartError, match=f"--{option.replace('_', '-')} must be at least 1"):
        TrainConfig(**{option: 0.5}).validate()


def test_a_finite_loss_with_non_finite_gradients_leaves_weights_and_optimiser_untouched(tiny_corpus: PreparedCorpus) -> None:
    from hotstart.training.loop import make_optimizer, train_step
    from hotstart.training.run import build_model

    torch.manual_seed(0)
    cfg = run_config(tiny_corpus, "index")
    cfg.model.vocab_size = len(tiny_corpus.vocab)
    model = build_model(cfg.model, tiny_corpus.vocab, progress=False)
    optimizer, prec = make_optimizer(model, cfg.train), resolve("cpu", "fp32")
    batch = tiny_corpus.sequences(tiny_corpus.train_index[:8])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # an overflow in the backward pass of one layer: the loss is real and finite, one gradient is inf
    hook = model.decoder.h[0].mlp.c_fc.weight.register_hook(lambda grad: grad * math.inf)
    loss, stepped = train_step(model, batch, optimizer, prec.grad_scaler(), prec, grad_clip=1.0)
    assert torch.isfinite(loss) and not stepped
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not optimizer.state  # AdamW's moments never saw the bad gradient
    hook.remove()
    loss, stepped = train_step(model, batch, optimizer, prec.grad_scaler(), prec, grad_clip=1.0)
    assert stepped and not all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_diverging_run_ends_in_one_line_and_keeps_its_last_finite_state(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # the command, scaled to this corpus: lr 1e4 with a warm-up shorter than one batch
    saved = _saved_states(monkeypatch)
    cfg = run_config(tiny_corpus, "index", lr_max=1e4, schedule="cosine", warmup_samples=4, max_samples=4096,
                     max_bad_steps=3)
    cfg.train.eval_every = 32
    with pytest.raises(HotStartError, match=r"after 3 skipped steps with a non-finite loss or gradient; its last finite "
                                            r"state \(the evaluation at [\d,]+ samples\) .* and its lowest-validation-"
                                            r"loss weights in best.safetensors beside it; lower --lr-max or use "
                                            r"--precision fp32$"):
        train(cfg, tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "non_finite_loss" and summary["skipped_steps"] == 3
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(row["lr"] for row in rows) <= 1e4
    _assert_only_finite_state_on_disk(tmp_path / "run", saved)


def test_weights_gone_non_finite_are_neither_evaluated_nor_saved(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Isolates the evaluation's guard: an optimiser whose 5th update writes NaN into one weight (a real
    # optimiser step with finite gradients cannot be relied on to do that).
    _nan_weight_at_update(monkeypatch, 5)
    saved = _saved_states(monkeypatch)
    cfg = run_config(tiny_corpus, "index", max_samples=256)  # evaluations every 64 samples = 4 steps of 16
    with pytest.raises(HotStartError, match=r"weights \(or their validation loss\) went non-finite; its last finite state "
                                            r"\(the evaluation at 64 samples\)"):
        train(cfg, tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["stop_reason"] == "non_finite_weights"
    assert len(saved) == 2  # samples 0 and 64; nothing at 128, where the weights were NaN
    _assert_only_finite_state_on_disk(tmp_path / "run", saved)


def test_weights_gone_non_finite_after_the_last_evaluation_still_end_the_run_as_diverged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import inews_sample

    from hotstart.data.prepared import PrepareConfig, prepare

    # two articles (123 training sequences): epoch 0 is 1 batch of 64, the next batch ends in epoch 1
    (tmp_path / "news.txt").write_text(inews_sample(2), encoding="utf-8")
    corpus = prepare(PrepareConfig(corpus=str(tmp_path / "news.txt"), seq_len=32, val_sequences=8, min_freq=2,
                                   split_lines=True), tmp_path / "data", progress=False)
    # a max_epochs stop comes between evaluation points: the check after the loop must catch the NaN
    _nan_weight_at_update(monkeypatch, len(corpus.train_index) // 64)  # the epoch's last update
    cfg = run_config(corpus, "index", max_epochs=1, curriculum=False)
    cfg.train.batch_size = 64
    cfg.train.eval_every = cfg.train.dense_until = cfg.train.eval_every_late = 10**6  # only the evaluation at 0
    with pytest.raises(HotStartError, match=r"weights \(or their validation loss\) went non-finite"):
        train(cfg, tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "non_finite_weights" and summary["epochs"] == 1
    assert not (tmp_path / "run" / "checkpoints" / "last.safetensors").exists()


def _nan_weight_at_update(monkeypatch: pytest.MonkeyPatch, update: int) -> None:
    """Make the next run's optimiser write NaN into one weight at its `update`-th step."""
    train_module = importlib.import_module("hotstart.training.loop")  # the package exports a function of that name
    real = train_module.make_optimizer

    def poisoning(model, tc):
        optimizer = real(model, tc)
        step, calls = optimizer.step, []

        def poisoned_step(*args, **kwargs):
            out = step(*args, **kwargs)
            calls.append(1)
            if len(calls) == update:
                with torch.no_grad():
                    model.decoder.ln_f.weight[0] = math.nan
            return out

        optimizer.step = poisoned_step
        return optimizer

    monkeypatch.setattr(train_module, "make_optimizer", poisoning)
