"""Histogram matching: map the source's intensities onto the target's distribution.

A source model sees the target's contrast only through the z-score, which fixes the mean and
spread but not the shape of the histogram (a gamma, a partial inversion of the stain). Matching
the quantiles removes that too, without target labels: every unit-range source intensity is
sent to the target intensity of the same rank. The mapping is piecewise linear between matched
quantiles, so it is monotone (darker stays darker) and cheap to apply to every crop.

>>> matcher = histogram_matcher(source_raw, target_raw)   # statistics of both volumes, once
>>> crop = matcher(source_raw[z, y0:y1, x0:x1])           # mapped, then z-scored as the target
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .normalize import Normalizer, check_finite_section, section_indices, to_unit_range, volume_normalizer

LEVELS = 1025
"""Quantiles kept per volume by default: probabilities 0, 1/1024, ..., 1."""

MAX_VALUES = 1 << 18
"""Intensities sampled per section at most (evenly strided), which bounds memory on large sections."""


def volume_quantiles(volume, levels: int = LEVELS, max_sections: int = 16, max_values: int = MAX_VALUES) -> np.ndarray:
    """Quantiles of a volume's unit-range intensities (:func:`~.normalize.to_unit_range`).

    Args:
        volume: a ZYX :class:`~masktwins3d.io.Volume` or array.
        levels: number of quantiles, at probabilities ``linspace(0, 1, levels)`` (>= 2; default 1025).
        max_sections: evenly spaced z-sections read at most (the sections :func:`~.normalize.volume_normalizer` reads).
        max_values: intensities taken per section at most, every ``ceil(size / max_values)``-th
            pixel in raster order (default 2**18; all of them in smaller sections).

    Returns:
        float64 array of ``levels`` non-decreasing values in the unit range; the first is the
        sample's minimum, the last its maximum.
    """
    if levels < 2:
        raise UserError(f"histogram levels={levels} must be at least 2, e.g. {LEVELS}")
    samples = []
    for z in section_indices(volume.shape[0], max_sections):
        sec = to_unit_range(np.asarray(volume[int(z)])).ravel()
        check_finite_section(sec, z, volume)
        step = max(1, -(-sec.size // max_values))
        samples.append(sec[::step])
    return np.quantile(np.concatenate(samples).astype(np.float64), np.linspace(0.0, 1.0, levels))


def _knots(source_quantiles: np.ndarray, target_quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strictly increasing source knots and their target values: a run of equal source
    quantiles (an intensity that many voxels share, as in uint8 images) becomes one knot whose
    target value is the mean of the run's target quantiles (the target's mean over that rank range)."""
    sq = np.asarray(source_quantiles, dtype=np.float64)
    tq = np.asarray(target_quantiles, dtype=np.float64)
    if sq.ndim != 1 or sq.shape != tq.shape or sq.size < 2:
        raise UserError(f"quantiles of shapes {sq.shape} and {tq.shape} must be two 1D arrays of one length >= 2")
    if np.any(np.diff(sq) < 0) or np.any(np.diff(tq) < 0):
        raise UserError("source and target quantiles must be non-decreasing; compute them with volume_quantiles")
    xs, group = np.unique(sq, return_inverse=True)
    ys = np.bincount(group, weights=tq) / np.bincount(group)
    return xs, ys


def quantile_map(x: np.ndarray, source_quantiles: np.ndarray, target_quantiles: np.ndarray) -> np.ndarray:
    """Map unit-range intensities ``x`` from the source's distribution onto the target's.

    Piecewise-linear interpolation between the matched quantiles ``(source_quantiles[i],
    target_quantiles[i])``; ties in the source quantiles are merged (see :func:`_knots`).
    Intensities below the source's smallest quantile map to the target's smallest, above the
    largest to the target's largest. The map is non-decreasing, and the identity when both
    quantile arrays are equal.

    Args:
        x: unit-range intensities, any shape.
        source_quantiles / target_quantiles: non-decreasing quantiles at the same
            probabilities (:func:`volume_quantiles`).

    Returns:
        float32 array of ``x``'s shape.
    """
    xs, ys = _knots(source_quantiles, target_quantiles)
    if xs.size == 1:  # a constant source: every voxel has the same rank
        return np.full(np.shape(x), ys[0], dtype=np.float32)
    return np.interp(np.asarray(x, dtype=np.float64), xs, ys).astype(np.float32)


@dataclass(frozen=True)
class HistogramMatcher:
    """Quantile mapping onto the target's histogram, then the target's z-score: a picklable
    callable that samplers apply to source crops in place of a :class:`~.normalize.Normalizer`.

    Args:
        source_quantiles: unit-range quantiles of the source (:func:`volume_quantiles`).
        target_quantiles: the target's, at the same probabilities.
        normalizer: the target's :class:`~.normalize.Normalizer` (mapped source crops are
            z-scored exactly as target crops are).
    """

    source_quantiles: tuple[float, ...]
    target_quantiles: tuple[float, ...]
    normalizer: Normalizer

    def __call__(self, x: np.ndarray) -> np.ndarray:
        mapped = quantile_map(to_unit_range(x), np.asarray(self.source_quantiles), np.asarray(self.target_quantiles))
        return self.normalizer(mapped)


def histogram_matcher(source, target, levels: int = LEVELS, max_sections: int = 16) -> HistogramMatcher:
    """The :class:`HistogramMatcher` that takes ``source`` intensities onto ``target``'s.

    Args:
        source / target: ZYX :class:`~masktwins3d.io.Volume` or arrays.
        levels: quantiles per volume (default 1025).
        max_sections: z-sections read per volume at most (default 16).
    """
    sq = volume_quantiles(source, levels, max_sections)
    tq = volume_quantiles(target, levels, max_sections)
    return HistogramMatcher(
        source_quantiles=tuple(float(v) for v in sq),
        target_quantiles=tuple(float(v) for v in tq),
        normalizer=volume_normalizer(target, max_sections),
    )
