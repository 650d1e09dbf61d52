"""Voxel-size-aware resampling: bring a volume's sections to another in-plane voxel size.

Serial-section EM is anisotropic (VNC III: 50 nm sections of 4.6 nm pixels), so resampling is
in-plane only: each z-section is zoomed by ``from_voxel / to_voxel`` along Y and X, with
anti-aliasing (a Gaussian of sigma ``(1/f - 1) / 2`` pixels, scikit-image's rule) when it
shrinks. Images are interpolated linearly, labels by nearest neighbour. A voxel size of exactly
1 nm on every axis is how a volume without a recorded voxel size reads (:class:`~masktwins3d.io.Volume`
defaults), so it counts as *not known* and nothing is resampled against it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

UNKNOWN_VOXEL_SIZE = (1.0, 1.0, 1.0)
"""What a volume's voxel size reads as when no file, descriptor or config records it."""

TOLERANCE = 0.05
"""In-plane voxel sizes within this relative difference are treated as equal (no resampling)."""


def voxel_size_known(voxel_size: Sequence[float]) -> bool:
    """Whether ``voxel_size`` (nm, ZYX) was recorded (anything but the 1 nm placeholder)."""
    return tuple(float(v) for v in voxel_size) != UNKNOWN_VOXEL_SIZE


def zoom_factors(from_voxel: Sequence[float], to_voxel: Sequence[float], tolerance: float = TOLERANCE) -> tuple[float, float] | None:
    """In-plane zoom (Y, X) that takes sections of voxel size ``from_voxel`` to ``to_voxel`` (nm, ZYX).

    Returns None when either voxel size is not known or both in-plane sizes agree within
    ``tolerance`` (relative): then nothing should be resampled. A factor above 1 enlarges
    (the target's voxels are coarser than the source's).
    """
    if not (voxel_size_known(from_voxel) and voxel_size_known(to_voxel)):
        return None
    f = (float(from_voxel[1]) / float(to_voxel[1]), float(from_voxel[2]) / float(to_voxel[2]))
    if all(abs(v - 1.0) <= tolerance for v in f):
        return None
    return f


def source_extent(out_shape: Sequence[int], factors: Sequence[float]) -> tuple[int, ...]:
    """Pixels to read so that zooming by ``factors`` gives about ``out_shape`` (at least 1 each)."""
    return tuple(max(1, int(round(n / f))) for n, f in zip(out_shape, factors))


def resize_section(section: np.ndarray, shape: Sequence[int], labels: bool = False) -> np.ndarray:
    """Resize a 2D section (or ``(..., Y, X)`` stack of them) to ``shape`` (Y, X).

    Images: linear interpolation on the pixel grid (``grid_mode``: pixel areas, not centres, are
    aligned), anti-aliased when shrinking; returned as float32. Labels: nearest neighbour, dtype
    kept. A section already of ``shape`` is returned unchanged.
    """
    shape = tuple(int(s) for s in shape)
    if tuple(section.shape[-2:]) == shape:
        return section
    lead = section.ndim - 2
    f = [1.0] * lead + [o / i for o, i in zip(shape, section.shape[-2:])]
    if labels:
        out = ndimage.zoom(section, f, order=0, mode="grid-constant", grid_mode=True)
    else:
        x = section.astype(np.float32, copy=False)
        sigma = [0.0] * lead + [max(0.0, (1.0 / v - 1.0) / 2.0) for v in f[lead:]]
        if any(sigma):
            x = ndimage.gaussian_filter(x, sigma, mode="nearest")
        out = ndimage.zoom(x, f, order=1, mode="nearest", grid_mode=True)
    if tuple(out.shape[-2:]) != shape:  # zoom rounds the output size; pad or cut the last pixel
        pad = [(0, 0)] * lead + [(0, max(0, s - o)) for s, o in zip(shape, out.shape[-2:])]
        out = np.pad(out, pad, mode="edge")[(Ellipsis, slice(0, shape[0]), slice(0, shape[1]))]
    return np.ascontiguousarray(out)


def resampled_shape(shape: Sequence[int], factors: Sequence[float]) -> tuple[int, int, int]:
    """ZYX shape of a volume of ``shape`` after zooming its sections by ``factors`` (Y, X)."""
    return (int(shape[0]), max(1, int(round(shape[1] * factors[0]))), max(1, int(round(shape[2] * factors[1]))))


def resample_volume(source, output: str, factors: Sequence[float], *, labels: bool = False, out_dtype=None,
                    chunks: Sequence[int] | None = None, overwrite: bool = False, progress: bool = False, like=None):
    """Write ``source`` (a ZYX or CZYX Volume) with its sections zoomed by ``factors`` to the zarr ``output``.

    Streams one z-section at a time; the output's voxel size is the source's divided by the
    factors in-plane (Z unchanged), its offset scaled the same way.

    Args:
        source: the volume to resample.
        output: zarr spec to create (``x.zarr/raw``).
        factors: in-plane zoom (Y, X), e.g. from :func:`zoom_factors`.
        labels: nearest-neighbour (labels) instead of linear, anti-aliased (images).
        out_dtype: output dtype (default: the source's for labels, float32 for images).
        chunks: output chunks (default: one section in 256 x 256 tiles).
        overwrite: replace an existing output.
        progress: tqdm bar over sections.
        like: a Volume whose in-plane shape, voxel size and offset the output takes exactly
            (to undo a resampling: ``factors`` then only name the direction); default None.

    Returns:
        the written Volume.
    """
    from tqdm.auto import tqdm

    from ..io import create_volume

    channels = source.shape[:-3]
    if like is not None:
        out_shape = (*channels, source.shape[-3], *like.shape[-2:])
        voxel, offset = like.voxel_size, like.offset
    else:
        out_shape = (*channels, *resampled_shape(source.shape[-3:], factors))
        vs = source.voxel_size
        # an unknown voxel size stays unknown (it is not 1 nm, so it cannot be scaled)
        voxel = (vs[0], vs[1] / factors[0], vs[2] / factors[1]) if voxel_size_known(vs) else UNKNOWN_VOXEL_SIZE
        offset = (source.offset[0], int(round(source.offset[1] * factors[0])), int(round(source.offset[2] * factors[1])))
    dtype = np.dtype(out_dtype or (source.dtype if labels else np.float32))
    chunks = tuple(chunks) if chunks else (*[1] * len(channels), 1, min(256, out_shape[-2]), min(256, out_shape[-1]))
    out = create_volume(output, out_shape, dtype, chunks=chunks, axes="czyx" if channels else "zyx",
                        voxel_size=voxel, offset=offset, overwrite=overwrite)
    for z in tqdm(range(source.shape[-3]), desc=f"resample {source.path}", unit="section", disable=not progress):
        index = (*[slice(None)] * len(channels), z)
        sec = resize_section(np.asarray(source[index]), out_shape[-2:], labels=labels)
        if np.issubdtype(dtype, np.integer) and not labels:
            info = np.iinfo(dtype)
            sec = np.clip(np.rint(sec), info.min, info.max)
        elif np.issubdtype(dtype, np.floating) and np.issubdtype(source.dtype, np.floating) and not labels:
            sec = np.clip(sec, float(np.nanmin(source[index])), float(np.nanmax(source[index])))  # no overshoot
        out[index] = sec.astype(dtype, copy=False)
    return out
