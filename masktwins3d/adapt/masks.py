"""Patch masks over a crop: complementary (MaskTwins), K-view, independent random (RMask), single (MIC).

All masks are hard 0/1 blocks of edge ``patch`` (square in 2D, cube in 3D) nearest-upsampled to
the crop, one per sample, shared over channels, shape ``(B, 1, *spatial)``. A fresh draw is made
on every call from the given ``torch.Generator``.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..errors import UserError
from ..modes import MaskKind


def check_grid(spatial: Sequence[int], patch: int) -> tuple[int, ...]:
    """Number of mask cells per axis; raises if the crop is not a multiple of the patch."""
    if patch <= 0:
        raise UserError(f"mask.patch={patch} must be a positive number of voxels; try crop/16")
    bad = [s for s in spatial if s % patch]
    if bad:
        raise UserError(
            f"crop {tuple(spatial)} is not divisible by mask.patch={patch}; "
            f"set data.crop to a multiple of {patch} or choose a mask.patch that divides it"
        )
    return tuple(s // patch for s in spatial)


def _upsample(cells: torch.Tensor, patch: int) -> torch.Tensor:
    """Nearest upsampling of a ``(B, *grid)`` cell tensor by ``patch`` on every spatial axis."""
    out = cells
    for axis in range(1, cells.ndim):
        out = out.repeat_interleave(patch, dim=axis)
    return out.unsqueeze(1)


def _to_device(cells: torch.Tensor, device) -> torch.Tensor:
    """The CPU-drawn cell grid on ``device``; to a GPU asynchronously from pinned memory."""
    if device is not None and torch.device(device).type == "cuda":
        return cells.pin_memory().to(device, non_blocking=True)
    return cells.to(device)


def random_mask(
    shape: Sequence[int], patch: int, ratio: float, generator: torch.Generator, device=None
) -> torch.Tensor:
    """A random patch mask: each cell is kept (1) with probability ``1 - ratio``.

    Args:
        shape: ``(B, *spatial)`` of the batch to mask (voxels).
        patch: cell edge in voxels; every spatial size must be a multiple of it.
        ratio: expected fraction of masked (zeroed) cells, in [0, 1].
        generator: torch generator (CPU) that owns the randomness.
        device: where to put the mask.
    """
    if not 0.0 <= ratio <= 1.0:
        raise UserError(f"mask.ratio={ratio} must be in [0, 1]; the paper uses 0.5")
    grid = check_grid(shape[1:], patch)
    keep = (torch.rand((shape[0], *grid), generator=generator) >= ratio).float()
    return _upsample(_to_device(keep, device), patch)  # draw the small grid on the CPU, upsample on the device


def complementary_masks(
    shape: Sequence[int],
    patch: int,
    ratio: float,
    generator: torch.Generator,
    views: int = 2,
    device=None,
) -> list[torch.Tensor]:
    """Masks that partition the crop: every voxel is visible in exactly one view.

    With ``views=2`` this is MaskTwins: ``D`` with keep probability ``1 - ratio`` and exactly
    ``1 - D``. With ``views=K > 2`` each cell is assigned to one of K views uniformly
    (``ratio`` is then unused: each view keeps 1/K of the cells in expectation).

    Args:
        shape: ``(B, *spatial)`` (voxels).
        patch: cell edge in voxels.
        ratio: masked fraction of the first view (K = 2 only).
        generator: torch generator that owns the randomness.
        views: number of views K >= 2.
        device: where to put the masks.
    """
    if views < 2:
        raise UserError(f"mask.views={views} must be at least 2 for complementary masks")
    if views == 2:
        d = random_mask(shape, patch, ratio, generator, device)
        return [d, 1.0 - d]
    grid = check_grid(shape[1:], patch)
    owner = torch.randint(0, views, (shape[0], *grid), generator=generator)
    owner = _to_device(owner, device)
    return [_upsample((owner == k).float(), patch) for k in range(views)]


def draw_masks(
    kind: MaskKind,
    shape: Sequence[int],
    patch: int,
    ratio: float,
    generator: torch.Generator,
    views: int = 2,
    device=None,
) -> list[torch.Tensor]:
    """The masks of one iteration for ``kind``: a list with one mask per student view."""
    kind = MaskKind(kind)
    if kind is MaskKind.COMPLEMENTARY:
        return complementary_masks(shape, patch, ratio, generator, views, device)
    if kind is MaskKind.INDEPENDENT:
        return [
            random_mask(shape, patch, ratio, generator, device),
            random_mask(shape, patch, 1.0 - ratio, generator, device),
        ]
    if kind is MaskKind.SINGLE:
        return [random_mask(shape, patch, ratio, generator, device)]
    return [torch.ones((shape[0], 1, *shape[1:]), device=device)]


def apply_mask(x: torch.Tensor, mask: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """``mask * x + (1 - mask) * fill``: masked voxels take ``fill`` (0 = the mean after z-scoring)."""
    if fill == 0.0:
        return x * mask
    return x * mask + (1.0 - mask) * fill
