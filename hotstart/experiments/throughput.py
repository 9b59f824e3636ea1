"""Honest speed numbers: FLOPs counted from the model, steps timed alternately in one process.

Timing variants one after another lets the machine's state (turbo, other load, a warm cache)
drift between them; here every round times each variant once, in turn, and a variant's figure is
the median over rounds. FLOPs come from torch's FLOP counter on a real batch, so they count what
the model does (for vision: only the distinct glyphs of the batch are encoded), not a formula.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from ..data.prepared import PreparedCorpus, SampleOrder
from ..models.decoder import decoder_size
from ..models.encoders import EncoderConfig
from ..models.hotstart_lm import HotStartLM, InputConfig, ModelConfig
from ..render.glyph import RenderConfig
from ..training.precision import Precision, resolve

Step = Callable[[int], None]
"""A timed unit of work; the argument numbers the call, so each call can take a fresh batch."""


def alternate(steps: dict[str, Step], rounds: int, per_round: int = 2, warmup: int = 1,
              progress: bool = False) -> dict[str, list[float]]:
    """Seconds per call of every variant in each round, the variants taking turns within a round."""
    calls = 0
    for step in steps.values():  # first calls pay for allocation, caches and lazy initialisation
        for _ in range(warmup):
            step(calls)
            calls += 1
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in tqdm(range(rounds), desc="timing rounds", disable=not progress, leave=False):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(per_round):
                step(calls)
                calls += 1
            seconds[name].append((time.perf_counter() - start) / per_round)
    return seconds


def median_rate(seconds: list[float], units: float) -> float:
    """`units` per second at the median time."""
    return units / statistics.median(seconds)


def count_flops(fn: Callable[[], Any]) -> int:
    """Floating-point operations (matmuls, convolutions, attention) that `fn` runs."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def training_flops(model: HotStartLM, batch: torch.Tensor, prec: Precision) -> tuple[int, int]:
    """(forward, forward + backward) FLOPs of one training step on `batch`."""
    model.train()

    def forward() -> torch.Tensor:
        with prec.autocast():
            return model(batch[:, :-1], batch[:, 1:])[1]

    fwd = count_flops(forward)
    total = count_flops(lambda: forward().backward())
    model.zero_grad(set_to_none=True)
    return fwd, total


def _timed_step(train_step: Callable, model: HotStartLM, batches: list[torch.Tensor], optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler, prec: Precision, i: int) -> None:
    """The training loop's own step on batch i (of a few fixed, real batches)."""
    train_step(model, batches[i % len(batches)], optimizer, scaler, prec, 1.0)


def efficiency_variants() -> dict[str, InputConfig]:
    """The efficiency table's rows: index and the three encoders on 8x8 glyphs."""
    variants = {"index": InputConfig(kind="index")}
    for name in ("orig", "opt", "simp"):
        variants[f"vision-{name}"] = InputConfig(kind="vision", encoder=EncoderConfig(name=name), render=RenderConfig(res=8))
    return variants


def measure_efficiency(scale: Any, data: str | Path, repeats: int = 5, device: str = "auto",
                       precision: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Parameters, FLOPs per sample and alternating training samples/s of every efficiency variant."""
    from ..training.config import TrainConfig
    from ..training.loop import make_optimizer, train_step
    from ..training.run import build_model

    corpus = PreparedCorpus.load(data)
    prec = resolve(device, precision)
    order = SampleOrder(corpus.train_index, seed=0, batch_size=scale.batch_size)
    batches = [corpus.sequences(order.batch(i)[0]).to(prec.device) for i in range(4)]
    steps: dict[str, Step] = {}
    rows: dict[str, dict[str, Any]] = {}
    for name, inp in efficiency_variants().items():
        torch.manual_seed(0)
        cfg = ModelConfig(vocab_size=len(corpus.vocab), input=inp, decoder=decoder_size(scale.size))
        model = build_model(cfg, corpus.vocab, progress=False).to(prec.device)
        optimizer, scaler = make_optimizer(model, TrainConfig()), prec.grad_scaler()
        fwd, total = training_flops(model, batches[0], prec)
        counts = model.parameter_counts()
        rows[name] = {"parameters_input": counts["input"], "parameters_total": counts["total"],
                      "flops_forward_per_sample": fwd / scale.batch_size,
                      "flops_train_per_sample": total / scale.batch_size}
        steps[name] = functools.partial(_timed_step, train_step, model, batches, optimizer, scaler, prec)
    seconds = alternate(steps, rounds=repeats, progress=progress)
    for name, secs in seconds.items():
        rows[name]["samples_per_s"] = median_rate(secs, scale.batch_size)
        rows[name]["samples_per_s_rounds"] = [scale.batch_size / s for s in secs]
    return {"decoder": scale.size, "batch_size": scale.batch_size, "seq_len": corpus.seq_len,
            "precision": prec.name, "device": str(prec.device), "repeats": repeats,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "variants": rows}


SLOW_PRECISION = 4.0
"""A precision whose first step takes this many times the fastest one's is timed by that step alone: on a CPU without
AVX-512 a bf16 matmul ran about 50x slower than fp32, and the full comparison did not finish in 16 minutes."""


def slow_precisions(first_step_s: dict[str, float], factor: float = SLOW_PRECISION) -> set[str]:
    """The precisions whose first step took over `factor` times the fastest one's."""
    fastest = min(first_step_s.values())
    return {name for name, seconds in first_step_s.items() if seconds > factor * fastest}
