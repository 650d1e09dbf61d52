"""Sliding-window numerics: importance maps, window placement and blended stitching, N-dimensional.

Equal to ``monai.inferers.sliding_window_inference`` (same importance map, scan interval, window
placement and zero padding of patches larger than the image), written for one or many images of
any number of spatial axes, so 2D sections and 3D blocks share this code.

>>> out = sliding_window(image, model, patch_size=(256, 256), overlap=0.25, mode="gaussian")
"""

from __future__ import annotations

import itertools
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..modes import BlendMode

__all__ = ["BlendMode", "bump_1d", "importance_map", "pad_widths", "sliding_window", "window_slices", "window_starts"]


def importance_map(
    patch_size: Sequence[int],
    mode: BlendMode | str = BlendMode.GAUSSIAN,
    sigma_scale: float | Sequence[float] = 0.125,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Per-voxel weight of a window's prediction; gaussian and constant equal MONAI's ``compute_importance_map``.

    Gaussian: the outer product of 1D Gaussians centred on the patch with
    ``sigma = sigma_scale * patch_size`` (peak 1), computed in float32 in MONAI's order of
    operations. Bump: the outer product of the compactly supported bumps
    ``exp(1 - 1 / (1 - t^2))``, ``t = (voxel centre - patch centre) / (patch / 2)`` in (-1, 1), per
    axis (peak 1, smooth, near 0 at the window's edge). Both are then clamped from below to
    ``max(min weight, 1e-3)`` so that corners still count (MONAI's rule). Constant: all ones.

    Args:
        patch_size: window shape, voxels (any number of axes, each >= 1).
        mode: :class:`BlendMode` or its name; default gaussian.
        sigma_scale: Gaussian sigma as a fraction of the patch size, one value or one per axis
            (default 0.125); used by gaussian only.
        dtype: dtype of the result (default float32; computed in float32 first).
        device: device of the result (default cpu).

    Returns:
        Tensor of shape ``patch_size``.
    """
    patch_size = _check_sizes(patch_size, "patch_size")
    mode = BlendMode(mode)
    if mode == BlendMode.CONSTANT:
        weights = torch.ones(patch_size, dtype=torch.float32, device=device)
    else:
        scales = _per_axis(sigma_scale, len(patch_size), "sigma_scale")
        weights = torch.ones((), dtype=torch.float32, device=device)
        for axis, (size, scale) in enumerate(zip(patch_size, scales)):
            x = torch.arange(-(size - 1) / 2.0, (size - 1) / 2.0 + 1, dtype=torch.float32, device=device)
            if mode == BlendMode.GAUSSIAN:
                sigma = size * scale
                x = torch.exp(x**2 / (-2 * sigma**2))
            else:
                x = bump_1d(size, device)
            weights = weights.unsqueeze(-1) * x[(None,) * axis] if axis > 0 else x
    floor = max(torch.min(weights).item(), 1e-3)
    return torch.clamp_(weights, min=floor).to(dtype)


def bump_1d(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``exp(1 - 1 / (1 - t^2))`` at the ``size`` voxel centres, ``t = (i - (size - 1) / 2) / (size / 2)``.

    A smooth bump with compact support: 1 at the centre, tending to 0 (with all derivatives) at
    the window's edges, which lie half a voxel outside the first and last voxel centre.

    Args:
        size: window length, voxels (>= 1).
        device: device of the result (default cpu).

    Returns:
        float32 tensor of shape ``(size,)``, values in (0, 1].
    """
    t = torch.arange(size, dtype=torch.float64, device=device).sub_((size - 1) / 2.0).div_(size / 2.0)
    return torch.exp(1.0 - 1.0 / (1.0 - t * t)).to(torch.float32)


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """First voxel of each window along one axis (MONAI's placement).

    Windows step by ``int(patch * (1 - overlap))`` (at least 1) until one reaches the end; the last
    one is shifted back to end exactly at ``size``. A patch as large as or larger than the axis
    gives one window at 0: the caller pads the axis to ``patch`` (see :func:`pad_widths`).

    Args:
        size: axis length, voxels (>= 1).
        patch: window length, voxels (>= 1).
        overlap: fraction of a window shared with the next, in [0, 1).

    Returns:
        Sorted starts; windows ``[s, s + patch)`` cover ``[0, max(size, patch))``.
    """
    (size,) = _check_sizes((size,), "size")
    (patch,) = _check_sizes((patch,), "patch")
    _check_overlap(overlap)
    if patch >= size:
        return [0]
    interval = max(int(patch * (1 - overlap)), 1)
    starts = []
    for i in itertools.count():
        starts.append(min(i * interval, size - patch))
        if i * interval + patch >= size:
            return starts


def pad_widths(shape: Sequence[int], patch_size: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) zero padding per axis that grows each axis to at least the patch (MONAI's split)."""
    out = []
    for size, patch in zip(shape, patch_size):
        diff = max(patch - size, 0)
        out.append((diff // 2, diff - diff // 2))
    return out


def window_slices(
    shape: Sequence[int], patch_size: Sequence[int], overlap: float | Sequence[float]
) -> list[tuple[slice, ...]]:
    """Every window of a (padded) array of ``shape``, C order (last axis fastest), as slice tuples.

    Args:
        shape: spatial shape, each axis >= its patch (pad first, see :func:`pad_widths`).
        patch_size: window shape, voxels.
        overlap: fraction in [0, 1), one value or one per axis.
    """
    overlaps = _per_axis(overlap, len(patch_size), "overlap")
    starts = [window_starts(s, p, o) for s, p, o in zip(shape, patch_size, overlaps)]
    return [tuple(slice(s, s + p) for s, p in zip(corner, patch_size)) for corner in itertools.product(*starts)]


@torch.inference_mode()
def sliding_window(
    image: torch.Tensor,
    predictor: Callable[[torch.Tensor], torch.Tensor],
    patch_size: Sequence[int],
    overlap: float | Sequence[float] = 0.25,
    mode: BlendMode | str = BlendMode.GAUSSIAN,
    batch_size: int = 4,
    *,
    sigma_scale: float | Sequence[float] = 0.125,
    pad_value: float = 0.0,
    sw_device: torch.device | str | None = None,
) -> torch.Tensor:
    """Predict ``image`` window by window and blend the overlaps with an importance map.

    ``out = sum_w(pred_w * map) / sum_w(map)`` over the windows ``w`` covering a voxel, accumulated
    in float32 on ``image.device``. Axes shorter than the patch are zero padded (``pad_value``)
    and cropped back, so the output's spatial shape is the input's. Runs under
    ``torch.inference_mode``.

    Args:
        image: ``(C, *spatial)`` or ``(N, C, *spatial)`` tensor; ``len(spatial) == len(patch_size)``.
        predictor: maps ``(B, C, *patch_size)`` to ``(B, K, *patch_size)`` (e.g. a model in eval mode).
        patch_size: window shape, voxels (2 values for 2D, 3 for 3D).
        overlap: fraction of a window shared with its neighbour, in [0, 1), one or one per axis (default 0.25).
        mode: :class:`BlendMode` or its name (default gaussian).
        batch_size: windows per predictor call (default 4).
        sigma_scale: Gaussian sigma as a fraction of the patch (default 0.125, MONAI's).
        pad_value: value of the padding of axes shorter than the patch (default 0.0, MONAI's).
        sw_device: device the windows are sent to for ``predictor`` (default ``image.device``).

    Returns:
        float32 ``(K, *spatial)`` or ``(N, K, *spatial)``, matching the input's layout, on ``image.device``.
    """
    patch_size = _check_sizes(patch_size, "patch_size")
    spatial_dims = len(patch_size)
    if image.ndim not in (spatial_dims + 1, spatial_dims + 2):
        raise ValueError(
            f"image of shape {tuple(image.shape)} does not fit a {spatial_dims}D patch {patch_size}; "
            f"give (C, *spatial) or (N, C, *spatial) with {spatial_dims} spatial axes"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    unbatched = image.ndim == spatial_dims + 1
    x = image[None] if unbatched else image
    shape = _check_sizes(x.shape[2:], "image spatial shape")
    pads = pad_widths(shape, patch_size)
    if any(sum(p) for p in pads):
        x = F.pad(x, [w for pair in reversed(pads) for w in pair], mode="constant", value=pad_value)
    padded = tuple(x.shape[2:])
    windows = window_slices(padded, patch_size, overlap)
    device = image.device
    sw_device = torch.device(sw_device) if sw_device is not None else device
    weight = importance_map(patch_size, mode, sigma_scale, dtype=torch.float32, device=device)

    weight_sum = torch.zeros(padded, dtype=torch.float32, device=device)
    for window in windows:
        weight_sum[window] += weight

    jobs = [(n, window) for n in range(x.shape[0]) for window in windows]
    out: torch.Tensor | None = None
    for first in range(0, len(jobs), batch_size):
        chunk = jobs[first : first + batch_size]
        batch = torch.stack([x[(n, slice(None), *window)] for n, window in chunk]).to(sw_device)
        pred = predictor(batch)
        fits = isinstance(pred, torch.Tensor) and pred.ndim == batch.ndim and pred.shape[0] == len(chunk)
        if not fits or tuple(pred.shape[2:]) != patch_size:
            got = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
            raise ValueError(f"predictor must map {tuple(batch.shape)} to (B, K, *{patch_size}); it returned {got}")
        pred = pred.to(device=device, dtype=torch.float32)
        if out is None:
            out = torch.zeros((x.shape[0], pred.shape[1], *padded), dtype=torch.float32, device=device)
        for p, (n, window) in zip(pred, chunk):
            out[(n, slice(None), *window)].addcmul_(p, weight)
    assert out is not None
    out /= weight_sum
    crop = tuple(slice(before, before + size) for (before, _), size in zip(pads, shape))
    out = out[(slice(None), slice(None), *crop)]
    return out[0] if unbatched else out


def _check_sizes(values: Sequence[int], name: str) -> tuple[int, ...]:
    sizes = tuple(int(v) for v in values)
    if not sizes or any(s < 1 for s in sizes) or any(s != v for s, v in zip(sizes, values)):
        raise ValueError(f"{name} must be positive whole numbers, got {tuple(values)}")
    return sizes


def _check_overlap(overlap: float) -> None:
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")


def _per_axis(value: float | Sequence[float], ndim: int, name: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in value) if isinstance(value, Sequence) else (float(value),) * ndim
    if len(values) != ndim:
        raise ValueError(f"{name} needs 1 or {ndim} values, got {value}")
    return values
