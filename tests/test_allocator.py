"""Host memory: freed blocks stay in the heap, so the next step's tensors cost no page faults."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys

import pytest
import torch

from hotstart.allocator import set_keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
BLOCK_FLOATS = 32 * 2**20  # 128 MiB: far above glibc's largest mmap threshold (32 MiB)


def faults_of_a_second_block() -> int:
    """Minor page faults of allocating and writing a large tensor after an equal one was freed."""
    torch.empty(BLOCK_FLOATS).fill_(1.0)  # allocated, written, freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(BLOCK_FLOATS).fill_(1.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not GLIBC, reason="the setting exists only in glibc")
def test_kept_memory_is_reused_without_page_faults() -> None:
    pages = BLOCK_FLOATS * 4 // os.sysconf("SC_PAGE_SIZE")
    try:
        assert set_keep_freed_memory(False)
        returned = faults_of_a_second_block()
        assert set_keep_freed_memory(True)
        faults_of_a_second_block()  # the first block in kept mode may still have to grow the heap
        kept = faults_of_a_second_block()
    finally:
        set_keep_freed_memory(True)
    assert returned > pages // 2  # the kernel handed out (and zeroed) the block's pages again
    assert kept < pages // 20  # the heap's pages were reused


def test_the_setting_can_be_switched_off_and_is_recorded() -> None:
    code = "from hotstart.allocator import keep_freed_memory; print(keep_freed_memory())"
    env = {**os.environ, "HOTSTART_KEEP_FREED_MEMORY": "0"}
    off = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert off.stdout.strip() == "default (HOTSTART_KEEP_FREED_MEMORY=0)"
    env["HOTSTART_KEEP_FREED_MEMORY"] = "1"
    on = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert on.stdout.strip() == ("glibc: freed memory kept" if GLIBC else "default")
