"""A small training loop: step the method's loss, update, log, checkpoint, resume exactly.

The trainer knows nothing about losses: it asks ``method.loss(batch, step)`` for a scalar and
calls ``method.after_step(step)`` (the EMA update) after every optimiser step.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ..atomic import atomic_write
from ..errors import UserError

CHECKPOINT = "checkpoint.pt"


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


class Trainer:
    """Runs ``iterations`` optimiser steps of ``method`` and keeps the run folder up to date.

    Args:
        method: object with ``loss(batch, step) -> (tensor, logs)``, ``after_step(step)`` and
            attributes ``model`` and optional ``teacher``.
        optimizer / scheduler: torch optimiser and LR scheduler (stepped once per iteration).
        next_batch: callable returning the next batch dict of tensors.
        out_dir: run folder for ``checkpoint.pt``, ``log.jsonl`` and TensorBoard events.
        iterations: total number of steps of the run.
        checkpoint_every / log_every: iterations between checkpoints / log lines.
        rng_state / set_rng_state: save and restore every random generator of the run.
        extra: constant entries stored in every checkpoint (model config, run config, version).
        progress: show a tqdm bar.
        amp: bf16 autocast of the forward passes on a GPU (ignored on CPU).
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
        amp: bool = False,
    ):
        self.method, self.optimizer, self.scheduler = method, optimizer, scheduler
        self.amp = amp
        self.next_batch, self.out_dir, self.iterations = next_batch, Path(out_dir), iterations
        self.checkpoint_every, self.log_every = max(1, checkpoint_every), max(1, log_every)
        self.rng_state, self.set_rng_state, self.extra = rng_state, set_rng_state, extra
        self.progress, self.step = progress, 0

    @property
    def model(self) -> nn.Module:
        return self.method.model

    def state(self) -> dict:
        teacher = getattr(self.method, "teacher", None)
        return {
            **self.extra,
            "step": self.step,
            "model": self.model.state_dict(),
            "teacher": None if teacher is None else teacher.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": self.rng_state(),
        }

    def save(self) -> Path:
        path = self.out_dir / CHECKPOINT
        save_checkpoint(path, self.state())
        return path

    def resume(self, path: str | Path) -> None:
        """Restore model, teacher, optimiser, scheduler, iteration and every RNG from ``path``."""
        state = load_checkpoint(path)
        self.model.load_state_dict(state["model"])
        teacher = getattr(self.method, "teacher", None)
        if (teacher is None) != (state["teacher"] is None):
            raise UserError(f"{path} was written {'without' if state['teacher'] is None else 'with'} an EMA teacher but this config differs; resume with the run's own config.yaml")
        if teacher is not None:
            teacher.model.load_state_dict(state["teacher"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.set_rng_state(state["rng"])
        self.step = int(state["step"])

    def _autocast(self):
        """bf16 autocast of the forward passes when ``amp`` is on and the model is on a GPU."""
        device = next(self.model.parameters()).device
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.amp and device.type == "cuda")

    def run(self) -> Path:
        """Train until ``iterations``; write a checkpoint on schedule, at the end and on Ctrl-C."""
        from torch.utils.tensorboard import SummaryWriter

        self.out_dir.mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        bar = tqdm(total=self.iterations, initial=self.step, disable=not self.progress, desc=self.out_dir.name, unit="it")
        t0 = time.perf_counter()
        self.model.train()
        try:
            with open(self.out_dir / "log.jsonl", "a", encoding="utf-8") as log:
                while self.step < self.iterations:
                    batch = self.next_batch()
                    with self._autocast():
                        loss, logs = self.method.loss(batch, self.step)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                    self.scheduler.step()
                    self.method.after_step(self.step)
                    self.step += 1
                    bar.update(1)
                    if self.step % self.log_every == 0 or self.step == self.iterations:
                        logs = {"step": self.step, **logs, "lr": self.scheduler.get_last_lr()[0], "seconds": time.perf_counter() - t0}
                        log.write(json.dumps(logs) + "\n")
                        log.flush()
                        for key, value in logs.items():
                            if key != "step":
                                writer.add_scalar(f"train/{key}", value, self.step)
                        bar.set_postfix(loss=f"{logs['loss']:.4f}")
                    if self.step % self.checkpoint_every == 0 and self.step < self.iterations:
                        self.save()
        except KeyboardInterrupt:
            self.save()
            bar.close()
            writer.close()
            raise
        bar.close()
        writer.close()
        return self.save()
