"""Predict with a training checkpoint: rebuild its model, normalise the input, run the engine."""

from __future__ import annotations

from pathlib import Path

import torch

from ..adapt.trainer import load_checkpoint
from ..config import ModelConfig
from ..data.normalize import volume_normalizer
from ..errors import UserError
from ..io import open_volume
from ..models import build_model
from .predict import predict_volume


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
    overlap: float = 0.25,
    blend: str = "gaussian",
    batch_size: int = 4,
    device: str = "auto",
    out_dtype: str = "float32",
    overwrite: bool = False,
    progress: bool = True,
):
    """Open ``input_spec``, check everything, then predict it with ``checkpoint`` into ``output``.

    Args:
        checkpoint: ``checkpoint.pt`` of a training run.
        input_spec: image volume (any format :func:`~masktwins3d.io.open_volume` reads).
        output: probability zarr to write (refused if it exists, unless ``overwrite``).
        patch_size / overlap / blend / batch_size: sliding-window settings (voxels, fraction);
            ``patch_size=None`` takes 256 x 256 for 2D and 64 x 64 x 64 for 3D models.
        device: auto | cpu | cuda.
        out_dtype: float32 | float16 | uint8.
    """
    if Path(output).exists() and not overwrite:
        raise UserError(f"{output} exists; pass --overwrite to replace it or choose another output")
    model = model_from_checkpoint(checkpoint)
    volume = open_volume(input_spec).require_3d("prediction")
    dims = getattr(model, "spatial_dims", 2)
    if patch_size is None:
        patch_size = DEFAULT_PATCH[dims]
    if any(p % 16 for p in patch_size) or len(patch_size) != dims:
        example = ",".join(map(str, DEFAULT_PATCH[dims]))
        raise UserError(f"--patch {','.join(map(str, patch_size))} must be {dims} multiples of 16 for this {dims}D model, e.g. {example}")
    normalizer = volume_normalizer(volume)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return predict_volume(
        model, volume, output,
        preprocess=normalizer,
        patch_size=tuple(patch_size),
        overlap=overlap,
        blend=blend,
        batch_size=batch_size,
        device=device,
        activation=model.head_kind,
        out_dtype=out_dtype,
        overwrite=overwrite,
        progress=progress,
    )
