"""TIFF stacks, folders of 2D sections (TIFF or PNG) and single 2D images.

- A multi-page ``.tif``/``.tiff`` is a ZYX volume, one page per section; pages are read on demand
  (a read of ``vol[z0:z1, y0:y1]`` decodes pages z0..z1-1 only). A single-page file is a YX image.
  Voxel size comes from ImageJ metadata when it has a length unit (``unit`` + XResolution /
  YResolution + ``spacing``), else 1.0 nm; the offset is 0.
- A folder of ``.tif``/``.tiff``/``.png`` files (names sorted naturally: ``s2`` before ``s10``) is a
  ZYX volume, one file per section; ``vol[z]`` opens only that file. Opening reads every file's
  header (not its pixels) to check that all sections have the same size and dtype.
- A single ``.png`` is a YX image (read whole: it is one section).
Colour (RGB) images are refused: EM volumes are grayscale.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import tifffile
from PIL import Image

from ..errors import UserError
from .metadata import UNIT_NM
from .volume import Volume

TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = (".png",)
SECTION_SUFFIXES = TIFF_SUFFIXES + IMAGE_SUFFIXES

PIL_DTYPES = {
    "1": "bool", "L": "uint8", "I;16": "uint16", "I;16L": "uint16", "I;16B": "uint16", "I": "int32", "F": "float32"
}
"""numpy dtype of each grayscale PIL mode."""

Sizes = Sequence[float] | None
Offset = Sequence[int] | None


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value: ``s2.tif`` < ``s10.tif``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _or(value, default):
    return default if value is None else value


def _range(z: int | slice) -> range:
    return range(z, z + 1) if isinstance(z, int) else range(z.start, z.stop, z.step)


def _gather(read_section, z: int | slice, yx: tuple, dtype) -> np.ndarray:
    """Sections ``z`` (int or positive slice) cut to ``yx``, each read with ``read_section(z)``."""
    if isinstance(z, int):
        return read_section(z)[yx]
    zs = _range(z)
    first = read_section(zs[0])[yx]
    out = np.empty((len(zs), *first.shape), dtype=dtype)
    out[0] = first
    for i, zi in enumerate(zs[1:], start=1):
        out[i] = read_section(zi)[yx]
    return out


# ---- multi-page TIFF -------------------------------------------------------------------------


class TiffStackSource:
    """Array source over the pages of one TIFF file (series 0); the file stays open.

    Args:
        tif: an open ``tifffile.TiffFile``.
        spec: the file, for messages.
    """

    def __init__(self, tif: tifffile.TiffFile, spec: str):
        self._tif = tif
        self._lock = threading.Lock()  # one file handle: seek + read must not interleave across threads
        series = tif.series[0]
        page_shape = tuple(series.keyframe.shape)
        if len(page_shape) != 2:
            raise UserError(f"{spec} has pages of shape {page_shape} (colour or multi-sample); EM volumes are grayscale: save one channel")
        lead = tuple(series.shape[:-2])
        if sum(s > 1 for s in lead) > 1:
            raise UserError(f"{spec} is a {series.axes} hyperstack of shape {series.shape}; save one channel and time point as a Z stack")
        self.n_pages = int(np.prod(lead, dtype=np.int64))
        self.dtype = np.dtype(series.dtype)
        self.shape = (self.n_pages, *page_shape) if self.n_pages > 1 else page_shape
        self.chunks = (1, *page_shape) if self.n_pages > 1 else None

    def _page(self, z: int) -> np.ndarray:
        with self._lock:
            return self._tif.asarray(key=z, series=0, maxworkers=1)

    def __getitem__(self, key: tuple) -> np.ndarray:
        if len(self.shape) == 2:
            return self._page(0)[key]
        return _gather(self._page, key[0], key[1:], self.dtype)


def imagej_voxel_size(tif: tifffile.TiffFile) -> tuple[float, float, float] | None:
    """Voxel size (nm, ZYX) from ImageJ metadata with a length unit, else None."""
    meta = tif.imagej_metadata or {}
    unit = str(meta.get("unit", "")).replace("\\u00B5", "µ").lower()
    factor = UNIT_NM.get(unit)
    if factor is None:
        return None
    tags = tif.pages[0].tags
    sizes = []
    for name in ("YResolution", "XResolution"):
        tag = tags.get(name)
        num, den = tag.value if tag is not None else (1, 1)
        if num <= 0:
            return None
        sizes.append(den / num * factor)
    return (float(meta.get("spacing", 1.0)) * factor, *sizes)


def open_tiff(path: Path, spec: str, *, voxel_size: Sizes = None, offset: Offset = None) -> Volume:
    """Open a TIFF file as a read-only ZYX volume (a YX image if it has one page).

    Args:
        path: the .tif/.tiff file.
        spec: the spec as the user gave it.
        voxel_size: nm, ZYX (default: ImageJ metadata with a length unit, else 1.0).
        offset: voxels, ZYX (default 0).
    """
    try:
        tif = tifffile.TiffFile(path)
    except (tifffile.TiffFileError, OSError) as exc:
        raise UserError(f"{spec} is not a readable TIFF file ({exc}); check the file") from None
    try:
        source = TiffStackSource(tif, spec)
        if voxel_size is None:
            voxel_size = imagej_voxel_size(tif) or (1.0, 1.0, 1.0)
        axes = "zyx" if len(source.shape) == 3 else "yx"
        offset = _or(offset, (0, 0, 0))
        return Volume(source, path=spec, axes=axes, voxel_size=voxel_size, offset=offset, closer=tif.close)
    except BaseException:
        tif.close()
        raise


# ---- folders of sections ----------------------------------------------------------------------


def section_header(path: Path) -> tuple[tuple[int, int], np.dtype]:
    """``((Y, X), dtype)`` of a 2D section file, from its header only."""
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            with tifffile.TiffFile(path) as tif:
                if len(tif.pages) > 1:
                    raise UserError(f"{path} is a multi-page TIFF; a section folder holds one 2D image per file")
                page = tif.pages[0]
                shape, dtype = tuple(page.shape), np.dtype(page.dtype)
        else:
            with Image.open(path) as im:
                if im.mode not in PIL_DTYPES:
                    raise UserError(f"{path} is a {im.mode} image; sections must be grayscale: convert it")
                shape, dtype = (im.height, im.width), np.dtype(PIL_DTYPES[im.mode])
    except (OSError, tifffile.TiffFileError) as exc:
        raise UserError(f"{path} is not a readable image ({exc}); check or remove the file") from None
    if len(shape) != 2:
        raise UserError(f"{path} has shape {shape} (colour or multi-sample); sections must be 2D grayscale images")
    return shape, dtype


def read_section(path: Path) -> np.ndarray:
    """Pixels of one 2D section file (TIFF via tifffile, PNG via Pillow)."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        data = tifffile.imread(path)
    else:
        with Image.open(path) as im:
            data = np.asarray(im)
    return data.astype(data.dtype.newbyteorder("="), copy=False)


