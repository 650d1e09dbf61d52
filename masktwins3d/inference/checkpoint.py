"""Predict with a training checkpoint: rebuild its model, normalise the input (one volume-level
normaliser), run the blockwise engine (:mod:`.blockwise`)."""

from __future__ import annotations

import functools
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..adapt.trainer import load_checkpoint
from ..atomic import refuse_overlap
from ..data.normalize import volume_normalizer
from ..errors import UserError
from ..io import Volume, open_volume
from ..io.zarr_io import check_dense, is_zarr_node
from ..parallel import check_reachable, parse_scheduler
from ..parallel.resumable import run_staged
from .blockwise import CheckpointModel, predict_blockwise
from .settings import DEFAULT_PATCH, PredictSettings, check_output_flags, resolve_device


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


def check_patch(patch_size, dims: int) -> tuple[int, ...]:
    """The prediction window (default :data:`DEFAULT_PATCH`), ``dims`` multiples of 16, or one line."""
    if patch_size is None:
        return DEFAULT_PATCH[dims]
    if len(patch_size) != dims or any(p % 16 for p in patch_size):
        example = ",".join(map(str, DEFAULT_PATCH[dims]))
        raise UserError(f"--patch {','.join(map(str, patch_size))} must be {dims} multiples of 16 for this {dims}D model, e.g. {example}")
    return tuple(patch_size)


def open_input(input_spec, out: Path, checkpoint, settings: PredictSettings) -> Volume:
    """The input as a 3D :class:`~masktwins3d.io.Volume`, checked against ``settings`` and the
    output (dense unless ``allow_missing``; not overlapping ``out``; an existing ``out`` that is
    not zarr is not overwritten): a one-line :class:`UserError` otherwise."""
    volume = (input_spec if isinstance(input_spec, Volume) else open_volume(input_spec)).require_3d("prediction")
    check_dense(volume, "--input", settings.allow_missing)
    refuse_overlap({"--output": out, "the resampling folder": out.with_name(out.name + ".resample")},
                   {"--input": volume.path, "--checkpoint": checkpoint})
    if settings.overwrite and out.exists() and not is_zarr_node(out):
        raise UserError(f"{out} exists and is not a zarr array or group; remove it yourself or choose another output")
    return volume


def predict_with_checkpoint(
    checkpoint: str | Path,
    input_spec,
    output: str | Path,
    settings: PredictSettings | None = None,
    *,
    progress: bool = True,
    on_block: Callable[[int, int], None] | None = None,
    **options,
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
        settings: :class:`~.settings.PredictSettings` (default: built from ``options``): patch
            (multiples of 16 here), overlap, blend, batch size, device, dtype, TTA, block,
            scheduler, threads, resume, resample (see above), weights, allow_missing, amp.
        progress: tqdm bar over blocks (default True).
        on_block: progress callback ``(done, total)`` of the blocks; raising in it stops the run
            (see :func:`~.blockwise.predict_blockwise`).
        **options: fields of :class:`~.settings.PredictSettings`, instead of ``settings``.
    """
    settings = PredictSettings.build(settings, options)
    out = Path(output)
    check_output_flags(out, settings.resume, settings.overwrite)
    check_reachable(parse_scheduler(settings.scheduler))
    ref = CheckpointModel.of(checkpoint, settings.weights.value)
    device = resolve_device(settings.device)
    model = ref.load(device)
    volume = open_input(input_spec, out, checkpoint, settings)
    dims = getattr(model, "spatial_dims", 2)
    settings = replace(settings, patch_size=check_patch(settings.patch_size, dims), device=device,
                       activation=settings.activation or model.head_kind)
    settings.window(dims)
    settings.layout(dims, volume.shape[-3:])
    check_voxel_size_3d(checkpoint, volume, dims, settings.resample)
    factors = resample_factors(checkpoint, volume, dims) if settings.resample == "auto" else None
    if settings.resume and factors is not None:
        raise UserError("--resume is not supported when the input is resampled to the training voxel size; rerun with --overwrite, or --resample never")
    predict = functools.partial(_predict_into, ref=ref, volume=volume, factors=factors, settings=settings, progress=progress, on_block=on_block)
    run_staged(out, settings.resume, settings.overwrite, predict, what="prediction")
    return open_volume(out, mode="r+")  # at its final name now


def _predict_into(dst: Path, resume: bool, *, ref, volume: Volume, factors, settings: PredictSettings, progress: bool, on_block) -> Volume:
    """Predict ``volume`` into ``dst`` (the stage :func:`~..parallel.resumable.run_staged` gives),
    through a resampled copy when ``factors`` is set."""
    run = functools.partial(predict_blockwise, ref, progress=progress, on_block=on_block)
    if factors is None:
        return run(volume, dst, preprocess=volume_normalizer(volume), settings=replace(settings, resume=resume, overwrite=False),
                   identity={"input": volume.path})
    return _predict_resampled(volume, dst, factors, progress, lambda vol, where: run(
        vol, where, preprocess=volume_normalizer(vol), settings=replace(settings, resume=False, overwrite=True),
        identity={"input": volume.path, "zoom": list(factors)}))


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
