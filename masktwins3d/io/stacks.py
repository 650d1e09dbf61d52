"""Input stacks for ``masktwins3d convert``: read any section stack one 2D section at a time.

:func:`open_stack` accepts more than :func:`~masktwins3d.io.open_volume` does, because it
converts, it does not analyse:

- a folder of ``.png``/``.tif``/``.tiff`` sections (names sorted naturally), optionally filtered by
  a glob ``pattern`` and a ``sections`` range; every header is read (not the pixels) and the first
  file whose size differs from the first section's is named;
- a multi-page ``.tif``/``.tiff`` (one page per section) or a single ``.png``/``.tif`` (one section);
- an HDF5 dataset (``file.h5:/key``) or a zarr / OME-Zarr array, ZYX (or CZYX: channel 0).

Pixels: palette images (PNG mode ``P``, palette TIFF) are read as their **indices**, so a palette
label PNG with values 0/1 stays 0/1; for images (``labels=False``) a palette PNG is turned into
grey levels instead. RGB, RGBA and grey+alpha sections keep **channel 0** (a note says so).
Other dtypes (uint8, uint16, int32, float32, float64, bool) are kept as they are.

Geometry: the voxel size comes from the input's metadata when it has any (HDF5 attributes
``resolution_zyx_nm``, ``resolution`` or ``voxel_size`` on the dataset, then on its groups up to
the file root; OME-Zarr / zarr metadata; ImageJ TIFF metadata with a length unit), else it is
``None`` and the caller must be told it. Section folders and PNGs carry none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import h5py
import numpy as np
import tifffile

from ..errors import UserError
from .hdf5_io import split_hdf5_spec
from .metadata import VOXEL_SIZE_ATTRS, geometry_from_attrs
from .tiff_io import IMAGE_SUFFIXES, TIFF_SUFFIXES, SectionFiles, imagej_voxel_size
from .volume import check_voxel_size
from .tensorstore_io import N5, MissingVoxelSize, is_tensorstore_spec
from .zarr_io import is_zarr_spec

@dataclass
class SectionStack:
    """A ZYX stack read one section at a time.

    Args:
        spec: the input as the user gave it (for messages).
        kind: what it is, in words ("folder of 20 PNG sections", "HDF5 dataset", ...).
        shape: (Z, Y, X) in voxels.
        dtype: dtype of every section as :meth:`read` returns it.
        read: ``read(z)`` -> the 2D section ``z`` (0-based, within the stack) as numpy.
        voxel_size: nm, ZYX, from the input's metadata; None when it has none.
        voxel_size_from: where ``voxel_size`` came from, in words (empty when None).
        offset: voxels, ZYX, from the input's metadata; None when it has none.
        notes: what was changed on the way (channel 0 of RGB, palette handling), one line each.
        close: releases open files (default: nothing to release).
    """

    spec: str
    kind: str
    shape: tuple[int, int, int]
    dtype: np.dtype
    read: Callable[[int], np.ndarray]
    voxel_size: tuple[float, float, float] | None = None
    voxel_size_from: str = ""
    offset: tuple[int, int, int] | None = None
    notes: list[str] = field(default_factory=list)
    close: Callable[[], None] = lambda: None

    def __enter__(self) -> SectionStack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_stack(
    spec: str | Path,
    *,
    labels: bool = False,
    pattern: str | None = None,
    sections: Sequence[int] | None = None,
) -> SectionStack:
    """Open an image or label stack for section-by-section reading (headers only are read now).

    Args:
        spec: a folder of sections, a ``.tif``/``.tiff``/``.png`` file, ``file.h5:/key``, a zarr array,
            ``precomputed://PATH`` or ``n5://PATH/dataset``.
        labels: read palette images as indices (True) or as grey levels (False, default).
        pattern: glob of the section files to use inside a folder (default: every .png/.tif/.tiff).
        sections: ``(start, stop)``: use sections ``start <= z < stop`` only (default: all).

    Raises:
        UserError: missing input, no sections, mixed section sizes or dtypes, unreadable files,
            unsupported layouts; each a single line naming the file and the fix.
    """
    spec = str(spec)
    path = Path(spec)
    if pattern is not None and not path.is_dir():
        raise UserError(f"{spec}: a file pattern ({pattern!r}) needs a folder of sections; give the folder")
    hdf5 = split_hdf5_spec(spec) if not is_tensorstore_spec(spec) else None
    if is_tensorstore_spec(spec):
        stack = _open_array(spec)
    elif hdf5 is not None:
        stack = _open_array(spec, hdf5_file=hdf5[0])
    elif is_zarr_spec(path):
        stack = _open_array(spec)
    elif not path.exists():
        raise UserError(f"{spec} does not exist; check the path")
    elif path.is_dir():
        files = SectionFiles.in_folder(path, spec, pattern=pattern, colour=True, labels=labels)
        stack = _open_files(files, spec, _folder_kind(files))
    elif path.suffix.lower() in TIFF_SUFFIXES:
        stack = _open_tiff(path, spec)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        stack = _open_files(SectionFiles([path], colour=True, labels=labels), spec, f"PNG image {path.name}")
    else:
        raise UserError(
            f"{spec}: unknown input format {path.suffix or '(no extension)'!r}; convert reads folders of "
            ".png/.tif sections, .tif/.tiff stacks, .png images, file.h5:/key and zarr arrays"
        )
    return _subset(stack, sections) if sections is not None else stack


# ---- folders and single images ------------------------------------------------------------------


def _open_files(files: SectionFiles, spec: str, kind: str) -> SectionStack:
    return SectionStack(spec=spec, kind=kind, shape=files.shape, dtype=files.dtype, read=files.read, notes=files.notes)  # type: ignore[arg-type]


def _folder_kind(files: SectionFiles) -> str:
    suffixes = sorted({f.suffix.lower().lstrip(".").upper().replace("TIFF", "TIF") for f in files.files})
    return f"folder of {len(files.files)} {'/'.join(suffixes)} sections"


# ---- multi-page TIFF ------------------------------------------------------------------------------


def _open_tiff(path: Path, spec: str) -> SectionStack:
    try:
        tif = tifffile.TiffFile(path)
    except (tifffile.TiffFileError, OSError) as exc:
        raise UserError(f"{spec} is not a readable TIFF file ({exc}); check the file") from None
    try:
        series = tif.series[0]
        if len(tif.series) > 1 and not tif.is_imagej:
            first = tif.pages[0].shape
            odd = next((i for i, p in enumerate(tif.pages) if p.shape != first), None)
            if odd is not None:
                raise UserError(
                    f"{spec}: page {odd} is {tif.pages[odd].shape} but page 0 is {first}; "
                    "all pages of a stack must have the same size: crop or pad them"
                )
        page_axes, page_shape = series.keyframe.axes, tuple(series.keyframe.shape)
        lead_axes = series.axes[: len(series.shape) - len(page_shape)]
        lead = tuple(series.shape[: len(lead_axes)])
        big = [(a, s) for a, s in zip(lead_axes, lead) if s > 1]
        if len(big) > 1 or (big and big[0][0] in "CS"):
            raise UserError(f"{spec} is a {series.axes} hyperstack of shape {series.shape}; save one channel and time point as a Z stack")
        notes = []
        sample = page_axes.index("S") if "S" in page_axes and len(page_shape) == 3 else None
        if sample is not None:
            notes.append(f"{page_shape[sample]}-sample (colour) TIFF pages: channel 0 kept")
            page_shape = tuple(s for i, s in enumerate(page_shape) if i != sample)
        if len(page_shape) != 2:
            raise UserError(f"{spec} has pages of shape {series.keyframe.shape} (axes {page_axes}); give 2D pages")
        n = int(np.prod(lead, dtype=np.int64)) if lead else 1

        def read(z: int) -> np.ndarray:
            try:
                data = tif.asarray(key=z, series=0, maxworkers=1)
            except (IndexError, ValueError, OSError, EOFError) as exc:  # a truncated or damaged file
                raise UserError(f"{spec}: page {z} of {n} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no data'}); "
                                "the TIFF is truncated or damaged: copy it again from the original") from None
            if sample is not None:
                data = np.take(data, 0, axis=sample)
            return data.astype(data.dtype.newbyteorder("="), copy=False)

        vs = imagej_voxel_size(tif)
        return SectionStack(
            spec=spec, kind=f"TIFF stack of {n} page{'s' if n > 1 else ''}", shape=(n, *page_shape),
            dtype=np.dtype(series.dtype).newbyteorder("="), read=read, voxel_size=vs,
            voxel_size_from="ImageJ TIFF metadata" if vs else "", notes=notes, close=tif.close,
        )
    except BaseException:
        tif.close()
        raise


# ---- HDF5 and zarr arrays -------------------------------------------------------------------------


def _open_array(spec: str, hdf5_file: Path | None = None) -> SectionStack:
    from .spec import open_volume

    unknown_voxel_size = False
    try:
        vol = open_volume(spec)
    except MissingVoxelSize:  # convert asks for --voxel-size
        vol, unknown_voxel_size = open_volume(spec, voxel_size=(1.0, 1.0, 1.0)), True
    try:
        notes = []
        channel = vol.axes.startswith("c")
        if channel:
            notes.append(f"{vol.shape[0]}-channel array: channel 0 kept")
        spatial = vol.spatial_shape
        if len(spatial) == 2:
            spatial = (1, *spatial)
        where = ("N5 attributes" if spec.startswith(N5) else "precomputed info") if is_tensorstore_spec(spec) else "zarr / OME-Zarr metadata"
        voxel_size, offset = (None if unknown_voxel_size else vol.voxel_size), vol.offset
        if hdf5_file is not None:
            voxel_size, where, offset = _hdf5_geometry(hdf5_file, vol, spec)

        def read(z: int) -> np.ndarray:
            if len(vol.spatial_shape) == 2:
                return vol[0] if channel else vol[...]
            return vol[0, z] if channel else vol[z]

        kind = "HDF5 dataset" if hdf5_file is not None else (
            ("N5 dataset" if spec.startswith(N5) else "precomputed volume") if is_tensorstore_spec(spec) else "zarr array")
        return SectionStack(
            spec=spec, kind=kind, shape=tuple(int(s) for s in spatial), dtype=vol.dtype, read=read,  # type: ignore[arg-type]
            voxel_size=voxel_size, voxel_size_from=where if voxel_size else "", offset=offset, notes=notes, close=vol.close,
        )
    except BaseException:
        vol.close()
        raise


def _hdf5_geometry(file: Path, vol, spec: str):
    """``(voxel_size or None, where, offset or None)`` from the dataset's attributes, then its groups' up to the root."""
    key = str(getattr(vol._source, "name", "")).strip("/")
    with h5py.File(file, "r") as f:
        parts = key.split("/") if key else []
        for depth in range(len(parts), -1, -1):
            node = "/".join(parts[:depth]) or "/"
            attrs = dict(f[node].attrs)
            name = next((a for a in VOXEL_SIZE_ATTRS if a in attrs), None)
            if name is None:
                continue
            n_spatial = len(vol.spatial_axes)
            vs, off = geometry_from_attrs(attrs, n_spatial, f"{file}:{node}", need_offset=depth == len(parts))
            owner = "the dataset" if depth == len(parts) else ("the file" if node == "/" else f"group /{node}")
            offset = off if depth == len(parts) and "offset" in attrs else None
            return check_voxel_size(vs, spec), f"HDF5 attribute {name!r} of {owner}", offset
    return None, "", None


# ---- section ranges -------------------------------------------------------------------------------


def _subset(stack: SectionStack, sections: Sequence[int]) -> SectionStack:
    try:
        start, stop = (int(v) for v in sections)
    except (TypeError, ValueError):
        raise UserError(f"{stack.spec}: sections {sections!r} must be two whole numbers [start, stop)") from None
    n = stack.shape[0]
    if not 0 <= start < stop <= n:
        raise UserError(f"{stack.spec}: sections [{start}, {stop}) are outside its {n} sections; give 0 <= start < stop <= {n}")
    base = stack.read
    stack.read = lambda z: base(start + z)
    stack.shape = (stop - start, *stack.shape[1:])
    stack.kind = f"{stack.kind}, sections {start}..{stop - 1}"
    if stack.offset is not None:
        stack.offset = (stack.offset[0] + start, *stack.offset[1:])
    return stack
