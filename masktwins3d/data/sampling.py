"""Random training crops with their labels kept aligned: 2D crops of z-sections (mitochondria)
and 3D crops with point annotations drawn as cubes (synapses)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import UserError
from .labels import binarize
from .normalize import Normalizer
from .points import cube_targets


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
    ):
        if len(raw.shape) != 3:
            raise UserError(f"{getattr(raw, 'path', 'the image')} has shape {tuple(raw.shape)}; training needs a ZYX volume")
        if label is not None and tuple(label.shape) != tuple(raw.shape):
            raise UserError(
                f"labels {getattr(label, 'path', '')} have shape {tuple(label.shape)} but the image "
                f"{getattr(raw, 'path', '')} has {tuple(raw.shape)}; give labels of the image's shape"
            )
        crop = tuple(int(c) for c in crop)
        if len(crop) != 2 or crop[0] > raw.shape[1] or crop[1] > raw.shape[2]:
            raise UserError(
                f"data.crop={list(crop)} does not fit the sections {tuple(raw.shape[1:])} of "
                f"{getattr(raw, 'path', 'the image')}; set data.crop to at most the section size"
            )
        nbytes = int(np.prod(raw.shape)) * np.dtype(raw.dtype).itemsize
        if nbytes <= preload_bytes:
            raw = np.asarray(raw[:])
            label = None if label is None else np.asarray(label[:])
        self.raw, self.label = raw, label
        self.crop, self.normalizer, self.rng, self.augment = crop, normalizer, rng, augment

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` crops: images ``(n, 1, Y, X)`` float32 normalised, labels ``(n, Y, X)`` uint8 or None."""
        images, labels = [], []
        nz, ny, nx = self.raw.shape
        cy, cx = self.crop
        for _ in range(n):
            z = int(self.rng.integers(nz))
            y = int(self.rng.integers(ny - cy + 1))
            x = int(self.rng.integers(nx - cx + 1))
            region = (z, slice(y, y + cy), slice(x, x + cx))
            img = self.normalizer(np.asarray(self.raw[region]))
            if not np.isfinite(img).all():
                raise UserError(f"image {getattr(self.raw, 'path', '')} has NaN or inf at z={z}; clean the image first")
            pair = [img] + ([binarize(self.label[region])] if self.label is not None else [])
            if self.augment:
                pair = random_dihedral(pair, self.rng)
            images.append(pair[0])
            if self.label is not None:
                labels.append(pair[1])
        batch_labels = np.stack(labels) if self.label is not None else None
        return np.stack(images)[:, None], batch_labels


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
    ):
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
        self.raw, self.crop, self.normalizer, self.rng = raw, crop, normalizer, rng
        self.points = None if points is None else [np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in points]
        self.augment, self.cube = augment, int(cube)

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` crops: images ``(n, 1, Z, Y, X)`` float32 normalised, targets ``(n, C, Z, Y, X)`` uint8 or None."""
        images, targets = [], []
        for _ in range(n):
            origin = [int(self.rng.integers(s - c + 1)) for s, c in zip(self.raw.shape, self.crop)]
            region = tuple(slice(o, o + c) for o, c in zip(origin, self.crop))
            img = self.normalizer(np.asarray(self.raw[region]))
            if not np.isfinite(img).all():
                raise UserError(f"image {getattr(self.raw, 'path', '')} has NaN or inf near {origin}; clean the image first")
            pair = [img]
            if self.points is not None:
                pair.append(cube_targets(self.points, origin, self.crop, self.cube))
            if self.augment:
                pair = random_flips_3d(pair, self.rng, transpose_yx=self.crop[1] == self.crop[2])
            images.append(pair[0])
            if self.points is not None:
                targets.append(pair[1])
        return np.stack(images)[:, None], (np.stack(targets) if self.points is not None else None)
