"""How masktwins3d data become napari layers and back: geometry, probability maps, synapse points.

Everything here is plain numpy / dask (no Qt), so the reader, the widgets and the tests share one
set of conventions:

* A :class:`~masktwins3d.io.Volume` becomes a lazy dask array (only the displayed sections are
  read); its voxel size (nm) is the layer ``scale`` and its offset the ``translate`` (nm), so
  layers of different voxel sizes overlay in world units.
* A probability map ``(C, Z, Y, X)`` is **one** image layer: ``(Z, Y, X)`` when C is 1, else with
  the channel as a leading slider axis.
* Synapse points are two points layers, ``<name> pre`` and ``<name> post``, whose ``features``
  hold ``id`` (pre and post) and ``pre_id`` (post: the ``id`` of its pre), plus a vectors layer
  ``<name> links`` drawn from each post to its pre. Layer coordinates are voxels, ZYX.
* Each layer made here records its role in ``metadata["masktwins3d"]`` (``kind``: image,
  probability, labels, pre, post, links; ``group``: the name shared by a pre/post/links triple;
  ``voxel_size``, ``offset``), which the widgets use to find partners and write outputs.
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np

from ..errors import UserError
from ..io.points import SynapsePoints

KEY = "masktwins3d"
"""Key of the layer metadata this package writes."""

PRE_COLOR = "#ff7f0e"
POST_COLOR = "#1f9bff"
LINK_COLOR = "#b4b4b4"
POINT_SIZE = 6.0
"""Default points size, voxels (drawn in world units, so scaled by the layer scale)."""

_NAMES = itertools.count()

LayerData = tuple[Any, dict, str]
"""napari's ``(data, kwargs, layer_type)`` tuple."""


def role(layer) -> dict:
    """The ``metadata["masktwins3d"]`` dict of a napari layer (empty when it has none)."""
    meta = getattr(layer, "metadata", None) or {}
    value = meta.get(KEY)
    return dict(value) if isinstance(value, dict) else {}


def geometry(voxel_size: Sequence[float], offset: Sequence[float] = (0, 0, 0), ndim: int = 3) -> dict:
    """``scale`` and ``translate`` for a layer with ``ndim`` axes whose last (up to) three are ZYX.

    Args:
        voxel_size: nm per voxel, ZYX (3 values).
        offset: voxel coordinate of index 0, ZYX (3 values).
        ndim: the layer's number of axes; leading non-spatial axes get scale 1, translate 0;
            a 2D (Y, X) layer takes the last two entries.
    """
    vs = np.asarray(tuple(voxel_size), np.float64).reshape(3)
    off = np.asarray(tuple(offset), np.float64).reshape(3)
    spatial = min(ndim, 3)
    lead = ndim - spatial
    scale = [1.0] * lead + [float(v) for v in vs[3 - spatial:]]
    translate = [0.0] * lead + [float(o * v) for o, v in zip(off[3 - spatial:], vs[3 - spatial:])]
    return {"scale": tuple(scale), "translate": tuple(translate)}


