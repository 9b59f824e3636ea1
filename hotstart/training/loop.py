"""The training loop, shared by every input path, and the run folder it writes.

A run folder is the unit of record:
    config.yaml      the full run config (objective, data, model, train); the run is rebuilt from it
    vocab.json       the vocabulary the weights index into
    render.json      render settings with the font's name and SHA-256 (vision and line runs)
    metrics.jsonl    one row per evaluation (samples, step, epoch, lr, train_loss, val_*, input_*, ...)
    summary.json     what a sweep or report reads: parameters, precision, best and final metrics
    checkpoints/     best.safetensors (lowest validation loss), last.safetensors, and
                     state.safetensors (everything --resume needs, rewritten at every evaluation)
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .. import __version__
from ..config import from_dict, load_yaml, to_dict
from ..data.prepared import (
    PreparedCorpus,
    SampleOrder,
    Vocab,
)
from ..errors import HotStartError
from ..plot import NullBoard, TensorBoard
from . import distributed
from .checkpoint import (
    load_training_state,
    read_json,
    save_training_state,
    save_weights,
    training_state_progress,
    write_json,
)
from .config import TrainConfig
from .dual_run import Dual
from .mae_run import MaskedPatches
from .mlm_run import MaskedChars
from .next_char import NextChar, next_char_loss
from .next_patch_run import NextPatch
from .objective import Batch, Objective
from .pixar_run import Pixar
from .precision import Precision, resolve

OBJECTIVES: dict[str, type[Objective]] = {o.name: o for o in (NextChar, MaskedPatches, MaskedChars, NextPatch, Pixar, Dual)}
"""Every kind of run the loop trains, by the `objective` of its config."""

DIVERGED = ("non_finite_loss", "non_finite_weights")
"""Stop reasons of a run whose weights or loss went non-finite: no last.safetensors, and an error."""


def format_parameter_counts(counts: dict[str, int]) -> str:
    """An objective's parameter counts (Objective.parameter_counts) as the start of a run prints them: one line per
    part, in millions."""
    return "\n".join(f"  {name:<14} {n / 1e6:8.3f}M" for name, n in counts.items())


def lr_at(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """Learning rate at optimiser step `step` (0-based) of a schedule spanning `total_steps`."""
    cosine = lambda a, b, frac: b + (a - b) * (1 + math.cos(math.pi * frac)) / 2
    if cfg.schedule == "onecycle":  # two cosine phases, exactly as torch.optim.lr_scheduler.OneCycleLR
        start = cfg.lr_max / cfg.onecycle_div
        end = start / cfg.onecycle_final_div
        peak_step = cfg.onecycle_pct_start * total_steps - 1
        step = min(step, total_steps - 1)
        if step <= peak_step:
            return cosine(start, cfg.lr_max, step / max(peak_step, 1e-9))
        return cosine(cfg.lr_max, end, (step - peak_step) / max(total_steps - 1 - peak_step, 1e-9))
    t = min(step, total_steps) / max(total_steps, 1)
    warmup = cfg.warmup_samples / cfg.batch_size / max(total_steps, 1)
    if t < warmup:
        # capped: a warm-up that ends inside a step (say shorter than one batch) would overshoot lr_max
        return min(cfg.lr_max, cfg.lr_max * (step + 1) / (cfg.warmup_samples / cfg.batch_size))
    frac = (t - warmup) / max(1 - warmup, 1e-9)
    if cfg.schedule == "linear":
        return cfg.lr_max + (cfg.lr_max * cfg.min_lr_ratio - cfg.lr_max) * frac
    return cosine(cfg.lr_max, cfg.lr_max * cfg.min_lr_ratio, frac)


def eval_due(before: int, after: int, cfg: TrainConfig) -> bool:
    """True when an evaluation point lies in (before, after] samples: a multiple of the intervals, or one of
    `eval_at` (so a point between two steps is evaluated at the first step past it)."""
    if any(before < point <= after for point in cfg.eval_at):
        return True
    dense = min(after, cfg.dense_until) // cfg.eval_every > min(before, cfg.dense_until) // cfg.eval_every
    late = after > cfg.dense_until and (
        (after - cfg.dense_until) // cfg.eval_every_late > max(before - cfg.dense_until, 0) // cfg.eval_every_late
    )
    return dense or late


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices only (as GPT-2 / nanoGPT): not on biases, norms, or
    the tensors the model names in `no_weight_decay()` (embedding tables, MAE's mask token), as timm."""
    exempt = set(model.no_weight_decay())
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    decay = [p for name, p in named if p.dim() >= 2 and name not in exempt]
    no_decay = [p for name, p in named if p.dim() < 2 or name in exempt]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel updates every tensor in one pass, much faster than the per-tensor default
    # on a CPU (bench/run.py times whole steps against a plain loop that uses the default).
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(groups, lr=cfg.lr_max, fused=fused)


