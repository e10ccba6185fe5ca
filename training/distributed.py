"""Data-parallel training under ``torchrun``: gloo on CPUs, NCCL on GPUs.

Run the training CLI unchanged: ``torchrun --nproc_per_node=2 -m training.train configs/x.toml``.
Every rank builds the same batches (same seed) and takes every ``world``-th one; rank 0 alone trains
the tokenizers, validates and writes files, and decisions that end a loop (limits, early stopping,
an interrupt) are agreed by all ranks so none waits forever in an all-reduce.
"""

from __future__ import annotations

import hashlib
import os
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from common.ranks import Dist

T = TypeVar("T")


def setup(device: str = "auto") -> tuple[Dist, torch.device]:
    """Join the process group ``torchrun`` describes (if any) and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if device not in ("auto", "cuda", "cpu"):
        dev = torch.device(device)
    else:
        dev = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if world > 1 and not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    return Dist(rank=rank, world=world, local_rank=local_rank), dev


def wrap(model: nn.Module, d: Dist, device: torch.device) -> nn.Module:
    """The module to train: the model itself, or a DistributedDataParallel wrapper around it."""
    if not d.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard(items: list[T], d: Dist) -> list[T]:
    """This rank's share: every world-th item, cut to a multiple of world so all ranks step together."""
    if not d.active:
        return items
    usable = len(items) // d.world * d.world
    return items[:usable][d.rank :: d.world]


def agree(flag: bool, d: Dist) -> bool:
    """True on every rank if it is true on any rank."""
    if not d.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def from_main(values: list[float], d: Dist) -> list[float]:
    """Rank 0's values on every rank."""
    if not d.active:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.broadcast(t, src=0)
    return t.tolist()


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()


def cleanup(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of all parameters in order: equal digests mean identical weights."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
