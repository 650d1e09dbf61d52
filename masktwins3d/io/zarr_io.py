"""zarr (v2 and v3) and OME-Zarr (0.4 and 0.5) volumes: open and create.

A spec is a local path: an array (``x.zarr``, ``x.zarr/raw``, ``x.zarr/group/labels``) or an
OME-Zarr multiscale group, of which the first dataset (full resolution) is opened. Geometry comes
from, in order: the multiscales of the group named by the spec, the multiscales of the array's
parent group (an array such as ``x.zarr/raw/0``), the array's own attributes (see
:mod:`.metadata`), else voxel size 1.0 nm and offset 0.
"""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from ..errors import UserError
from .metadata import find_multiscales, geometry_from_attrs, ome_attributes, ome_axes, ome_dataset, ome_geometry
from .volume import AXES, Volume, check_offset, check_voxel_size, default_axes

ZARR_SUFFIX = ".zarr"
MAX_LISTED = 12
"""How many keys a message lists at most."""

FAST_WRITE_CODEC = ("lz4", 5)
"""Blosc codec and level of a ``fast_write`` volume (the default is zstd level 3)."""


def is_zarr_node(path: Path) -> bool:
    """Whether ``path`` is a zarr v2 or v3 array or group folder."""
    return any((path / name).is_file() for name in ("zarr.json", ".zarray", ".zgroup"))


def is_zarr_spec(path: Path) -> bool:
    """Whether ``path`` names something in a zarr store: a ``*.zarr`` part, or a zarr node at or above it."""
    if any(part.lower().endswith(ZARR_SUFFIX) for part in path.parts):
        return True
    return any(is_zarr_node(p) for p in (path, *path.parents) if p.exists())


def open_zarr(
    path: Path,
    spec: str,
    *,
    voxel_size: Sequence[float] | None = None,
    offset: Sequence[int] | None = None,
    mode: str = "r",
) -> Volume:
    """Open a zarr array or OME-Zarr group as a :class:`Volume`.

    Args:
        path: local folder of the array or group.
        spec: the spec as the user gave it (for messages and ``Volume.path``).
        voxel_size: nm, ZYX; overrides the metadata (default: from metadata).
        offset: voxels, ZYX; overrides the metadata (default: from metadata).
        mode: "r" (read only) or "r+" (read and write).
    """
    if not is_zarr_node(path):
        _raise_missing(path, spec)
    node = zarr.open(store=str(path), mode=mode)
    multiscale = dataset = None
    if isinstance(node, zarr.Group):
        multiscales = find_multiscales(node.attrs)
        if multiscales is None:
            keys = array_keys(node)
            shown = ", ".join(f"{spec.rstrip('/')}/{k}" for k in keys[:MAX_LISTED]) or "none"
            raise UserError(f"{spec} is a zarr group without OME-Zarr multiscales; name an array inside it: {shown}")
        multiscale, dataset = ome_dataset(multiscales, None, spec)
        ds_path = str(dataset.get("path", "")).strip("/")
        try:
            array = node[ds_path]
        except KeyError:
            raise UserError(f"{spec}: OME-Zarr dataset {ds_path!r} is listed in the multiscales but missing; fix the metadata") from None
        if not isinstance(array, zarr.Array):
            raise UserError(f"{spec}: OME-Zarr dataset {ds_path!r} is a group, not an array; fix the metadata")
    else:
        array = node
        parent = path.parent
        if is_zarr_node(parent):
            group = zarr.open(store=str(parent), mode="r")
            multiscales = find_multiscales(group.attrs) if isinstance(group, zarr.Group) else None
            found = ome_dataset(multiscales, path.name, str(parent)) if multiscales else None
            if found:
                multiscale, dataset = found

    shape = tuple(array.shape)
    if multiscale is not None:
        axes, drop = ome_axes(multiscale, len(shape), spec)
        axes = axes or default_axes(len(shape), spec)
        if any(s != 1 for s in shape[:drop]):
            raise UserError(f"{spec} has a time axis of length {shape[0]}; masktwins3d reads one time point: save it as its own array")
        if voxel_size is None or offset is None:
            file_vs, file_off = ome_geometry(
                multiscale, dataset, len(shape), spec, need_unit=voxel_size is None, need_offset=offset is None
            )
    else:
        drop = 0
        axes = default_axes(len(shape), spec)
        if voxel_size is None or offset is None:
            n_spatial = len(axes.lstrip("c"))
            file_vs, file_off = geometry_from_attrs(dict(array.attrs), n_spatial, spec, need_offset=offset is None)
    return Volume(
        array,
        path=spec,
        axes=axes,
        voxel_size=file_vs if voxel_size is None else voxel_size,
        offset=file_off if offset is None else offset,
        drop=drop,
        writable=mode == "r+",
    )


