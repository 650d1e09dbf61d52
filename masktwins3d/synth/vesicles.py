"""Vesicles (small membrane spheres in clusters, as at synapses) and dense bodies (solid dark
organelles that a network must not take for mitochondria), clear of membranes and mitochondria."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .fields import box_coords, clip_box
from .mito import FAR
from .style import DomainStyle


def place_vesicles(
    style: DomainStyle,
    shape: Sequence[int],
    membrane_dist: np.ndarray,
    mito_sd: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Signed distance to the nearest vesicle membrane, nm (negative in the lumen, FAR elsewhere).

    ``style.vesicle_density`` vesicles per cubic micrometre are drawn in clusters of about
    ``style.vesicle_cluster`` (Gaussian spread of 4 radii + 60 nm around a cluster centre);
    those touching a cell membrane or a mitochondrion are dropped.

    Args:
        style: domain style (vesicle radius, density, cluster size; nm).
        shape: volume shape (Z, Y, X), voxels.
        membrane_dist: distance to the nearest cell membrane, nm.
        mito_sd: signed distance to the nearest mitochondrion, nm.
        rng: random generator.
    """
    shape = tuple(int(n) for n in shape)
    vs = np.asarray(style.voxel_size, dtype=np.float64)
    extent = np.asarray(shape) * vs
    sd = np.full(shape, FAR, dtype=np.float32)
    n_total = rng.poisson(style.vesicle_density * float(np.prod(extent)) * 1e-9)
    if n_total == 0:
        return sd
    n_clusters = max(1, int(round(n_total / max(style.vesicle_cluster, 1.0))))
    centres = rng.uniform(0, 1, (n_clusters, 3)) * extent
    spread = 4 * style.vesicle_radius + 60.0
    pos = centres[rng.integers(n_clusters, size=n_total)] + rng.normal(0, spread, (n_total, 3))
    radius = np.maximum(rng.normal(style.vesicle_radius, 0.2 * style.vesicle_radius, n_total), 0.4 * style.vesicle_radius)
    vox = np.round(pos / vs).astype(int)
    ok = np.all((vox >= 0) & (vox < np.asarray(shape)), axis=1)
    pos, radius, vox = pos[ok], radius[ok], vox[ok]
    iv = tuple(vox.T)
    ok = (membrane_dist[iv] > radius + 2 * style.membrane_width) & (mito_sd[iv] > radius + 20.0)
    return sphere_sd(shape, vs, pos[ok], radius[ok], 3.0 * style.membrane_width)


def place_dense_bodies(
    style: DomainStyle,
    shape: Sequence[int],
    membrane_dist: np.ndarray,
    mito_sd: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Signed distance to the nearest dense body (solid dark sphere), nm; FAR where there is none.

    ``style.dense_body_density`` bodies per cubic micrometre, radius ``style.dense_body_radius``
    (sd 25 %), kept only where they fit in a cell and miss the mitochondria.

    Args:
        style: domain style.
        shape: volume shape (Z, Y, X), voxels.
        membrane_dist: distance to the nearest cell membrane, nm.
        mito_sd: signed distance to the nearest mitochondrion, nm.
        rng: random generator.
    """
    shape = tuple(int(n) for n in shape)
    vs = np.asarray(style.voxel_size, dtype=np.float64)
    extent = np.asarray(shape) * vs
    n = rng.poisson(style.dense_body_density * float(np.prod(extent)) * 1e-9)
    pos = rng.uniform(0, 1, (n, 3)) * extent
    radius = np.maximum(rng.normal(style.dense_body_radius, 0.25 * style.dense_body_radius, n), 0.3 * style.dense_body_radius)
    iv = tuple(np.minimum(np.round(pos / vs).astype(int), np.asarray(shape) - 1).T)
    ok = (membrane_dist[iv] > radius + 2 * style.membrane_width) & (mito_sd[iv] > radius + 40.0)
    return sphere_sd(shape, vs, pos[ok], radius[ok], 3.0 * style.membrane_width)


def sphere_sd(
    shape: Sequence[int],
    voxel_size: Sequence[float],
    centres: np.ndarray,
    radii: np.ndarray,
    pad: float,
) -> np.ndarray:
    """Signed distance (nm) to the nearest of a set of spheres, computed within ``pad`` nm of each
    surface and FAR elsewhere.

    Args:
        shape: volume shape (Z, Y, X), voxels.
        voxel_size: voxel size, nm.
        centres: (N, 3) sphere centres, nm.
        radii: (N,) radii, nm.
        pad: margin around each sphere where the distance is evaluated, nm.
    """
    vs = np.asarray(voxel_size, dtype=np.float64)
    sd = np.full(tuple(shape), FAR, dtype=np.float32)
    for p, r in zip(centres, radii):
        box = clip_box(p / vs, (r + pad) / vs, shape)
        if box is None:
            continue
        lo, hi = box
        z, y, x = box_coords(lo, hi, vs)
        local = np.sqrt((z - np.float32(p[0])) ** 2 + (y - np.float32(p[1])) ** 2 + (x - np.float32(p[2])) ** 2) - np.float32(r)
        sl = tuple(slice(a, b) for a, b in zip(lo, hi))
        np.minimum(sd[sl], local, out=sd[sl])
    return sd
