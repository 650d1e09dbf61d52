"""Pre/post synapse points from a 2-channel probability map, by the AdaSyn protocol.

Per channel (0 pre, 1 post), exactly as AdaSyn (``docs/EVALUATION.md``):

1. quantise to uint8 as ``(p * 255).astype(np.uint8)``: **truncation**, computed in the input's
   float precision (float32 stays float32); uint8 input is used as is;
2. foreground = ``q > int(255 * delta)``, delta_pre 0.75 (``q >= 192``), delta_post 0.65
   (``q >= 166``);
3. 26-connected components (cc3d); pre components with fewer than 2 voxels are dropped, all post
   components are kept;
4. each component becomes its centroid truncated to int (``centroid.astype(int)``);
5. every post is linked to the nearest pre (Euclidean, no distance cap; equal distances go to
   the lower pre row).

Points come out in raster order of each component's first voxel (cc3d's label order), in the
map's own voxel coordinates. A post needs a pre in the WASPSYN layout, so when the map has post
components but no pre component at all the posts are dropped and a :class:`DroppedPostsWarning`
gives their count.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from ..errors import UserError
from ..io.points import SynapsePoints
from .probabilities import check_probabilities

THRESHOLDS = (0.75, 0.65)
"""AdaSyn's delta_pre and delta_post."""

MIN_PRE_VOXELS = 2
"""AdaSyn drops pre components smaller than this."""



class DroppedPostsWarning(UserWarning):
    """Post components were found but no pre component, so the posts were dropped."""


def quantise(prob: np.ndarray, where: str = "probabilities") -> np.ndarray:
    """Probabilities to uint8 the AdaSyn way, ``(p * 255).astype(np.uint8)`` (truncation).

    Args:
        prob: float probabilities in [0, 1] (values within 1e-3 outside are clipped first, which
            leaves every in-range value unchanged), or uint8 codes 0..255, returned as they are.
        where: what to name in an error message.
    """
    prob = np.asarray(prob)
    if prob.dtype == np.uint8:
        return prob
    if check_probabilities(prob, where):
        prob = np.clip(prob, prob.dtype.type(0), prob.dtype.type(1))
    return (prob * 255).astype(np.uint8)


def component_centroids(mask: np.ndarray, min_voxels: int = 1) -> np.ndarray:
    """``(K, 3)`` int64 centroids, truncated, of the 26-connected components of a ZYX mask.

    Args:
        mask: boolean (or 0/1) ZYX array.
        min_voxels: components with fewer voxels are left out (default 1: all).
    """
    import cc3d

    labels = cc3d.connected_components(np.ascontiguousarray(mask, dtype=np.uint8), connectivity=26)
    stats = cc3d.statistics(labels)
    counts = np.asarray(stats["voxel_counts"])[1:]  # label 0 is the background
    centroids = np.asarray(stats["centroids"], dtype=np.float64).reshape(-1, 3)[1:]
    return centroids[counts >= min_voxels].astype(np.int64).reshape(-1, 3)