def array_keys(group: zarr.Group) -> list[str]:
    """What can be opened below ``group``: OME-Zarr images and the arrays outside them, relative paths, sorted."""
    members = dict(group.members(max_depth=None))
    images = [k for k, m in members.items() if isinstance(m, zarr.Group) and find_multiscales(m.attrs) is not None]
    arrays = [
        k for k, m in members.items()
        if isinstance(m, zarr.Array) and not any(k.startswith(image + "/") for image in images)
    ]
    return sorted(images + arrays)


def _raise_missing(path: Path, spec: str) -> None:
    ancestor = next((p for p in path.parents if p.exists()), None)
    if ancestor is not None and is_zarr_node(ancestor):
        group = zarr.open(store=str(ancestor), mode="r")
        if isinstance(group, zarr.Group):
            keys = array_keys(group)
            shown = ", ".join(keys[:MAX_LISTED]) + (" ..." if len(keys) > MAX_LISTED else "") or "none"
            missing = path.relative_to(ancestor).as_posix()
            raise UserError(f"{spec}: zarr group {ancestor} has no array {missing!r}; arrays in it: {shown}")
    if path.exists():
        raise UserError(f"{spec} is not a zarr array or group (no zarr.json, .zarray or .zgroup); check the path")
    raise UserError(f"{spec} does not exist; check the path")


# ---- writing ------------------------------------------------------------------------------------


def default_chunks(shape: Sequence[int], axes: str) -> tuple[int, ...]:
    """One section of up to 256 x 256 voxels per chunk, all channels together."""
    chunks = [min(int(s), 256) for s in shape]
    if "z" in axes:
        chunks[axes.index("z")] = 1
    if axes.startswith("c"):
        chunks[0] = int(shape[0])
    return tuple(max(c, 1) for c in chunks)


