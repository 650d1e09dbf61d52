"""Random training crops with their labels kept aligned: 2D crops of z-sections (mitochondria)
and 3D crops with point annotations drawn as cubes (synapses)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import UserError
from .labels import binarize
from .normalize import Normalizer
from .points import cube_targets


@dataclass(frozen=True)
class Rejection:
    """Foreground-aware rejection of labelled crops: a crop with less foreground than
    ``min_foreground`` is drawn again with probability ``reject_p``, so empty crops become rare
    but not impossible; after ``max_tries`` draws the last one is taken and a warning says so once.

    Args:
        min_foreground: fraction of foreground voxels (any channel) a crop needs to be kept for
            sure, in [0, 1] (default 0: off, every crop is kept and no extra random numbers are drawn).
        reject_p: probability of drawing again when a crop has less (default 0.95).
        max_tries: draws per crop at most (default 50).
    """

    min_foreground: float = 0.0
    reject_p: float = 0.95
    max_tries: int = 50

    def __post_init__(self):
        if not 0.0 <= self.min_foreground <= 1.0:
            raise UserError(f"data.min_foreground={self.min_foreground} must be a fraction in [0, 1] (0: off), e.g. 0.01")
        if not 0.0 <= self.reject_p <= 1.0:
            raise UserError(f"data.reject_p={self.reject_p} must be a probability in [0, 1], e.g. 0.95")
        if self.max_tries < 1:
            raise UserError(f"data.max_tries={self.max_tries} must be at least 1, e.g. 50")

    @property
    def active(self) -> bool:
        return self.min_foreground > 0 and self.reject_p > 0

    def keep(self, target: np.ndarray, rng: np.random.Generator) -> bool:
        """Whether to keep a crop with this ``(Y, X)`` label or ``(C, Z, Y, X)`` target (any channel
        counts); draws a random number only when the crop is short of foreground."""
        if not self.active:
            return True
        foreground = target.any(axis=0) if target.ndim == 4 else target  # (C, Z, Y, X): any channel
        if np.count_nonzero(foreground) >= self.min_foreground * foreground.size:
            return True
        return bool(rng.random() >= self.reject_p)


NO_REJECTION = Rejection()


def _warn_exhausted(where: str, rejection: Rejection) -> None:
    warnings.warn(
        f"{where}: {rejection.max_tries} crops in a row had under {rejection.min_foreground:g} foreground; "
        "taking the last one (lower data.min_foreground or check the labels)",
        RuntimeWarning,
        stacklevel=3,
    )


def _inside_valid(valid, region, min_valid: float) -> bool:
    """Whether at least ``min_valid`` of ``region`` is nonzero in the ``valid`` mask (None: everywhere valid)."""
    if valid is None:
        return True
    block = np.asarray(valid[region])
    return np.count_nonzero(block) >= min_valid * block.size


def _no_valid_crop(tries: int, extent, min_valid: float, raw) -> UserError:
    return UserError(
        f"{tries} crops of {list(extent)} voxels in a row were under {min_valid:g} inside the valid mask of "
        f"{getattr(raw, 'path', 'the image')}; lower data.min_valid or data.crop, or check the mask"
    )


class SectionCrops:
    """Random ``crop``-sized windows of random z-sections of a ZYX volume.

    Args:
        raw: ZYX image Volume (or array).
        label: ZYX label Volume (0/1, 0/255, bool) of the same shape, or None.
        crop: window (Y, X) in voxels; must fit in a section.
        normalizer: intensity normalisation of this volume.
        rng: the sampler's own numpy Generator.
        augment: apply a random flip/rotation/transpose to each crop.
        preload_bytes: volumes up to this size are read into memory once (faster); larger ones
            are read crop by crop.
        rejection: foreground-aware rejection of labelled crops (default: off).
        scale: in-plane zoom (Y, X) of the sections (:func:`~masktwins3d.data.resample.zoom_factors`):
            a region of ``crop / scale`` voxels is read and resized to ``crop`` (default None: none).
        valid: ZYX mask of the same shape (nonzero: crops may come from there), or None.
        min_valid: fraction of a crop's region that must be valid (crops are drawn again, at
            most ``rejection.max_tries`` times, then a UserError).
        augmenter: callable ``(image, label, rng) -> (image, label)`` applied to each crop when
            ``augment`` (default: :class:`~.augment.Augmenter` with flips only, i.e. :func:`~.augment.random_dihedral`).
    """

    def __init__(
        self,
        raw,
        label,
        crop: Sequence[int],
        normalizer: Normalizer,
        rng: np.random.Generator,
        augment: bool = True,
        preload_bytes: int = 1 << 30,
        rejection: Rejection = NO_REJECTION,
        scale: Sequence[float] | None = None,
        valid=None,
        min_valid: float = 1.0,
        augmenter=None,
    ):
        self.rejection, self._warned = rejection, False
        self.scale = None if scale is None else (float(scale[0]), float(scale[1]))
        if augmenter is None:
            from .augment import Augmenter, AugmentSpec

            augmenter = Augmenter(AugmentSpec(), dims=2)
        self.augmenter, self.min_valid = augmenter, float(min_valid)
        if len(raw.shape) != 3:
            raise UserError(f"{getattr(raw, 'path', 'the image')} has shape {tuple(raw.shape)}; training needs a ZYX volume")
        if label is not None and tuple(label.shape) != tuple(raw.shape):
            raise UserError(
                f"labels {getattr(label, 'path', '')} have shape {tuple(label.shape)} but the image "
                f"{getattr(raw, 'path', '')} has {tuple(raw.shape)}; give labels of the image's shape"
            )
        crop = tuple(int(c) for c in crop)
        self.crop = crop
        extent = self.extent
        if len(crop) != 2 or extent[0] > raw.shape[1] or extent[1] > raw.shape[2]:
            zoom = "" if self.scale is None else f" (read as {list(extent)} voxels at zoom {self.scale[0]:.3g} x {self.scale[1]:.3g})"
            raise UserError(
                f"data.crop={list(crop)}{zoom} does not fit the sections {tuple(raw.shape[1:])} of "
                f"{getattr(raw, 'path', 'the image')}; set data.crop to at most the section size"
            )
        if valid is not None and tuple(valid.shape) != tuple(raw.shape):
            raise UserError(f"valid mask {getattr(valid, 'path', '')} has shape {tuple(valid.shape)} but the image has {tuple(raw.shape)}; give a mask of the image's shape")
        nbytes = int(np.prod(raw.shape)) * np.dtype(raw.dtype).itemsize
        if nbytes <= preload_bytes:
            raw = np.asarray(raw[:])
            label = None if label is None else np.asarray(label[:])
            valid = None if valid is None else np.asarray(valid[:])
        self.raw, self.label, self.valid = raw, label, valid
        self.normalizer, self.rng, self.augment = normalizer, rng, augment

    @property
    def extent(self) -> tuple[int, int]:
        """Section region read per crop, (Y, X) voxels: the crop, or ``crop / scale`` when resampling."""
        if self.scale is None:
            return self.crop
        from .resample import source_extent

        return source_extent(self.crop, self.scale)

    def fixed(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` deterministic crops for validation: the same for a given ``seed`` on every call,
        whatever the sampler has drawn before (its own RNG is not touched); no augmentation, same
        scale, valid mask and rejection rules as :meth:`sample`."""
        rng, augment = self.rng, self.augment
        self.rng, self.augment = np.random.default_rng([int(seed), 0x5EED]), False
        try:
            return self.sample(n)
        finally:
            self.rng, self.augment = rng, augment

    def _valid_enough(self, region) -> bool:
        return _inside_valid(self.valid, region, self.min_valid)

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` crops: images ``(n, 1, Y, X)`` float32 normalised, labels ``(n, Y, X)`` uint8 or None."""
        images, labels = [], []
        nz, ny, nx = self.raw.shape
        cy, cx = self.extent
        reject = self.rejection if self.label is not None else NO_REJECTION
        for _ in range(n):
            for _valid_try in range(self.rejection.max_tries if self.valid is not None else 1):
                for _attempt in range(reject.max_tries if reject.active else 1):
                    z = int(self.rng.integers(nz))
                    y = int(self.rng.integers(ny - cy + 1))
                    x = int(self.rng.integers(nx - cx + 1))
                    region = (z, slice(y, y + cy), slice(x, x + cx))
                    if not self._valid_enough(region):
                        break
                    label = binarize(self.label[region]) if self.label is not None else None
                    if label is None or reject.keep(label, self.rng):
                        break
                else:
                    if not self._warned:
                        self._warned = True
                        _warn_exhausted(getattr(self.label, "path", "the labels"), reject)
                if self._valid_enough(region):
                    break
            else:
                raise _no_valid_crop(self.rejection.max_tries, self.extent, self.min_valid, self.raw)
            img = self.normalizer(np.asarray(self.raw[region]))
            if not np.isfinite(img).all():
                raise UserError(f"image {getattr(self.raw, 'path', '')} has NaN or inf at z={z}; clean the image first")
            if self.scale is not None:
                from .resample import resize_section

                img = resize_section(img, self.crop)
                label = None if label is None else resize_section(label, self.crop, labels=True)
            if self.augment:
                img, label = self.augmenter(img, label, self.rng)
            images.append(img)
            if self.label is not None:
                labels.append(label)
        batch_labels = np.stack(labels) if self.label is not None else None
        return np.stack(images)[:, None], batch_labels


class MixedCrops:
    """Crops from several samplers of the same kind (labelled volumes of one run): each crop comes
    from sampler ``i`` with probability ``weights[i] / sum(weights)``, drawn with ``rng`` (share the
    samplers' generator so a resume replays the same crops).

    Args:
        samplers: objects with ``sample(n) -> (images, labels)`` (e.g. :class:`SectionCrops`).
        weights: non-negative, not all zero (e.g. each volume's voxel count).
        rng: numpy Generator that picks the sampler of each crop.
    """

    def __init__(self, samplers: Sequence, weights: Sequence[float], rng: np.random.Generator):
        w = np.asarray(weights, dtype=np.float64)
        if len(samplers) == 0 or w.shape != (len(samplers),) or (w < 0).any() or not w.sum() > 0:
            raise ValueError(f"MixedCrops needs one non-negative weight per sampler, not all zero; got {list(weights)}")
        self.samplers, self.p, self.rng = list(samplers), w / w.sum(), rng

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` crops, each from a sampler drawn by weight, in draw order."""
        picks = self.rng.choice(len(self.samplers), size=n, p=self.p) if len(self.samplers) > 1 else np.zeros(n, int)
        parts = [self.samplers[int(i)].sample(1) for i in picks]
        images = np.concatenate([im for im, _ in parts])
        labels = None if parts[0][1] is None else np.concatenate([lab for _, lab in parts])
        return images, labels


class PointCrops:
    """Random 3D ``crop``-sized windows of a ZYX volume, with point annotations drawn as cubes.

    Args:
        raw: ZYX image Volume (or array).
        points: one ``(N_c, 3)`` z, y, x array per target channel (voxel coordinates of ``raw``,
            e.g. pre and post synapse points), or None for an unlabelled (target) volume.
        crop: window (Z, Y, X) in voxels; must fit in the volume.
        normalizer: intensity normalisation of this volume.
        rng: the sampler's own numpy Generator.
        augment: random flips on every axis and a Y/X transpose.
        cube: edge of the cube drawn around each point, voxels (default 3).
        preload_bytes: volumes up to this size are read into memory once.
        rejection: foreground-aware rejection of crops with points (default: off).
        augmenter: callable ``(image, target, rng) -> (image, target)`` applied to each crop
            when ``augment`` (default: :class:`~.augment.Augmenter` with flips only, i.e.
            :func:`~.augment.random_flips_3d`).
        valid: ZYX mask of the same shape (nonzero: crops may come from there), or None.
        min_valid: fraction of a crop that must be valid (crops are drawn again, at most
            ``rejection.max_tries`` times, then a UserError).
    """

    def __init__(
        self,
        raw,
        points: Sequence[np.ndarray] | None,
        crop: Sequence[int],
        normalizer: Normalizer,
        rng: np.random.Generator,
        augment: bool = True,
        cube: int = 3,
        preload_bytes: int = 1 << 30,
        rejection: Rejection = NO_REJECTION,
        augmenter=None,
        valid=None,
        min_valid: float = 1.0,
    ):
        self.rejection, self._warned = rejection, False
        self.min_valid = float(min_valid)
        if valid is not None and tuple(valid.shape) != tuple(raw.shape):
            raise UserError(f"valid mask {getattr(valid, 'path', '')} has shape {tuple(valid.shape)} but the image has {tuple(raw.shape)}; give a mask of the image's shape")
        if augmenter is None:
            from .augment import Augmenter, AugmentSpec

            augmenter = Augmenter(AugmentSpec(), dims=3)
        self.augmenter = augmenter
        where = getattr(raw, "path", "the image")
        if len(raw.shape) != 3:
            raise UserError(f"{where} has shape {tuple(raw.shape)}; training needs a ZYX volume")
        crop = tuple(int(c) for c in crop)
        if len(crop) != 3 or any(c > s for c, s in zip(crop, raw.shape)):
            raise UserError(
                f"data.crop={list(crop)} does not fit the volume {tuple(raw.shape)} of {where}; "
                "set data.crop to three sizes (Z, Y, X) of at most the volume's"
            )
        if int(np.prod(raw.shape)) * np.dtype(raw.dtype).itemsize <= preload_bytes:
            raw = np.asarray(raw[:])
            valid = None if valid is None else np.asarray(valid[:])
        self.raw, self.valid, self.crop, self.normalizer, self.rng = raw, valid, crop, normalizer, rng
        self.points = None if points is None else [np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in points]
        self.augment, self.cube = augment, int(cube)

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` crops: images ``(n, 1, Z, Y, X)`` float32 normalised, targets ``(n, C, Z, Y, X)`` uint8 or None."""
        images, targets = [], []
        reject = self.rejection if self.points is not None else NO_REJECTION
        for _ in range(n):
            for _valid_try in range(self.rejection.max_tries if self.valid is not None else 1):
                for _attempt in range(reject.max_tries if reject.active else 1):
                    origin = [int(self.rng.integers(s - c + 1)) for s, c in zip(self.raw.shape, self.crop)]
                    region = tuple(slice(o, o + c) for o, c in zip(origin, self.crop))
                    if not _inside_valid(self.valid, region, self.min_valid):
                        break
                    target = cube_targets(self.points, origin, self.crop, self.cube) if self.points is not None else None
                    if target is None or reject.keep(target, self.rng):
                        break
                else:
                    if not self._warned:
                        self._warned = True
                        _warn_exhausted(f"points of {getattr(self.raw, 'path', 'the image')}", reject)
                if _inside_valid(self.valid, region, self.min_valid):
                    break
            else:
                raise _no_valid_crop(self.rejection.max_tries, self.crop, self.min_valid, self.raw)
            img = self.normalizer(np.asarray(self.raw[region]))
            if not np.isfinite(img).all():
                raise UserError(f"image {getattr(self.raw, 'path', '')} has NaN or inf near {origin}; clean the image first")
            if self.augment:
                img, target = self.augmenter(img, target, self.rng)
            images.append(img)
            if self.points is not None:
                targets.append(target)
        return np.stack(images)[:, None], (np.stack(targets) if self.points is not None else None)
