"""Adaptive instance normalisation (AdaIN) of source features with target statistics (AdaSyn)."""

from __future__ import annotations

import torch


def channel_stats(f: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and ``sqrt(var + eps)`` over the spatial dims of ``(B, C, *S)``."""
    dims = tuple(range(2, f.ndim))
    mean = f.mean(dim=dims, keepdim=True)
    std = torch.sqrt(f.var(dim=dims, keepdim=True, unbiased=False) + eps)
    return mean, std


def adain(source: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Restyle ``source`` features with the (detached) channel statistics of ``target``.

    ``(f_S - mu_S) / sigma_S * sigma_T + mu_T``, with ``sigma = sqrt(var + eps)`` over spatial
    dims. Target statistics are averaged over the target batch when the batch sizes differ.

    Args:
        source: source features ``(B, C, *spatial)``.
        target: target features ``(B', C, *spatial')``; gradients do not flow into them.
        eps: variance floor.
    """
    mu_s, sd_s = channel_stats(source, eps)
    mu_t, sd_t = channel_stats(target.detach(), eps)
    if mu_t.shape[0] != source.shape[0]:
        mu_t = mu_t.mean(dim=0, keepdim=True)
        sd_t = sd_t.mean(dim=0, keepdim=True)
    return (source - mu_s) / sd_s * sd_t + mu_t
