"""Data-parallel training over processes started by ``torchrun`` (DistributedDataParallel).

One process per device. ``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; when
``WORLD_SIZE > 1``, :func:`session` joins the process group (``nccl`` on GPUs, each rank on
``cuda:LOCAL_RANK``; ``gloo`` on CPU). Without torchrun (or with ``WORLD_SIZE=1``) it yields a
world of one process and every helper here does nothing, so a single process trains exactly as
before.

Per rank: the source and target samplers and the mask generator (independent seeded streams,
:func:`rank_seeds`), so each rank draws its own ``data.batch_size`` crops per domain and the
global batch is ``data.batch_size x WORLD_SIZE``. Shared by all ranks: the student (DDP averages
its gradients), the optimiser state, the EMA teacher (copied from the broadcast student, updated
from the synchronised student), the checkpoint, the logs (rank means).
"""

from __future__ import annotations

import atexit
import os
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from ..errors import UserError


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the run.

    Args:
        rank: global rank, 0 .. world_size - 1 (0 writes the run folder).
        world_size: number of processes (1: no process group).
        local_rank: rank on this machine (the GPU index under nccl).
        device: this rank's device.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """True on the rank that writes checkpoints, logs and run-folder files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise UserError(f"environment variable {name}={value!r} is not an integer; launch with torchrun, which sets it") from None


@contextmanager
def session(device: torch.device) -> Iterator[DistEnv]:
    """The :class:`DistEnv` of this process, in the process group when ``WORLD_SIZE > 1``.

    Args:
        device: the configured device (``cpu`` or ``cuda``); under torchrun a CUDA run uses
            ``cuda:LOCAL_RANK``.
    """
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        yield DistEnv(device=device)
        return
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise UserError(f"LOCAL_RANK={local} but only {torch.cuda.device_count()} GPUs are visible; set torchrun --nproc_per_node to at most that")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # joined once per process and left at exit: a second run in the same process (the demo,
        # tests) reuses the group, because re-joining torchrun's rendezvous store would hang
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave)
    yield DistEnv(rank=rank, world_size=world, local_rank=local, device=device)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_seeds(seed: int, env: DistEnv) -> list[np.random.SeedSequence]:
    """Seeds of this rank's (source sampler, target sampler, mask generator).

    One process: ``SeedSequence(seed).spawn(3)`` (the single-process streams). ``W > 1`` ranks:
    child ``rank`` of ``SeedSequence(seed).spawn(W)``, split in three, so ranks draw independent
    crops and masks and a rerun with the same seed and world size repeats them.
    """
    root = np.random.SeedSequence(seed)
    if not env.distributed:
        return root.spawn(3)
    return root.spawn(env.world_size)[env.rank].spawn(3)


def _broadcast_coalesced(tensors: list[torch.Tensor]) -> None:
    """Overwrite ``tensors`` with rank 0's values, one broadcast per dtype."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = defaultdict(list)
    for t in tensors:
        by_dtype[t.dtype].append(t)
    for group in by_dtype.values():
        flat = torch.cat([t.detach().reshape(-1) for t in group])
        dist.broadcast(flat, src=0)
        offset = 0
        with torch.no_grad():
            for t in group:
                t.copy_(flat[offset : offset + t.numel()].view(t.shape))
                offset += t.numel()


def broadcast_module(module: nn.Module, env: DistEnv) -> None:
    """Give every rank rank 0's parameters and buffers (before the teacher copies the student)."""
    if env.distributed:
        _broadcast_coalesced(list(module.parameters()) + list(module.buffers()))


def sync_buffers(module: nn.Module, env: DistEnv) -> None:
    """Give every rank rank 0's buffers (batch-norm running statistics), as DDP does before each
    forward; called after the optimiser step so the EMA teacher copies identical buffers."""
    buffers = list(module.buffers())
    if env.distributed and buffers:
        _broadcast_coalesced(buffers)


def wrap_ddp(model: nn.Module, env: DistEnv) -> nn.Module:
    """``model`` in DistributedDataParallel for ``W > 1`` ranks, else ``model`` itself.

    The methods run the student several times per iteration (source, masked views) before one
    backward. Plain DDP handles that: every forward re-arms the reducer, and autograd sums the
    uses of a parameter into one gradient, whose ready-hook fires once per backward, so each
    bucket is all-reduced (averaged over ranks) exactly once
    (``tests/test_distributed.py`` checks the averaged gradient).
    """
    if not env.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [env.device.index] if env.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def all_gather_objects(obj, env: DistEnv) -> list:
    """``obj`` of every rank, in rank order (``[obj]`` in one process)."""
    if not env.distributed:
        return [obj]
    out: list = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def mean_logs(logs: dict, env: DistEnv) -> dict[str, float]:
    """Log values (floats or 0-d tensors) as floats, averaged over ranks (same keys on every rank)."""
    keys = list(logs)
    values = torch.tensor([float(logs[k]) for k in keys], dtype=torch.float64, device=env.device)
    if env.distributed:
        dist.all_reduce(values)
        values /= env.world_size
    return dict(zip(keys, values.tolist()))


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op in one process)."""
    if env.distributed:
        if env.device.type == "cuda":
            dist.barrier(device_ids=[env.device.index])
        else:
            dist.barrier()
