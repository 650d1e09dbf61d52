"""Pre/post synapse points from a 2-channel probability map, by the AdaSyn protocol.

Per channel: quantise to uint8 as ``(p * 255).astype(uint8)`` (truncation, as AdaSyn), keep
voxels with ``q > int(255 * delta)`` (delta_pre 0.75, delta_post 0.65), 26-connected components
(cc3d), drop pre components smaller than 2 voxels (posts are all kept), take each component's
centroid truncated to int, then link every post to the nearest pre (Euclidean, no cap).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import UserError
from ..io.points import SynapsePoints

THRESHOLDS = (0.75, 0.65)
"""AdaSyn's delta_pre and delta_post."""


def quantise(prob: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] to uint8 by truncation, ``(p * 255).astype(uint8)``; uint8 input is kept."""
    prob = np.asarray(prob)
    if prob.dtype == np.uint8:
        return prob
    return (np.clip(prob, 0.0, 1.0) * 255).astype(np.uint8)


def component_centroids(mask: np.ndarray, min_voxels: int = 1) -> np.ndarray:
    """``(K, 3)`` int64 centroids (truncated) of the 26-connected components with ``>= min_voxels`` voxels."""
    import cc3d

    labels = cc3d.connected_components(np.ascontiguousarray(mask, dtype=np.uint8), connectivity=26)
    stats = cc3d.statistics(labels)
    counts, centroids = np.asarray(stats["voxel_counts"])[1:], np.asarray(stats["centroids"])[1:]
    keep = counts >= min_voxels
    return centroids[keep].astype(np.int64).reshape(-1, 3)


def link_to_nearest(pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    """Row of the nearest pre for every post (Euclidean; ties go to the lower row)."""
    from scipy.spatial import cKDTree

    if len(post) == 0:
        return np.zeros(0, np.int64)
    _, idx = cKDTree(np.asarray(pre, dtype=np.float64)).query(np.asarray(post, dtype=np.float64), k=1)
    return np.asarray(idx, dtype=np.int64)


def probabilities_to_points(
    prob: np.ndarray, thresholds: Sequence[float] = THRESHOLDS, min_pre_voxels: int = 2
) -> SynapsePoints:
    """Pre and post points of a ``(2, Z, Y, X)`` probability map (float in [0, 1] or uint8).

    Posts are linked to the nearest pre; when there is no pre at all the posts are dropped
    (a post cannot exist without its pre in the WASPSYN layout).

    Args:
        prob: channel 0 pre, channel 1 post.
        thresholds: (delta_pre, delta_post); a voxel is foreground when ``q > int(255 * delta)``.
        min_pre_voxels: pre components smaller than this are dropped (default 2).
    """
    prob = np.asarray(prob)
    if prob.ndim != 4 or prob.shape[0] != 2:
        raise UserError(f"probabilities of shape {prob.shape} need 2 channels (pre, post) over Z, Y, X; predict with a 2-channel synapse model")
    thresholds = tuple(float(t) for t in thresholds)
    if len(thresholds) != 2 or not all(0.0 <= t < 1.0 for t in thresholds):
        raise UserError(f"thresholds {thresholds} must be two values in [0, 1), e.g. 0.75,0.65")
    q = quantise(prob)
    pre = component_centroids(q[0] > int(255 * thresholds[0]), min_pre_voxels)
    post = component_centroids(q[1] > int(255 * thresholds[1]), 1)
    if len(pre) == 0:
        post = post[:0]
    links = link_to_nearest(pre, post)
    return SynapsePoints(pre.astype(np.float64), np.column_stack([links, post]).astype(np.float64).reshape(-1, 4))


def points_from_volume(spec, thresholds: Sequence[float] = THRESHOLDS, min_pre_voxels: int = 2) -> tuple[SynapsePoints, object]:
    """Open a ``(2, Z, Y, X)`` probability volume, check it, and return its points and the Volume.

    The whole map is read into memory (a 2-channel map of the size of the test volume);
    blockwise extraction for volumes larger than memory is the job of the blockwise engine.
    """
    from ..io import open_volume

    vol = open_volume(spec) if isinstance(spec, (str, bytes)) or hasattr(spec, "__fspath__") else spec
    shape = tuple(vol.shape)
    if len(shape) != 4 or shape[0] != 2:
        raise UserError(f"{getattr(vol, 'path', spec)} has shape {shape}; synapse post-processing needs a (2, Z, Y, X) probability map (pre, post)")
    return probabilities_to_points(np.asarray(vol[:]), thresholds, min_pre_voxels), vol