def link_to_nearest(pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    """``(M,)`` row of the nearest pre for every post (Euclidean; equal distances go to the lower row).

    Args:
        pre: ``(N, 3)`` pre points, N >= 1 when there are posts.
        post: ``(M, 3)`` post points.
    """
    from scipy.spatial import cKDTree

    pre, post = np.asarray(pre, np.float64).reshape(-1, 3), np.asarray(post, np.float64).reshape(-1, 3)
    if len(post) == 0:
        return np.zeros(0, np.int64)
    tree = cKDTree(pre)
    dist, _ = tree.query(post, k=1)
    # every pre within the nearest distance (plus round-off), then the exact squared distance
    # decides and argmin keeps the lowest row among equals
    candidates = tree.query_ball_point(post, r=dist * (1 + 1e-9) + 1e-9)
    out = np.empty(len(post), np.int64)
    for i, rows in enumerate(candidates):
        rows = np.sort(np.asarray(rows, np.int64))
        d2 = ((pre[rows] - post[i]) ** 2).sum(axis=1)
        out[i] = rows[int(np.argmin(d2))]
    return out


def check_options(thresholds: Sequence[float], min_pre_voxels: int) -> tuple[float, float]:
    """``(delta_pre, delta_post)`` as floats in [0, 1] and a valid ``min_pre_voxels``, or a :class:`UserError`."""
    try:
        values = tuple(float(t) for t in thresholds)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 2 or not all(0.0 <= t <= 1.0 for t in values):
        raise UserError(
            f"thresholds {thresholds!r} must be two values in [0, 1] (delta_pre, delta_post), e.g. 0.75,0.65"
        )
    if isinstance(min_pre_voxels, bool) or not isinstance(min_pre_voxels, (int, np.integer)) or min_pre_voxels < 1:
        raise UserError(f"min_pre_voxels {min_pre_voxels!r} must be a whole number >= 1 (AdaSyn: 2)")
    return values  # type: ignore[return-value]


def foreground(prob: np.ndarray, delta: float, where: str = "probabilities") -> np.ndarray:
    """AdaSyn foreground of one channel: ``quantise(prob) > int(255 * delta)`` (elementwise, so a
    block of a map gives the same voxels as the whole map).

    Args:
        prob: float probabilities in [0, 1] or uint8 codes (see :func:`quantise`), any shape.
        delta: threshold in [0, 1] (AdaSyn: 0.75 pre, 0.65 post).
        where: what to name in an error message.
    """
    return quantise(prob, where=where) > int(255 * delta)


def link_points(
    pre: np.ndarray, post: np.ndarray, delta_pre: float, min_pre_voxels: int, stacklevel: int = 2
) -> SynapsePoints:
    """Pre and post centroids -> :class:`SynapsePoints`, every post linked to its nearest pre.

    When there are posts but no pre at all, the posts are dropped with a :class:`DroppedPostsWarning`.

    Args:
        pre: ``(N, 3)`` pre centroids (already filtered by size), in output order.
        post: ``(M, 3)`` post centroids, in output order.
        delta_pre, min_pre_voxels: the pre settings, for the warning's text.
        stacklevel: passed to :func:`warnings.warn` (default 2: the caller).
    """
    pre, post = np.asarray(pre).reshape(-1, 3), np.asarray(post).reshape(-1, 3)
    if len(pre) == 0 and len(post):
        warnings.warn(
            DroppedPostsWarning(
                f"{len(post)} post components dropped: no pre component passed delta_pre {delta_pre:g} "
                f"and {min_pre_voxels} voxels, and a post needs a pre"
            ),
            stacklevel=stacklevel + 1,
        )
        post = post[:0]
    links = link_to_nearest(pre, post)
    return SynapsePoints(pre, np.column_stack([links, post]).reshape(-1, 4))


def _points(
    pre_q: np.ndarray, post_q: np.ndarray, thresholds: tuple[float, float], min_pre_voxels: int
) -> SynapsePoints:
    pre = component_centroids(pre_q > int(255 * thresholds[0]), min_pre_voxels)
    post = component_centroids(post_q > int(255 * thresholds[1]), 1)
    return link_points(pre, post, thresholds[0], min_pre_voxels, stacklevel=4)


def probabilities_to_points(
    prob: np.ndarray, thresholds: Sequence[float] = THRESHOLDS, min_pre_voxels: int = MIN_PRE_VOXELS
) -> SynapsePoints:
    """Pre and post points of a ``(2, Z, Y, X)`` probability map by the AdaSyn protocol (module doc).

    Args:
        prob: channel 0 pre, channel 1 post; float probabilities in [0, 1] or uint8 codes 0..255.
        thresholds: (delta_pre, delta_post), default (0.75, 0.65); a voxel is foreground when
            its uint8 code ``q > int(255 * delta)``.
        min_pre_voxels: pre components with fewer voxels are dropped (default 2); posts are all kept.

    Returns:
        :class:`SynapsePoints` in the map's voxel coordinates (whole numbers).
    """
    prob = np.asarray(prob)
    if prob.ndim != 4 or prob.shape[0] != 2:
        raise UserError(
            f"probabilities of shape {prob.shape} are not (2, Z, Y, X) with channels pre, post; "
            "predict with a 2-channel synapse model"
        )
    options = check_options(thresholds, min_pre_voxels)
    return _points(quantise(prob[0]), quantise(prob[1]), options, int(min_pre_voxels))


def points_from_volume(
    spec, thresholds: Sequence[float] = THRESHOLDS, min_pre_voxels: int = MIN_PRE_VOXELS
) -> tuple[SynapsePoints, object]:
    """Open a ``(2, Z, Y, X)`` probability volume, check it, and extract its points (AdaSyn).

    Reads the volume one channel at a time (each ``Z * Y * X`` values in memory); blockwise
    extraction for volumes larger than memory is :func:`.blockwise.blockwise_points` (same points).

    Args:
        spec: a volume spec (``prob.zarr``, ``x.zarr/prob``, ``f.h5:/key``) or an open Volume.
        thresholds: (delta_pre, delta_post), default (0.75, 0.65).
        min_pre_voxels: pre components with fewer voxels are dropped (default 2).

    Returns:
        ``(points, volume)``: points in the volume's voxel coordinates, and the Volume (for its
        ``voxel_size`` and ``offset``).
    """
    from ..io import open_volume

    vol = open_volume(spec) if isinstance(spec, (str, bytes)) or hasattr(spec, "__fspath__") else spec
    name = getattr(vol, "path", spec)
    shape = tuple(vol.shape)
    if len(shape) != 4 or shape[0] != 2:
        raise UserError(
            f"{name} has shape {shape}; synapse post-processing needs a (2, Z, Y, X) probability map "
            "(channels pre, post)"
        )
    options = check_options(thresholds, min_pre_voxels)
    pre_q = quantise(vol[0], where=f"{name} channel 0 (pre)")
    post_q = quantise(vol[1], where=f"{name} channel 1 (post)")
    return _points(pre_q, post_q, options, int(min_pre_voxels)), vol
