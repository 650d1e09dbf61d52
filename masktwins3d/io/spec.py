"""``open_volume(spec)``: pick the reader for a volume spec.

A spec is a local path, read as (first match wins):

0. tensorstore: ``precomputed://PATH_OR_URL`` (Neuroglancer precomputed; ``scale_index`` or a scale
   key ``precomputed://PATH/8_8_40`` picks the resolution) and ``n5://PATH_OR_URL`` (an N5 dataset),
   see :mod:`.tensorstore_io`;
1. HDF5: ``file.h5:/key`` (``.h5``, ``.hdf5``, ``.hdf``; also ``file.h5/key``; no key: the only dataset);
2. zarr: a path with a ``*.zarr`` part or inside a zarr store (arrays, groups, OME-Zarr images);
3. a folder: 2D ``.tif``/``.tiff``/``.png`` sections, one per z;
4. a ``.tif``/``.tiff`` file (multi-page: ZYX) or a ``.png`` file (YX).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Sequence

from ..errors import UserError
from .hdf5_io import open_hdf5, split_hdf5_spec
from .tensorstore_io import N5, PRECOMPUTED, is_tensorstore_spec, open_n5, open_precomputed, split_spec
from .tiff_io import IMAGE_SUFFIXES, TIFF_SUFFIXES, open_image, open_section_folder, open_tiff
from .volume import Volume, check_offset, check_voxel_size
from .zarr_io import is_zarr_spec, open_zarr

FORMATS = (
    "zarr/OME-Zarr (.zarr), HDF5 (file.h5:/key), TIFF stacks (.tif, .tiff), PNG images, folders of .tif/.png sections, "
    "Neuroglancer precomputed (precomputed://PATH) and N5 (n5://PATH/dataset)"
)


def open_volume(
    spec: str | Path,
    *,
    voxel_size: Sequence[float] | None = None,
    offset: Sequence[int] | None = None,
    mode: str = "r",
    scale_index: int | None = None,
) -> Volume:
    """Open a volume lazily: nothing but metadata (and section headers) is read until indexed.

    Args:
        spec: path of the volume (see the module docstring for the forms).
        voxel_size: nm per voxel, ZYX; replaces the file's metadata (default: from the file, else 1.0).
        offset: voxel coordinate of index 0, ZYX; replaces the file's metadata (default: from the
            file, else 0). Offsets read from a file do not change when only ``voxel_size`` is given.
        mode: "r" (default) or "r+" to write into an existing zarr or precomputed volume (other formats are read only).
        scale_index: resolution level of a precomputed volume (default: 0, full resolution, or
            the scale its spec names); refused for other formats.

    Raises:
        UserError: missing file or key, unknown format, unreadable or inconsistent metadata.
    """
    spec = str(spec)
    if not spec.strip():
        raise UserError(f"volume path is empty; give a volume: {FORMATS}")
    if mode not in ("r", "r+"):
        raise ValueError(f"mode must be 'r' or 'r+', not {mode!r}")
    if voxel_size is not None:
        voxel_size = check_voxel_size(voxel_size, f"{spec} voxel_size override")
    if offset is not None:
        offset = check_offset(offset, f"{spec} offset override")
    overrides = {"voxel_size": voxel_size, "offset": offset}
    if scale_index is not None and not spec.startswith(PRECOMPUTED):
        raise UserError(f"{spec}: --scale picks a resolution level of a precomputed:// volume; drop it for this volume")
    path = Path(spec)

    hdf5 = split_hdf5_spec(spec) if not is_tensorstore_spec(spec) else None
    if is_tensorstore_spec(spec):
        scheme, location = split_spec(spec)
        if scheme == PRECOMPUTED:
            volume = open_precomputed(location, spec, scale_index=scale_index, mode=mode, **overrides)
        else:
            volume = open_n5(location, spec, mode=mode, **overrides)
        volume._reopen = partial(open_volume, spec, mode=mode, scale_index=scale_index, **overrides)
        return volume
    if hdf5 is not None:
        _read_only(spec, mode, "HDF5")
        volume = open_hdf5(hdf5[0], hdf5[1], spec, **overrides)
    elif is_zarr_spec(path):
        volume = open_zarr(path, spec, mode=mode, **overrides)
    elif not path.exists():
        raise UserError(f"{spec} does not exist; check the path")
    elif path.is_dir():
        _read_only(spec, mode, "a section folder")
        volume = open_section_folder(path, spec, **overrides)
    elif path.suffix.lower() in TIFF_SUFFIXES:
        _read_only(spec, mode, "TIFF")
        volume = open_tiff(path, spec, **overrides)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        _read_only(spec, mode, "PNG")
        volume = open_image(path, spec, **overrides)
    else:
        raise UserError(f"{spec}: unknown volume format {path.suffix or '(no extension)'!r}; masktwins3d reads {FORMATS}")
    volume._reopen = partial(open_volume, spec, mode=mode, **overrides)
    return volume


def _read_only(spec: str, mode: str, kind: str) -> None:
    if mode != "r":
        raise UserError(f"{spec}: {kind} volumes are read only; write results to zarr (out.zarr) instead")
