"""Host memory: stop glibc from handing large freed blocks back to the kernel after every step.

PyTorch's CPU tensors come straight from malloc, and glibc serves every block over 32 MiB (a batch's
logits at small-cpu size are 128 x 128 x 5,162 floats, 338 MB) with its own mmap and returns it with
munmap when the tensor dies. The next step maps it again, and the kernel zeroes it again page by
page: on our 2-core machine that was about 10 million page faults and 10% of the process's CPU time in
a 3,072-sample run, and an 18% lower training rate (`bench/run.py` measures the rate both ways). With
mmap switched off and the trim threshold raised, freed blocks stay in the heap and the next step
reuses them. The resident size stays near its peak instead of falling between steps, which is what
a training process holds at its peak anyway.

This is a no-op off glibc (macOS, Windows, musl) and when HOTSTART_KEEP_FREED_MEMORY=0.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt parameter numbers and glibc's defaults, from <malloc.h> and malloc.c
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
_KEPT_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: shrink the heap only past 2 GiB of free top

_state: dict[str, str] = {}


def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def set_keep_freed_memory(keep: bool) -> bool:
    """Keep freed blocks in the heap (True) or hand large ones back to the kernel as glibc does by
    default (False); switchable at run time, so the benchmark can alternate both. False off glibc."""
    libc = _libc()
    if libc is None:
        return False
    mmap_max, trim = (0, _KEPT_TRIM_THRESHOLD) if keep else (_DEFAULT_MMAP_MAX, _DEFAULT_TRIM_THRESHOLD)
    # mallopt returns 1 on success; both must hold, or the freed blocks still go back to the kernel
    return libc.mallopt(_M_MMAP_MAX, mmap_max) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, trim) == 1


def keep_freed_memory() -> str:
    """Keep freed memory once per process (unless HOTSTART_KEEP_FREED_MEMORY=0); return what was done,
    for the run's environment record."""
    if "status" not in _state:
        if os.environ.get("HOTSTART_KEEP_FREED_MEMORY", "1") == "0":
            _state["status"] = "default (HOTSTART_KEEP_FREED_MEMORY=0)"
        else:
            _state["status"] = "glibc: freed memory kept" if set_keep_freed_memory(True) else "default"
    return _state["status"]
