"""Predict with a training checkpoint: rebuild its model, normalise the input (one volume-level
normaliser), run the blockwise engine (:mod:`.blockwise`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ..adapt.trainer import load_checkpoint
from ..config import ModelConfig
from ..data.normalize import volume_normalizer
from ..errors import UserError
from ..io import open_volume
from ..models import build_model
from ..parallel import parse_scheduler
from .blockwise import block_layout
from .region import check_window_settings


DEFAULT_PATCH = {2: (256, 256), 3: (64, 64, 64)}
"""Window used when no patch size is given, by the model's number of spatial axes."""


def model_from_checkpoint(path: str | Path) -> torch.nn.Module:
    """The student network of a checkpoint, in eval mode (weights loaded with weights_only=True)."""
    state = load_checkpoint(path)
    cfg = ModelConfig(**state["model_config"])
    model = build_model(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise UserError(f"{path}: weights do not fit model {cfg.name} {cfg.widths} ({str(exc).splitlines()[0]}); the checkpoint is damaged or from another version") from None
    model.head_kind = cfg.head
    return model.eval()


def predict_with_checkpoint(
    checkpoint: str | Path,
    input_spec: str,
    output: str | Path,
    *,
    patch_size=None,
    overlap: float | Sequence[float] = 0.25,
    blend: str = "gaussian",
    batch_size: int = 4,
    device: str = "auto",
    out_dtype: str = "float32",
    overwrite: bool = False,
    progress: bool = True,
    tta: bool = False,
    block_shape: Sequence[int] | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    resume: bool = False,
):
    """Open ``input_spec``, check everything, then predict it with ``checkpoint`` into ``output``, block by block.

    Args:
        checkpoint: ``checkpoint.pt`` of a training run (its sha256 goes into the manifest).
        input_spec: image volume (any format :func:`~masktwins3d.io.open_volume` reads).
        output: probability zarr to write (refused if it exists, unless ``overwrite`` or ``resume``).
        patch_size: window, voxels, multiples of 16: (Y, X) for 2D, (Z, Y, X) for 3D models
            (default None: 256 x 256 for 2D and 64 x 64 x 64 for 3D models).
        overlap: window overlap fraction in [0, 1), one value or one per patch axis (default 0.25).
        blend: gaussian (default) | constant | bump.
        batch_size: windows per forward pass (default 4).
        device: auto (default: cuda if available) | cpu | cuda.
        out_dtype: float32 (default) | float16 | uint8.
        overwrite: replace an existing output (default False).
        progress: tqdm bar over blocks (default True).
        tta: flip test-time augmentation (default False).
        block_shape: write region per block (Z, Y, X), voxels (default: see
            :data:`~.blockwise.DEFAULT_BLOCK`).
        scheduler: none (default) | local[:N] | dask scheduler address.
        threads: torch threads per block worker (default: CPU cores / workers).
        resume: finish an interrupted run into ``output`` (default False).
    """
    from .blockwise import CheckpointModel, predict_blockwise

    out = Path(output)
    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other; pass --resume to continue a run or --overwrite to start again")
    if out.exists() and not (overwrite or resume):
        raise UserError(f"{output} exists; pass --overwrite to replace it, --resume to finish it, or choose another output")
    parse_scheduler(scheduler)
    ref = CheckpointModel.of(checkpoint)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = ref.load(device)
    volume = open_volume(input_spec).require_3d("prediction")
    dims = getattr(model, "spatial_dims", 2)
    if patch_size is None:
        patch_size = DEFAULT_PATCH[dims]
    if len(patch_size) != dims or any(p % 16 for p in patch_size):
        example = ",".join(map(str, DEFAULT_PATCH[dims]))
        raise UserError(f"--patch {','.join(map(str, patch_size))} must be {dims} multiples of 16 for this {dims}D model, e.g. {example}")
    check_window_settings(dims, patch_size, overlap, blend, batch_size, tta, model.head_kind)
    block_layout(dims, volume.shape[-3:], block_shape)
    normalizer = volume_normalizer(volume)
    return predict_blockwise(
        ref, volume, output,
        preprocess=normalizer,
        patch_size=tuple(patch_size),
        overlap=overlap,
        blend=blend,
        batch_size=batch_size,
        tta=tta,
        device=device,
        activation=model.head_kind,
        out_dtype=out_dtype,
        block_shape=block_shape,
        scheduler=scheduler,
        threads=threads,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        identity={"input": str(input_spec)},
    )
