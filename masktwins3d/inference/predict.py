"""Entry points of prediction with an in-memory model: :func:`predict_volume` (a Volume into a
probability zarr, block by block) and :func:`predict_array` (a numpy array in memory).

Both run the one engine: :func:`.region.predict_region` per region, and for volumes
:func:`.blockwise.predict_blockwise` around it (blocks with context, chunk-aligned writes, a
resumable manifest, optional dask). 2D models predict sections, 3D models 3D regions.

>>> out = predict_volume(model, open_volume("raw.zarr"), "prob.zarr", preprocess=volume_normalizer(vol))
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import UserError
from ..precision import resolve_precision
from .blockwise import predict_blockwise
from .region import OUT_DTYPES, Activation, check_window_settings, predict_region
from .window import BlendMode

__all__ = ["OUT_DTYPES", "Activation", "predict_array", "predict_volume"]


def predict_volume(
    model: torch.nn.Module,
    volume,
    out_path: str | Path,
    *,
    preprocess: Callable[[np.ndarray], np.ndarray],
    patch_size: Sequence[int] = (256, 256),
    overlap: float | Sequence[float] = 0.25,
    blend: BlendMode | str = "gaussian",
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    activation: Activation | str = "softmax",
    out_dtype: str = "float32",
    overwrite: bool = False,
    progress: bool = True,
    **engine,
):
    """Predict ``volume`` with a 2D or 3D ``model``; write probabilities to ``out_path``.

    Arguments are checked and ``out_path`` is refused (unless ``overwrite``) before anything is
    computed. Memory is bounded by one block whatever the volume's size.

    Args:
        model: network mapping ``(B, 1, *patch)`` float to ``(B, K, *patch)`` logits, 2D or 3D
            by its ``spatial_dims`` attribute (default 2); moved to ``device``, in eval mode.
        volume: ZYX :class:`~masktwins3d.io.Volume` (or CZYX with one channel).
        out_path: output zarr (``out.zarr`` or ``out.zarr/group``), OME-Zarr ``czyx``.
        preprocess: elementwise raw -> float32 normalisation of the same shape (e.g. a
            :class:`~masktwins3d.data.normalize.Normalizer`), applied to each block.
        patch_size: window (Y, X) for 2D, (Z, Y, X) for 3D models, voxels (default 256 x 256);
            larger than the volume is fine (padded).
        overlap: fraction of a window shared with its neighbour, in [0, 1), one or one per patch
            axis (default 0.25).
        blend: ``gaussian`` (default), ``constant`` or ``bump`` weighting of overlapping windows.
        batch_size: windows per forward pass (default 4).
        device: torch device of the model and the stitching (default cpu).
        activation: ``softmax`` (default; writes classes 1..K-1) or ``sigmoid`` (writes all K).
        out_dtype: ``float32`` (default), ``float16`` or ``uint8`` (round(p * 255)).
        overwrite: replace an existing ``out_path`` (default False: refuse).
        progress: show a tqdm bar over blocks (default True).
        **engine: further :func:`~.blockwise.predict_blockwise` options (tta, block_shape,
            context, scheduler, threads, resume, amp: auto | on | off, default auto).

    Returns:
        The output :class:`~masktwins3d.io.Volume` (open for writing), shape ``(C, Z, Y, X)``.
    """
    return predict_blockwise(
        model, volume, out_path, preprocess=preprocess, patch_size=patch_size, overlap=overlap, blend=blend,
        batch_size=batch_size, device=str(device), activation=activation, out_dtype=out_dtype,
        overwrite=overwrite, progress=progress, **engine,
    )


def predict_array(
    model: torch.nn.Module,
    array: np.ndarray,
    *,
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    patch_size: Sequence[int] = (256, 256),
    overlap: float | Sequence[float] = 0.25,
    blend: BlendMode | str = "gaussian",
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    activation: Activation | str = "softmax",
    tta: bool = False,
    amp: str | bool = "auto",
) -> np.ndarray:
    """In-memory prediction: probabilities of a ``(Y, X)`` section or a ``(Z, Y, X)`` array.

    Args:
        model: 2D or 3D network, as for :func:`predict_volume` (a 3D model needs a ``(Z, Y, X)`` array).
        array: ``(Y, X)`` or ``(Z, Y, X)`` image.
        preprocess: elementwise raw -> float32 normalisation (default: ``array`` is used as float32).
        patch_size, overlap, blend, batch_size, device, activation: as for :func:`predict_volume`.
        tta: flip test-time augmentation (default False).
        amp: auto (default) | on | off: bf16 autocast (see :mod:`masktwins3d.precision`).

    Returns:
        float32 ``(C, Y, X)`` or ``(C, Z, Y, X)`` probabilities.
    """
    dims = getattr(model, "spatial_dims", 2)
    settings = check_window_settings(dims, patch_size, overlap, blend, batch_size, tta, activation, resolve_precision(amp, device).bf16)
    array = np.asarray(array)
    if array.ndim not in (2, 3) or (dims == 3 and array.ndim != 3):
        raise UserError(f"array of shape {array.shape} cannot be predicted by a {dims}D model; give a (Y, X) section or a (Z, Y, X) stack")
    model = model.to(device).eval()
    prep = preprocess or (lambda s: np.asarray(s, dtype=np.float32))
    stack = array[None] if array.ndim == 2 else array
    prob = predict_region(model, np.asarray(prep(stack), dtype=np.float32), settings, device)
    return prob[:, 0] if array.ndim == 2 else prob
