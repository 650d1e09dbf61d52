"""Label-free check that the stated voxel sizes agree with what the images show.

Source and target voxel sizes decide how target sections are resampled, and a wrong one (a
microscope's native pixel instead of the crops' real one) costs accuracy without a word. EM of
neural tissue shows structures of similar physical size in every volume (membranes, vesicles,
organelles), so the physical width of the image's autocorrelation should be similar too;
measured with each volume's stated voxel size, a ratio far from 1 says that one of them is off.

The width is a fixed point that does not depend on the voxel size: each section is smoothed by
a Gaussian of ``1 / SMOOTHING`` of the width being measured (this removes pixel noise without
imposing a scale), the half-maximum radius of its radially averaged autocorrelation is taken,
and the two are iterated until they agree. Zooming an image by ``k`` multiplies the result in
pixels by exactly ``k`` (while the smoothing stays above one pixel), so an error in the stated
voxel size shows up one to one in the ratio.

An object-size variant compares the median equivalent diameter of the source's labelled objects
with that of a model's foreground on the target (:func:`check_object_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import UserError
from .normalize import check_finite_section, section_indices, to_unit_range

TOLERANCE = 0.3
"""Relative disagreement above which :func:`check_scale` warns: ratios outside [1/1.3, 1.3].
On the synthetic generator, every source/target pair rendered with correct voxel sizes between
6 and 15 nm measures 0.93 to 1.28, the default pair (8 nm vs 10 nm) 1.06; a voxel size stated
1.5x wrong moves the default pair to 1.59 or 0.71."""

SMOOTHING = 3.0
"""Measured width / sigma of the Gaussian that smooths the sections while measuring it."""

LEVEL = 0.5
"""Autocorrelation level whose radius is the width (half maximum)."""


def _power(section: np.ndarray) -> np.ndarray:
    """Power spectrum of the mean-free section, zero-padded to twice its size (no wrap-around)."""
    x = section.astype(np.float64) - section.mean()
    ny, nx = x.shape
    return np.abs(np.fft.rfft2(x, s=(2 * ny, 2 * nx))) ** 2


def radial_autocorrelation(power: np.ndarray, shape: Sequence[int], pixel: Sequence[float], sigma_nm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged autocorrelation, normalised to 1 at lag 0, of sections of ``shape``
    whose zero-padded power spectrum is ``power`` (:func:`_power`, or a mean of them).

    Args:
        power: ``rfft2`` power spectrum of shape ``(2 * Y, X + 1)``.
        shape: (Y, X) of the sections, pixels.
        pixel: in-plane voxel size (Y, X), nm.
        sigma_nm: Gaussian smoothing applied first, nm (0: none).

    Returns:
        ``(radii, acf)``: bin centres in nm (spacing: the smaller pixel) up to half the section's
        smaller side, and the autocorrelation there, each lag weighted by how many pixel pairs it
        has (the unbiased estimate).
    """
    ny, nx = (int(n) for n in shape)
    vy, vx = (float(v) for v in pixel)
    fy = np.fft.fftfreq(2 * ny, d=vy)[:, None]
    fx = np.fft.rfftfreq(2 * nx, d=vx)[None, :]
    p = power * np.exp(-4.0 * np.pi**2 * sigma_nm**2 * (fy**2 + fx**2)) if sigma_nm > 0 else power
    ac = np.fft.irfft2(p, s=(2 * ny, 2 * nx))
    lag_y = np.fft.fftfreq(2 * ny, d=1.0 / (2 * ny))[:, None]  # signed integer lags
    lag_x = np.fft.fftfreq(2 * nx, d=1.0 / (2 * nx))[None, :]
    pairs = (ny - np.abs(lag_y)) * (nx - np.abs(lag_x))
    r = np.hypot(lag_y * vy, lag_x * vx)
    step = min(vy, vx)
    r_max = 0.5 * min(ny * vy, nx * vx)
    keep = (r <= r_max) & (pairs > 0)
    bins = np.round(r[keep] / step).astype(np.int64)
    sums = np.bincount(bins, ac[keep] / pairs[keep])  # unbiased lag estimate, averaged over a ring
    counts = np.bincount(bins)
    acf = sums[counts > 0] / counts[counts > 0]
    radii = np.arange(sums.size, dtype=np.float64)[counts > 0] * step
    if not acf[0] > 0:
        return radii, np.full_like(acf, np.nan)
    return radii, acf / acf[0]


