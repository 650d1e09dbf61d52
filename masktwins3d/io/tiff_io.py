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

:class:`SectionFiles` is the one reader of section files: :func:`open_volume` uses it for folders
and PNGs, and ``convert`` (:mod:`.stacks`) uses it with ``colour=True`` (channel 0, palettes).
"""

from __future__ import annotations

import fnmatch
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


# ---- 2D section files (folders and single images) ----------------------------------------------

COLOUR_MODES = ("RGB", "RGBA", "LA", "PA", "RGBX")
"""PIL modes read as their first channel when colour sections are accepted."""


def section_files(folder: Path, pattern: str | None = None) -> list[Path]:
    """The ``.tif``/``.tiff``/``.png`` files of ``folder`` (hidden files skipped, ``pattern``: a glob
    of names to keep, default all), sorted naturally."""
    files = [
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SECTION_SUFFIXES
        and (pattern is None or fnmatch.fnmatch(p.name, pattern))
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def section_header(path: Path, *, colour: bool = False, labels: bool = False) -> tuple[tuple[int, int], np.dtype, str]:
    """``((Y, X), dtype, note)`` of a 2D section file from its header only (``note``: what reading
    changes, empty when nothing). ``colour`` and ``labels`` as in :class:`SectionFiles`."""
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            with tifffile.TiffFile(path) as tif:
                if len(tif.pages) > 1:
                    raise UserError(f"{path} is a multi-page TIFF; a section folder holds one 2D image per file: "
                                    "move the stack out of the folder and give it on its own")
                page = tif.pages[0]
                shape, axes, dtype = tuple(page.shape), page.axes, np.dtype(page.dtype).newbyteorder("=")
        else:
            with Image.open(path) as im:
                mode, shape, axes = im.mode, (im.height, im.width), "YX"
    except (OSError, tifffile.TiffFileError) as exc:
        raise UserError(f"{path} is not a readable image ({exc}); check or remove the file") from None
    if path.suffix.lower() in TIFF_SUFFIXES:
        if colour and len(shape) == 3 and "S" in axes:
            return tuple(s for s, a in zip(shape, axes) if a != "S"), dtype, "colour (multi-sample) TIFF sections: channel 0 kept"  # type: ignore[return-value]
        if len(shape) != 2:
            raise UserError(f"{path} has shape {shape} (axes {axes}); sections must be 2D grayscale images: save one channel")
        return shape, dtype, ""  # type: ignore[return-value]
    if colour and mode == "P":
        return shape, np.dtype("uint8"), ("palette PNGs: read as palette indices" if labels else "palette PNGs: converted to grey levels")
    if colour and mode in COLOUR_MODES:
        return shape, np.dtype("uint8"), f"{mode} images: channel 0 kept"
    if mode not in PIL_DTYPES:
        fix = "convert reads grey, palette, RGB(A) and 16-bit images: save it as one of those" if colour else "sections must be grayscale: convert it"
        raise UserError(f"{path} is a {mode} image; {fix}")
    return shape, np.dtype(PIL_DTYPES[mode]), ""


def read_section(path: Path, *, labels: bool = False) -> np.ndarray:
    """Pixels of one 2D section file (TIFF via tifffile, PNG via Pillow): channel 0 of colour images,
    palette PNGs as indices (``labels``) or grey levels; native byte order."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            data, axes = page.asarray(), page.axes
        if data.ndim == 3 and "S" in axes:
            data = np.take(data, 0, axis=axes.index("S"))
    else:
        with Image.open(path) as im:
            if im.mode == "P" and not labels:
                im = im.convert("L")
            data = np.asarray(im)
        if data.ndim == 3:
            data = data[..., 0]
    return data.astype(data.dtype.newbyteorder("="), copy=False)


