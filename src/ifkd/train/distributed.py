"""Process set-up for training: one plain process or DDP under ``torchrun``, devices, stop signals.

The trainer (:mod:`ifkd.train.loop`) asks this module which device it runs on, whether it is rank 0
(the only rank that writes files), for its sampler, and for the few collectives it needs.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from ifkd.device import resolve_device  # the one --device parser, shared with every command
from ifkd.io import InputError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``world_size == 1`` means a plain single process (no process group)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False
    """True when :func:`init_distributed` created the process group (so it also destroys it)"""

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes run files and prints progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InputError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed(device: str = "auto") -> DistContext:
    """Read ``RANK/LOCAL_RANK/WORLD_SIZE`` (set by torchrun) and join the process group if there are
    several processes: 'gloo' on CPU, 'nccl' on CUDA. Without them: a single process, no group.

    A process group that already exists (e.g. a test that called ``init_process_group`` itself) is reused.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    if dist.is_available() and dist.is_initialized():
        world_size, rank = dist.get_world_size(), dist.get_rank()
    dev = resolve_device(device, local_rank)
    owns_group = world_size > 1 and not dist.is_initialized()
    if owns_group:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    elif dev.type == "cuda":
        torch.cuda.set_device(dev)
    return DistContext(
        rank=rank, local_rank=local_rank, world_size=world_size, device=dev, owns_group=owns_group
    )


def shutdown_distributed(ctx: DistContext) -> None:
    """Leave the process group if :func:`init_distributed` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def all_reduce_max(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Element-wise max over ranks (in place on a copy); used for stop and NaN flags so all ranks agree."""
    if ctx.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Element-wise sum over ranks; used to pool validation IoU sums and counts."""
    if ctx.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def wrap_ddp(module: nn.Module, ctx: DistContext) -> nn.Module:
    """DistributedDataParallel around ``module`` when running on several ranks, else the module itself.

    ``find_unused_parameters=True`` because a student's KD head gets no gradient in the recon-only epochs.
    """
    if not ctx.distributed:
        return module
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)


class ResumableSampler(DistributedSampler):
    """:class:`DistributedSampler` (order from ``seed + epoch``, rank ``r`` takes every ``world``-th index)
    that can start part-way through an epoch, so a resumed run sees the rest of the same permutation."""

    def __init__(self, dataset: Dataset, ctx: DistContext, seed: int) -> None:
        super().__init__(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select epoch ``epoch``'s permutation and skip this rank's first ``start`` samples of it."""
        super().set_epoch(epoch)
        self.start = start

    def __iter__(self):
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return max(super().__len__() - self.start, 0)


class StopSignals:
    """The first SIGINT/SIGTERM becomes a flag read once per step; a second one interrupts at once."""

    def __enter__(self) -> StopSignals:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():  # handlers only install there
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
