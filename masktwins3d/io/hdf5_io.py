"""HDF5 volumes: ``file.h5:/key`` (also ``.hdf5``, ``.hdf``; ``file.h5/key`` works too).

The file stays open (read only) and every read slices the h5py dataset, so only the requested
region is read. Geometry comes from the dataset's attributes (CREMI, funlib style): voxel size from
``resolution_zyx_nm``, ``resolution`` or ``voxel_size`` (nm, ZYX), offset from ``offset`` in **nm**
(ZYX; divided by the voxel size). Without them: 1.0 nm and 0.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import h5py

from ..errors import UserError
from .metadata import VOXEL_SIZE_ATTRS, geometry_from_attrs
from .volume import Volume, default_axes

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
MAX_LISTED = 12
"""How many keys a message lists at most."""

_COLON_SPEC = re.compile(r"^(.+?\.(?:h5|hdf5|hdf)):(.*)$", re.IGNORECASE)


def split_hdf5_spec(spec: str) -> tuple[Path, str | None] | None:
    """``(file, key)`` of an HDF5 spec (``key`` None when absent), or None if ``spec`` is not HDF5.

    Accepts ``file.h5:/key``, ``file.h5:key``, ``file.h5/key`` (``file.h5`` being a file) and ``file.h5``.
    """
    match = _COLON_SPEC.match(spec)
    if match:
        return Path(match.group(1)), match.group(2).strip("/") or None
    parts = Path(spec).parts
    for i, part in enumerate(parts):
        if part.lower().endswith(HDF5_SUFFIXES):
            file, key = Path(*parts[: i + 1]), "/".join(parts[i + 1 :])
            if not key or not file.is_dir():
                return file, key or None
    return None


def dataset_keys(f: h5py.File) -> list[str]:
    """Paths of all datasets in the file, sorted."""
    keys: list[str] = []
    f.visititems(lambda name, obj: keys.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(keys)


def inherited_attrs(f: h5py.File, key: str) -> dict:
    """The dataset's attributes; a voxel size missing there is taken from its nearest group, up to
    the file's root (VNC III keeps ``resolution_zyx_nm`` on the root). The offset stays the dataset's own."""
    attrs = dict(f[key].attrs)
    if any(name in attrs for name in VOXEL_SIZE_ATTRS):
        return attrs
    parts = [p for p in key.split("/") if p]
    for depth in range(len(parts) - 1, -1, -1):
        group = f["/".join(parts[:depth])] if depth else f
        found = {name: group.attrs[name] for name in VOXEL_SIZE_ATTRS if name in group.attrs}
        if found:
            return {**attrs, **found}
    return attrs


def open_hdf5(
    file: Path,
    key: str | None,
    spec: str,
    *,
    voxel_size: Sequence[float] | None = None,
    offset: Sequence[int] | None = None,
) -> Volume:
    """Open one HDF5 dataset as a read-only :class:`Volume` (the file stays open until ``close()``).

    Args:
        file: the HDF5 file.
        key: dataset path inside it; None: the file's only dataset.
        spec: the spec as the user gave it (for messages and ``Volume.path``).
        voxel_size: nm, ZYX; overrides the attributes (default: from attributes, else 1.0).
        offset: voxels, ZYX; overrides the attributes (default: from attributes, else 0).
    """
    if not file.exists():
        raise UserError(f"{file} does not exist; check the path")
    try:
        f = h5py.File(file, "r")
    except OSError as exc:
        raise UserError(f"{file} is not a readable HDF5 file ({exc}); check the file") from None
    try:
        keys = dataset_keys(f)
        shown = ", ".join(f"{file}:/{k}" for k in keys[:MAX_LISTED]) + (" ..." if len(keys) > MAX_LISTED else "")
        if key is None:
            if len(keys) != 1:
                raise UserError(f"{file} holds {len(keys)} datasets; name one as file:/key: {shown or 'none'}")
            key = keys[0]
        if key not in f or not isinstance(f[key], h5py.Dataset):
            kind = "a group, not a dataset" if key in f else "missing"
            raise UserError(f"{file}: key {key!r} is {kind}; datasets in the file: {shown or 'none'}")
        dataset = f[key]
        axes = default_axes(dataset.ndim, spec)
        if voxel_size is None or offset is None:
            n_spatial = len(axes.lstrip("c"))
            file_vs, file_off = geometry_from_attrs(inherited_attrs(f, key), n_spatial, spec, need_offset=offset is None)
        return Volume(
            dataset,
            path=spec,
            axes=axes,
            voxel_size=file_vs if voxel_size is None else voxel_size,
            offset=file_off if offset is None else offset,
            closer=f.close,
        )
    except BaseException:
        f.close()
        raise
