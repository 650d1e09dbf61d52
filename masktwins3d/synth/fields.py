"""Smooth random fields and physical-coordinate helpers shared by the scene builders."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage


def smooth_noise(
    shape: Sequence[int],
    sigma_vox: Sequence[float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to zero mean and unit standard deviation.

    Args:
        shape: output shape (any number of dimensions).
        sigma_vox: correlation length per axis, voxels (0 = uncorrelated along that axis).
        rng: the field's random generator.
    """
    white = rng.standard_normal(tuple(shape), dtype=np.float32)
    field = ndimage.gaussian_filter(white, sigma=tuple(float(s) for s in sigma_vox), mode="wrap")
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 0 else field


def coarse_smooth_noise(
    shape: Sequence[int],
    voxel_size: Sequence[float],
    scale_nm: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """A unit-variance random field with correlation length ``scale_nm``, built on a grid that
    samples the scale by about four points and linearly up-sampled to ``shape`` (cheap for long
    correlation lengths).

    Args:
        shape: output shape (Z, Y, X), voxels.
        voxel_size: voxel size in nm (Z, Y, X).
        scale_nm: correlation length, nm.
        rng: the field's random generator.
    """
    step = [max(1, int(scale_nm / 4.0 // v)) for v in voxel_size]
    cshape = [int(np.ceil(n / s)) + 2 for n, s in zip(shape, step)]
    sigma = [scale_nm / (v * s) for v, s in zip(voxel_size, step)]
    coarse = smooth_noise(cshape, sigma, rng)
    return upsample(coarse, shape, step)


def upsample(coarse: np.ndarray, shape: Sequence[int], step: Sequence[int], order: int = 1) -> np.ndarray:
    """Sample a field defined on a grid with spacing ``step`` (voxels) at every voxel of ``shape``.

    Args:
        coarse: the coarse field; coarse[i] lies at voxel i * step.
        shape: output shape, voxels.
        step: coarse grid spacing per axis, voxels.
        order: spline order (0 nearest, 1 linear).
    """
    if all(s == 1 for s in step):
        return np.ascontiguousarray(coarse[tuple(slice(0, n) for n in shape)])
    axes = [np.arange(n, dtype=np.float32) / s for n, s in zip(shape, step)]
    grid = np.meshgrid(*axes, indexing="ij", sparse=True)
    coords = np.broadcast_arrays(*grid)
    return ndimage.map_coordinates(coarse, coords, order=order, mode="nearest", prefilter=False).astype(
        coarse.dtype, copy=False
    )


def box_coords(lo: Sequence[int], hi: Sequence[int], voxel_size: Sequence[float]) -> list[np.ndarray]:
    """Physical coordinates (nm) of the voxel centres in the box [lo, hi), as three broadcastable
    arrays (sparse ZYX grid)."""
    return np.meshgrid(
        *[np.arange(a, b, dtype=np.float32) * np.float32(v) for a, b, v in zip(lo, hi, voxel_size)],
        indexing="ij",
        sparse=True,
    )


def clip_box(center_vox: np.ndarray, half_vox: np.ndarray, shape: Sequence[int]):
    """Integer box [lo, hi) around ``center_vox`` with half-size ``half_vox``, clipped to ``shape``;
    None if it lies outside."""
    lo = np.maximum(np.floor(center_vox - half_vox).astype(int), 0)
    hi = np.minimum(np.ceil(center_vox + half_vox).astype(int) + 1, np.asarray(shape))
    if np.any(hi <= lo):
        return None
    return lo, hi
