"""Entry points of prediction with an in-memory model: :func:`predict_volume` (a Volume into a
probability zarr, block by block) and :func:`predict_array` (a numpy array in memory).

Both run the one engine: :func:`.region.predict_region` per region, and for volumes
:func:`.blockwise.predict_blockwise` around it (blocks with context, chunk-aligned writes, a
resumable manifest, optional dask; its settings a :class:`.settings.PredictSettings`). 2D models
predict sections, 3D models 3D regions.

>>> out = predict_volume(model, open_volume("raw.zarr"), "prob.zarr", preprocess=volume_normalizer(vol))
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import UserError
from ..precision import resolve_precision
from .blockwise import predict_blockwise
from .region import OUT_DTYPES, Activation, predict_region
from .settings import PredictSettings

__all__ = ["OUT_DTYPES", "Activation", "predict_array", "predict_volume"]


def predict_volume(
    model: torch.nn.Module,
    volume,
    out_path: str | Path,
    *,
    preprocess: Callable[[np.ndarray], np.ndarray],
    device: str | torch.device = "cpu",
    activation: Activation | str = "softmax",
    progress: bool = True,
    **options,
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
        device: torch device of the model and the stitching (default cpu).
        activation: ``softmax`` (default; writes classes 1..K-1) or ``sigmoid`` (writes all K).
        progress: show a tqdm bar over blocks (default True).
        **options: the prediction's settings, fields of :class:`~.settings.PredictSettings`
            (patch_size, overlap, blend, batch_size, out_dtype, overwrite, tta, block_shape,
            context, scheduler, threads, resume, amp), and :func:`~.blockwise.predict_blockwise`'s
            ``identity`` and ``on_block``.

    Returns:
        The output :class:`~masktwins3d.io.Volume` (open for writing), shape ``(C, Z, Y, X)``.
    """
    return predict_blockwise(model, volume, out_path, preprocess=preprocess, device=str(device), activation=activation,
                             progress=progress, **options)


def predict_array(
    model: torch.nn.Module,
    array: np.ndarray,
    *,
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    device: str | torch.device = "cpu",
    activation: Activation | str = "softmax",
    **options,
) -> np.ndarray:
    """In-memory prediction: probabilities of a ``(Y, X)`` section or a ``(Z, Y, X)`` array.

    Args:
        model: 2D or 3D network, as for :func:`predict_volume` (a 3D model needs a ``(Z, Y, X)`` array).
        array: ``(Y, X)`` or ``(Z, Y, X)`` image.
        preprocess: elementwise raw -> float32 normalisation (default: ``array`` is used as float32).
        device, activation: as for :func:`predict_volume`.
        **options: patch_size, overlap, blend, batch_size, tta, amp: fields of
            :class:`~.settings.PredictSettings` (and their defaults).

    Returns:
        float32 ``(C, Y, X)`` or ``(C, Z, Y, X)`` probabilities.
    """
    dims = getattr(model, "spatial_dims", 2)
    given = PredictSettings(device=str(device), activation=activation, **options)
    settings = given.window(dims, activation, resolve_precision(given.amp.value, device).bf16)
    array = np.asarray(array)
    if array.ndim not in (2, 3) or (dims == 3 and array.ndim != 3):
        raise UserError(f"array of shape {array.shape} cannot be predicted by a {dims}D model; give a (Y, X) section or a (Z, Y, X) stack")
    model = model.to(device).eval()
    prep = preprocess or (lambda s: np.asarray(s, dtype=np.float32))
    stack = array[None] if array.ndim == 2 else array
    prob = predict_region(model, np.asarray(prep(stack), dtype=np.float32), settings, device)
    return prob[:, 0] if array.ndim == 2 else prob
