"""Neuroglancer precomputed and N5 volumes through tensorstore: open and create.

Specs (``LOCATION`` is a local path or a tensorstore URL: ``gs://``, ``s3://``, ``https://``, ``file://``):

- ``precomputed://LOCATION``: the multiscale volume whose ``info`` file lies at ``LOCATION/info``;
  the scale is ``scale_index`` (default 0, full resolution), or name it by its key:
  ``precomputed://LOCATION/8_8_40``. Voxel size is the scale's ``resolution`` and offset its
  ``voxel_offset`` (both X, Y, Z in the file, Z, Y, X here); one channel reads as ZYX, several as CZYX.
- ``n5://LOCATION``: an N5 dataset (``LOCATION/attributes.json`` with ``dimensions``). N5 lists
  dimensions, blocks and geometry fastest axis first (X, Y, Z as Java tools write them); they are
  read as Z, Y, X. Voxel size from ``resolution`` ([x, y, z]) or ``pixelResolution``
  (``{"dimensions": [x, y, z], "unit": "nm"}``) of the dataset or a group above it; offset from
  ``offset`` ([x, y, z], in the resolution's unit, as funlib writes it). Without a resolution the
  voxel size must be given (``--voxel-size``).

Outputs (:func:`create_tensorstore`, :func:`copy_to_tensorstore`) take both specs: a one-scale
precomputed volume, or an N5 dataset with its geometry as :func:`n5_attributes` (``resolution``
X, Y, Z with ``units``, which BigDataViewer reads). Only local outputs are staged and replaced.

Reads are lazy: indexing a Volume reads the chunks it touches, on tensorstore's threads. Opening
and reading time out after :data:`TIMEOUT_S` seconds (a URL without network fails in one line).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UserError
from .metadata import UNIT_NM
from .volume import Volume, check_offset, check_voxel_size

PRECOMPUTED = "precomputed://"
N5 = "n5://"
SCHEMES = (PRECOMPUTED, N5)

TIMEOUT_S = float(os.environ.get("MASKTWINS3D_TENSORSTORE_TIMEOUT", 60))
"""Seconds an open or a read may take before it fails (env MASKTWINS3D_TENSORSTORE_TIMEOUT)."""

PRECOMPUTED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32")
"""Data types Neuroglancer precomputed can hold."""

N5_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")
"""Data types N5 can hold."""

OUTPUT_DTYPES = {PRECOMPUTED: PRECOMPUTED_DTYPES, N5: N5_DTYPES}
FORMAT_NAME = {PRECOMPUTED: "precomputed", N5: "N5"}

N5_VERSION = "2.5.0"
"""The N5 version written to a new container's root ``attributes.json`` (read by N5 2.x and later)."""

_REMOTE = ("gs://", "s3://", "http://", "https://", "file://", "memory://")


class MissingVoxelSize(UserError):
    """An N5 dataset without resolution attributes, opened without a voxel size."""


def is_tensorstore_spec(spec: str) -> bool:
    """Whether ``spec`` names a tensorstore volume (``precomputed://`` or ``n5://``)."""
    return str(spec).startswith(SCHEMES)


def split_spec(spec: str) -> tuple[str, str]:
    """``(scheme, location)`` of a tensorstore spec, e.g. ``("precomputed://", "/data/raw")``."""
    spec = str(spec)
    scheme = next(s for s in SCHEMES if spec.startswith(s))
    location = spec[len(scheme):]
    if not location.strip("/"):
        raise UserError(f"{spec} names no location; write {scheme}PATH or {scheme}gs://bucket/path")
    return scheme, location


def local_path(location: str) -> Path | None:
    """The local folder of ``location`` (a path or ``file://`` URL), None for a remote URL."""
    if location.startswith("file://"):
        return Path(location[len("file://"):])
    if location.startswith(_REMOTE):
        return None
    return Path(location).expanduser()


def kvstore_url(location: str) -> str:
    """tensorstore kvstore URL of a folder: a remote URL as it is, a local path as ``file://`` (absolute), ending in /."""
    path = local_path(location)
    url = location if path is None else "file://" + os.path.abspath(path)
    return url.rstrip("/") + "/"


