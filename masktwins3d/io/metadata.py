"""Voxel size, offset and axes from array attributes and OME-Zarr multiscales metadata.

Two sources of geometry, both pure functions of a ``dict`` of attributes:

- **Array attributes** (HDF5 datasets, plain zarr arrays; CREMI, funlib/gunpowder style): voxel size
  from the first of ``resolution_zyx_nm``, ``resolution``, ``voxel_size`` (nm, ZYX); offset from
  ``offset`` in **nm** (ZYX), divided by the voxel size (it must be a whole number of voxels).
  Without them: voxel size 1.0 nm, offset 0.
- **OME-Zarr multiscales** (0.4: ``attrs["multiscales"]``; 0.5: ``attrs["ome"]["multiscales"]``):
  axes from ``axes``; voxel size from the ``scale`` transform of the dataset (times any top-level
  ``scale``), converted to nm from each axis' ``unit`` (no unit: taken as nm); offset in voxels is
  ``translation / scale``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import UserError
from .volume import check_offset, check_voxel_size

VOXEL_SIZE_ATTRS = ("resolution_zyx_nm", "resolution", "voxel_size")
"""Attribute names read as voxel size (nm, ZYX), first match wins."""

OFFSET_ATTR = "offset"
"""Attribute read as offset, in nm (ZYX)."""

UNIT_NM = {
    "angstrom": 0.1,
    "nanometer": 1.0,
    "nm": 1.0,
    "micrometer": 1000.0,
    "micron": 1000.0,
    "um": 1000.0,
    "µm": 1000.0,
    "\u03bcm": 1000.0,
    "millimeter": 1e6,
    "mm": 1e6,
    "centimeter": 1e7,
    "meter": 1e9,
    "m": 1e9,
    "picometer": 1e-3,
}
"""Nanometres per unit, for OME-Zarr and ImageJ unit names."""


def geometry_from_attrs(
    attrs: Mapping[str, Any], n_spatial: int, where: str, need_offset: bool = True
) -> tuple[tuple[float, float, float], tuple[int, int, int]]:
    """``(voxel_size_nm, offset_voxels)`` from CREMI/funlib style array attributes.

    Args:
        attrs: the array's attributes.
        n_spatial: number of spatial axes of the array (3, or 2 for an image: Z gets 1.0 nm / 0).
        where: the array's spec, for messages.
        need_offset: parse ``offset`` (False when the caller overrides it: returns 0s).
    """
    voxel_size: tuple[float, ...] = (1.0, 1.0, 1.0)
    for name in VOXEL_SIZE_ATTRS:
        if name in attrs:
            voxel_size = _spatial(attrs[name], n_spatial, f"{where} attribute {name!r}", pad=1.0)
            voxel_size = check_voxel_size(voxel_size, f"{where} attribute {name!r}")
            break
    offset = (0, 0, 0)
    if need_offset and OFFSET_ATTR in attrs:
        nm = _spatial(attrs[OFFSET_ATTR], n_spatial, f"{where} attribute 'offset'", pad=0.0)
        offset = _whole_voxels(nm, voxel_size, f"{where} attribute 'offset' (nm)")
    return voxel_size, offset  # type: ignore[return-value]


def _spatial(value: Any, n_spatial: int, where: str, pad: float) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in np.atleast_1d(np.asarray(value)).ravel())
    except (TypeError, ValueError):
        raise UserError(f"{where} is {value!r}; expected {n_spatial} numbers, ZYX") from None
    if len(values) != n_spatial:
        raise UserError(f"{where} is {list(values)} but the array has {n_spatial} spatial axes; give {n_spatial} numbers, ZYX")
    return (pad,) * (3 - n_spatial) + values


def _whole_voxels(nm: Sequence[float], voxel_size: Sequence[float], where: str) -> tuple[int, int, int]:
    voxels = [n / s for n, s in zip(nm, voxel_size)]
    if not all(abs(v - round(v)) < 1e-3 for v in voxels):
        raise UserError(
            f"{where} is {list(nm)}, not a whole number of voxels of {list(voxel_size)} nm; "
            "pass offset= (voxels) to open_volume to set it"
        )
    return check_offset([round(v) for v in voxels], where)


# ---- OME-Zarr -------------------------------------------------------------------------------


def find_multiscales(attrs: Mapping[str, Any]) -> list | None:
    """The ``multiscales`` list of OME-Zarr 0.5 (``ome.multiscales``) or 0.4 attributes, else None."""
    ome = attrs.get("ome")
    if isinstance(ome, Mapping) and "multiscales" in ome:
        return ome["multiscales"]
    if "multiscales" in attrs:
        return attrs["multiscales"]
    return None


def ome_dataset(multiscales: list, path: str | None, where: str) -> tuple[dict, dict] | None:
    """``(multiscale, dataset)`` for dataset ``path`` (None: the first, full resolution), or None."""
    if not isinstance(multiscales, list) or not multiscales or not isinstance(multiscales[0], Mapping):
        raise UserError(f"{where}: OME-Zarr 'multiscales' metadata is not a list of multiscale images; fix the metadata or name the array")
    for ms in multiscales:
        datasets = ms.get("datasets") or []
        if not datasets:
            raise UserError(f"{where}: OME-Zarr multiscale has no datasets; fix the metadata or name the array")
        for ds in datasets:
            if path is None or str(ds.get("path")).strip("/") == path:
                return ms, ds
    return None


def ome_axes(multiscale: Mapping[str, Any], ndim: int, where: str) -> tuple[str, int]:
    """``(axes, drop)``: the Volume axes and how many leading length-1 time axes to hide.

    Raises:
        UserError: axes that are not (t) (c) (z) y x, or a time axis (kept only when it has length 1;
            the caller checks the length).
    """
    raw = multiscale.get("axes")
    if raw is None:
        return "", 0
    names, kinds = [], []
    for ax in raw:
        name = ax.get("name") if isinstance(ax, Mapping) else ax
        kind = ax.get("type") if isinstance(ax, Mapping) else None
        names.append(str(name).lower())
        kinds.append((kind or {"t": "time", "c": "channel"}.get(str(name).lower(), "space")).lower())
    if len(names) != ndim:
        raise UserError(f"{where}: OME-Zarr axes {names} do not match the array's {ndim} dimensions; fix the metadata")
    drop = 0
    while drop < len(kinds) and kinds[drop] == "time":
        drop += 1
    axes = ""
    for name, kind in zip(names[drop:], kinds[drop:]):
        axes += "c" if kind == "channel" else name
    if axes not in ("yx", "cyx", "zyx", "czyx"):
        raise UserError(
            f"{where}: OME-Zarr axes {names} are not supported; masktwins3d reads (t)(c)ZYX or (t)(c)YX "
            "with spatial axes named z, y, x in that order"
        )
    return axes, drop


def ome_geometry(
    multiscale: Mapping[str, Any],
    dataset: Mapping[str, Any],
    ndim: int,
    where: str,
    need_unit: bool = True,
    need_offset: bool = True,
) -> tuple[tuple[float, float, float], tuple[int, int, int]]:
    """``(voxel_size_nm, offset_voxels)`` of one OME-Zarr dataset (all ``ndim`` array axes described).

    Args:
        multiscale: the multiscale image entry (holds ``axes`` and optional top-level transforms).
        dataset: the dataset entry (holds its ``coordinateTransformations``).
        ndim: number of dimensions of the array.
        where: spec for messages.
        need_unit: convert units to nm (False when the caller overrides the voxel size, so an
            unknown unit does not stop it).
        need_offset: compute the offset (False when the caller overrides it: returns 0s).
    """
    scale, translation = np.ones(ndim), np.zeros(ndim)
    for transforms in (dataset.get("coordinateTransformations"), multiscale.get("coordinateTransformations")):
        s, t = _transforms(transforms or [], ndim, where)
        translation = translation * s + t
        scale = scale * s
    raw_axes = multiscale.get("axes") or [{"name": n} for n in "czyx"[-ndim:]]
    spatial = [
        i for i, ax in enumerate(raw_axes)
        if (ax.get("type") if isinstance(ax, Mapping) else None) not in ("time", "channel")
        and str(ax.get("name") if isinstance(ax, Mapping) else ax).lower() not in ("t", "c")
    ]
    factors = []
    for i in spatial:
        unit = raw_axes[i].get("unit") if isinstance(raw_axes[i], Mapping) else None
        if unit is None or not need_unit:
            factors.append(1.0)
        elif str(unit).lower() in UNIT_NM:
            factors.append(UNIT_NM[str(unit).lower()])
        else:
            raise UserError(f"{where}: OME-Zarr axis unit {unit!r} is not a length unit; pass voxel_size= (nm, ZYX) to open_volume")
    if np.any(scale[spatial] <= 0):
        raise UserError(f"{where}: OME-Zarr scale {scale.tolist()} must be positive; fix the metadata or pass voxel_size=")
    n_spatial = len(spatial)
    voxel_size = (1.0,) * (3 - n_spatial) + tuple(float(s * f) for s, f in zip(scale[spatial], factors))
    offset_vx = (0.0,) * (3 - n_spatial) + tuple(float(v) for v in translation[spatial] / scale[spatial])
    offset = (0, 0, 0)
    if need_offset:
        offset = _whole_voxels(offset_vx, (1.0, 1.0, 1.0), f"{where} OME-Zarr translation / scale (voxels)")
    return check_voxel_size(voxel_size, f"{where} OME-Zarr scale"), offset


def _transforms(transforms: list, ndim: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    scale, translation = np.ones(ndim), np.zeros(ndim)
    for tr in transforms:
        kind = tr.get("type")
        if kind == "identity":
            continue
        if kind not in ("scale", "translation"):
            raise UserError(f"{where}: OME-Zarr transform {kind!r} is not supported (only scale and translation)")
        if kind not in tr:
            raise UserError(f"{where}: OME-Zarr {kind} transform stored in a file ({tr.get('path')!r}) is not supported; inline it")
        values = np.asarray(tr[kind], dtype=float)
        if values.shape != (ndim,):
            raise UserError(f"{where}: OME-Zarr {kind} {values.tolist()} does not have {ndim} entries; fix the metadata")
        if kind == "scale":
            scale, translation = scale * values, translation * values
        else:
            translation = translation + values
    return scale, translation


def ome_attributes(
    axes: str, voxel_size: Sequence[float], offset: Sequence[int], name: str, dataset: str = "0"
) -> dict:
    """OME-Zarr 0.5 group attributes for one full-resolution dataset (units: nanometer).

    Args:
        axes: Volume axes ("zyx", "czyx", "yx", "cyx").
        voxel_size: nm per voxel, ZYX.
        offset: voxels, ZYX; written as ``translation = offset * voxel_size`` (nm).
        name: image name stored in the metadata.
        dataset: path of the array inside the group (default "0").
    """
    spatial = axes.lstrip("c")
    vs, off = list(voxel_size)[-len(spatial):], list(offset)[-len(spatial):]
    ax = ([{"name": "c", "type": "channel"}] if axes.startswith("c") else []) + [
        {"name": a, "type": "space", "unit": "nanometer"} for a in spatial
    ]
    lead = [1.0] if axes.startswith("c") else []
    scale = lead + [float(v) for v in vs]
    translation = [0.0] * len(lead) + [float(o) * float(v) for o, v in zip(off, vs)]
    return {
        "ome": {
            "version": "0.5",
            "multiscales": [
                {
                    "name": name,
                    "axes": ax,
                    "datasets": [
                        {
                            "path": dataset,
                            "coordinateTransformations": [
                                {"type": "scale", "scale": scale},
                                {"type": "translation", "translation": translation},
                            ],
                        }
                    ],
                }
            ],
        }
    }