def level_radius(radii: np.ndarray, acf: np.ndarray, level: float = LEVEL) -> float:
    """Radius (nm) where ``acf`` first falls to ``level``, interpolated linearly between bins
    (nan when it never does or ``acf`` is undefined)."""
    below = np.flatnonzero(acf < level)
    if below.size == 0 or below[0] == 0 or not np.isfinite(acf[0]):
        return float("nan")
    i = int(below[0])
    a, b = acf[i - 1], acf[i]
    return float(radii[i - 1] + (radii[i] - radii[i - 1]) * (a - level) / (a - b))


def _sections(volume, max_sections: int, max_side: int) -> list[np.ndarray]:
    """Up to ``max_sections`` evenly spaced z-sections, each cut to its central ``max_side`` square."""
    out = []
    for z in section_indices(volume.shape[0], max_sections):
        ny, nx = volume.shape[1:]
        y0, x0 = max(0, (ny - max_side) // 2), max(0, (nx - max_side) // 2)
        sec = to_unit_range(np.asarray(volume[int(z), y0 : y0 + max_side, x0 : x0 + max_side]))
        check_finite_section(sec, z, volume)
        out.append(sec)
    return out


def correlation_length(
    volume,
    voxel_size: Sequence[float],
    max_sections: int = 8,
    max_side: int = 1024,
    smoothing: float = SMOOTHING,
    level: float = LEVEL,
    iterations: int = 30,
) -> float:
    """In-plane correlation length of a ZYX image in nm: the half-maximum radius of the radially
    averaged autocorrelation of its sections, smoothed by ``1 / smoothing`` of that radius.

    Args:
        volume: ZYX :class:`~masktwins3d.io.Volume` or array (2D arrays count as one section).
        voxel_size: nm, ZYX (only Y and X are used) as stated for this volume.
        max_sections: evenly spaced z-sections read at most (default 8).
        max_side: central square of each section read at most, pixels (default 1024).
        smoothing: width / Gaussian sigma; the sigma is at least one pixel (default 3).
        level: autocorrelation level that defines the width (default 0.5).
        iterations: fixed-point iterations at most (it stops when the width changes < 0.5 %).

    Returns:
        the length in nm, or nan when the image has no structure to measure (constant, or an
        autocorrelation that never falls to ``level`` within half a section).
    """
    if np.ndim(volume) == 2:
        volume = np.asarray(volume)[None]
    if len(voxel_size) != 3 or min(float(v) for v in voxel_size) <= 0:
        raise UserError(f"voxel_size={list(voxel_size)} must be three positive nm values (Z, Y, X)")
    pixel = (float(voxel_size[1]), float(voxel_size[2]))
    sections = _sections(volume, max_sections, max_side)
    shape = sections[0].shape
    power = np.mean([_power(s) for s in sections], axis=0)
    floor = max(pixel)  # the smoothing stays at or above one pixel: it must remove pixel noise
    width = 4.0 * floor
    for _ in range(iterations):
        new = level_radius(*radial_autocorrelation(power, shape, pixel, max(width / smoothing, floor)), level=level)
        if not np.isfinite(new):
            return float("nan")
        done = abs(new - width) < 0.005 * width
        width = new
        if done:
            break
    return float(width)


@dataclass(frozen=True)
class ScaleCheck:
    """Outcome of a scale check.

    Args:
        source_nm / target_nm: the measured length of each volume, nm, with its stated voxel size.
        ratio: ``source_nm / target_nm`` (about 1 when the stated voxel sizes are right; nan
            when a length could not be measured).
        warning: one line to show the user, or None when the ratio lies within the tolerance.
    """

    source_nm: float
    target_nm: float
    ratio: float
    warning: str | None

    def as_dict(self) -> dict:
        """JSON-ready form (nan as None), for meta.json."""
        clean = lambda v: float(v) if np.isfinite(v) else None  # noqa: E731
        return {"source_nm": clean(self.source_nm), "target_nm": clean(self.target_nm), "ratio": clean(self.ratio), "warning": self.warning}


def _judge(what: str, source_nm: float, target_nm: float, source_voxel, target_voxel, tolerance: float) -> ScaleCheck:
    if tolerance <= 0:
        raise UserError(f"scale check tolerance={tolerance} must be > 0, e.g. {TOLERANCE}")
    if not (np.isfinite(source_nm) and np.isfinite(target_nm)) or source_nm <= 0 or target_nm <= 0:
        return ScaleCheck(source_nm, target_nm, float("nan"), f"the {what} of the source or the target could not be measured; the stated voxel sizes are not checked")
    ratio = source_nm / target_nm
    if max(ratio, 1.0 / ratio) <= 1.0 + tolerance:
        return ScaleCheck(source_nm, target_nm, ratio, None)
    sv, tv = float(source_voxel[2]), float(target_voxel[2])
    warning = (
        f"the {what} is {source_nm:.0f} nm in the source (stated pixel {sv:g} nm) but {target_nm:.0f} nm in the target "
        f"(stated pixel {tv:g} nm), {ratio:.2f}x; if the tissues are alike one stated voxel size is off "
        f"(the target's would be about {tv * ratio:.3g} nm, or the source's {sv / ratio:.3g} nm): check data.source.voxel_size "
        f"and data.target.voxel_size (the file's voxel size is used when they are not set)"
    )
    return ScaleCheck(source_nm, target_nm, ratio, warning)


def check_scale(source_volume, target_volume, source_voxel: Sequence[float], target_voxel: Sequence[float],
                tolerance: float = TOLERANCE, **kwargs) -> ScaleCheck:
    """Compare the :func:`correlation_length` of two volumes measured with their stated voxel sizes.

    Args:
        source_volume / target_volume: ZYX Volumes or arrays.
        source_voxel / target_voxel: their stated voxel sizes, nm, ZYX.
        tolerance: warn when the ratio lies outside ``[1 / (1 + tolerance), 1 + tolerance]``
            (default :data:`TOLERANCE`).
        kwargs: passed on to :func:`correlation_length` (``max_sections``, ``max_side``, ...).
    """
    s = correlation_length(source_volume, source_voxel, **kwargs)
    t = correlation_length(target_volume, target_voxel, **kwargs)
    return _judge("image correlation length", s, t, source_voxel, target_voxel, tolerance)


def equivalent_diameters(mask, voxel_size: Sequence[float], min_pixels: int = 4, max_sections: int = 16) -> np.ndarray:
    """Equivalent diameters (nm) of the 2D objects of a ZYX mask, section by section: ``2 sqrt(area / pi)``
    of each in-plane connected component (8-connected) that does not touch the section's border.

    Args:
        mask: ZYX array or Volume, nonzero is foreground (labels, or a thresholded prediction).
        voxel_size: nm, ZYX.
        min_pixels: smaller components are ignored (specks of a prediction), default 4.
        max_sections: evenly spaced z-sections read at most (default 16).
    """
    import cc3d

    area = float(voxel_size[1]) * float(voxel_size[2])
    out = []
    for z in section_indices(mask.shape[0], max_sections):
        sec = np.asarray(mask[int(z)]) != 0
        lab = cc3d.connected_components(sec.astype(np.uint8), connectivity=8)
        counts = np.bincount(lab.ravel())
        border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
        counts[border] = 0
        counts[0] = 0
        sizes = counts[counts >= max(1, min_pixels)]
        out.append(2.0 * np.sqrt(sizes * area / np.pi))
    return np.concatenate(out) if out else np.zeros(0)


def check_object_scale(source_labels, target_prediction, source_voxel: Sequence[float], target_voxel: Sequence[float],
                       tolerance: float = TOLERANCE, **kwargs) -> ScaleCheck:
    """Compare the median equivalent diameter (nm) of the source's labelled objects with that of
    a model's foreground on the target (e.g. ``probability >= 0.5``), each with its stated voxel size.

    Args:
        source_labels / target_prediction: ZYX masks (nonzero: foreground).
        source_voxel / target_voxel: stated voxel sizes, nm, ZYX.
        tolerance: as in :func:`check_scale`.
        kwargs: passed on to :func:`equivalent_diameters`.
    """
    s = equivalent_diameters(source_labels, source_voxel, **kwargs)
    t = equivalent_diameters(target_prediction, target_voxel, **kwargs)
    s_med = float(np.median(s)) if s.size else float("nan")
    t_med = float(np.median(t)) if t.size else float("nan")
    return _judge("median object diameter", s_med, t_med, source_voxel, target_voxel, tolerance)