def _create_run_dir(out: Path, overwrite: bool) -> Path:
    """Make the run folder; refuse to overwrite an existing run unless asked."""
    out = Path(out)
    if (out / "config.yaml").exists() or (out / "metrics.jsonl").exists():
        if not overwrite:
            raise HotStartError(f"{out} already holds a run; choose another --out or pass --overwrite")
        for name in ("metrics.jsonl", "summary.json", "checkpoints"):
            target = out / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out / "checkpoints"):
            pass
    except OSError as exc:
        raise HotStartError(f"cannot create or write run folder {out}: {exc.strerror}; choose another --out") from None
    return out


def check_free_space(run_dir: Path, n_params: int) -> None:
    """Refuse to start when the disk cannot hold the checkpoints (best, last, and the training state)."""
    # fp32 weights in best + last (2 x 4 bytes) and weights + two AdamW moments in the state (3 x 4)
    needed = 20 * n_params + (64 << 20)  # + 64 MiB for metrics, temporary files and slack
    free = shutil.disk_usage(run_dir).free
    if free < needed:
        raise HotStartError(f"only {free / 2**20:,.0f} MiB free at {run_dir}, checkpoints need about "
                            f"{needed / 2**20:,.0f} MiB; free some space or choose another --out")


def _check_same_config(run_dir: Path, cfg: Any, finished: bool = False) -> bool:
    """Refuse to resume a run with other settings than it was started with, naming them. A finished run may
    be given a larger --max-samples, and then continues: True when that is asked, else False."""
    saved_data = load_yaml(run_dir / "config.yaml")
    if saved_data.get("objective", NextChar.name) != cfg.objective:
        raise HotStartError(f"cannot resume {run_dir}: it is a run of --objective "
                            f"{saved_data.get('objective', NextChar.name)}, not {cfg.objective}; pass the --objective it was started with, or another --out")
    # through the dataclasses and back, so a setting added since the run started counts at its default
    saved = to_dict(from_dict(type(cfg), saved_data))
    now = to_dict(cfg)
    sections = [name for name, value in now.items() if isinstance(value, dict)]  # model, train, PIXAR's adversarial
    differ = [f"{section}.{key}" for section in sections for key in set(saved.get(section, {})) | set(now[section])
              if saved.get(section, {}).get(key) != now[section].get(key)]
    differ += [name for name, value in now.items() if name not in sections and saved.get(name) != value]
    longer = differ == ["train.max_samples"] and _more(now["train"]["max_samples"], saved["train"]["max_samples"])
    if finished and longer:
        return True
    if differ:
        hint = " (a larger --max-samples continues a finished run, alone)" if "train.max_samples" in differ else ""
        raise HotStartError(f"cannot resume {run_dir} with other settings ({', '.join(sorted(differ))}){hint}; "
                            "pass the options it was started with, or --overwrite to start again")
    return False


def _more(now: int | None, saved: int | None) -> bool:
    """Whether a budget of `now` samples is larger than `saved` (None: no limit, the largest)."""
    return saved is not None and (now is None or now > saved)