def check_new_volume(spec: str, shape, dtype, axes, voxel_size, offset, chunks):
    """The geometry of a volume to create as ``(dtype, shape, axes, voxel_size, offset, chunks)``
    (axes and chunks filled in by default), or a one-line :class:`UserError` naming ``spec``."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise UserError(f"dtype {dtype!r} for {spec} is not a numpy dtype; use e.g. float32, uint8") from None
    if dtype.kind not in "biuf":
        raise UserError(f"dtype {dtype} for {spec} is not supported; use bool, an integer or a float type")
    shape = tuple(int(s) for s in shape)
    axes = axes or default_axes(len(shape), spec)
    if axes not in AXES or len(axes) != len(shape) or any(s <= 0 for s in shape):
        raise UserError(f"{spec}: shape {shape} with axes {axes!r} is not valid; give positive sizes for one of {', '.join(AXES)}")
    chunks = tuple(int(c) for c in chunks) if chunks is not None else default_chunks(shape, axes)
    if len(chunks) != len(shape) or any(c <= 0 for c in chunks):
        raise UserError(f"{spec}: chunks {chunks} must be {len(shape)} positive sizes for shape {shape}")
    return dtype, shape, axes, check_voxel_size(voxel_size, spec), check_offset(offset, spec), chunks


def create_volume(
    path: str | Path,
    shape: Sequence[int],
    dtype,
    *,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    offset: Sequence[int] = (0, 0, 0),
    axes: str | None = None,
    chunks: Sequence[int] | None = None,
    overwrite: bool = False,
    fill_value=0,
    name: str | None = None,
    fast_write: bool = False,
) -> Volume:
    """Create a writable OME-Zarr 0.5 (zarr v3) volume and return it open in mode "r+"; a
    ``precomputed://PATH`` or ``n5://PATH/dataset`` spec creates a Neuroglancer precomputed volume or an
    N5 dataset instead (:func:`~.tensorstore_io.create_tensorstore`, the same geometry, ``chunks`` as given).

    ``path`` becomes an OME-Zarr group holding one full-resolution array ``0`` (zarr v3,
    blosc-zstd compressed, ``dimension_names`` set) and multiscales metadata with axes in nanometer,
    ``scale = voxel_size`` and ``translation = offset * voxel_size``. ``open_volume(path)`` returns
    the same geometry. ``path`` is a folder (``out.zarr``) or a group inside a zarr store
    (``out.zarr/prob``: everything below the first ``*.zarr`` part, or below an existing zarr
    group, is a key in that store); missing parent groups are created.

    Args:
        path: output zarr path (``out.zarr`` or ``out.zarr/name``; a ``.zarr`` suffix is recommended, not required).
        shape: full array shape, e.g. (Z, Y, X) or (C, Z, Y, X).
        dtype: numpy dtype (bool, integer or float).
        voxel_size: nm per voxel, ZYX (default 1.0).
        offset: voxel coordinate of index 0, ZYX (default 0).
        axes: "zyx", "czyx", "yx" or "cyx" (default: from the number of dimensions, 2/3/4 -> yx/zyx/czyx).
        chunks: chunk shape (default: one section of up to 256 x 256, all channels; see :func:`default_chunks`).
        overwrite: replace an existing zarr node at ``path`` (default False: refuse).
        fill_value: value of never-written voxels (default 0).
        name: the image name in the OME metadata (default: the last part of ``path``; a staged
            output passes its final name).
        fast_write: blosc-lz4 instead of blosc-zstd and chunk keys ``c.z.y.x`` in the array's
            folder instead of nested folders (default False): about 3x faster to write, files
            about twice as large; still zarr v3 / OME-Zarr 0.5 that any reader opens. For label
            volumes, which compress well with any codec (zarr only).
    """
    spec = str(path)
    given_chunks = chunks
    dtype, shape, axes, voxel_size, offset, chunks = check_new_volume(spec, shape, dtype, axes, voxel_size, offset, chunks)
    from .tensorstore_io import create_tensorstore, is_tensorstore_spec

    if is_tensorstore_spec(spec):
        return create_tensorstore(spec, shape, dtype, voxel_size=voxel_size, offset=offset, axes=axes, chunks=given_chunks,
                                  overwrite=overwrite, fill_value=fill_value)
    path = Path(spec)
    root, key = _split_store(path)
    if path.exists():
        if not overwrite:
            raise UserError(f"{spec} exists; pass --overwrite to replace it or choose another output")
        if not is_zarr_node(path):
            raise UserError(f"{spec} exists and is not a zarr array or group; remove it yourself or choose another output")
        shutil.rmtree(path)
    group = _make_group(root, key, spec)
    group.attrs.update(ome_attributes(axes, voxel_size, offset, name=name or path.name))
    cname, clevel = FAST_WRITE_CODEC if fast_write else ("zstd", 3)
    group.create_array(
        "0",
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        compressors=BloscCodec(cname=cname, clevel=clevel, shuffle="bitshuffle" if dtype.itemsize == 1 else "shuffle"),
        fill_value=fill_value,
        dimension_names=tuple(axes),
        chunk_key_encoding={"name": "default", "separator": "." if fast_write else "/"},
    )
    return reopen_zarr(path, spec, "r+")


def reopen_zarr(path: Path, spec: str, mode: str = "r") -> Volume:
    """:func:`open_zarr` of a volume that can be reopened and pickled (to dask workers) the same
    way, as :func:`~masktwins3d.io.open_volume` opens it."""
    volume = open_zarr(path, spec, mode=mode)
    volume._reopen = partial(reopen_zarr, path, spec, mode)
    return volume


def _split_store(path: Path) -> tuple[Path, str]:
    """``(store root, key inside it)``: the first ``*.zarr`` part, else the topmost existing zarr
    group above ``path``, else ``path`` itself (a standalone store)."""
    parts = path.parts
    for i, part in enumerate(parts):
        if part.lower().endswith(ZARR_SUFFIX):
            return Path(*parts[: i + 1]), "/".join(parts[i + 1 :])
    stores = [p for p in path.parents if is_zarr_node(p)]
    if stores:
        return stores[-1], path.relative_to(stores[-1]).as_posix()
    return path, ""


def _make_group(root: Path, key: str, spec: str) -> zarr.Group:
    if not key:
        root.parent.mkdir(parents=True, exist_ok=True)
        return zarr.open_group(str(root), mode="w", zarr_format=3)
    if root.exists() and not is_zarr_node(root) and any(root.iterdir()):
        raise UserError(f"{spec}: {root} exists and is not a zarr group; choose another output")
    if is_zarr_node(root):
        node = zarr.open(store=str(root), mode="r")
        if not isinstance(node, zarr.Group) or node.metadata.zarr_format != 3:
            kind = "array" if isinstance(node, zarr.Array) else f"zarr v{node.metadata.zarr_format} group"
            raise UserError(f"{spec}: {root} is a {kind}; outputs go in zarr v3 groups: choose another output")
    group = zarr.open_group(str(root), mode="a", zarr_format=3)
    parts = key.split("/")
    for part in parts[:-1]:
        if part in group and not isinstance(group[part], zarr.Group):
            raise UserError(f"{spec}: {part!r} inside {root} is an array, not a group; choose another output")
        group = group.require_group(part)
    return group.create_group(parts[-1])


def check_dense(volume, what: str, allow_missing: bool = False, fix: str = "--allow-missing") -> None:
    """Refuse an image volume with chunks that were never written: zarr reads them as its fill
    value, so a lost chunk of a raw EM volume would otherwise become a slab of zeros silently.
    Only zarr volumes are checked (other formats have no missing chunks); label volumes may be
    sparse (empty chunks are not stored) and are not passed here.

    Args:
        volume: an opened :class:`~masktwins3d.io.volume.Volume`.
        what: the flag or key that named it, for the message.
        allow_missing: accept missing chunks (they read as the fill value).
        fix: how the user says so (``--allow-missing`` or a config key).
    """
    source = getattr(volume, "_source", None)
    if allow_missing or not isinstance(source, zarr.Array):
        return
    total, stored = int(source.nchunks), int(source.nchunks_initialized)
    if stored < total:
        raise UserError(f"{what} {volume.path}: {total - stored} of its {total} chunks are missing and would read as "
                        f"{source.fill_value}; restore them from a copy, or pass {fix} if that is intended")
