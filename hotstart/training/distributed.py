"""Data-parallel training on PyTorch's own engine: `torchrun --nproc_per_node N -m hotstart train ...`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; with WORLD_SIZE > 1 the training loop joins a process
group (gloo on CPU, NCCL on CUDA), wraps the model in DistributedDataParallel, and gives each rank
an equal slice of every global batch. Rank 0 alone evaluates, logs and writes checkpoints; the
others wait for its decision to go on. With one process every call here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..errors import HotStartError

T = TypeVar("T")


@dataclass
class Group:
    """This process's place among the training processes."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        """True on the process that evaluates, logs and writes files."""
        return self.rank == 0

    def shard(self, index: np.ndarray) -> np.ndarray:
        """This rank's slice of a global batch of sequence indices."""
        return index[self.rank :: self.world]

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a tensor over all ranks (the value itself with one process)."""
        if self.world == 1:
            return value
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value / self.world

    def agree(self, decision: T) -> T:
        """Rank 0's decision, on every rank (say why to stop after an evaluation, or None to go on)."""
        if self.world == 1:
            return decision
        box = [decision]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait until every rank is here (e.g. until rank 0 has created the run folder)."""
        if self.world > 1:
            dist.barrier()


def join(device: torch.device, batch_size: int) -> tuple[Group, torch.device]:
    """Join the process group torchrun describes (if any); returns the group and this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Group(), device
    if batch_size % world:
        raise HotStartError(f"--batch-size {batch_size} does not split evenly over {world} processes")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Group(dist.get_rank(), dist.get_world_size()), device


def wrap(model: nn.Module, group: Group, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `model` when there are several ranks, else the model itself."""
    if group.world == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def leave(group: Group) -> None:
    """Leave the process group at the end of training."""
    if group.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