def _continue_finished(run_dir: Path, cfg: Any, state_path: Path) -> bool:
    """A finished run asked to resume: True when it continues (a larger --max-samples, nothing else changed),
    False when nothing is to be done (the same settings); other settings are refused, naming them. Its
    summary.json stays until the longer run writes its own."""
    summary = read_json(run_dir / "summary.json", "run summary")
    stop = summary.get("stop_reason")
    # config.yaml already holds the larger budget when a continuation was stopped before it wrote its summary
    interrupted = stop == "max_samples" and _more(cfg.train.max_samples, summary.get("samples"))
    if not _check_same_config(run_dir, cfg, finished=True) and not interrupted:
        return False
    if stop != "max_samples":
        raise HotStartError(f"cannot continue {run_dir}: it stopped for {stop}, not at its --max-samples, so more "
                            "samples would not train it further; start a new run with --overwrite or another --out")
    if not state_path.exists():
        raise HotStartError(f"cannot continue {run_dir}: its training state ({state_path}) is gone; retrain it with "
                            "--overwrite")
    print(f"{run_dir} finished at its --max-samples; continuing to {cfg.train.max_samples or 'early stopping'}",
          file=sys.stderr)
    return True


def _check_same_corpus(run_dir: Path, corpus: PreparedCorpus, state_path: Path) -> None:
    """Refuse to resume on a corpus that was re-prepared since the run started: its IDs could name
    other characters, or its validation set be another one, and the run's curves would mix the two."""
    fix = "prepare the corpus the run started on into another folder, or pass --overwrite to start again"
    if (run_dir / "vocab.json").is_file() and Vocab.load(run_dir / "vocab.json").tokens != corpus.vocab.tokens:
        raise HotStartError(f"cannot resume {run_dir}: the corpus at {corpus.path} has another vocabulary than the "
                            f"run was started with (it was re-prepared); {fix}")
    saved = training_state_progress(state_path).get("corpus") or ""  # "" in states older than the check
    if saved and saved != corpus.fingerprint():
        raise HotStartError(f"cannot resume {run_dir}: the corpus at {corpus.path} was re-prepared since the run "
                            f"started (other settings, text or split); {fix}")


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what `platform` knows: speed differs by CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _environment(prec: Precision) -> dict[str, Any]:
    """What produced the numbers: versions, device, precision."""
    import transformers

    return {
        "hotstart": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "device": str(prec.device),
        "device_name": torch.cuda.get_device_name(prec.device) if prec.device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "precision": prec.name,
    }


@dataclass
class _Progress:
    """Counters the loop carries between evaluations."""

    step: int = 0
    samples: int = 0
    epoch: int = 0
    loss_sum: float = 0.0
    loss_steps: int = 0
    bad_steps: int = 0
    train_time: float = 0.0
    samples_since_eval: int = 0
    best_val_loss: float = math.inf
    evals_since_best: int = 0
    wall_s: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)
    precision: str = ""
    """The precision the run trains in, so a resumed `auto` run keeps it ("" in older states)."""
    corpus: str = ""
    """PreparedCorpus.fingerprint() of the corpus trained on, so a resume notices a re-prepared one."""

    def reset_window(self) -> None:
        """Start the averages of the next evaluation window."""
        self.loss_sum, self.loss_steps, self.samples_since_eval, self.train_time = 0.0, 0, 0, 0.0


def _resumed_precision(run_dir: Path, asked: str) -> str:
    """For a resumed run asked to pick `auto`: the precision its saved state trained in. `auto` on a
    CPU is a timing probe, so it could choose differently now, and a run must not change precision
    halfway."""
    state_path = run_dir / "checkpoints" / "state.safetensors"
    if asked != "auto" or (run_dir / "summary.json").exists() or not state_path.exists():
        return asked
    saved = training_state_progress(state_path).get("precision") or ""
    if not saved:
        print(f"{state_path} predates recording its precision; `auto` decides again now", file=sys.stderr)
        return asked
    return saved