def full_data(layer):
    """A layer's full-resolution array (level 0 of a multiscale layer), unread."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def layer_voxel_size(layer) -> tuple[float, float, float]:
    """Voxel size, nm ZYX, of a layer: its recorded one, else its scale (1 for missing axes)."""
    meta = role(layer)
    if "voxel_size" in meta:
        return tuple(float(v) for v in meta["voxel_size"])  # type: ignore[return-value]
    scale = [float(s) for s in getattr(layer, "scale", (1.0, 1.0, 1.0))][-3:]
    return tuple([1.0] * (3 - len(scale)) + scale)  # type: ignore[return-value]


def layer_offset(layer) -> tuple[int, int, int]:
    """Voxel offset, ZYX, of a layer: its recorded one, else its translate / scale, rounded."""
    meta = role(layer)
    if "offset" in meta:
        return tuple(int(v) for v in meta["offset"])  # type: ignore[return-value]
    scale = np.asarray(getattr(layer, "scale", (1.0,) * 3), np.float64)[-3:]
    translate = np.asarray(getattr(layer, "translate", (0.0,) * 3), np.float64)[-3:]
    off = np.round(translate / scale).astype(int).tolist()
    return tuple([0] * (3 - len(off)) + off)  # type: ignore[return-value]


def lazy(volume, chunks: Sequence[int] | None = None):
    """A dask array over a :class:`~masktwins3d.io.Volume` that reads only what is indexed.

    Args:
        volume: the open Volume (kept open by the dask graph).
        chunks: dask chunks (default: the volume's own chunks, else one section per chunk).
    """
    import dask.array as da

    shape = tuple(volume.shape)
    if chunks is None:
        chunks = volume.chunks or (*([1] * (len(shape) - 2)), *shape[-2:])
        # a section per chunk at most in Z keeps one displayed slice cheap
        chunks = tuple(min(int(c), int(s)) for c, s in zip(chunks, shape))
    # a fresh name per call: a file rewritten at the same path never shows cached chunks
    return da.from_array(volume, chunks=chunks, name=f"masktwins3d-{next(_NAMES)}-{volume.path}", asarray=True, fancy=False)


def volume_layer(volume, name: str, kind: str = "image", data=None, **kwargs) -> LayerData:
    """``(data, kwargs, type)`` of one image or labels layer for a Volume (lazy).

    A ``(C, Z, Y, X)`` volume with C == 1 is shown as ``(Z, Y, X)``; with more channels, the
    channel is a leading slider axis (one layer, not one per channel).

    Args:
        volume: the Volume.
        name: layer name.
        kind: ``image``, ``probability`` (an image in [0, 1], colormap magma) or ``labels``.
        data: the array to show (default :func:`lazy` of ``volume``).
        **kwargs: more layer keyword arguments (override the defaults).
    """
    arr = lazy(volume) if data is None else data
    if volume.axes.startswith("c") and volume.shape[0] == 1:
        arr = arr[0]
    meta = {KEY: {"kind": kind, "voxel_size": list(volume.voxel_size), "offset": list(volume.offset), "path": volume.path}}
    out = {"name": name, "metadata": meta, **geometry(volume.voxel_size, volume.offset, arr.ndim)}
    if kind == "probability":
        hi = 255.0 if np.dtype(volume.dtype) == np.uint8 else 1.0
        out.update(colormap="magma", contrast_limits=(0.0, hi), blending="additive", opacity=0.7)
    layer_type = "labels" if kind == "labels" else "image"
    out.update(kwargs)
    return arr, out, layer_type


def points_layers(
    points: SynapsePoints,
    name: str,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    offset: Sequence[int] = (0, 0, 0),
    pre_ids: Sequence[int] | None = None,
    post_ids: Sequence[int] | None = None,
) -> list[LayerData]:
    """Pre points, post points and post -> pre link vectors of ``points`` as three layers.

    Args:
        points: the synapse points (voxel coordinates, ZYX).
        name: the group name: layers ``<name> pre``, ``<name> post``, ``<name> links``.
        voxel_size: nm per voxel, ZYX (the layers' scale).
        offset: voxel offset of the points' frame, ZYX (the layers' translate).
        pre_ids / post_ids: ids to keep in ``features`` (default: the row numbers).
    """
    pre = np.asarray(points.pre, np.float64).reshape(-1, 3)
    post = np.asarray(points.post_zyx, np.float64).reshape(-1, 3)
    links = points.post_pre
    pre_ids = np.arange(len(pre)) if pre_ids is None else np.asarray(pre_ids, np.int64)
    post_ids = np.arange(len(post)) if post_ids is None else np.asarray(post_ids, np.int64)
    geo = geometry(voxel_size, offset, 3)

    def meta(kind: str) -> dict:
        return {KEY: {"kind": kind, "group": name, "voxel_size": list(map(float, voxel_size)), "offset": list(map(int, offset))}}

    common = {"size": POINT_SIZE, "border_width": 0.0, **geo}
    pre_layer = (pre, {"name": f"{name} pre", "features": {"id": pre_ids}, "face_color": PRE_COLOR,
                       "metadata": meta("pre"), **common}, "points")
    post_layer = (post, {"name": f"{name} post", "features": {"id": post_ids, "pre_id": pre_ids[links] if len(links) else np.zeros(0, np.int64)},
                         "face_color": POST_COLOR, "metadata": meta("post"), **common,
                         # a post added by hand has no pre yet: -1 (no such id) makes it go to the nearest pre
                         "feature_defaults": {"id": -1, "pre_id": -1}}, "points")
    vectors = np.zeros((len(post), 2, 3), np.float64)
    if len(post):
        vectors[:, 0] = post
        vectors[:, 1] = pre[links] - post
    link_layer = (vectors, {"name": f"{name} links", "edge_color": LINK_COLOR, "edge_width": 1.0, "vector_style": "line",
                            "metadata": meta("links"), **geo}, "vectors")
    return [pre_layer, post_layer, link_layer]


def points_from_layers(pre_data, post_data, post_features=None, pre_features=None, where: str = "points layers") -> SynapsePoints:
    """:class:`SynapsePoints` from a pre and a post points layer's data and features.

    Posts are linked to their pre by the ``pre_id`` feature (matched against the pre layer's
    ``id`` feature, else its row numbers); posts without a usable ``pre_id`` (e.g. added by hand)
    are linked to the nearest pre.

    Args:
        pre_data / post_data: ``(N, 3)`` / ``(M, 3)`` ZYX voxel coordinates.
        post_features / pre_features: the layers' ``features`` tables (pandas DataFrame or dict), optional.
        where: the layers to name in messages.
    """
    from ..postprocess.synapse import link_to_nearest

    pre = np.asarray(pre_data, np.float64)
    post = np.asarray(post_data, np.float64)
    for label, a in (("pre", pre), ("post", post)):
        if a.size and (a.ndim != 2 or a.shape[1] != 3):
            raise UserError(f"{where}: the {label} layer has points of {a.shape[1] if a.ndim == 2 else a.ndim} coordinates; synapse points need 3D layers (z, y, x)")
    pre, post = pre.reshape(-1, 3), post.reshape(-1, 3)
    if len(post) and not len(pre):
        raise UserError(f"{where}: {len(post)} post points but no pre points; every post needs a pre: add pre points or pick another pre layer")
    ids = _column(pre_features, "id", len(pre))
    row_of = {int(i): r for r, i in enumerate(ids)} if ids is not None else {r: r for r in range(len(pre))}
    wanted = _column(post_features, "pre_id", len(post))
    links = np.full(len(post), -1, np.int64)
    if wanted is not None:
        for r, v in enumerate(wanted):
            if np.isfinite(v) and float(v).is_integer() and int(v) in row_of:
                links[r] = row_of[int(v)]
    loose = links < 0
    if loose.any():
        links[loose] = link_to_nearest(pre, post[loose])
    return SynapsePoints(pre, np.column_stack([links, post]).reshape(-1, 4))


def _column(features, key: str, n: int) -> np.ndarray | None:
    if features is None:
        return None
    try:
        if key not in features:
            return None
        col = np.asarray(features[key], np.float64)
    except (TypeError, ValueError):
        return None
    return col if col.shape == (n,) else None
