"""Predict with a training checkpoint: rebuild its model, normalise the input (one volume-level
normaliser), run the blockwise engine (:mod:`.blockwise`)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..adapt.trainer import load_checkpoint
from ..atomic import refuse_overlap
from ..data.normalize import volume_normalizer
from ..errors import UserError
from ..precision import parse_amp
from ..io import Volume, open_volume
from ..io.zarr_io import check_dense, is_zarr_node
from ..modes import Resample, values
from ..parallel import check_reachable, parse_scheduler
from ..parallel.resumable import run_staged
from .blockwise import CheckpointModel, block_layout, check_output_flags, predict_blockwise
from .loading import WEIGHTS
from .region import check_window_settings


DEFAULT_PATCH = {2: (256, 256), 3: (64, 64, 64)}
"""Window used when no patch size is given, by the model's number of spatial axes."""


def resample_factors(checkpoint: str | Path, volume, dims: int) -> tuple[float, float] | None:
    """In-plane zoom that ``resample="auto"`` applies to ``volume`` for this checkpoint, or None.

    Only 2D models whose checkpoint records its training voxel size are resampled, and only
    when both voxel sizes are known and more than 5 % apart
    (:func:`~masktwins3d.data.resample.zoom_factors`).
    """
    if dims != 2:
        return None
    from ..data.resample import zoom_factors

    trained_at = load_checkpoint(checkpoint).get("voxel_size")
    return zoom_factors(volume.voxel_size, trained_at) if trained_at else None


VOXEL_NOTE = 1.05
"""A 3D model on a volume whose voxel size differs from its training voxel size by more than
this factor on an axis gets a note."""
VOXEL_LIMIT = 2.0
"""Above this factor on an axis it is refused (with ``resample="auto"``) until the user resamples
the volume or says ``--resample never``: a 3D model is never resampled for."""


def voxel_size_mismatch(trained_at, voxel_size) -> float | None:
    """The largest per-axis factor (>= 1) between a model's training voxel size and a volume's,
    or None when either is unknown (absent, or 1 nm on every axis: "not recorded")."""
    if not trained_at or voxel_size is None:
        return None
    a, b = [float(v) for v in trained_at], [float(v) for v in voxel_size]
    if len(a) != len(b) or all(v == 1.0 for v in a) or all(v == 1.0 for v in b) or min(a + b) <= 0:
        return None
    return max(max(x / y, y / x) for x, y in zip(a, b))


def check_voxel_size_3d(checkpoint: str | Path, volume, dims: int, resample: str) -> None:
    """Note, or above :data:`VOXEL_LIMIT` refuse, a 3D model on a volume of another voxel size."""
    if dims != 3:
        return
    trained_at = load_checkpoint(checkpoint).get("voxel_size")
    factor = voxel_size_mismatch(trained_at, volume.voxel_size)
    if factor is None or factor <= VOXEL_NOTE:
        return

    def nm(v):
        return " x ".join(f"{float(x):g}" for x in v)

    what = f"{volume.path} has {nm(volume.voxel_size)} nm voxels, the 3D model was trained at {nm(trained_at)} nm (x{factor:.2f} on an axis)"
    if factor > VOXEL_LIMIT and resample == "auto":
        raise UserError(f"{what}; a 3D model is not resampled for: resample the volume to its voxel size first, "
                        "or pass --resample never to predict it as it is")
    print(f"note: {what}; predicting as it is", file=sys.stderr, flush=True)


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when torch sees a GPU, else cpu; a cuda device torch cannot see is one line."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device} but this torch sees no CUDA device ({torch.__version__}); use --device cpu or auto")
    return device


def check_patch(patch_size, dims: int) -> tuple[int, ...]:
    """The prediction window (default :data:`DEFAULT_PATCH`), ``dims`` multiples of 16, or one line."""
    if patch_size is None:
        return DEFAULT_PATCH[dims]
    if len(patch_size) != dims or any(p % 16 for p in patch_size):
        example = ",".join(map(str, DEFAULT_PATCH[dims]))
        raise UserError(f"--patch {','.join(map(str, patch_size))} must be {dims} multiples of 16 for this {dims}D model, e.g. {example}")
    return tuple(patch_size)


def check_run_flags(out: Path, overwrite: bool, resume: bool, scheduler, weights: str, amp, resample: str) -> None:
    """The flags of :func:`predict_with_checkpoint` that need no model or input, checked before
    anything is loaded or written: one-line :class:`UserError` naming the flag otherwise."""
    check_output_flags(out, resume, overwrite)
    check_reachable(parse_scheduler(scheduler))
    if weights not in WEIGHTS:
        raise UserError(f"--weights {weights!r} is not one of {list(WEIGHTS)}")
    parse_amp(amp, "--amp")
    if resample not in values(Resample):
        raise UserError(f"--resample {resample!r} is not one of {', '.join(values(Resample))}")


