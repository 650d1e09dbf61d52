"""Synapse training targets: annotated points drawn as small cubes, one channel per class.

Each pre point becomes a ``cube``-edged cube of ones in channel 0, each post point one in
channel 1 (METHOD.md: 3x3x3). Cubes are drawn per crop, so a large volume never needs a dense
label array.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def cube_targets(
    points: Sequence[np.ndarray], origin: Sequence[int], shape: Sequence[int], cube: int = 3
) -> np.ndarray:
    """Rasterise point sets into a ``(len(points), *shape)`` uint8 0/1 array.

    A point ``p`` (voxels, float coordinates truncated to int) covers the voxels
    ``p - cube // 2 ... p - cube // 2 + cube - 1`` on every axis; the parts that fall outside the
    window ``[origin, origin + shape)`` are clipped, so points just outside the window still mark
    the voxels of their cube that are inside.

    Args:
        points: one ``(N_c, D)`` array of z, y, x (or y, x) coordinates per output channel.
        origin: first voxel of the window, one per axis.
        shape: window size in voxels.
        cube: cube edge in voxels (default 3).
    """
    shape = tuple(int(s) for s in shape)
    origin = np.asarray(origin, dtype=np.int64)
    out = np.zeros((len(points), *shape), np.uint8)
    lo_off = cube // 2
    for c, pts in enumerate(points):
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, len(shape))
        if not len(pts):
            continue
        lo = np.floor(pts).astype(np.int64) - lo_off - origin
        hi = lo + cube
        keep = np.all((hi > 0) & (lo < np.asarray(shape)), axis=1)
        for a, b in zip(np.maximum(lo[keep], 0), np.minimum(hi[keep], shape)):
            out[(c, *(slice(int(i), int(j)) for i, j in zip(a, b)))] = 1
    return out
