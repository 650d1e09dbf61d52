"""Intensity normalisation shared by training and prediction (one place, so they always agree).

Raw EM intensities (uint8, uint16 or float) are mapped to [0, 1] by their dtype range, then
z-scored with the volume's own mean and standard deviation. After this the dataset mean is 0,
so multiplying by a 0/1 mask fills masked voxels with the mean, as the official MaskTwins code
does (``mask_fill: mean``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError


def to_unit_range(x: np.ndarray) -> np.ndarray:
    """Map raw intensities to float32 in [0, 1] by their dtype (uint8 /255, uint16 /65535, float as is)."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if x.dtype == np.uint16:
        return x.astype(np.float32) / 65535.0
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32, copy=False)
    raise UserError(f"image dtype {x.dtype} is not supported; convert the image to uint8, uint16 or float32")


@dataclass(frozen=True)
class Normalizer:
    """Z-score of unit-range intensities with fixed statistics.

    Args:
        mean: mean of the unit-range intensities of the volume.
        std: standard deviation of the unit-range intensities (> 0).
    """

    mean: float
    std: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (to_unit_range(x) - np.float32(self.mean)) / np.float32(self.std)

    def fill_value(self, mask_fill: str) -> float:
        """Normalised value that masked voxels take: 0 for ``mean``, black (raw 0) for ``zero``."""
        if mask_fill == "mean":
            return 0.0
        if mask_fill == "zero":
            return float(-self.mean / self.std)
        raise UserError(f"mask.fill={mask_fill!r} is unknown; use 'mean' or 'zero'")


def section_indices(nz: int, max_sections: int = 16) -> np.ndarray:
    """Up to ``max_sections`` evenly spaced z indices of a volume of ``nz`` sections (first and last included)."""
    return np.unique(np.linspace(0, nz - 1, min(nz, max_sections)).round().astype(int))


def check_finite_section(section: np.ndarray, z: int, volume) -> None:
    """Refuse a unit-range ``section`` (index ``z`` of ``volume``) that holds NaN or inf."""
    if not np.isfinite(section).all():
        raise UserError(
            f"image section z={int(z)} of {getattr(volume, 'path', 'the volume')} contains NaN or inf; "
            "clean or convert the image before training or prediction"
        )


def volume_normalizer(volume, max_sections: int = 16) -> Normalizer:
    """Estimate a :class:`Normalizer` from up to ``max_sections`` evenly spaced z-sections.

    Args:
        volume: a ZYX :class:`~masktwins3d.io.Volume` or array.
        max_sections: how many sections to read at most (bounded memory on large volumes).
    """
    zs = section_indices(volume.shape[0], max_sections)
    total = 0.0
    total_sq = 0.0
    count = 0
    for z in zs:
        sec = to_unit_range(np.asarray(volume[int(z)])).astype(np.float64)
        check_finite_section(sec, z, volume)
        total += sec.sum()
        total_sq += np.square(sec).sum()
        count += sec.size
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
    return Normalizer(mean=float(mean), std=max(std, 1e-6))
