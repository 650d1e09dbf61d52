"""The exponential-moving-average (mean teacher) copy of the student."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from ..modes import TeacherMode


def ema_alpha(step: int, alpha_max: float = 0.999) -> float:
    """``alpha_t = min(1 - 1/(t + 1), alpha_max)``: 0 at step 0 (teacher = student)."""
    return min(1.0 - 1.0 / (step + 1), alpha_max)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, alpha: float, copy_buffers: bool) -> None:
    """``phi <- alpha * phi + (1 - alpha) * theta`` for every parameter; optionally copy buffers."""
    t_params, s_params = list(teacher.parameters()), [p.detach() for p in student.parameters()]
    torch._foreach_mul_(t_params, alpha)  # one fused kernel per dtype/device, not one per tensor
    torch._foreach_add_(t_params, s_params, alpha=1.0 - alpha)
    if copy_buffers:
        for t, s in zip(teacher.buffers(), student.buffers()):
            t.copy_(s)


class EMATeacher(nn.Module):
    """A frozen copy of the student updated by :func:`ema_update` after every optimiser step.

    Args:
        student: the network being trained; copied at construction (step 0).
        alpha_max: cap of the EMA coefficient (0.999).
        mode: ``ours`` or ``official`` (see :class:`TeacherMode`).
    """

    def __init__(self, student: nn.Module, alpha_max: float = 0.999, mode: TeacherMode = TeacherMode.OURS):
        super().__init__()
        self.model = copy.deepcopy(student)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.alpha_max = alpha_max
        self.mode = TeacherMode(mode)

    def update(self, student: nn.Module, step: int) -> None:
        """One EMA step; ``step`` counts from the last copy (0: the teacher becomes the student)."""
        ema_update(self.model, student, ema_alpha(step, self.alpha_max), self.mode is TeacherMode.OURS)

    @torch.no_grad()
    def reset(self, student: nn.Module) -> None:
        """Copy the student's parameters and buffers (a fresh start of the average)."""
        for t, s in zip(self.model.parameters(), student.parameters()):
            t.copy_(s.detach())
        for t, s in zip(self.model.buffers(), student.buffers()):
            t.copy_(s)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.model.train(self.mode is TeacherMode.OFFICIAL)
        return self.model(x)