def _ts():
    try:
        import tensorstore as ts
    except ImportError:
        raise UserError("precomputed:// and n5:// volumes need tensorstore: pip install 'masktwins3d[formats]'") from None
    return ts


def _wait(future, what: str, spec: str):
    try:
        return future.result(timeout=TIMEOUT_S)
    except TimeoutError:
        raise UserError(f"{spec}: {what} did not finish within {TIMEOUT_S:g} s; check the URL and the network "
                        "(or raise MASKTWINS3D_TENSORSTORE_TIMEOUT)") from None
    except ValueError as exc:
        detail = str(exc).split(" [")[0].splitlines()[0]
        raise UserError(f"{spec}: {what} failed ({detail}); check the path or URL") from None


def read_json(location: str, key: str, spec: str) -> dict | None:
    """The JSON object stored at ``location/key`` (None when absent), read through tensorstore's kvstore."""
    ts = _ts()
    kv = _wait(ts.KvStore.open(kvstore_url(location)), "opening the store", spec)
    result = _wait(kv.read(key), f"reading {key}", spec)
    if result.state != "value":
        return None
    try:
        value = json.loads(bytes(result.value))
    except ValueError:
        raise UserError(f"{spec}: {key} is not valid JSON; fix or replace it") from None
    if not isinstance(value, dict):
        raise UserError(f"{spec}: {key} is not a JSON object; fix or replace it")
    return value


class TensorStoreSource:
    """An array source (see :class:`~.volume.Volume`) over a tensorstore view, dims ordered C, Z, Y, X.

    Args:
        store: tensorstore ``TensorStore`` with origin 0 on every dimension.
        spec: the volume's spec, for messages.
    """

    def __init__(self, store, spec: str):
        self._store = store
        self._spec = spec
        self.shape = tuple(int(s) for s in store.shape)
        self.dtype = np.dtype(store.dtype.numpy_dtype)
        chunk = store.chunk_layout.read_chunk.shape
        self.chunks = tuple(int(c) for c in chunk) if chunk is not None else None

    def __getitem__(self, key: tuple) -> np.ndarray:
        return np.asarray(self._store[key].read().result(timeout=TIMEOUT_S))

    def __setitem__(self, key: tuple, value: Any) -> None:
        self._store[key].write(np.ascontiguousarray(value, dtype=self.dtype)).result(timeout=TIMEOUT_S)


def _czyx(store):
    """``store`` with its dimensions reversed (X, Y, Z(, C) -> (C,) Z, Y, X) and its origin moved to 0."""
    ts = _ts()
    view = store[ts.d[:].transpose[::-1]]
    return view[ts.d[:].translate_to[0]]


# ---- Neuroglancer precomputed --------------------------------------------------------------------