def predict_with_checkpoint(
    checkpoint: str | Path,
    input_spec,
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
    resample: str = "auto",
    on_block: Callable[[int, int], None] | None = None,
    weights: str = "student",
    allow_missing: bool = False,
    amp: str | bool = "auto",
):
    """Open ``input_spec``, check everything, then predict it with ``checkpoint`` into ``output``, block by block.

    With ``resample="auto"``, a 2D model whose checkpoint records the voxel size it was trained
    at predicts an input of another known in-plane voxel size (more than 5 % apart) at the
    training voxel size: the input is resampled into ``<output>.resample/``, predicted there and
    the probabilities resampled back onto the input's grid (then the folder is removed).

    Args:
        checkpoint: ``checkpoint.pt`` of a training run (its sha256 goes into the manifest).
        input_spec: image volume (any format :func:`~masktwins3d.io.open_volume` reads), or an
            open :class:`~masktwins3d.io.Volume` (e.g. a napari layer's data).
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
        resample: auto (default) | never; see above.
        on_block: progress callback ``(done, total)`` of the blocks; raising in it stops the run
            (see :func:`~.blockwise.predict_blockwise`).
        weights: student (default) | ema: which weights of the checkpoint predict (see
            :func:`~.loading.model_from_checkpoint`).
        allow_missing: accept a zarr input with missing chunks (default False: refuse; see
            :func:`~masktwins3d.io.zarr_io.check_dense`).
        amp: auto (default) | on | off: bf16 autocast (see :mod:`masktwins3d.precision`).
    """
    out = Path(output)
    check_run_flags(out, overwrite, resume, scheduler, weights, amp, resample)
    ref = CheckpointModel.of(checkpoint, weights)
    device = resolve_device(device)
    model = ref.load(device)
    volume = (input_spec if isinstance(input_spec, Volume) else open_volume(input_spec)).require_3d("prediction")
    input_name = volume.path
    check_dense(volume, "--input", allow_missing)
    refuse_overlap({"--output": out, "the resampling folder": out.with_name(out.name + ".resample")},
                   {"--input": input_name, "--checkpoint": checkpoint})
    if overwrite and out.exists() and not is_zarr_node(out):
        raise UserError(f"{out} exists and is not a zarr array or group; remove it yourself or choose another output")
    dims = getattr(model, "spatial_dims", 2)
    patch_size = check_patch(patch_size, dims)
    check_window_settings(dims, patch_size, overlap, blend, batch_size, tta, model.head_kind)
    block_layout(dims, volume.shape[-3:], block_shape)
    check_voxel_size_3d(checkpoint, volume, dims, resample)
    factors = resample_factors(checkpoint, volume, dims) if resample == "auto" else None

    if resume and factors is not None:
        raise UserError("--resume is not supported when the input is resampled to the training voxel size; rerun with --overwrite, or --resample never")
    common = dict(patch_size=tuple(patch_size), overlap=overlap, blend=blend, batch_size=batch_size, tta=tta, device=device,
                  activation=model.head_kind, out_dtype=out_dtype, block_shape=block_shape, scheduler=scheduler, threads=threads,
                  amp=amp, progress=progress, on_block=on_block)
    predict = functools.partial(_predict_into, ref=ref, volume=volume, factors=factors, input_name=input_name, common=common)
    run_staged(out, resume, overwrite, predict, what="prediction")
    return open_volume(out, mode="r+")  # at its final name now


def _predict_into(dst: Path, resume: bool, *, ref, volume: Volume, factors, input_name: str, common: dict) -> Volume:
    """Predict ``volume`` into ``dst`` (the stage :func:`~..parallel.resumable.run_staged` gives),
    through a resampled copy when ``factors`` is set."""
    if factors is None:
        return predict_blockwise(ref, volume, dst, preprocess=volume_normalizer(volume), resume=resume, overwrite=False,
                                 identity={"input": input_name}, **common)
    return _predict_resampled(volume, dst, factors, common["progress"], lambda vol, where: predict_blockwise(
        ref, vol, where, preprocess=volume_normalizer(vol), resume=False, overwrite=True,
        identity={"input": input_name, "zoom": list(factors)}, **common))


def _predict_resampled(volume, out: Path, factors, progress: bool, predict):
    """Resample ``volume`` by ``factors`` into ``<out>.resample/``, ``predict`` it there, resample the
    probabilities back onto ``volume``'s grid into ``out`` and remove the folder."""
    import shutil

    from ..data.resample import resample_volume

    print(f"note: {volume.path} ({volume.voxel_size[1]:g} x {volume.voxel_size[2]:g} nm) is zoomed by "
          f"{factors[0]:.3g} x {factors[1]:.3g} to the checkpoint's training voxel size for prediction (--resample never turns this off)", file=sys.stderr)
    work = out.parent / (out.name + ".resample")
    if work.exists():
        shutil.rmtree(work)
    try:
        scaled = resample_volume(volume, str(work / "input.zarr"), factors, out_dtype=volume.dtype, progress=progress)
        prob = predict(scaled, work / "prob.zarr")
        # an earlier ``out`` was set aside by the caller; this writes the new one
        return resample_volume(prob, str(out), (1 / factors[0], 1 / factors[1]), out_dtype=prob.dtype, like=volume, progress=progress)
    finally:  # the working folder goes, whether the prediction finished or not
        if work.exists():
            shutil.rmtree(work)
