"""Predict a 2D or 3D network over a ZYX volume into a probability zarr.

2D models: each z-section is read on its own, normalised, predicted with
:func:`.window.sliding_window` and written as foreground probabilities ``(C, Z, Y, X)`` with the
input's voxel size and offset. 3D models: slabs of z-sections with a halo of half a window on
each side are predicted with the 3D sliding window and their interiors written, so memory is
bounded by the slab, not the volume.

>>> out = predict_volume(model, open_volume("raw.zarr"), "prob.zarr", preprocess=volume_normalizer(vol))
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..errors import UserError
from .window import BlendMode, sliding_window

OUT_DTYPES = ("float32", "float16", "uint8")
"""Output dtypes: probabilities as float32/float16, or uint8 = round(p * 255)."""

MAX_CHUNK = 1024
"""Largest Y and X chunk edge of the output zarr, voxels."""


class Activation(str, Enum):
    """Network head: ``softmax`` (write classes 1..K-1) or ``sigmoid`` (write all K channels)."""

    SOFTMAX = "softmax"
    SIGMOID = "sigmoid"


def predict_volume(
    model: torch.nn.Module,
    volume,
    out_path: str | Path,
    *,
    preprocess: Callable[[np.ndarray], np.ndarray],
    patch_size: Sequence[int] = (256, 256),
    overlap: float = 0.25,
    blend: BlendMode | str = "gaussian",
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    activation: Activation | str = "softmax",
    out_dtype: str = "float32",
    overwrite: bool = False,
    progress: bool = True,
    slab: int = 128,
):
    """Predict ``volume`` with a 2D or 3D ``model``; write probabilities to ``out_path``.

    Arguments are checked and ``out_path`` is refused (unless ``overwrite``) before anything is
    computed. A 2D model reads one section at a time; a 3D model reads slabs of ``slab``
    sections plus a halo of half a window on each side, so memory stays bounded whatever the
    volume's depth.

    Args:
        model: network mapping ``(B, 1, *patch)`` float to ``(B, K, *patch)`` logits, 2D or 3D
            by its ``spatial_dims`` attribute (default 2); moved to ``device``, in eval mode.
        volume: ZYX :class:`~masktwins3d.io.Volume` (or CZYX with one channel).
        out_path: output zarr (``out.zarr`` or ``out.zarr/group``), OME-Zarr ``czyx``.
        preprocess: raw section ``(Y, X)`` -> float32 normalised section of the same shape
            (e.g. a :class:`~masktwins3d.data.normalize.Normalizer`).
        patch_size: window (Y, X) for 2D, (Z, Y, X) for 3D models, voxels (default 256 x 256);
            larger than the volume is fine (padded).
        overlap: fraction of a window shared with its neighbour, in [0, 1) (default 0.25).
        blend: ``gaussian`` (default) or ``constant`` weighting of overlapping windows.
        batch_size: windows per forward pass (default 4).
        device: torch device of the model and the stitching (default cpu).
        activation: ``softmax`` (default; writes classes 1..K-1) or ``sigmoid`` (writes all K).
        out_dtype: ``float32`` (default), ``float16`` or ``uint8`` (round(p * 255)).
        overwrite: replace an existing ``out_path`` (default False: refuse).
        progress: show a tqdm bar over sections or slabs (default True).
        slab: 3D models: sections written per slab (default 128).

    Returns:
        The output :class:`~masktwins3d.io.Volume` (open for writing), shape ``(C, Z, Y, X)``.
    """
    from ..io import create_volume

    dims = getattr(model, "spatial_dims", 2)
    settings = check_settings(patch_size, overlap, blend, batch_size, activation, out_dtype, dims)
    read_section = section_reader(volume)
    if Path(out_path).exists() and not overwrite:
        raise UserError(f"{out_path} exists; pass --overwrite to replace it or choose another output")
    model = model.to(device).eval()
    channels = output_channels(model, settings, device)
    nz, ny, nx = volume.spatial_shape
    out = create_volume(
        out_path,
        (channels, nz, ny, nx),
        out_dtype,
        voxel_size=volume.voxel_size,
        offset=volume.offset,
        axes="czyx",
        chunks=(1, 1, min(ny, MAX_CHUNK), min(nx, MAX_CHUNK)) if dims == 2 else (1, min(nz, 64), min(ny, 256), min(nx, 256)),
        overwrite=overwrite,
    )
    if dims == 3:
        for z0, z1, lo, hi in tqdm(slabs(nz, settings["patch_size"][0], slab), disable=not progress, desc="predict", unit="slab"):
            stack = np.stack([preprocess(read_section(z)) for z in range(lo, hi)])
            if stack.shape[1:] != (ny, nx):
                raise ValueError(f"preprocess turned sections of shape {(ny, nx)} into {stack.shape[1:]}; keep the shape")
            prob = predict_window(model, stack, settings, device)
            out[:, z0:z1] = to_out_dtype(prob[:, z0 - lo : z1 - lo], out_dtype)
        return out
    for z in tqdm(range(nz), disable=not progress, desc="predict", unit="section"):
        section = preprocess(read_section(z))
        if section.shape != (ny, nx):
            raise ValueError(f"preprocess turned section {z} of shape {(ny, nx)} into {section.shape}; keep the shape")
        out[:, z] = to_out_dtype(predict_section(model, section, settings, device), out_dtype)
    return out


def predict_array(
    model: torch.nn.Module,
    array: np.ndarray,
    *,
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    patch_size: Sequence[int] = (256, 256),
    overlap: float = 0.25,
    blend: BlendMode | str = "gaussian",
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    activation: Activation | str = "softmax",
) -> np.ndarray:
    """In-memory :func:`predict_volume`: probabilities of a ``(Y, X)`` section or ``(Z, Y, X)`` stack.

    Args:
        model: 2D network, as for :func:`predict_volume`.
        array: ``(Y, X)`` or ``(Z, Y, X)`` image.
        preprocess: section -> float32 normalised section (default: ``array`` is used as float32).
        patch_size, overlap, blend, batch_size, device, activation: as for :func:`predict_volume`.

    Returns:
        float32 ``(C, Y, X)`` or ``(C, Z, Y, X)`` probabilities.
    """
    settings = check_settings(patch_size, overlap, blend, batch_size, activation, "float32")
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise UserError(f"array of shape {array.shape} cannot be predicted; give a (Y, X) section or a (Z, Y, X) stack")
    model = model.to(device).eval()
    prep = preprocess or (lambda s: np.asarray(s, dtype=np.float32))
    sections = [predict_section(model, prep(s), settings, device) for s in (array[None] if array.ndim == 2 else array)]
    return sections[0] if array.ndim == 2 else np.stack(sections, axis=1)


def check_settings(patch_size, overlap, blend, batch_size, activation, out_dtype, dims: int = 2) -> dict:
    """Validate the prediction settings; a :class:`UserError` with the fix for the first bad one."""
    try:
        patch = tuple(int(p) for p in patch_size)
        ok = len(patch) == dims and all(p > 0 and p == q for p, q in zip(patch, patch_size))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        example, axes = ("256,256", "(Y, X)") if dims == 2 else ("64,64,64", "(Z, Y, X)")
        raise UserError(f"--patch {patch_size!r} must be {dims} positive whole numbers {axes} for this {dims}D model, e.g. {example}")
    try:
        fraction = float(overlap)
    except (TypeError, ValueError):
        fraction = float("nan")
    if not 0 <= fraction < 1:
        raise UserError(f"--overlap {overlap!r} must be a fraction in [0, 1), e.g. 0.25")
    try:
        blend = BlendMode(blend)
    except ValueError:
        raise UserError(f"--blend {blend!r} is unknown; use one of {[m.value for m in BlendMode]}") from None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise UserError(f"--batch-size {batch_size!r} must be a whole number >= 1, e.g. 4")
    try:
        activation = Activation(activation)
    except ValueError:
        names = [a.value for a in Activation]
        raise UserError(f"activation {activation!r} is unknown; set model.head to one of {names}") from None
    if out_dtype not in OUT_DTYPES:
        raise UserError(f"--dtype {out_dtype!r} is unknown; use one of {list(OUT_DTYPES)}")
    return {
        "patch_size": patch, "overlap": fraction, "mode": blend, "batch_size": int(batch_size), "activation": activation
    }


def section_reader(volume) -> Callable[[int], np.ndarray]:
    """``z -> (Y, X)`` numpy section of a ZYX volume (or of a CZYX volume with one channel)."""
    axes = getattr(volume, "axes", "zyx")
    if axes == "zyx":
        return lambda z: np.asarray(volume[z])
    if axes == "czyx" and volume.shape[0] == 1:
        return lambda z: np.asarray(volume[0, z])
    raise UserError(
        f"{getattr(volume, 'path', 'the input')} has axes {axes!r} and shape {tuple(volume.shape)}; "
        "prediction needs a ZYX volume of one channel: give the image volume"
    )


def output_channels(model: torch.nn.Module, settings: dict, device) -> int:
    """Channels written: K - 1 for softmax, K for sigmoid (K from ``model.out_channels``, else one probe window)."""
    k = getattr(model, "out_channels", None)
    if not isinstance(k, int):
        with torch.inference_mode():
            k = int(model(torch.zeros((1, 1, *settings["patch_size"]), device=device)).shape[1])
    if settings["activation"] == Activation.SOFTMAX:
        if k < 2:
            raise UserError(f"the model has {k} output channel; a softmax head needs >= 2: set model.head to sigmoid")
        return k - 1
    return k


def slabs(nz: int, patch_z: int, slab: int) -> list[tuple[int, int, int, int]]:
    """``(z0, z1, lo, hi)`` per slab: write sections ``[z0, z1)``, read ``[lo, hi)`` (a halo of
    ``patch_z // 2`` sections on each side, clipped to the volume)."""
    if slab < 1:
        raise UserError(f"slab={slab} must be at least 1 section")
    halo = patch_z // 2
    return [(z0, min(z0 + slab, nz), max(z0 - halo, 0), min(z0 + slab + halo, nz)) for z0 in range(0, nz, slab)]


def predict_section(model: torch.nn.Module, section: np.ndarray, settings: dict, device) -> np.ndarray:
    """float32 ``(C, Y, X)`` probabilities of one normalised ``(Y, X)`` section (see :func:`output_channels`)."""
    return predict_window(model, section, settings, device)


def predict_window(model: torch.nn.Module, region: np.ndarray, settings: dict, device) -> np.ndarray:
    """float32 ``(C, *S)`` probabilities of one normalised single-channel region ``S`` (2D or 3D)."""
    image = torch.as_tensor(np.ascontiguousarray(region, dtype=np.float32), device=device)[None]
    logits = sliding_window(
        image,
        model,
        settings["patch_size"],
        settings["overlap"],
        settings["mode"],
        settings["batch_size"],
    )
    if settings["activation"] == Activation.SOFTMAX:
        prob = torch.softmax(logits, dim=0)[1:]
    else:
        prob = torch.sigmoid(logits)
    return prob.cpu().numpy()


def to_out_dtype(prob: np.ndarray, out_dtype: str) -> np.ndarray:
    """Probabilities in [0, 1] as ``out_dtype``: float32, float16, or uint8 = round(p * 255)."""
    if out_dtype == "uint8":
        return np.rint(prob * 255.0).astype(np.uint8)
    return prob.astype(out_dtype)
