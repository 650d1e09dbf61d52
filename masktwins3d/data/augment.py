"""Random augmentation of training crops: geometry (image and labels together), then intensity
and EM defects (image only).

Every transform is gated by its own probability (``if p > 0 and rng.random() < p``), so a
transform with probability 0 draws no random number; with only ``dihedral`` on, the crops and
the draws are exactly those of :func:`random_dihedral` (2D) and
:func:`random_flips_3d` (3D). All randomness comes from the numpy
Generator passed in: each MONAI transform is re-seeded from it before use.

3D crops are deformed and zoomed in-plane (Y, X; every z-section the same way), as EM volumes
are usually anisotropic; labels are resampled with nearest neighbours and stay binary.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from monai.transforms import Rand2DElasticd, RandAdjustContrast, RandScaleIntensity, RandShiftIntensity, RandZoomd
from monai.utils import convert_to_numpy
from scipy import ndimage

from ..config import AugmentConfig
from ..errors import UserError

_DEFAULTS = AugmentConfig()

FILL = 0.0
"""Value of missing and exposed image voxels: the normalised mean (see :mod:`.normalize`)."""

GAMMA = (0.7, 1.5)
"""Range of the contrast (gamma) of :class:`monai.transforms.RandAdjustContrast`."""
SCALE = 0.15
"""Intensities are multiplied by 1 + U(-SCALE, SCALE)."""
SHIFT = 0.15
"""Intensities are shifted by U(-SHIFT, SHIFT) (normalised units: standard deviations)."""
BLUR_LENGTHS = (5, 11)
"""Length range of the motion-blur kernel, voxels (inclusive)."""
CUTBLUR_FACTORS = (2.0, 4.0)
"""Range of the CutBlur down-sampling factor."""

PROBABILITIES = ("elastic_p", "zoom_p", "intensity_p", "missing_section_p", "misalign_p", "motion_blur_p", "cutblur_p")
ONLY_3D = ("missing_section_p", "misalign_p")


def random_dihedral(arrays: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Apply one random element of the square's symmetry group (flips, 90-degree rotations,
    transposes) to every 2D array in ``arrays`` (the same one to each, so labels stay aligned)."""
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = []
    for a in arrays:
        a = np.rot90(a, k, axes=(-2, -1))
        if flip:
            a = a[..., ::-1]
        out.append(np.ascontiguousarray(a))
    return out


def random_flips_3d(arrays: Sequence[np.ndarray], rng: np.random.Generator, transpose_yx: bool = True) -> list[np.ndarray]:
    """One random flip per spatial axis and (optionally) a Y/X transpose, the same for each array.

    Arrays are ``(..., Z, Y, X)``; leading (channel) axes are untouched.
    """
    flips = rng.integers(2, size=3).astype(bool)
    swap = transpose_yx and bool(rng.integers(2))
    out = []
    for a in arrays:
        for axis, f in zip((-3, -2, -1), flips):
            if f:
                a = np.flip(a, axis=axis)
        if swap:
            a = np.swapaxes(a, -1, -2)
        out.append(np.ascontiguousarray(a))
    return out


@dataclass(frozen=True)
class AugmentSpec:
    """Which random transforms to apply to training crops, and how strongly.

    Args:
        dihedral: random flips, 90-degree rotations and Y/X transposes (2D: the square's
            symmetries; 3D: a flip per axis and a Y/X transpose when Y == X). Default True.
        elastic_p: probability of an in-plane elastic deformation (MONAI ``Rand2DElasticd``;
            default 0).
        elastic_spacing: spacing of MONAI's control grid, voxels: the scale over which the
            displacement varies (default 32).
        elastic_magnitude: standard deviation of the control points' displacement, voxels (default 2).
        zoom_p: probability of an in-plane zoom keeping the crop size (MONAI ``RandZoomd``; default 0).
        zoom_range: (min, max) zoom factor (default (0.8, 1.25)).
        intensity_p: probability of a random contrast (gamma), scale and shift of the image
            intensities (default 0).
        missing_section_p: probability that one z-section is set to the mean (3D only; default 0).
        misalign_p: probability that the sections from a random z on are shifted in-plane
            (3D only; default 0).
        misalign_max: largest shift per axis, voxels (default 8).
        motion_blur_p: probability of a linear motion blur (length 5..11 voxels, random
            direction) of one z-section (3D) or the crop (2D; default 0).
        cutblur_p: probability that a random box is down-sampled 2-4x in-plane and up-sampled
            back (CutBlur; default 0).
    """

    # the defaults are the typed config's (masktwins3d.config.AugmentConfig): stated once, there
    dihedral: bool = _DEFAULTS.dihedral
    elastic_p: float = _DEFAULTS.elastic_p
    elastic_spacing: float = _DEFAULTS.elastic_spacing
    elastic_magnitude: float = _DEFAULTS.elastic_magnitude
    zoom_p: float = _DEFAULTS.zoom_p
    zoom_range: tuple[float, float] = tuple(_DEFAULTS.zoom_range)
    intensity_p: float = _DEFAULTS.intensity_p
    missing_section_p: float = _DEFAULTS.missing_section_p
    misalign_p: float = _DEFAULTS.misalign_p
    misalign_max: int = _DEFAULTS.misalign_max
    motion_blur_p: float = _DEFAULTS.motion_blur_p
    cutblur_p: float = _DEFAULTS.cutblur_p

    def __post_init__(self):
        key = "data.augmentations."
        for name in PROBABILITIES:
            p = getattr(self, name)
            if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
                raise UserError(f"{key}{name}={p} must be a probability in [0, 1] (0: off), e.g. 0.5")
        if not isinstance(self.dihedral, bool):
            raise UserError(f"{key}dihedral={self.dihedral} must be true or false")
        if not self.elastic_spacing > 0:
            raise UserError(f"{key}elastic_spacing={self.elastic_spacing} must be a positive number of voxels, e.g. 8")
        if not self.elastic_magnitude >= 0:
            raise UserError(f"{key}elastic_magnitude={self.elastic_magnitude} must be a number of voxels >= 0, e.g. 4")
        zoom = tuple(self.zoom_range)
        if len(zoom) != 2 or not 0 < zoom[0] <= zoom[1] < math.inf:
            raise UserError(
                f"{key}zoom_range={list(zoom)} must be two positive factors [min, max] with min <= max, e.g. [0.8, 1.25]"
            )
        if isinstance(self.misalign_max, bool) or int(self.misalign_max) != self.misalign_max or self.misalign_max < 1:
            raise UserError(f"{key}misalign_max={self.misalign_max} must be a whole number of voxels >= 1, e.g. 8")


