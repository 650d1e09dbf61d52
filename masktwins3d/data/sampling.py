"""Random 2D training crops from the z-sections of a volume, with labels kept aligned."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import UserError
from .labels import binarize
from .normalize import Normalizer


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
