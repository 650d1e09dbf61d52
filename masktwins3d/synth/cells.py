"""Neurites as warped 3D Voronoi cells elongated along z: the cell-membrane distance field."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.spatial import cKDTree

from .fields import coarse_smooth_noise, upsample


def jittered_seeds(
    extent_nm: Sequence[float],
    spacing_nm: Sequence[float],
    rng: np.random.Generator,
    jitter: float = 0.4,
) -> np.ndarray:
    """Cell centres on a jittered grid covering ``extent_nm`` plus one spacing of margin.

    Args:
        extent_nm: size of the volume, nm (Z, Y, X).
        spacing_nm: grid spacing per axis, nm.
        rng: random generator.
        jitter: uniform jitter as a fraction of the spacing (0.4 gives varied, non-degenerate cells).

    Returns:
        (N, 3) float array of seed positions in nm.
    """
    axes = [np.arange(-s, e + 2 * s, s) for e, s in zip(extent_nm, spacing_nm)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    grid = grid + rng.uniform(-jitter, jitter, grid.shape) * np.asarray(spacing_nm)
    return grid


def cell_membranes(
    shape: Sequence[int],
    voxel_size: Sequence[float],
    cell_size: float,
    elongation: float,
    warp: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the nearest cell membrane and the cell index of every voxel.

    The field is computed on a grid of half the in-plane resolution (the distance to a Voronoi
    face is piecewise linear, so linear up-sampling is accurate) and up-sampled.

    Args:
        shape: volume shape (Z, Y, X), voxels.
        voxel_size: voxel size, nm (Z, Y, X).
        cell_size: mean in-plane spacing of neurite centres, nm.
        elongation: neurites are this many times longer along z than across.
        warp: amplitude of the smooth coordinate warp, fraction of ``cell_size``.
        rng: random generator.

    Returns:
        ``(dist, cell)``: float32 distance to the nearest membrane in nm (in-plane metric;
        z is compressed by ``elongation``), int32 cell index; both of ``shape``.
    """
    vz, vy, vx = (float(v) for v in voxel_size)
    step = (1, 2 if cell_size / vy > 40 else 1, 2 if cell_size / vx > 40 else 1)
    cshape = [int(np.ceil(n / s)) + 1 for n, s in zip(shape, step)]
    cvox = [v * s for v, s in zip(voxel_size, step)]
    extent = [n * v for n, v in zip(shape, voxel_size)]
    seeds = jittered_seeds(extent, (cell_size * elongation, cell_size, cell_size), rng)

    pts = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) * v for n, v in zip(cshape, cvox)], indexing="ij"), -1)
    amp = warp * cell_size
    for axis in range(3):
        pts[..., axis] += amp * coarse_smooth_noise(cshape, cvox, cell_size * 0.6, rng)
    scale = np.array([1.0 / elongation, 1.0, 1.0], dtype=np.float32)
    pts = (pts * scale).reshape(-1, 3)
    tree = cKDTree(seeds * scale)
    d, idx = tree.query(pts, k=2, workers=-1)
    s1, s2 = tree.data[idx[:, 0]], tree.data[idx[:, 1]]
    sep = np.linalg.norm(s2 - s1, axis=1)
    dist = ((d[:, 1] ** 2 - d[:, 0] ** 2) / (2.0 * np.maximum(sep, 1e-6))).astype(np.float32)
    dist = upsample(dist.reshape(cshape), shape, step, order=1)
    cell = upsample(idx[:, 0].astype(np.int32).reshape(cshape), shape, step, order=0)
    return dist, cell