def motion_blur_kernel(length: int, angle: float) -> np.ndarray:
    """A ``(length, length)`` kernel that averages along a segment of ``length`` voxels through
    its centre at ``angle`` radians from the X axis (towards +Y): each voxel weighs
    ``max(0, 1 - distance to the segment)`` (an anti-aliased line); it sums to 1."""
    c = (length - 1) / 2
    y, x = np.mgrid[:length, :length] - c
    along = np.clip(x * np.cos(angle) + y * np.sin(angle), -c, c)
    distance = np.hypot(x - along * np.cos(angle), y - along * np.sin(angle))
    kernel = np.maximum(0.0, 1.0 - distance)
    return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(section: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``section`` (Y, X) convolved with ``kernel`` (edges reflected)."""
    return ndimage.convolve(section, kernel, mode="reflect")


def shift_sections(image: np.ndarray, z: int, dy: int, dx: int, fill: float = FILL) -> np.ndarray:
    """``image`` (Z, Y, X) with sections ``z:`` moved by (dy, dx) voxels; exposed voxels get ``fill``."""
    out = image.copy()
    ny, nx = image.shape[1:]
    moved = np.full_like(image[z:], fill)
    src = (slice(max(0, -dy), ny - max(0, dy)), slice(max(0, -dx), nx - max(0, dx)))
    dst = (slice(max(0, dy), ny - max(0, -dy)), slice(max(0, dx), nx - max(0, -dx)))
    moved[(slice(None),) + dst] = image[(slice(z, None),) + src]
    out[z:] = moved
    return out


def cutblur(image: np.ndarray, box: tuple[slice, ...], factor: float) -> np.ndarray:
    """``image`` with the region ``box`` (one slice per axis) down-sampled in-plane by ``factor``
    (area average) and up-sampled back (bilinear); everything outside ``box`` is unchanged."""
    out = image.copy()
    region = torch.from_numpy(np.ascontiguousarray(image[box]))
    shape = region.shape[-2:]
    planes = region.reshape(1, -1, *shape)  # sections as channels: in-plane only
    small = [max(1, round(s / factor)) for s in shape]
    low = torch.nn.functional.interpolate(planes, size=small, mode="area")
    back = torch.nn.functional.interpolate(low, size=tuple(shape), mode="bilinear", align_corners=False)
    out[box] = back.reshape(region.shape).numpy()
    return out


class Augmenter:
    """Apply the transforms of an :class:`AugmentSpec` to one crop (and its labels).

    Order: dihedral, zoom, elastic (image and labels together), then intensity, missing
    section, misalignment, motion blur, CutBlur (image only).

    Args:
        spec: which transforms, with their probabilities and strengths.
        dims: 2 for (Y, X) crops, 3 for (Z, Y, X) crops; missing section and misalignment need 3.
    """

    def __init__(self, spec: AugmentSpec, dims: int):
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, not {dims}")
        if dims == 2:
            for name in ONLY_3D:
                if getattr(spec, name) > 0:
                    raise UserError(
                        f"data.augmentations.{name}={getattr(spec, name)} needs 3D crops (a z-axis) but this model "
                        f"takes 2D crops; set data.augmentations.{name}=0"
                    )
        self.spec, self.dims = spec, dims
        keys = ("image", "label")
        self._elastic = Rand2DElasticd(
            keys, spacing=spec.elastic_spacing, magnitude_range=(spec.elastic_magnitude, spec.elastic_magnitude),
            prob=1.0, mode=("bilinear", "nearest"), padding_mode="reflection", allow_missing_keys=True,
        )
        self._zoom = RandZoomd(
            # torch's "nearest" is off by up to half a voxel against bilinear; "nearest-exact" is not
            keys, prob=1.0, min_zoom=spec.zoom_range[0], max_zoom=spec.zoom_range[1],
            mode=("bilinear", "nearest-exact"),
            padding_mode="reflect", align_corners=(False, None), keep_size=True, allow_missing_keys=True,
        )
        self._intensity = (RandAdjustContrast(prob=1.0, gamma=GAMMA), RandScaleIntensity(factors=SCALE, prob=1.0),
                           RandShiftIntensity(offsets=SHIFT, prob=1.0))

    def __call__(
        self, image: np.ndarray, label: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Augment ``image`` (float32; (Y, X) for 2D, (Z, Y, X) for 3D) and ``label`` ((Y, X)
        uint8 for 2D, (C, Z, Y, X) uint8 for 3D, or None); returns contiguous arrays of the same
        shapes and dtypes."""
        spec = self.spec
        image = np.asarray(image, dtype=np.float32)
        if spec.dihedral:
            image, label = self._dihedral(image, label, rng)
        if spec.zoom_p > 0 and rng.random() < spec.zoom_p:
            image, label = self._in_plane(self._zoom, image, label, rng)
        if spec.elastic_p > 0 and rng.random() < spec.elastic_p:
            image, label = self._in_plane(self._elastic, image, label, rng)
        if spec.intensity_p > 0 and rng.random() < spec.intensity_p:
            x = torch.from_numpy(np.ascontiguousarray(image))[None]
            for t in self._intensity:
                t.set_random_state(seed=int(rng.integers(2**31)))
                x = t(x)
            image = convert_to_numpy(x[0], dtype=np.float32)
        if spec.missing_section_p > 0 and rng.random() < spec.missing_section_p:
            image = image.copy()
            image[int(rng.integers(image.shape[0]))] = FILL
        if spec.misalign_p > 0 and rng.random() < spec.misalign_p and image.shape[0] > 1:
            z = int(rng.integers(1, image.shape[0]))
            m = int(spec.misalign_max)
            k = int(rng.integers((2 * m + 1) ** 2 - 1))  # any nonzero (dy, dx) in [-m, m]^2
            k += k >= (2 * m + 1) ** 2 // 2
            dy, dx = divmod(k, 2 * m + 1)
            image = shift_sections(image, z, dy - m, dx - m)
        if spec.motion_blur_p > 0 and rng.random() < spec.motion_blur_p:
            length = int(rng.integers(BLUR_LENGTHS[0], BLUR_LENGTHS[1] + 1))
            kernel = motion_blur_kernel(length, float(rng.uniform(0, np.pi)))
            if self.dims == 2:
                image = motion_blur(image, kernel)
            else:
                image = image.copy()
                z = int(rng.integers(image.shape[0]))
                image[z] = motion_blur(image[z], kernel)
        if spec.cutblur_p > 0 and rng.random() < spec.cutblur_p:
            box = tuple(self._random_span(s, rng) for s in image.shape)
            image = cutblur(image, box, float(rng.uniform(*CUTBLUR_FACTORS)))
        image = np.ascontiguousarray(image, dtype=np.float32)
        return image, (None if label is None else np.ascontiguousarray(label, dtype=np.uint8))

    def _dihedral(self, image, label, rng):
        arrays = [image] + ([label] if label is not None else [])
        if self.dims == 3:
            arrays = random_flips_3d(arrays, rng, transpose_yx=image.shape[-2] == image.shape[-1])
        elif image.shape[0] == image.shape[1]:
            arrays = random_dihedral(arrays, rng)
        else:  # a rectangle: the same draws, but only the rotations that keep its shape
            k, flip = 2 * (int(rng.integers(4)) % 2), bool(rng.integers(2))
            arrays = [np.ascontiguousarray(np.rot90(a, k)[..., ::-1] if flip else np.rot90(a, k)) for a in arrays]
        return arrays[0], (arrays[1] if label is not None else None)

    def _in_plane(self, transform, image, label, rng):
        """Run a MONAI dictionary transform on (Y, X) planes: z-sections (and label channels) as channels."""
        transform.set_random_state(seed=int(rng.integers(2**31)))
        shape_y_x = image.shape[-2:]
        data = {"image": torch.from_numpy(np.ascontiguousarray(image)).reshape(-1, *shape_y_x)}
        if label is not None:
            data["label"] = torch.from_numpy(np.ascontiguousarray(label, dtype=np.float32)).reshape(-1, *shape_y_x)
        out = transform(data)
        image_out = convert_to_numpy(out["image"], dtype=np.float32).reshape(image.shape)
        label_out = None
        if label is not None:
            label_out = convert_to_numpy(out["label"]).round().astype(np.uint8).reshape(label.shape)
        return image_out, label_out

    @staticmethod
    def _random_span(size: int, rng: np.random.Generator) -> slice:
        """A random interval of a quarter to a half of ``size`` (at least 1 voxel)."""
        length = int(rng.integers(max(1, size // 4), max(1, size // 2) + 1))
        start = int(rng.integers(size - length + 1))
        return slice(start, start + length)