def open_precomputed(
    location: str,
    spec: str,
    *,
    scale_index: int | None = None,
    voxel_size: Sequence[float] | None = None,
    offset: Sequence[int] | None = None,
    mode: str = "r",
) -> Volume:
    """Open one scale of a Neuroglancer precomputed volume as a :class:`Volume` (see the module docstring).

    Args:
        location: folder or URL holding ``info`` (or ``<that>/<scale key>``).
        spec: the spec as the user gave it (for messages and ``Volume.path``).
        scale_index: which scale (default: the one named by a scale key in ``location``, else 0).
        voxel_size: nm, ZYX; overrides the scale's resolution.
        offset: voxels, ZYX; overrides the scale's voxel_offset.
        mode: "r" or "r+" (write into the existing scale).
    """
    ts = _ts()
    info = read_json(location, "info", spec)
    named = None
    if info is None:
        parent, _, key = location.rstrip("/").rpartition("/")
        parent_info = read_json(parent, "info", spec) if parent and key else None
        keys = [str(s.get("key")) for s in (parent_info or {}).get("scales", [])]
        if key not in keys:
            raise UserError(f"{spec}: no precomputed 'info' file at {location.rstrip('/')}/info; "
                            "give the folder (or URL) of a Neuroglancer precomputed volume")
        location, info, named = parent, parent_info, keys.index(key)
    scales = info.get("scales")
    if not isinstance(scales, list) or not scales or info.get("@type", "neuroglancer_multiscale_volume") != "neuroglancer_multiscale_volume":
        raise UserError(f"{spec}: 'info' is not a precomputed volume's (no scales); fix it or give another volume")
    if scale_index is not None and named is not None and scale_index != named:
        raise UserError(f"{spec} names scale {named} by its key but --scale {scale_index} was given; give one of them")
    index = named if named is not None else (0 if scale_index is None else int(scale_index))
    if not 0 <= index < len(scales):
        listed = ", ".join(f"{i} ({_nm(s.get('resolution', [])[::-1])} nm)" for i, s in enumerate(scales))
        raise UserError(f"{spec}: scale {index} is out of range; the volume has {len(scales)} scale(s): {listed}; "
                        f"pass --scale 0..{len(scales) - 1}")
    scale = scales[index]
    store = _wait(ts.open({"driver": "neuroglancer_precomputed", "kvstore": kvstore_url(location), "scale_index": index},
                          read=True, write=mode == "r+"), "opening the precomputed volume", spec)
    source = TensorStoreSource(_czyx(store), spec)
    try:
        file_vs = [float(v) for v in scale["resolution"]][::-1]
        file_off = [int(v) for v in scale.get("voxel_offset", [0, 0, 0])][::-1]
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{spec}: scale {index} of 'info' has no valid resolution / voxel_offset; fix the info file") from None
    channels = int(info.get("num_channels", 1))
    return Volume(
        source,
        path=spec,
        axes="zyx" if channels == 1 else "czyx",
        voxel_size=file_vs if voxel_size is None else voxel_size,
        offset=file_off if offset is None else offset,
        drop=1 if channels == 1 else 0,
        writable=mode == "r+",
    )


def create_precomputed(
    location: str,
    spec: str,
    shape: Sequence[int],
    dtype: np.dtype,
    *,
    voxel_size: Sequence[float],
    offset: Sequence[int],
    axes: str,
    chunks: Sequence[int] | None,
    overwrite: bool,
    segmentation: bool = False,
) -> Volume:
    """Create a one-scale precomputed volume (raw encoding) and return it open for writing.

    Args:
        location: local folder or URL for ``info`` and the chunks.
        spec: the spec, for messages.
        shape: (Z, Y, X) or (C, Z, Y, X).
        dtype: one of :data:`PRECOMPUTED_DTYPES`.
        voxel_size: nm, ZYX (written as the scale's resolution, X, Y, Z).
        offset: voxels, ZYX (the scale's voxel_offset).
        axes: "zyx" or "czyx".
        chunks: chunk shape in the layout of ``shape`` (default 64 per spatial axis, cut to the volume).
        overwrite: replace an existing volume at ``location`` (default False: refuse).
        segmentation: write ``type: segmentation`` (integer labels) instead of ``image``.
    """
    ts = _ts()
    out = _new_output(location, spec, shape, dtype, axes=axes, chunks=chunks, voxel_size=voxel_size, offset=offset,
                      overwrite=overwrite, kind=PRECOMPUTED)
    spatial, chunk, voxel_size, offset = out.spatial, out.chunk, out.voxel_size, out.offset
    _wait(ts.open({
        "driver": "neuroglancer_precomputed",
        "kvstore": kvstore_url(location),
        "multiscale_metadata": {"type": "segmentation" if segmentation else "image", "data_type": dtype.name, "num_channels": out.channels},
        "scale_metadata": {
            "size": list(spatial[::-1]), "voxel_offset": list(offset[::-1]), "resolution": list(voxel_size[::-1]),
            "encoding": "raw", "chunk_size": list(chunk[::-1]),
        },
    }, create=True), "creating the precomputed volume", spec)
    return open_precomputed(location, spec, mode="r+")