class SectionFiles:
    """2D section files, one per z, as a lazy ZYX array source: ``src[z]`` opens that file only.

    Opening reads every file's header (not its pixels) and names the first file whose size or dtype
    differs from the first section's, so a bad folder stops before anything is read or written.

    Args:
        files: the section files in z order (``.tif``/``.tiff`` via tifffile, ``.png`` via Pillow).
        colour: accept colour sections (channel 0 kept) and palette PNGs (as ``labels`` says), as
            ``convert`` does; default False: refuse them (EM volumes are grayscale).
        labels: with ``colour``, read palette PNGs as their indices (True) or grey levels (default False).

    Attributes:
        files, shape (Z, Y, X in voxels), dtype, chunks (one section), notes (what reading changes,
        one line each, sorted).
    """

    def __init__(self, files: Sequence[Path], *, colour: bool = False, labels: bool = False):
        self.files = [Path(f) for f in files]
        self.labels = labels
        headers = [section_header(f, colour=colour, labels=labels) for f in self.files]
        (shape, dtype, _), first = headers[0], self.files[0]
        for f, (s, d, _) in zip(self.files[1:], headers[1:]):
            if s != shape or d != dtype:
                fix = "the same size: crop or pad them" if s != shape else "the same dtype: save them alike"
                raise UserError(f"{f} is {s[0]}x{s[1]} {d} but {first.name} is {shape[0]}x{shape[1]} {dtype}; "
                                f"all sections must have {fix}, or remove the odd file")
        self.shape = (len(self.files), *shape)
        self.dtype = np.dtype(dtype)
        self.chunks = (1, *shape)
        self.notes = sorted({n for _, _, n in headers if n})

    @classmethod
    def in_folder(cls, folder: Path, spec: str, *, pattern: str | None = None, colour: bool = False,
                  labels: bool = False) -> SectionFiles:
        """The sections of ``folder`` (see :func:`section_files`); ``spec`` names it in messages."""
        files = section_files(folder, pattern)
        if not files:
            which = f"matching {pattern!r}" if pattern else "(.tif, .tiff or .png)"
            raise UserError(f"{spec} holds no image sections {which}; give a folder of 2D images, a TIFF stack, "
                            "file.h5:/key or a zarr volume")
        return cls(files, colour=colour, labels=labels)

    def read(self, z: int) -> np.ndarray:
        """Section ``z`` (0-based) as numpy, checked against the headers read at opening."""
        data = read_section(self.files[z], labels=self.labels)
        if data.shape != self.shape[1:] or data.dtype != self.dtype:
            raise UserError(f"{self.files[z]} decoded to {data.shape} {data.dtype}, not {self.shape[1:]} {self.dtype}; check the file")
        return data

    def __getitem__(self, key: tuple) -> np.ndarray:
        return _gather(self.read, key[0], key[1:], self.dtype)


def open_section_folder(folder: Path, spec: str, *, voxel_size: Sizes = None, offset: Offset = None) -> Volume:
    """Open a folder of 2D grayscale sections as a read-only ZYX volume.

    Args:
        folder: folder of .tif/.tiff/.png files, one section each.
        spec: the spec as the user gave it.
        voxel_size: nm, ZYX (default 1.0: section files carry no reliable voxel size).
        offset: voxels, ZYX (default 0).
    """
    source = SectionFiles.in_folder(folder, spec)
    voxel_size, offset = _or(voxel_size, (1.0, 1.0, 1.0)), _or(offset, (0, 0, 0))
    return Volume(source, path=spec, axes="zyx", voxel_size=voxel_size, offset=offset)


def open_image(path: Path, spec: str, *, voxel_size: Sizes = None, offset: Offset = None) -> Volume:
    """Open one 2D grayscale PNG as a YX image (read whole: it is one section).

    Args:
        path: the .png file.
        spec: the spec as the user gave it.
        voxel_size: nm, ZYX (default 1.0).
        offset: voxels, ZYX (default 0).
    """
    data = SectionFiles([path]).read(0)
    voxel_size, offset = _or(voxel_size, (1.0, 1.0, 1.0)), _or(offset, (0, 0, 0))
    return Volume(data, path=spec, axes="yx", voxel_size=voxel_size, offset=offset)
