"""A small training loop: step the method's loss, update, log, checkpoint, resume exactly.

The trainer knows nothing about losses: it asks ``method.loss(batch, step)`` for a scalar and
calls ``method.after_step(step)`` (the EMA update) after every optimiser step. Under torchrun
(:mod:`masktwins3d.adapt.distributed`) every rank runs this loop; rank 0 alone writes the run
folder while the others wait at a barrier.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ..atomic import atomic_write, atomic_write_text
from ..errors import UserError
from ..precision import Precision
from .distributed import DistEnv, all_gather_objects, barrier, mean_logs, sync_buffers
from .guard import CollapseGuard

CHECKPOINT = "checkpoint.pt"
SNAPSHOTS = "snapshots"


def snapshot_name(step: int) -> str:
    """File name of the weights kept at ``step`` (``train.snapshot_every``)."""
    return f"step_{step:06d}.pt"


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` to a temp file and rename, so a kill never leaves half a checkpoint."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict:
    """Load a masktwins3d checkpoint with ``weights_only=True``; one clear line if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass the checkpoint.pt of a training run")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (any unpickling failure means "not our checkpoint")
        raise UserError(f"{path} is not a readable torch checkpoint ({type(exc).__name__}); pass a checkpoint.pt written by `masktwins3d train`") from None
    if not isinstance(state, dict) or "model" not in state or "model_config" not in state:
        raise UserError(f"{path} is not a masktwins3d checkpoint (no model/model_config); pass a checkpoint.pt written by `masktwins3d train`")
    return state


def autocast(model: nn.Module, precision: Precision | None):
    """The forward passes' autocast on ``model``'s device: bf16 when ``precision`` says so (None: fp32)."""
    if precision is None:
        return nullcontext()
    return precision.autocast(next(model.parameters()).device.type)