@dataclass(frozen=True)
class NewOutput:
    """A checked precomputed / N5 output (see :func:`_new_output`).

    Args:
        spatial: (Z, Y, X) voxels. channels: 1 without a channel axis. chunk: (Z, Y, X) voxels.
        voxel_size: nm, ZYX. offset: voxels, ZYX.
    """

    spatial: tuple[int, int, int]
    channels: int
    chunk: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    offset: tuple[int, int, int]


def _new_output(location: str, spec: str, shape, dtype: np.dtype, *, axes: str, chunks, voxel_size, offset, overwrite: bool,
                kind: str) -> NewOutput:
    """Check a new ``kind`` (:data:`PRECOMPUTED` or :data:`N5`) output and clear its place: an
    existing volume of that kind is removed only with ``overwrite``; anything else is refused.
    Every check comes before anything is written or removed."""
    name, dtypes = FORMAT_NAME[kind], OUTPUT_DTYPES[kind]
    if axes not in ("zyx", "czyx"):
        raise UserError(f"{spec}: {name} outputs are 3D; axes {axes!r} cannot be written: choose a zarr output")
    if dtype.name not in dtypes:
        raise UserError(f"{spec}: {name} volumes cannot hold {dtype}; use one of {', '.join(dtypes)} (e.g. --dtype float32 or uint8)")
    spatial = tuple(int(s) for s in shape[-3:])
    chunk = tuple(min(64, s) for s in spatial) if chunks is None else tuple(int(c) for c in chunks)[-3:]
    out = NewOutput(spatial, int(shape[0]) if axes == "czyx" else 1, chunk, check_voxel_size(voxel_size, spec), check_offset(offset, spec))
    marker = "info" if kind == PRECOMPUTED else "attributes.json"
    existing = read_json(location, marker, spec)
    if kind == N5 and existing is not None and "dimensions" not in existing:
        existing = None  # an N5 group, not a dataset
    path = local_path(location)
    if existing is not None or (path is not None and path.exists() and any(path.iterdir())):
        if not overwrite:
            raise UserError(f"{spec} exists; pass --overwrite to replace it or choose another output")
        if path is None:
            raise UserError(f"{spec}: replacing a remote {name} volume is not supported; remove it first or choose another output")
        if existing is None:
            what = "a precomputed volume" if kind == PRECOMPUTED else "an N5 dataset"
            raise UserError(f"{spec}: {path} exists and is not {what}; remove it yourself or choose another output")
        shutil.rmtree(path)
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
    return out


def create_tensorstore(spec: str, shape: Sequence[int], dtype, *, voxel_size: Sequence[float], offset: Sequence[int], axes: str,
                       chunks: Sequence[int] | None = None, overwrite: bool = False, fill_value=0) -> Volume:
    """:func:`~masktwins3d.io.create_volume` for a ``precomputed://`` or ``n5://`` spec: a new volume
    (:func:`create_precomputed`, :func:`create_n5`) open for writing.

    Args:
        spec: ``precomputed://LOCATION`` or ``n5://LOCATION`` (see the module docstring).
        shape: (Z, Y, X) or (C, Z, Y, X). dtype: numpy dtype (:data:`OUTPUT_DTYPES`).
        voxel_size: nm, ZYX. offset: voxels, ZYX. axes: "zyx" or "czyx".
        chunks: chunk shape in the layout of ``shape`` (default 64 per spatial axis, cut to the volume).
        overwrite: replace an existing volume (default False: refuse).
        fill_value: must be 0 (both formats read unwritten voxels as 0).
    """
    scheme, location = split_spec(spec)
    if fill_value not in (0, None):
        raise UserError(f"{spec}: {FORMAT_NAME[scheme]} volumes read unwritten voxels as 0; fill value {fill_value!r} cannot be kept")
    create = create_precomputed if scheme == PRECOMPUTED else create_n5
    return create(location, spec, shape, np.dtype(dtype), voxel_size=voxel_size, offset=offset, axes=axes, chunks=chunks,
                  overwrite=overwrite)


