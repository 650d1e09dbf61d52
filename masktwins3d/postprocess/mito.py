"""Mitochondria from a foreground probability volume: a binary mask, then instances (whole volume).

Conventions (shared with :mod:`.blockwise`, which gives identical results block by block):

- **mask**: a voxel is foreground when ``p >= threshold`` (default 0.5), the same rule as the
  DA-ISC binarisation ``B = P >= 0.5`` of ``docs/EVALUATION.md``. The comparison is exact in
  float64 for any float input; uint8 input holds probabilities scaled 0..255 and is compared as
  ``q / 255 >= threshold``, as the evaluator reads it.
- **instances**: connected components of the mask (cc3d), 26-connected by default (6 faces,
  18 faces and edges, 26 faces, edges and corners). Labels are ``1..N`` in raster (C) order of
  each instance's first voxel, which is cc3d's own numbering; background is 0.
- **minimum size**: instances with fewer than ``min_size`` voxels (default 1: keep all) become
  background and the rest are renumbered ``1..K`` in the same order.
- label dtype: uint32, or uint64 for volumes of 2**32 voxels or more (see :func:`label_dtype`).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .probabilities import check_probabilities

THRESHOLD = 0.5
"""Default foreground threshold: ``p >= 0.5``."""

CONNECTIVITY = 26
"""Default connectivity of instances (faces, edges and corners)."""

CONNECTIVITIES = (6, 18, 26)


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float in (0, 1], or a one-line :class:`UserError`."""
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        t = float("nan")
    if not 0.0 < t <= 1.0:
        raise UserError(f"--threshold {threshold!r} must be a probability in (0, 1], e.g. 0.5")
    return t


def check_connectivity(connectivity: int) -> int:
    """``connectivity`` as 6, 18 or 26, or a one-line :class:`UserError`."""
    if isinstance(connectivity, bool) or connectivity not in CONNECTIVITIES:
        raise UserError(f"--connectivity {connectivity!r} must be 6 (faces), 18 (faces, edges) or 26 (faces, edges, corners)")
    return int(connectivity)


def check_min_size(min_size: int) -> int:
    """``min_size`` as a whole number >= 1, or a one-line :class:`UserError`."""
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise UserError(f"--min-size {min_size!r} must be a whole number of voxels >= 1 (1 keeps every instance)")
    return int(min_size)


def label_dtype(n_voxels: int) -> np.dtype:
    """uint32 when ``n_voxels`` < 2**32 (labels can never overflow it), else uint64."""
    return np.dtype(np.uint32 if int(n_voxels) < 2**32 else np.uint64)


def probability_to_mask(prob: np.ndarray, threshold: float = THRESHOLD, where: str = "probabilities") -> np.ndarray:
    """Boolean foreground mask ``p >= threshold`` of a probability array (any shape).

    Args:
        prob: float probabilities in [0, 1] (1e-3 of round-off outside is tolerated), or uint8
            probabilities scaled 0..255 (compared as ``q / 255``).
        threshold: foreground threshold in (0, 1] (default 0.5); the comparison is ``>=``.
        where: what to name in an error message.

    Raises:
        UserError: another dtype, NaN/inf, or values outside [0, 1] (logits).
    """
    prob = np.asarray(prob)
    t = check_threshold(threshold)
    if prob.dtype == np.uint8:
        return (np.arange(256) / 255.0 >= t)[prob]
    check_probabilities(prob, where)
    # the smallest value of prob's own dtype that is >= t in exact arithmetic, so that comparing in
    # that dtype gives the same answer as comparing in float64 (no float64 copy of the volume)
    ftype = prob.dtype.type
    cut = ftype(t)
    if float(cut) < t:
        cut = np.nextafter(cut, ftype(np.inf))
    return prob >= cut


def connected_components(
    mask: np.ndarray, connectivity: int = CONNECTIVITY, out_dtype: np.dtype | None = None, return_count: bool = False
) -> np.ndarray | tuple[np.ndarray, int]:
    """cc3d labels of a 3D mask, numbered in raster order of first voxels.

    Args:
        mask: boolean (or 0/1) ZYX array.
        connectivity: 6, 18 or 26 (default 26).
        out_dtype: uint16, uint32 or uint64 labels (default: the integer dtype cc3d picks).
        return_count: also return the number of components (``(labels, N)``; default False).
    """
    import cc3d

    mask = np.asarray(mask)
    # a contiguous boolean mask is read as its bytes (no uint8 copy of the volume)
    mask = mask.view(np.uint8) if mask.dtype == np.bool_ and mask.flags.c_contiguous else np.ascontiguousarray(mask, dtype=np.uint8)
    kwargs = {} if out_dtype is None else {"out_dtype": np.dtype(out_dtype)}
    return cc3d.connected_components(mask, connectivity=check_connectivity(connectivity), return_N=return_count, **kwargs)


def mask_to_instances(mask: np.ndarray, connectivity: int = CONNECTIVITY, min_size: int = 1) -> np.ndarray:
    """Instance labels of a ZYX mask: connected components, small ones removed, numbered 1..K.

    Args:
        mask: boolean (or 0/1) ZYX array.
        connectivity: 6, 18 or 26 (default 26: faces, edges and corners).
        min_size: instances with fewer voxels become background (default 1: keep all).

    Returns:
        :func:`label_dtype` array of the mask's shape; labels 1..K in raster order of each
        instance's first voxel, 0 background.
    """
    return counted_instances(mask, connectivity, min_size)[0]


def counted_instances(mask: np.ndarray, connectivity: int = CONNECTIVITY, min_size: int = 1) -> tuple[np.ndarray, int]:
    """``(labels, K)``: :func:`mask_to_instances` and its number of instances (no pass over the labels to count them)."""
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise UserError(f"mask of shape {mask.shape} is not ZYX; give a 3D volume")
    min_size = check_min_size(min_size)
    dtype = label_dtype(mask.size)
    labels, count = connected_components(mask, connectivity, dtype, return_count=True)
    if min_size > 1:
        counts = np.bincount(labels.ravel())
        keep = counts >= min_size
        keep[0] = False
        table = np.zeros(len(counts), dtype)
        count = int(keep.sum())
        table[keep] = np.arange(1, count + 1, dtype=dtype)
        return table[labels], count
    return labels.astype(dtype, copy=False), int(count)


def probability_to_instances(
    prob: np.ndarray, threshold: float = THRESHOLD, connectivity: int = CONNECTIVITY, min_size: int = 1
) -> np.ndarray:
    """Whole-volume reference: ``mask_to_instances(probability_to_mask(prob, threshold), ...)``.

    Args:
        prob: ZYX float probabilities in [0, 1] or uint8 scaled 0..255.
        threshold: foreground when ``p >= threshold`` (default 0.5).
        connectivity: 6, 18 or 26 (default 26).
        min_size: minimum instance size in voxels (default 1: keep all).
    """
    return mask_to_instances(probability_to_mask(prob, threshold), connectivity, min_size)
