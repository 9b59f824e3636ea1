"""Device and numeric precision: detected, overridable, and reported in every run.

On CUDA, `auto` takes bf16 autocast where the GPU supports it and fp16 with a gradient scaler
otherwise. On a CPU, `auto` measures rather than guesses from CPU flags: it times a matmul in fp32
and under bf16 autocast (casts included) and takes bf16 only when it is clearly faster. CPU flags
proved a poor guide: on two machines with AVX512-BF16 and no AMX, bf16 autocast trained the
small-cpu decoder about a third slower than fp32 on one and 1.66x faster on the other, and their
measured matmul peaks ranked them the same way (bf16 about 0.57x and 2.3x fp32's). `--precision bf16` or `fp32` skips the probe. fp16 is never
chosen on a CPU: CPU fp16 matmuls are emulated and slower than fp32.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from dataclasses import dataclass

import torch

from ..errors import HotStartError

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def pick_device(name: str = "auto") -> torch.device:
    """`auto` -> cuda when available, else cpu; an explicit name is checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HotStartError(f"device '{name}' requested but CUDA is not available; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise HotStartError(f"unknown device '{name}'; use auto, cpu or cuda[:N]") from None


# bf16 must beat fp32 by this factor on the probe before `auto` takes it: a training step also
# spends time outside matmuls, where bf16 gains nothing (one CPU's 2.3x matmul gain gave 1.66x in
# training), and a margin keeps a near tie from flipping between runs on timing noise.
BF16_MIN_SPEEDUP = 1.25


def _median_seconds(fn, repeats: int) -> float:
    fn()  # the first call pays for oneDNN's kernel selection and the allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@functools.cache
def cpu_bf16_speedup(size: int = 1024, repeats: int = 5) -> float:
    """fp32 matmul time / bf16-autocast matmul time on this CPU (>1: bf16 is faster), with this
    process's thread count. Takes a fraction of a second, once per process."""
    a, b = torch.randn(size, size), torch.randn(size, size)

    def bf16_matmul() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a @ b

    fp32 = _median_seconds(lambda: a @ b, repeats)
    return fp32 / _median_seconds(bf16_matmul, repeats)


def pick_precision(name: str, device: torch.device) -> str:
    """Resolve `auto` to bf16 / fp16 / fp32 for `device`; refuse combinations that cannot run."""
    if name not in PRECISIONS:
        raise HotStartError(f"unknown precision '{name}'; choose one of {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if name == "auto":
            return "bf16" if bf16_ok else "fp16"
        if name == "bf16" and not bf16_ok:
            raise HotStartError("this GPU has no bf16 support; use --precision fp16 or fp32")
        return name
    if name == "auto":
        return "bf16" if cpu_bf16_speedup() >= BF16_MIN_SPEEDUP else "fp32"
    if name == "fp16":
        raise HotStartError("fp16 on a CPU is emulated and slow; use --precision bf16 or fp32")
    return name


@dataclass
class Precision:
    """A resolved precision: the autocast context and the gradient scaler that go with it."""

    name: str
    device: torch.device
    reason: str = ""
    """How `auto` (or a resumed run) arrived at `name`, for the log; empty when it was asked for."""

    def describe(self) -> str:
        """'fp32', or 'fp32 (why)' when it was chosen rather than asked for."""
        return f"{self.name} ({self.reason})" if self.reason else self.name

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context for a forward pass (a no-op for fp32)."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.name == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A loss scaler, enabled only for fp16 (bf16 has fp32's exponent range)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.name == "fp16")


def resolve(device: str = "auto", precision: str = "auto") -> Precision:
    """Device and precision names -> a Precision."""
    dev = pick_device(device)
    name = pick_precision(precision, dev)
    reason = ""
    if precision == "auto" and dev.type == "cpu":
        reason = f"auto: a bf16 matmul ran {cpu_bf16_speedup():.2f}x as fast as fp32 here"
    return Precision(name, dev, reason)