def local_output(spec: str, dtype=None) -> Path:
    """The local folder of a ``precomputed://`` / ``n5://`` output that a verb stages (written beside
    it, renamed into place), after checking what can be checked before any work: a local location
    and, if given, a ``dtype`` the format holds.

    Raises:
        UserError: a remote location, or a dtype the format cannot hold.
    """
    scheme, location = split_spec(spec)
    path = local_path(location)
    if path is None:
        raise UserError(f"--output {spec}: outputs are written to a local {scheme}PATH; write locally, then upload the folder")
    if dtype is not None and np.dtype(dtype).name not in OUTPUT_DTYPES[scheme]:
        raise UserError(f"--output {spec}: {FORMAT_NAME[scheme]} volumes cannot hold {np.dtype(dtype)}; "
                        f"use one of {', '.join(OUTPUT_DTYPES[scheme])} (e.g. --dtype float32 or uint8)")
    return path


# ---- N5 ------------------------------------------------------------------------------------------


def open_n5(
    location: str,
    spec: str,
    *,
    voxel_size: Sequence[float] | None = None,
    offset: Sequence[int] | None = None,
    mode: str = "r",
) -> Volume:
    """Open an N5 dataset as a :class:`Volume` (see the module docstring for the geometry).

    Args:
        location: folder or URL of the dataset (holding ``attributes.json`` with ``dimensions``).
        spec: the spec as the user gave it.
        voxel_size: nm, ZYX; required when the dataset has no resolution attributes.
        offset: voxels, ZYX; overrides the ``offset`` attribute.
        mode: "r" or "r+".
    """
    ts = _ts()
    attrs = read_json(location, "attributes.json", spec)
    if attrs is None:
        raise UserError(f"{spec}: no N5 attributes.json at {location.rstrip('/')}; give the path of an N5 dataset, e.g. n5://data.n5/raw")
    if "dimensions" not in attrs:
        raise UserError(f"{spec} is an N5 group, not a dataset (no 'dimensions'); name a dataset inside it, e.g. {spec.rstrip('/')}/raw")
    ndim = len(attrs["dimensions"])
    if ndim not in (3, 4):
        raise UserError(f"{spec} has {ndim} dimensions; masktwins3d reads N5 datasets with X, Y, Z (and C) dimensions")
    store = _wait(ts.open({"driver": "n5", "kvstore": kvstore_url(location)}, read=True, write=mode == "r+"),
                  "opening the N5 dataset", spec)
    source = TensorStoreSource(_czyx(store), spec)
    file_vs, file_off = (None, None) if voxel_size is not None and offset is not None else n5_geometry(location, attrs, spec)
    if voxel_size is None and file_vs is None:
        raise MissingVoxelSize(f"{spec} has no resolution or pixelResolution attribute, so its voxel size is unknown; "
                        "pass --voxel-size Z,Y,X in nm, or add \"resolution\": [x, y, z] to its attributes.json")
    return Volume(
        source,
        path=spec,
        axes="zyx" if ndim == 3 else "czyx",
        voxel_size=file_vs if voxel_size is None else voxel_size,
        offset=(file_off or (0, 0, 0)) if offset is None else offset,
        writable=mode == "r+",
    )


def n5_geometry(location: str, attrs: dict, spec: str) -> tuple[tuple[float, ...] | None, tuple[int, ...] | None]:
    """``(voxel_size_nm ZYX or None, offset_voxels ZYX)`` from the dataset's attributes, the resolution
    falling back to the nearest group above it that has one."""
    found = _n5_resolution(attrs, spec)
    parent = location.rstrip("/")
    for _ in range(8):
        if found is not None or "/" not in parent.strip("/"):
            break
        parent = parent.rsplit("/", 1)[0]
        group = read_json(parent, "attributes.json", spec) if parent else None
        if group is None:
            break
        found = _n5_resolution(group, spec)
    if found is None:
        return None, None
    xyz_nm, unit_nm = found
    voxel_size = check_voxel_size(xyz_nm[::-1], f"{spec} N5 resolution")
    offset = (0, 0, 0)
    if "offset" in attrs:
        try:
            world = [float(v) * unit_nm for v in attrs["offset"]][:3][::-1]
        except (TypeError, ValueError):
            raise UserError(f"{spec}: N5 attribute 'offset' {attrs['offset']!r} is not 3 numbers [x, y, z]; fix it") from None
        voxels = [w / s for w, s in zip(world, voxel_size)]
        if len(voxels) != 3 or not all(abs(v - round(v)) < 1e-3 for v in voxels):
            raise UserError(f"{spec}: N5 offset {attrs['offset']} is not a whole number of voxels of {list(voxel_size)} nm; pass --offset")
        offset = tuple(int(round(v)) for v in voxels)
    return voxel_size, offset