def train(cfg: Any, out_dir: str | Path, progress: bool = True, overwrite: bool = False,
          resume: bool = False) -> dict[str, Any]:
    """Train one run into `out_dir` and return its summary (also written to summary.json). `cfg` is
    the run config of an objective (RunConfig for next-char, MAERunConfig for mae).

    With `resume`, a run killed at any point continues from its last evaluation and ends with the
    metrics an uninterrupted run would have had (timings aside); a run that never reached its first
    evaluation starts over, and a finished run is returned as it is.
    """
    tc = cfg.train
    tc.validate()
    if cfg.objective not in OBJECTIVES:
        raise HotStartError(f"unknown objective '{cfg.objective}'; choose one of {', '.join(OBJECTIVES)}")
    corpus = PreparedCorpus.load(cfg.data)
    cfg.data = str(Path(cfg.data).resolve())
    objective = OBJECTIVES[cfg.objective](cfg, corpus)
    objective.check()
    asked = _resumed_precision(Path(out_dir), tc.precision) if resume else tc.precision
    prec = resolve(tc.device, asked)
    if asked != tc.precision:
        prec.reason = "auto when the run started; kept on resume"
    group, device = distributed.join(prec.device, tc.batch_size)
    prec = Precision(prec.name, device, prec.reason)
    try:
        return _train(objective, prec, group, Path(out_dir), progress, overwrite, resume)
    finally:
        distributed.leave(group)


def _train(objective: Objective, prec: Precision, group: distributed.Group, run_dir: Path,
           progress: bool, overwrite: bool, resume: bool) -> dict[str, Any]:
    """The body of `train` once the objective, precision and process group are settled."""
    cfg, corpus = objective.config, objective.corpus
    tc = cfg.train
    state_path = run_dir / "checkpoints" / "state.safetensors"
    finished = resume and (run_dir / "summary.json").exists()
    if finished and not _continue_finished(run_dir, cfg, state_path):
        print(f"{run_dir} has already finished; nothing to resume", file=sys.stderr)
        return read_json(run_dir / "summary.json", "run summary")
    resuming = resume and state_path.exists()
    if resuming:
        _check_same_corpus(run_dir, corpus, state_path)  # first: a new vocabulary also changes vocab_size
        if not finished:  # a finished run's settings were checked by _continue_finished
            _check_same_config(run_dir, cfg)
    elif group.is_main:
        _create_run_dir(run_dir, overwrite or resume)
    group.barrier()
    progress = progress and group.is_main
    torch.manual_seed(tc.seed)
    model = objective.build_model(progress).to(prec.device)
    counts = objective.parameter_counts(model)
    if group.is_main:
        check_free_space(run_dir, sum(p.numel() for p in model.parameters()))
        objective.write_run_files(run_dir)
        print(f"parameters ({objective.describe()}):\n{format_parameter_counts(counts)}", file=sys.stderr)
        print(f"device {prec.device}, precision {prec.describe()}, processes {group.world}", file=sys.stderr)

    groups = corpus.sequence_languages[corpus.train_index] if tc.balance_languages else None
    order = SampleOrder(corpus.train_index, tc.seed, tc.batch_size, tc.curriculum, tc.curriculum_order, groups)
    optimizer, scaler = make_optimizer(model, tc), prec.grad_scaler()
    schedule_samples = tc.schedule_samples or 1_000_000
    total_steps = math.ceil(schedule_samples / tc.batch_size)
    state = _Progress()
    if resuming:
        state = _Progress(**load_training_state(state_path, model, optimizer, scaler))
        print(f"resuming {run_dir} at {state.samples:,} samples", file=sys.stderr)
    state.precision, state.corpus = prec.name, corpus.fingerprint()
    start = time.perf_counter() - state.wall_s
    metrics_path = run_dir / "metrics.jsonl"  # rewritten from the state: no duplicate or missing rows
    if group.is_main:
        metrics_path.write_text("".join(json.dumps(row) + "\n" for row in state.rows))
    board = TensorBoard(run_dir / "tensorboard") if tc.tensorboard and group.is_main else NullBoard()
    bar = tqdm(total=tc.max_samples, initial=state.samples, unit="seq", disable=not progress,
               dynamic_ncols=True, desc=run_dir.name)

    def log_eval() -> str | None:
        """Evaluate, append a metrics row, keep the best checkpoint; return why to stop (patience spent,
        weights gone non-finite) or None to go on."""
        if not group.is_main:  # rank 0 evaluates and decides; the others follow
            state.reset_window()
            return group.agree(None)
        # Diverged weights are neither evaluated nor saved: the files on disk keep the last finite state,
        # which is what the error at the end points the user to.
        if not weights_finite(model):
            return group.agree("non_finite_weights")
        row = _evaluation_row(objective, model, prec, state, lr_at(state.step, tc, total_steps), start)
        if not all(math.isfinite(v) for v in row.values() if isinstance(v, float)):
            return group.agree("non_finite_weights")  # finite but overflowing weights: still diverged
        state.rows.append(row)
        bar.set_postfix({"loss": row["train_loss"], objective.progress_metric: f"{row[objective.progress_metric]:.4f}"})
        if row["val_loss"] < state.best_val_loss:
            state.best_val_loss, state.evals_since_best = row["val_loss"], 0
            save_weights(model, run_dir / "checkpoints" / "best.safetensors")
        elif row["train_loss"] is not None:
            # only evaluations of new weights use up patience: when every step since the last one was
            # skipped (non-finite), the skipped-step limit decides instead, and the run ends as diverged
            state.evals_since_best += 1
        # the state first, then the row: a kill in between is healed by rewriting rows on resume
        state.wall_s = time.perf_counter() - start
        save_training_state(state_path, model, optimizer, scaler, dataclasses.asdict(state))
        with metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        board.log(row)
        objective.after_evaluation(model, run_dir, row)
        patient = state.evals_since_best < tc.patience or not objective.stops_early
        return group.agree(None if patient else "early_stopping")

    trainer = distributed.wrap(model, group, prec.device)
    stop_reason = _loop(trainer, objective, order, optimizer, scaler, prec, total_steps, state, bar, log_eval, group)
    bar.close()
    board.close()
    if not group.is_main:
        return _summary(objective, counts, prec, state, stop_reason, time.perf_counter() - start)
    if stop_reason not in DIVERGED and not weights_finite(model):  # say a max_epochs stop between evaluations
        stop_reason = "non_finite_weights"
    if stop_reason not in DIVERGED:  # diverged weights are not a checkpoint worth keeping
        save_weights(model, run_dir / "checkpoints" / "last.safetensors")
    summary = _summary(objective, counts, prec, state, stop_reason, time.perf_counter() - start)
    write_json(run_dir / "summary.json", summary)
    if state.bad_steps and stop_reason not in DIVERGED:
        print(f"warning: {state.bad_steps} of {state.step} steps were skipped for a non-finite loss or gradient; "
              "check metrics.jsonl for divergence, and lower --lr-max if it did", file=sys.stderr)
    if stop_reason in DIVERGED:
        what = (f"after {state.bad_steps} skipped steps with a non-finite loss or gradient" if stop_reason == "non_finite_loss"
                else "because its weights (or their validation loss) went non-finite")
        last = state.rows[-1]["samples"] if state.rows else 0
        raise HotStartError(
            f"run {run_dir} stopped at step {state.step} {what}; its last finite state (the evaluation at {last:,} "
            f"samples) is in {run_dir / 'checkpoints' / 'state.safetensors'} and its lowest-validation-loss weights "
            "in best.safetensors beside it; lower --lr-max or use --precision fp32"
        )
    return summary


