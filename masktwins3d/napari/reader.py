"""napari reader (npe2 ``masktwins3d.get_reader``): volumes and synapse points, opened lazily.

Formats (``path`` is one path or a list of them; anything else gets None, so napari tries other readers):

* **zarr** (a ``*.zarr`` folder, a path inside one, or any zarr v2/v3 node):
  an array is one layer; an OME-Zarr group (``multiscales``) is one layer, multiscale when it
  lists more than one dataset (every level, in the ``datasets`` order; geometry of the first);
  a plain group is one layer per 2D-4D numeric array or OME-Zarr image below it (recursively;
  other arrays are skipped).
* **HDF5** (``.h5``, ``.hdf5``, ``.hdf``; also ``file.h5:key``): a file with top-level WASPSYN
  ``pre`` (N, 3) and ``post`` (M, 4) datasets gives the synapse points layers ``<stem> pre``,
  ``<stem> post``, ``<stem> links`` (scale from the file attribute ``voxel_size``, translate from
  ``offset`` in voxels); every other numeric 2D-4D dataset is one layer; 0/1-D datasets are skipped.
* **TIFF** (``.tif``, ``.tiff``): one layer, read page by page.
* **Neuroglancer precomputed / N5** (``precomputed://PATH_OR_URL``, ``n5://PATH/dataset``, or a
  local folder holding a precomputed ``info`` file): one layer, every scale of a precomputed volume
  as a multiscale layer (full resolution first); a name with ``prob`` (or a volume written by
  ``masktwins3d predict``) is a probability layer.
* **CSV points**: ``pre.csv`` or ``post.csv``, or a folder holding both: the points layers
  ``<folder> pre``, ``<folder> post``, ``<folder> links`` (voxel size 1).

Layer names: ``<container> <key>``, where ``<container>`` is the file or ``.zarr`` folder name
without its suffix and ``<key>`` the array's path inside it (``train.zarr/raw`` -> ``train raw``,
``a.h5:/volumes/raw`` -> ``a volumes/raw``); a container that is itself the image (a zarr array
or OME-Zarr image at the root, a TIFF) is named ``<container>``.

Layer kind (from the dtype and ``word``, the last component of the key, else the container name;
``word`` is split into tokens at every non-alphanumeric character):

* ``labels``: bool arrays, and integer arrays with a token in :data:`LABEL_WORDS`;
* ``probability``: float or uint8 arrays with a token starting with ``prob``, or written by
  ``masktwins3d predict`` (channels first, with ``blocks.jsonl`` in the zarr group or above it);
* ``image``: everything else.

Volumes become lazy dask arrays with ``scale`` = voxel size and ``translate`` = offset * voxel
size (:func:`~masktwins3d.napari.layers.volume_layer`): opening reads metadata only. Bad content
in a path of ours raises a one-line :class:`~masktwins3d.errors.UserError`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import UserError
from ..io.hdf5_io import HDF5_SUFFIXES, split_hdf5_spec
from ..io.metadata import find_multiscales, ome_dataset
from ..io.points import read_points
from ..io.spec import open_volume
from ..io.tensorstore_io import PRECOMPUTED, is_tensorstore_spec, read_json, split_spec
from ..io.tiff_io import TIFF_SUFFIXES
from ..io.volume import Volume, check_offset, check_voxel_size
from ..io.zarr_io import ZARR_SUFFIX, array_keys, is_zarr_node, is_zarr_spec
from ..parallel.manifest import LEGACY_NAME, MANIFEST_NAME
from .layers import LayerData, points_layers, volume_layer

PathArg = str | os.PathLike | Sequence[str | os.PathLike]
Reader = Callable[[PathArg], list[LayerData]]

LABEL_WORDS = frozenset({"label", "labels", "mito", "mask", "seg", "segmentation", "instances", "gt", "syn"})
"""Name tokens that make an integer array a labels layer."""

POINT_FILES = ("pre.csv", "post.csv")
FORMATS = "zarr, HDF5, TIFF, precomputed:// or n5:// volumes, pre.csv/post.csv or a folder holding both"


def get_reader(path: PathArg) -> Reader | None:
    """The npe2 reader contribution: :func:`read` if every path is ours, else None."""
    paths = _paths(path)
    if not paths or any(_format(p) is None for p in paths):
        return None
    return read


def read(path: PathArg) -> list[LayerData]:
    """Layers of one path or of several (concatenated), lazily; see the module docstring."""
    layers: list[LayerData] = []
    for p in _paths(path):
        fmt = _format(p)
        if fmt is None:
            raise UserError(f"{p} is not a path masktwins3d opens ({FORMATS}); check the path")
        layers += _READERS[fmt](p)
    return layers


def _paths(path: PathArg) -> list[str]:
    items = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    return [os.fspath(p) for p in items]


def _format(path: str) -> str | None:
    """``zarr``, ``hdf5``, ``tiff``, ``tensorstore`` or ``csv`` for a path this reader opens, else None."""
    if is_tensorstore_spec(path):
        return "tensorstore"
    h5 = split_hdf5_spec(path)
    if h5 is not None:
        return "hdf5" if h5[0].is_file() else None
    p = Path(path)
    if p.is_file():
        if p.suffix.lower() in TIFF_SUFFIXES:
            return "tiff"
        return "csv" if p.name in POINT_FILES else None
    if not p.is_dir():
        return None
    if is_zarr_spec(p):
        return "zarr"
    if (p / "info").is_file():
        return "tensorstore"
    return "csv" if all((p / name).is_file() for name in POINT_FILES) else None


# ---- naming and kinds -------------------------------------------------------------------------


def layer_kind(word: str, dtype: Any, predicted: bool = False) -> str:
    """``labels``, ``probability`` or ``image`` for an array named ``word`` (module docstring rules).

    Args:
        word: the array's name (its last path component is used).
        dtype: the array's dtype.
        predicted: whether ``masktwins3d predict`` wrote it (channels first, ``blocks.jsonl``).
    """
    dtype = np.dtype(dtype)
    tokens = {t for t in re.split(r"[^0-9a-z]+", word.rsplit("/", 1)[-1].lower()) if t}
    if dtype.kind == "b":
        return "labels"
    if (dtype.kind == "f" or dtype == np.uint8) and (predicted or any(t.startswith("prob") for t in tokens)):
        return "probability"
    if dtype.kind in "iu" and tokens & LABEL_WORDS:
        return "labels"
    return "image"


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (ZARR_SUFFIX, *HDF5_SUFFIXES, *TIFF_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def _layer_name(container: Path, key: str) -> str:
    return f"{_stem(container)} {key}" if key else _stem(container)


def _volume(volume: Volume, container: Path, key: str, predicted: bool = False) -> LayerData:
    kind = layer_kind(key or _stem(container), volume.dtype, predicted and volume.axes.startswith("c"))
    return volume_layer(volume, _layer_name(container, key), kind)


# ---- zarr -------------------------------------------------------------------------------------


def _read_zarr(path: str) -> list[LayerData]:
    p = Path(path)
    root = _zarr_root(p)
    node = _open_zarr_node(p)
    if not _is_group(node) or find_multiscales(node.attrs) is not None:
        return [_zarr_layer(p, node, root)]
    try:
        members = {k: node[k] for k in array_keys(node)}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: cannot list the zarr group ({type(exc).__name__}: {exc}); check the store") from None
    shown = {k: m for k, m in members.items() if _is_group(m) or _is_volume(m.shape, m.dtype)}
    if not shown:
        found = ", ".join(list(members)[:12]) or "none"
        raise UserError(
            f"{path} is a zarr group without 2D-4D numeric arrays (found: {found}); open a zarr that holds a volume"
        )
    return [_zarr_layer(p / k, m, root) for k, m in shown.items()]


def _zarr_layer(path: Path, node: Any, root: Path) -> LayerData:
    """One layer of a zarr array or OME-Zarr image at ``path`` inside the store ``root``."""
    key = path.relative_to(root).as_posix() if path != root else ""
    predicted = _predicted(path, root)
    if not _is_group(node):
        return _volume(open_volume(str(path)), root, key, predicted)
    levels = _levels(path, node)
    data, kwargs, kind = _volume(levels[0], root, key, predicted)
    if len(levels) == 1:
        return data, kwargs, kind
    shown = [data] + [volume_layer(v, kwargs["name"])[0] for v in levels[1:]]
    return shown, {**kwargs, "multiscale": True}, kind


def _predicted(path: Path, root: Path) -> bool:
    """Whether ``masktwins3d predict`` wrote ``path``: its manifest is there or in a group above it in the store."""
    inside = [d for d in (path, *path.parents) if d == root or root in d.parents]
    return any((d / name).is_file() for d in inside for name in (MANIFEST_NAME, LEGACY_NAME))


def _levels(path: Path, group: Any) -> list[Volume]:
    """Every dataset of the (first) OME-Zarr multiscale image of ``group``, in order."""
    multiscale, _ = ome_dataset(find_multiscales(group.attrs), None, str(path))
    levels = [open_volume(f"{path}/{str(ds.get('path', '')).strip('/')}") for ds in multiscale["datasets"]]
    if len({v.axes for v in levels}) > 1:
        axes = [v.axes for v in levels]
        raise UserError(f"{path}: OME-Zarr levels have axes {axes}; fix the metadata or open one level, {path}/<level>")
    return levels


def _zarr_root(path: Path) -> Path:
    """The store: the first ``*.zarr`` part of ``path``, else its topmost zarr node."""
    for i, part in enumerate(path.parts):
        if part.lower().endswith(ZARR_SUFFIX):
            return Path(*path.parts[: i + 1])
    nodes = [p for p in (path, *path.parents) if is_zarr_node(p)]
    return nodes[-1] if nodes else path


def _open_zarr_node(path: Path) -> Any:
    import zarr

    if not is_zarr_node(path):
        raise UserError(
            f"{path} is not a zarr array or group (no zarr.json, .zarray or .zgroup); open the array or group inside it"
        )
    try:
        return zarr.open(store=str(path), mode="r")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise UserError(f"{path} is not a readable zarr array or group ({problem}); check its metadata") from None


def _is_group(node: Any) -> bool:
    import zarr

    return isinstance(node, zarr.Group)


def _is_volume(shape: Sequence[int], dtype: Any) -> bool:
    """Whether an array can be a layer: 2 to 4 dimensions, bool, integer or float."""
    return 2 <= len(shape) <= 4 and np.dtype(dtype).kind in "biuf"


# ---- HDF5 -------------------------------------------------------------------------------------


def _read_hdf5(path: str) -> list[LayerData]:
    file, key = split_hdf5_spec(path)  # type: ignore[misc]
    if key is not None:
        return [_volume(open_volume(path), file, key)]
    datasets, attrs = _hdf5_contents(file)
    points = _is_waspsyn(datasets)
    layers = _hdf5_points(file, attrs) if points else []
    keys = [k for k, (shape, dtype) in datasets.items() if _is_volume(shape, dtype)]
    layers += [_volume(open_volume(f"{file}:{k}"), file, k) for k in keys if not (points and k in ("pre", "post"))]
    if not layers:
        found = ", ".join(f"{k} {list(s)}" for k, (s, _) in list(datasets.items())[:12]) or "none"
        raise UserError(
            f"{file} has no 2D-4D numeric dataset and no WASPSYN points (datasets: {found}); "
            "save a volume as a 2D-4D dataset, or points as 'pre' (N, 3) and 'post' (M, 4)"
        )
    return layers


def _hdf5_contents(file: Path) -> tuple[dict[str, tuple[tuple, np.dtype]], dict]:
    """``({key: (shape, dtype)}, root attributes)`` of an HDF5 file, metadata only."""
    import h5py

    try:
        f = h5py.File(file, "r")
    except OSError as exc:
        raise UserError(f"{file} is not a readable HDF5 file ({exc}); check the file") from None
    datasets: dict[str, tuple[tuple, np.dtype]] = {}

    def visit(key: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            datasets[key] = (tuple(obj.shape or ()), obj.dtype)

    with f:
        f.visititems(visit)
        attrs = {k: f.attrs[k] for k in ("voxel_size", "offset") if k in f.attrs}
    return dict(sorted(datasets.items())), attrs


def _is_waspsyn(datasets: dict[str, tuple[tuple, np.dtype]]) -> bool:
    """Whether top-level ``pre`` / ``post`` are shaped like WASPSYN points ((N, 3), (M, 4); empty allowed)."""
    def fits(key: str, cols: int) -> bool:
        shape = datasets.get(key, ((-1,), None))[0]
        return shape == (0,) or (len(shape) == 2 and shape[1] == cols)

    return fits("pre", 3) and fits("post", 4)


def _hdf5_points(file: Path, attrs: dict) -> list[LayerData]:
    voxel_size = check_voxel_size(attrs.get("voxel_size", (1.0, 1.0, 1.0)), f"{file} attribute 'voxel_size'")
    offset = check_offset(attrs.get("offset", (0, 0, 0)), f"{file} attribute 'offset' (voxels)")
    return points_layers(read_points(file), name=_stem(file), voxel_size=voxel_size, offset=offset)


# ---- TIFF and CSV -----------------------------------------------------------------------------


def _read_tiff(path: str) -> list[LayerData]:
    return [_volume(open_volume(path), Path(path), "")]


def _read_csv(path: str) -> list[LayerData]:
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    return points_layers(read_points(p), name=folder.resolve().name)


def _read_tensorstore(path: str) -> list[LayerData]:
    spec = path if is_tensorstore_spec(path) else PRECOMPUTED + path
    scheme, location = split_spec(spec)
    name = location.rstrip("/").rsplit("/", 1)[-1]
    first = open_volume(spec)
    predicted = "prob" in name.lower() or (first.axes.startswith("c") and first.dtype.kind == "f")
    data, kwargs, kind = volume_layer(first, name, layer_kind(name, first.dtype, predicted))
    info = read_json(location, "info", spec) if scheme == PRECOMPUTED else None
    scales = len((info or {}).get("scales", [])) if info else 1
    if scales <= 1:
        return [(data, kwargs, kind)]
    levels = [volume_layer(open_volume(spec, scale_index=i), name)[0] for i in range(1, scales)]
    return [([data, *levels], {**kwargs, "multiscale": True}, kind)]


_READERS: dict[str, Callable[[str], list[LayerData]]] = {
    "tensorstore": _read_tensorstore,
    "zarr": _read_zarr,
    "hdf5": _read_hdf5,
    "tiff": _read_tiff,
    "csv": _read_csv,
}