def create_n5(
    location: str,
    spec: str,
    shape: Sequence[int],
    dtype: np.dtype,
    *,
    voxel_size: Sequence[float],
    offset: Sequence[int],
    axes: str,
    chunks: Sequence[int] | None,
    overwrite: bool,
) -> Volume:
    """Create an N5 dataset (gzip blocks) as Java tools write it and return it open for writing.

    Dimensions and blocks are listed X, Y, Z (then C); the geometry is written as :func:`n5_attributes`
    (``resolution`` and ``units``, ``pixelResolution``, ``offset``), which BigDataViewer / n5-viewer,
    Fiji's N5 plugins and funlib read, and ``open_volume`` reads back as the same voxel size and offset.
    A new container folder ``*.n5`` above the dataset gets its root ``attributes.json`` (N5 version).

    Args:
        location: local folder or URL of the dataset, e.g. ``out.n5/prob``.
        spec: the spec, for messages.
        shape: (Z, Y, X) or (C, Z, Y, X).
        dtype: one of :data:`N5_DTYPES`.
        voxel_size: nm, ZYX. offset: voxels, ZYX.
        axes: "zyx" or "czyx".
        chunks: block shape in the layout of ``shape`` (default 64 per spatial axis, cut to the volume, all channels).
        overwrite: replace an existing dataset at ``location`` (default False: refuse).
    """
    ts = _ts()
    out = _new_output(location, spec, shape, dtype, axes=axes, chunks=chunks, voxel_size=voxel_size, offset=offset,
                      overwrite=overwrite, kind=N5)
    channel = [out.channels] if axes == "czyx" else []
    channel_block = [int(chunks[0]) if chunks is not None else out.channels] if axes == "czyx" else []
    _write_n5_root(location, spec)
    _wait(ts.open({"driver": "n5", "kvstore": kvstore_url(location), "metadata": {
        "dimensions": list(out.spatial[::-1]) + channel, "blockSize": list(out.chunk[::-1]) + channel_block,
        "dataType": dtype.name, "compression": {"type": "gzip"}, **n5_attributes(out.voxel_size, out.offset, channels=bool(channel)),
    }}, create=True), "creating the N5 dataset", spec)
    return open_n5(location, spec, mode="r+")


def n5_attributes(voxel_size: Sequence[float], offset: Sequence[int], channels: bool = False) -> dict:
    """N5 geometry attributes of a dataset with ``voxel_size`` (nm, ZYX) and ``offset`` (voxels, ZYX),
    every list X, Y, Z: ``resolution`` with ``units`` (BigDataViewer / n5-viewer, funlib; one entry
    per dimension, so a channel dimension last gets 1 and no unit), ``pixelResolution`` (Fiji's N5
    plugins) and ``offset`` in nm (funlib's world units)."""
    xyz = [float(v) for v in voxel_size][::-1]
    return {
        "resolution": xyz + [1.0] * channels,
        "units": ["nm"] * 3 + [""] * channels,
        "pixelResolution": {"dimensions": xyz, "unit": "nm"},
        "offset": [float(o) * v for o, v in zip(list(offset)[::-1], xyz)],
    }