class SectionFolderSource:
    """Array source over a list of 2D section files; each read opens only the files it needs.

    Args:
        files: section files in z order (all the same size and dtype).
        shape: (Y, X) of every section.
        dtype: dtype of every section.
    """

    def __init__(self, files: Sequence[Path], shape: tuple[int, int], dtype: np.dtype):
        self.files = list(files)
        self.shape = (len(self.files), *shape)
        self.dtype = np.dtype(dtype)
        self.chunks = (1, *shape)

    def _section(self, z: int) -> np.ndarray:
        data = read_section(self.files[z])
        if data.shape != self.shape[1:] or data.dtype != self.dtype:
            raise UserError(f"{self.files[z]} decoded to {data.shape} {data.dtype}, not {self.shape[1:]} {self.dtype}; check the file")
        return data

    def __getitem__(self, key: tuple) -> np.ndarray:
        return _gather(self._section, key[0], key[1:], self.dtype)


def section_files(folder: Path) -> list[Path]:
    """The ``.tif``/``.tiff``/``.png`` files of ``folder`` (hidden files skipped), sorted naturally."""
    files = [
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SECTION_SUFFIXES
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def open_section_folder(folder: Path, spec: str, *, voxel_size: Sizes = None, offset: Offset = None) -> Volume:
    """Open a folder of 2D sections as a read-only ZYX volume.

    Args:
        folder: folder of .tif/.tiff/.png files, one section each.
        spec: the spec as the user gave it.
        voxel_size: nm, ZYX (default 1.0: section files carry no reliable voxel size).
        offset: voxels, ZYX (default 0).
    """
    files = section_files(folder)
    if not files:
        raise UserError(f"{spec} is a folder without .tif, .tiff or .png sections; give a folder of 2D images, a TIFF stack or a zarr/HDF5 volume")
    shape, dtype = section_header(files[0])
    for f in files[1:]:
        s, d = section_header(f)
        if s != shape or d != dtype:
            raise UserError(
                f"{f} is {s[0]}x{s[1]} {d} but {files[0].name} is {shape[0]}x{shape[1]} {dtype}; "
                "all sections in a folder must have the same size and dtype"
            )
    source = SectionFolderSource(files, shape, dtype)
    voxel_size, offset = _or(voxel_size, (1.0, 1.0, 1.0)), _or(offset, (0, 0, 0))
    return Volume(source, path=spec, axes="zyx", voxel_size=voxel_size, offset=offset)


def open_image(path: Path, spec: str, *, voxel_size: Sizes = None, offset: Offset = None) -> Volume:
    """Open one 2D PNG as a YX image (read whole: it is one section).

    Args:
        path: the .png file.
        spec: the spec as the user gave it.
        voxel_size: nm, ZYX (default 1.0).
        offset: voxels, ZYX (default 0).
    """
    section_header(path)
    data = read_section(path)
    voxel_size, offset = _or(voxel_size, (1.0, 1.0, 1.0)), _or(offset, (0, 0, 0))
    return Volume(data, path=spec, axes="yx", voxel_size=voxel_size, offset=offset)
