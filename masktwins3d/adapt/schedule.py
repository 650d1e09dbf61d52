"""Learning-rate schedules as pure functions of the iteration."""

from __future__ import annotations

import torch


def lr_factor(step: int, iterations: int, schedule: str, power: float = 0.9, warmup: int = 0) -> float:
    """Multiplier of the base LR at ``step`` (0-based).

    ``poly``: ``(1 - step/iterations) ** power``; ``warmup``/``constant``: 1. A linear warm-up
    ``(step + 1)/warmup`` multiplies any schedule during the first ``warmup`` steps.
    """
    factor = (1.0 - min(step, iterations) / iterations) ** power if schedule == "poly" else 1.0
    if warmup > 0 and step < warmup:
        factor *= (step + 1) / warmup
    return factor


def build_optimizer(params, cfg) -> torch.optim.Optimizer:
    """Adam or AdamW from an :class:`~masktwins3d.config.OptimConfig`."""
    cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR applying :func:`lr_factor` with the config's schedule."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, cfg.iterations, cfg.schedule, cfg.power, cfg.warmup)
    )