def _write_n5_root(location: str, spec: str) -> None:
    """Give the nearest ``*.n5`` folder above ``location`` its root ``attributes.json`` (the N5 version)
    when it has none, so Java readers see a container."""
    parts = location.rstrip("/").split("/")
    roots = [i for i in range(1, len(parts)) if parts[i - 1].endswith(".n5")]
    if not roots:
        return
    root = "/".join(parts[: roots[-1]])
    if read_json(root, "attributes.json", spec) is None:
        kv = _wait(_ts().KvStore.open(kvstore_url(root)), "opening the N5 container", spec)
        _wait(kv.write("attributes.json", json.dumps({"n5": N5_VERSION}).encode()), "writing the N5 container's attributes.json", spec)


def _n5_resolution(attrs: dict, spec: str) -> tuple[list[float], float] | None:
    """``([x, y, z] in nm, nm per unit)`` from ``resolution`` or ``pixelResolution``, or None."""
    unit = None
    if "resolution" in attrs:
        values = attrs["resolution"]
        units = attrs.get("units")
        unit = units[0] if isinstance(units, list) and units else None
    elif "pixelResolution" in attrs:
        pr = attrs["pixelResolution"]
        values = pr.get("dimensions") if isinstance(pr, dict) else pr
        unit = pr.get("unit") if isinstance(pr, dict) else None
    else:
        return None
    factor = 1.0
    if unit is not None:
        if str(unit).lower() not in UNIT_NM:
            raise UserError(f"{spec}: N5 resolution unit {unit!r} is not a length unit; pass --voxel-size Z,Y,X in nm")
        factor = UNIT_NM[str(unit).lower()]
    try:
        xyz = [float(v) * factor for v in values][:3]
    except (TypeError, ValueError):
        raise UserError(f"{spec}: N5 resolution {values!r} is not a list of numbers [x, y, z]; fix it or pass --voxel-size") from None
    if len(xyz) != 3:
        raise UserError(f"{spec}: N5 resolution {values!r} does not have 3 entries [x, y, z]; fix it or pass --voxel-size")
    return xyz, factor


def _nm(values) -> str:
    return " x ".join(f"{float(v):g}" for v in values)


def copy_to_tensorstore(source: Volume, spec: str, *, overwrite: bool = False, block: Sequence[int] = (64, 512, 512)) -> Volume:
    """Write ``source`` ((C,) Z, Y, X) as a new local precomputed volume or N5 dataset at ``spec``, with
    its voxel size and offset (one channel is written as Z, Y, X, as single-channel volumes of both
    formats read), staged: it is written at a hidden sibling folder and renamed into place when
    complete (an earlier one is replaced only then, and only with ``overwrite``).

    Args:
        source: the volume to copy (read block by block).
        spec: ``precomputed://PATH`` or ``n5://PATH/dataset`` of a local folder.
        overwrite: replace an existing volume at ``PATH`` (default False: refuse).
        block: voxels (Z, Y, X) read and written at a time (multiples of the 64-voxel chunks).
    """
    from ..atomic import staged

    path = local_output(spec, source.dtype)
    scheme = split_spec(spec)[0]
    single = source.axes == "czyx" and source.shape[0] == 1
    shape, axes = (source.shape[1:], "zyx") if single else (source.shape, source.axes)
    create = create_precomputed if scheme == PRECOMPUTED else create_n5
    with staged(path, overwrite=overwrite) as tmp:
        target = create(str(tmp), spec, shape, source.dtype, voxel_size=source.voxel_size, offset=source.offset, axes=axes,
                        chunks=None, overwrite=False)
        zyx = source.shape[-3:]
        for z in range(0, zyx[0], block[0]):
            for y in range(0, zyx[1], block[1]):
                for x in range(0, zyx[2], block[2]):
                    key = (..., slice(z, z + block[0]), slice(y, y + block[1]), slice(x, x + block[2]))
                    value = source[key]
                    target[key] = value[0] if single else value
    return reopen_tensorstore(spec)


def reopen_tensorstore(spec: str) -> Volume:
    """A precomputed volume or N5 dataset opened read only, that can be reopened and pickled the
    same way, as :func:`~masktwins3d.io.open_volume` opens it."""
    scheme, location = split_spec(spec)
    volume = (open_precomputed if scheme == PRECOMPUTED else open_n5)(location, spec)
    volume._reopen = partial(reopen_tensorstore, spec)
    return volume