def _loop(model, objective, order, optimizer, scaler, prec, total_steps, state, bar, log_eval, group) -> str:
    """Step until max_samples, max_epochs or early stopping; return why it stopped.

    With several processes each one trains on its slice of the same global batch, and the loss
    that is logged and checked for NaN is the mean over all of them, so every rank decides alike.
    """
    tc = objective.config.train
    model.train()
    if not state.rows and (stop := log_eval()):  # samples = 0: the untrained model, the left end of every curve
        return stop
    while True:
        if tc.max_samples is not None and state.samples >= tc.max_samples:
            return "max_samples"
        index, epoch = order.batch(state.step)
        if tc.max_epochs is not None and epoch >= tc.max_epochs:
            return "max_epochs"
        t0 = time.perf_counter()
        batch = _to_device(objective.batch(group.shard(index), state.step), prec.device)  # this process's slice
        lr = lr_at(state.step, tc, total_steps)
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        mean_loss, stepped = train_step(model, batch, optimizer, scaler, prec, tc.grad_clip, group.mean, objective.loss)
        if stepped:
            state.loss_sum += mean_loss.item()
            state.loss_steps += 1
        else:
            state.bad_steps += 1
            what = "loss" if not torch.isfinite(mean_loss) else f"gradient (loss {mean_loss.item():.4g})"
            tqdm.write(f"warning: non-finite {what} at step {state.step}; step skipped "
                       f"({state.bad_steps}/{tc.max_bad_steps})")
            if state.bad_steps >= tc.max_bad_steps:
                return "non_finite_loss"
        state.train_time += time.perf_counter() - t0
        before = state.samples
        state.step, state.epoch = state.step + 1, epoch
        state.samples += len(index)
        state.samples_since_eval += len(index)
        bar.update(len(index))
        finished = tc.max_samples is not None and state.samples >= tc.max_samples
        if (eval_due(before, state.samples, tc) or finished) and (stop := log_eval()):
            return stop


