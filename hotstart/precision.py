"""Device and numeric precision: detected, overridable, and reported in every run.

bf16 autocast where the hardware has fast bf16 matrix units (CUDA with bf16 support; CPUs with AMX
tiles), fp16 with a gradient scaler on CUDA without bf16, fp32 otherwise. On a CPU with AVX512-BF16
but no AMX, bf16 autocast trained the small-cpu decoder about a third slower than fp32 when we
measured it (the bf16 dot-product instructions do not make up for the casts), so `auto` takes
fp32 there; `--precision bf16` still forces it. fp16 is never chosen on a CPU: CPU fp16 matmuls
are emulated and slower than fp32.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .errors import HotStartError

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


def cpu_has_amx() -> bool:
    """True when this CPU has AMX tiles (as reported by torch), where bf16 beats fp32."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


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
        return "bf16" if cpu_has_amx() else "fp32"
    if name == "fp16":
        raise HotStartError("fp16 on a CPU is emulated and slow; use --precision bf16 or fp32")
    return name


@dataclass
class Precision:
    """A resolved precision: the autocast context and the gradient scaler that go with it."""

    name: str
    device: torch.device

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
    return Precision(pick_precision(precision, dev), dev)