def train_step(
    method, optimizer, scheduler, batch: dict, step: int, precision: Precision | None = None, env: DistEnv | None = None
) -> dict:
    """One iteration: loss (under bf16 autocast when ``precision`` says so), backward (DDP
    averages the gradients over ranks), optimiser and LR step, buffer sync across ranks, EMA update.

    Args:
        method: see :class:`Trainer`.
        optimizer / scheduler: torch optimiser and LR scheduler.
        batch: the iteration's batch dict of tensors.
        step: 0-based iteration.
        precision: :class:`~masktwins3d.precision.Precision` of the forward passes (None: fp32);
            weights, gradients and the optimiser stay fp32 either way.
        env: this rank (default: one process).

    Returns:
        the method's logs of this rank (floats or 0-d tensors; not synchronised, so a GPU run
        waits for the device only when the trainer writes a log line).
    """
    with autocast(method.model, precision):
        loss, logs = method.loss(batch, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    if env is not None:
        sync_buffers(method.model, env)
    method.after_step(step)
    return logs


class Trainer:
    """Runs ``iterations`` optimiser steps of ``method`` and keeps the run folder up to date.

    Args:
        method: object with ``loss(batch, step) -> (tensor, logs)``, ``after_step(step)`` and
            attributes ``model`` and optional ``teacher``.
        optimizer / scheduler: torch optimiser and LR scheduler (stepped once per iteration).
        next_batch: callable returning the next batch dict of tensors; its ``close()``, if
            any, is called when the run ends.
        out_dir: run folder for ``checkpoint.pt``, ``log.jsonl`` and TensorBoard events.
        iterations: total number of steps of the run.
        checkpoint_every / log_every: iterations between checkpoints / log lines.
        rng_state / set_rng_state: save and restore every random generator of the run.
        extra: constant entries stored in every checkpoint (model config, run config, version).
        progress: show a tqdm bar (rank 0 only).
        precision: :class:`~masktwins3d.precision.Precision` of the forward passes (None: fp32).
        env: this process's place in a torchrun run (default: a single process). Rank 0 writes
            the checkpoint (with every rank's RNG state), ``log.jsonl`` (rank means) and
            TensorBoard; the other ranks wait at a barrier after each checkpoint.
        snapshot_every: also keep model and EMA weights every this many iterations in
            ``snapshots/step_NNNNNN.pt`` (0: none), for learning curves scored after training.
        guard: the collapse guard fed with each log line (None: none).
    """

    def __init__(
        self,
        method,
        optimizer: torch.optim.Optimizer,
        scheduler,
        next_batch: Callable[[], dict],
        out_dir: str | Path,
        iterations: int,
        checkpoint_every: int,
        log_every: int,
        rng_state: Callable[[], dict],
        set_rng_state: Callable[[dict], None],
        extra: dict,
        progress: bool = True,
        precision: Precision | None = None,
        env: DistEnv | None = None,
        snapshot_every: int = 0,
        guard: CollapseGuard | None = None,
    ):
        self.snapshot_every, self.guard = snapshot_every, guard
        self.method, self.optimizer, self.scheduler = method, optimizer, scheduler
        self.precision, self.env = precision, env or DistEnv()
        self.next_batch, self.out_dir, self.iterations = next_batch, Path(out_dir), iterations
        self.replaced: Path | None = None  # an earlier run set aside by --overwrite (train.train settles it)
        self.checkpoint_every, self.log_every = max(1, checkpoint_every), max(1, log_every)
        self.rng_state, self.set_rng_state, self.extra = rng_state, set_rng_state, extra
        self.progress, self.step = progress, 0

    @property
    def model(self) -> nn.Module:
        return self.method.model

    def state(self, rng_ranks: list[dict] | None = None) -> dict:
        """The checkpoint dict; ``rng_ranks``: every rank's RNG state (default: this rank's)."""
        teacher = getattr(self.method, "teacher", None)
        rng_ranks = rng_ranks or [self.rng_state()]
        state = {
            **self.extra,
            "step": self.step,
            "model": self.model.state_dict(),
            "teacher": None if teacher is None else teacher.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_ranks[0],
            "world_size": len(rng_ranks),
        }
        if len(rng_ranks) > 1:
            state["rng_ranks"] = rng_ranks
        if hasattr(self.method, "extra_state"):
            state["method_state"] = self.method.extra_state()
        return state

    def save_snapshot(self) -> Path | None:
        """Keep the model and EMA weights of this step (rank 0): a loadable checkpoint without
        optimiser or random state, for learning curves."""
        if not self.env.is_main:
            return None
        teacher = getattr(self.method, "teacher", None)
        state = {**self.extra, "step": self.step, "model": self.model.state_dict(),
                 "teacher": None if teacher is None else teacher.model.state_dict()}
        path = self.out_dir / SNAPSHOTS / snapshot_name(self.step)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, state)
        return path

    def save(self) -> Path:
        """Write ``checkpoint.pt`` (rank 0); with several ranks a collective call on all of them."""
        path = self.out_dir / CHECKPOINT
        rng_ranks = all_gather_objects(self.rng_state(), self.env)
        if self.env.is_main:
            save_checkpoint(path, self.state(rng_ranks))
        barrier(self.env)
        return path

    def resume(self, path: str | Path) -> None:
        """Restore model, teacher, optimiser, scheduler, iteration and every RNG from ``path``."""
        state = load_checkpoint(path)
        world = int(state.get("world_size", 1))
        if world != self.env.world_size:
            raise UserError(f"{path} was written by {world} process(es) but this run has {self.env.world_size}; resume with the same number (torchrun --nproc_per_node {world}, or no torchrun for 1)")
        saved = state.get("model_config")
        current = self.extra.get("model_config") if isinstance(getattr(self, "extra", None), dict) else None
        if saved is not None and current is not None and saved != current:
            diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            shown = ", ".join(f"model.{k}: {saved.get(k)!r} there, {current.get(k)!r} here" for k in diff)
            raise UserError(f"{path} was written by another model ({shown}); resume with the run's own config.yaml, "
                            "or start a new run (--overwrite or another train.out_dir)")
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError:
            raise UserError(f"{path} holds weights of another model shape; resume with the run's own config.yaml, "
                            "or start a new run (--overwrite or another train.out_dir)") from None
        teacher = getattr(self.method, "teacher", None)
        if (teacher is None) != (state["teacher"] is None):
            raise UserError(f"{path} was written {'without' if state['teacher'] is None else 'with'} an EMA teacher but this config differs; resume with the run's own config.yaml")
        if teacher is not None:
            teacher.model.load_state_dict(state["teacher"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.set_rng_state(state["rng_ranks"][self.env.rank] if world > 1 else state["rng"])
        if hasattr(self.method, "load_extra_state"):
            self.method.load_extra_state(state.get("method_state"))
        self.step = int(state["step"])
        if self.env.is_main:
            self._truncate_log()

    def _truncate_log(self) -> None:
        """Drop the log lines a killed run wrote after its last checkpoint (they are redone)."""
        path = self.out_dir / "log.jsonl"
        if not path.is_file():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= self.step:
                    kept.append(line + "\n")
            except (ValueError, KeyError, TypeError):
                pass  # a line cut short by the kill
        atomic_write_text(path, "".join(kept))

    def run(self) -> Path:
        """Train until ``iterations``; write a checkpoint on schedule, at the end and on Ctrl-C
        (one process; under torchrun Ctrl-C keeps the last scheduled checkpoint, because the
        ranks are interrupted at different points and cannot gather their states)."""
        main = self.env.is_main
        if main:
            from torch.utils.tensorboard import SummaryWriter

            self.out_dir.mkdir(parents=True, exist_ok=True)
            writer = SummaryWriter(str(self.out_dir / "tensorboard"))
            log = open(self.out_dir / "log.jsonl", "a", encoding="utf-8")
        bar = tqdm(total=self.iterations, initial=self.step, disable=not (self.progress and main), desc=self.out_dir.name, unit="it")
        t0 = time.perf_counter()
        self.model.train()
        try:
            while self.step < self.iterations:
                logs = train_step(self.method, self.optimizer, self.scheduler, self.next_batch(), self.step, self.precision, self.env)
                self.step += 1
                bar.update(1)
                if self.step % self.log_every == 0 or self.step == self.iterations:
                    logs = {"step": self.step, **mean_logs(logs, self.env), "lr": self.scheduler.get_last_lr()[0], "seconds": time.perf_counter() - t0}
                    warning = self.guard.update(logs, self.step) if self.guard is not None else None
                    if warning:
                        logs["collapse_warning"] = 1
                        if main:
                            tqdm.write(warning)
                    if main:
                        log.write(json.dumps(logs) + "\n")
                        log.flush()
                        for key, value in logs.items():
                            if key != "step":
                                writer.add_scalar(f"train/{key}", value, self.step)
                    bar.set_postfix(loss=f"{logs['loss']:.4f}")
                if self.snapshot_every and self.step % self.snapshot_every == 0:
                    self.save_snapshot()
                if self.step % self.checkpoint_every == 0 and self.step < self.iterations:
                    self.save()
        except KeyboardInterrupt:
            if not self.env.distributed:
                self.save()
            raise
        finally:
            bar.close()
            if hasattr(self.next_batch, "close"):
                self.next_batch.close()  # stop drawing ahead (the draw is undone)
            if main:
                log.close()
                writer.close()
        return self.save()
