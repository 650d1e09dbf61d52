"""Look at raw data, probabilities, labels and synapse points in a local Neuroglancer viewer.

>>> viewer = neuroglancer_viewer("raw.zarr/raw", pred=["runs/x/prob.zarr"], points="runs/x/points.h5")
>>> print(viewer.get_viewer_url())

Every volume is served lazily from this process (``neuroglancer.LocalVolume`` over the
:class:`~masktwins3d.io.Volume`, any format :func:`~masktwins3d.io.open_volume` reads), placed in
nanometres with its own voxel size and offset, so volumes of other voxel sizes line up. A CZYX
probability volume gets a channel dimension ``c^``; integer label volumes are segmentation
layers. Synapse points (WASPSYN h5 or CSV folder, in the raw volume's voxels) are an annotation
layer: pre points, and a line from each post to its pre. Nothing is fetched from the network:
the browser talks to this process only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import UserError

DIMENSIONS = ("z", "y", "x")


def _neuroglancer():
    try:
        import neuroglancer
    except ImportError:
        raise UserError("masktwins3d view needs neuroglancer: pip install 'masktwins3d[viewer]'") from None
    return neuroglancer


def _layer(ng, volume, name: str, kind: str | None = None):
    """A LocalVolume layer for ``volume``: image, probability (channels as ``c^``) or segmentation."""
    if volume.dtype == np.float16 or volume.dtype == np.bool_:
        raise UserError(f"{volume.path} has dtype {volume.dtype}, which Neuroglancer cannot serve; convert it to float32 or uint8")
    channels = volume.axes.startswith("c")
    names = (["c^"] if channels else []) + list(DIMENSIONS)
    scales = ([1.0] if channels else []) + [float(v) for v in volume.voxel_size]
    units = ([""] if channels else []) + ["nm"] * 3
    dims = ng.CoordinateSpace(names=names, units=units, scales=scales)
    offset = ([0] if channels else []) + [int(o) for o in volume.offset]
    if volume.dtype.kind in "iu" and kind != "image" and (kind == "labels" or volume.dtype != np.uint8):
        source = ng.LocalVolume(volume, dimensions=dims, voxel_offset=offset, volume_type="segmentation")
        return ng.SegmentationLayer(source=source)
    source = ng.LocalVolume(volume, dimensions=dims, voxel_offset=offset, volume_type="image")
    if kind == "probability":
        hi = 255.0 if volume.dtype == np.uint8 else 1.0
        shader = f"#uicontrol invlerp normalized(range=[0, {hi:g}])\nvoid main() {{ emitRGB(vec3(normalized(), 0.0, normalized())); }}"
        return ng.ImageLayer(source=source, shader=shader, opacity=0.6)
    return ng.ImageLayer(source=source)


def neuroglancer_viewer(
    raw: str,
    *,
    pred: Sequence[str] = (),
    labels: Sequence[str] = (),
    points: str | None = None,
    bind: str = "127.0.0.1",
    port: int = 0,
    scale_index: int | None = None,
):
    """A running local Neuroglancer viewer with the given layers.

    Args:
        raw: the image volume (any spec :func:`~masktwins3d.io.open_volume` reads).
        pred: probability volumes (ZYX or CZYX), each one layer.
        labels: label or instance volumes, each one segmentation layer.
        points: synapse points (WASPSYN ``.h5`` or a CSV folder) in ``raw``'s voxel coordinates.
        bind: address the viewer's server listens on (default 127.0.0.1: this machine only).
        port: its port (default 0: a free one).
        scale_index: resolution level of a precomputed ``raw`` (default: full resolution).

    Returns:
        the ``neuroglancer.Viewer``; ``viewer.get_viewer_url()`` is the link to open.
    """
    from .io import open_volume
    from .io.points import read_points

    ng = _neuroglancer()
    raw_vol = open_volume(raw, scale_index=scale_index).require_3d("view")
    layers = [(Path(str(raw)).name or "raw", raw_vol, "image")]
    layers += [(Path(str(p)).name, open_volume(p), "probability") for p in pred]
    layers += [(Path(str(p)).name, open_volume(p), "labels") for p in labels]
    pts = read_points(points) if points is not None else None
    ng.set_server_bind_address(bind_address=bind, bind_port=int(port))
    viewer = ng.Viewer()
    used: set[str] = set()
    with viewer.txn() as state:
        state.dimensions = ng.CoordinateSpace(names=list(DIMENSIONS), units="nm", scales=[float(v) for v in raw_vol.voxel_size])
        for name, vol, kind in layers:
            unique = name
            while unique in used:
                unique += "'"
            used.add(unique)
            state.layers[unique] = _layer(ng, vol, unique, kind)
        if pts is not None:
            state.layers["synapses"] = _points_layer(ng, pts, raw_vol)
        centre = [o + s / 2 for o, s in zip(raw_vol.offset, raw_vol.shape[-3:])]
        state.position = centre
    return viewer


def _points_layer(ng, pts, volume):
    """Pre points and post-to-pre lines, in the volume's voxels shifted by its offset."""
    dims = ng.CoordinateSpace(names=list(DIMENSIONS), units="nm", scales=[float(v) for v in volume.voxel_size])
    layer = ng.LocalAnnotationLayer(dimensions=dims)
    off = np.asarray(volume.offset, dtype=float)
    pre = np.asarray(pts.pre, dtype=float).reshape(-1, 3)
    for i, p in enumerate(pre):
        layer.annotations.append(ng.PointAnnotation(id=f"pre{i}", point=(p + off).tolist()))
    for j, row in enumerate(np.asarray(pts.post, dtype=float).reshape(-1, 4)):
        k, p = int(row[0]), row[1:] + off
        if 0 <= k < len(pre):
            layer.annotations.append(ng.LineAnnotation(id=f"post{j}", point_a=p.tolist(), point_b=(pre[k] + off).tolist()))
        else:
            layer.annotations.append(ng.PointAnnotation(id=f"post{j}", point=p.tolist()))
    return layer