def _to_device(batch: Batch, device: torch.device) -> Batch:
    """An objective's batch (a tensor or a tuple of them) on `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    return tuple(t.to(device, non_blocking=True) for t in batch)


def train_step(model: torch.nn.Module, batch: Batch, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, prec: Precision, grad_clip: float,
               reduce: Callable[[torch.Tensor], torch.Tensor] = lambda loss: loss,
               loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor] = next_char_loss) -> tuple[torch.Tensor, bool]:
    """One optimiser step on a batch; returns the loss `loss_fn` computes (an objective's loss;
    next-character by default), averaged over processes by `reduce`, and whether the step was taken.

    A non-finite loss, or a finite loss whose gradient is not finite (an overflow in the backward pass,
    which clipping would spread into every weight as NaN), leaves the weights and the optimiser's
    moments untouched and returns False. Under fp16 the loss scaler handles overflowing gradients
    itself (it skips the step and lowers its scale, a normal event there). The benchmark times this
    same function.
    """
    with prec.autocast():
        loss = loss_fn(model, batch)
    optimizer.zero_grad(set_to_none=True)
    mean_loss = reduce(loss.detach())
    if not torch.isfinite(mean_loss):
        return mean_loss, False
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    # the norm is computed even without clipping (max_norm inf scales by 1): it is the finiteness check.
    # Under torchrun the gradients are already averaged over ranks, so every rank decides alike.
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip > 0 else math.inf)
    if not scaler.is_enabled() and not torch.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        return mean_loss, False
    scaler.step(optimizer)
    scaler.update()
    return mean_loss, True


def weights_finite(model: torch.nn.Module) -> bool:
    """True when every parameter and buffer of `model` is finite."""
    tensors = [*model.parameters(), *model.buffers()]
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def _evaluation_row(objective: Objective, model: torch.nn.Module, prec: Precision, state: _Progress, lr: float,
                    start: float) -> dict[str, Any]:
    """Evaluate with the objective and build one metrics.jsonl row; resets the running train-loss average."""
    row = {
        "samples": state.samples,
        "step": state.step,
        "epoch": state.epoch,
        "lr": lr,
        "train_loss": state.loss_sum / state.loss_steps if state.loss_steps else None,
        **objective.evaluate(model, prec),
        "samples_per_s": state.samples_since_eval / state.train_time if state.train_time > 0 else None,
        "wall_s": time.perf_counter() - start,
    }
    state.reset_window()
    return row


def _summary(objective: Objective, counts: dict[str, int], prec: Precision, state: _Progress, stop_reason: str,
             wall_s: float) -> dict[str, Any]:
    """summary.json: what a sweep or a report reads instead of parsing logs."""
    rows = state.rows
    best = min(rows, key=lambda r: r["val_loss"]) if rows else None
    speeds = [r["samples_per_s"] for r in rows if r["samples_per_s"]]
    return {
        **objective.summary_fields(),
        "seed": objective.config.train.seed,
        "parameters": counts,
        "samples": state.samples,
        "steps": state.step,
        "epochs": state.epoch + 1,
        "stop_reason": stop_reason,
        "skipped_steps": state.bad_steps,
        "best": best,
        "final": rows[-1] if rows else None,
        "samples_per_s_median": sorted(speeds)[len(speeds) // 2] if speeds else None,
        "wall_s": wall_s,
        "environment": _environment(prec),
    }

