"""The settings of a prediction, checked once and frozen: :class:`PredictSettings`.

Every way into prediction builds one from what the user gave: the CLI (``masktwins3d predict``),
:func:`.checkpoint.predict_with_checkpoint` (keyword options), the napari Predict widget and the
in-memory engine :func:`.blockwise.predict_blockwise`. Each default is stated here only. What
needs no model is checked when the settings are built (a one-line :class:`UserError` naming the
flag and the fix); what depends on the model's spatial axes (the patch's length, an overlap per
patch axis, the default block) is checked by the engine as soon as the model is known, before
anything is written.

>>> PredictSettings(overlap=0.5, blend="bump", block_shape=(4, 512, 512))
>>> PredictSettings(batch_size=0)   # UserError: --batch-size 0 must be a whole number >= 1, e.g. 4
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import UserError
from ..modes import Amp, BlendMode, Head, OutDtype, Resample, Weights, values
from ..parallel.blocks import block_chunks
from ..parallel.resumable import check_resume_flags
from ..parallel.scheduler import parse_scheduler
from ..precision import parse_amp
from .region import WindowSettings, check_activation, check_batch_size, check_blend, check_out_dtype, check_window_settings

DEFAULT_PATCH = {2: (256, 256), 3: (64, 64, 64)}
"""Window used when no patch size is given, by the model's number of spatial axes, voxels."""

DEFAULT_BLOCK = {2: (4, 2048, 2048), 3: (128, 256, 256)}
"""Write-region shape (Z, Y, X) per block when none is given, by the model's spatial axes, voxels."""

CHUNK_LIMIT = {2: (1, 1024, 1024), 3: (64, 256, 256)}
"""Largest output chunk (Z, Y, X), voxels, by the model's spatial axes (see :func:`~masktwins3d.parallel.block_chunks`)."""


def check_threads(threads) -> int | None:
    """``threads`` (None: the default), or a one-line :class:`UserError` unless a whole number >= 1."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise UserError(f"--threads {threads!r} must be a whole number >= 1, e.g. 1")
    return threads


def check_output_flags(out_path: Path, resume: bool, overwrite: bool) -> None:
    """``--resume`` / ``--overwrite`` against an existing output, or a one-line :class:`UserError`."""
    check_resume_flags(resume, overwrite)
    if out_path.exists() and not (resume or overwrite):
        raise UserError(f"{out_path} exists; pass --overwrite to replace it, --resume to finish it, or choose another output")


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when torch sees a GPU, else cpu; a cuda device torch cannot see is one line."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device} but this torch sees no CUDA device ({torch.__version__}); use --device cpu or auto")
    return device


def block_layout(dims: int, spatial_shape: Sequence[int], block_shape: Sequence[int] | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(block, chunks)``, ZYX voxels: the block shape (cut to the volume) and output chunks that divide it.

    Args:
        dims: the model's spatial axes (2 or 3), for the defaults :data:`DEFAULT_BLOCK` and :data:`CHUNK_LIMIT`.
        spatial_shape: the volume's (Z, Y, X).
        block_shape: write region per block (Z, Y, X), voxels (None: :data:`DEFAULT_BLOCK`).
    """
    given = DEFAULT_BLOCK[dims] if block_shape is None else block_shape
    try:
        values_ = tuple(int(b) for b in given)
        ok = len(values_) == 3 and all(b >= 1 and b == g for b, g in zip(values_, given))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UserError(f"--block {block_shape!r} must be 3 whole numbers >= 1 (Z, Y, X voxels), e.g. {','.join(map(str, DEFAULT_BLOCK[dims]))}")
    block = tuple(min(b, s) for b, s in zip(values_, spatial_shape))
    return block, block_chunks(block, spatial_shape, CHUNK_LIMIT[dims])


def check_weights(weights) -> Weights:
    """``student`` or ``ema`` as :class:`~masktwins3d.modes.Weights`, or a one-line :class:`UserError`."""
    if weights not in values(Weights):
        raise UserError(f"--weights {weights!r} is not one of {list(values(Weights))}")
    return Weights(weights)


def check_resample(resample) -> Resample:
    """``auto`` or ``never`` as :class:`~masktwins3d.modes.Resample`, or a one-line :class:`UserError`."""
    if resample not in values(Resample):
        raise UserError(f"--resample {resample!r} is not one of {', '.join(values(Resample))}")
    return Resample(resample)


def _as_tuple(value):
    """A list or tuple as a tuple (hashable, equal whoever built it); anything else as it is."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _overlap(overlap):
    """One fraction as a float, several as a tuple of floats; the range is checked by the window settings."""
    overlap = _as_tuple(overlap)
    if isinstance(overlap, tuple) and len(overlap) == 1:
        overlap = overlap[0]
    try:
        return tuple(float(v) for v in overlap) if isinstance(overlap, tuple) else float(overlap)
    except (TypeError, ValueError):
        return overlap  # refused, with the model's axes in the message, by check_window_settings


@dataclass(frozen=True)
class PredictSettings:
    """Everything a prediction is asked to do, checked once (see the module docstring).

    Args:
        patch_size: window, voxels: (Y, X) for a 2D, (Z, Y, X) for a 3D model (default None:
            :data:`DEFAULT_PATCH` for the model's axes); a checkpoint's model needs multiples of 16.
        overlap: window overlap fraction in [0, 1), one value or one per patch axis (default 0.25).
        blend: constant | gaussian | bump weighting of overlapping windows (default gaussian).
        batch_size: windows per forward pass (default 4).
        tta: flip test-time augmentation, mean logits over all flips of the spatial axes (default False).
        activation: softmax | sigmoid (default None: the model's ``head_kind``, else softmax).
        out_dtype: float32 (default) | float16 | uint8 (round(p * 255)).
        device: auto (default: cuda when torch sees a GPU) | cpu | cuda[:N].
        amp: auto (default) | on | off (or True / False): bf16 autocast (see :mod:`masktwins3d.precision`).
        block_shape: write region per block (Z, Y, X), voxels (default None: :data:`DEFAULT_BLOCK`
            for the model's axes; cut to the volume); output chunks divide it.
        context: extra voxels read on each side of a block (Z, Y, X) (default None: half a patch, 0 in z for 2D).
        scheduler: none (default) | local[:N] | a dask scheduler address (see :mod:`masktwins3d.parallel`).
        threads: torch threads per block worker (default None: CPU cores / workers). Runs with the
            same threads, batch size and device give bit-identical outputs.
        resample: auto (default) | never: whether a checkpoint's 2D model predicts an input of another
            voxel size at its training voxel size (see :func:`.checkpoint.predict_with_checkpoint`).
        weights: student (default) | ema: which weights of a checkpoint predict.
        resume: finish an interrupted run into the output (its manifest) (default False).
        overwrite: replace an existing output (default False: refuse).
        allow_missing: accept a zarr input with missing chunks (default False: refuse).
    """

    patch_size: tuple[int, ...] | None = None
    overlap: float | tuple[float, ...] = 0.25
    blend: BlendMode = BlendMode.GAUSSIAN
    batch_size: int = 4
    tta: bool = False
    activation: Head | None = None
    out_dtype: str = OutDtype.FLOAT32.value
    device: str = "auto"
    amp: Amp = Amp.AUTO
    block_shape: tuple[int, int, int] | None = None
    context: tuple[int, int, int] | None = None
    scheduler: str = "none"
    threads: int | None = None
    resample: Resample = Resample.AUTO
    weights: Weights = Weights.STUDENT
    resume: bool = False
    overwrite: bool = False
    allow_missing: bool = False

    def __post_init__(self) -> None:
        put = object.__setattr__
        check_resume_flags(self.resume, self.overwrite)
        put(self, "patch_size", None if self.patch_size is None else _as_tuple(self.patch_size))
        put(self, "overlap", _overlap(self.overlap))
        put(self, "blend", check_blend(self.blend))
        put(self, "batch_size", check_batch_size(self.batch_size))
        put(self, "tta", bool(self.tta))
        put(self, "activation", None if self.activation is None else check_activation(self.activation))
        put(self, "out_dtype", OutDtype(check_out_dtype(self.out_dtype)).value)
        put(self, "device", str(self.device))
        put(self, "amp", Amp(parse_amp(self.amp.value if isinstance(self.amp, Amp) else self.amp, "--amp")))
        put(self, "block_shape", None if self.block_shape is None else _as_tuple(self.block_shape))
        put(self, "context", None if self.context is None else tuple(int(c) for c in self.context))
        put(self, "scheduler", "none" if self.scheduler is None else str(self.scheduler))
        parse_scheduler(self.scheduler)
        put(self, "threads", check_threads(self.threads))
        put(self, "resample", check_resample(self.resample))
        put(self, "weights", check_weights(self.weights))
        for flag in ("resume", "overwrite", "allow_missing"):
            put(self, flag, bool(getattr(self, flag)))

    def window(self, dims: int, head: Head | str = Head.SOFTMAX, bf16: bool = False) -> WindowSettings:
        """The checked :class:`~.region.WindowSettings` for a ``dims``-D model whose head is ``head``
        (unless :attr:`activation` says otherwise), with bf16 autocast ``bf16``."""
        patch = DEFAULT_PATCH[dims] if self.patch_size is None else self.patch_size
        return check_window_settings(dims, patch, self.overlap, self.blend, self.batch_size, self.tta, self.activation or head, bf16)

    def layout(self, dims: int, spatial_shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(block, chunks)`` for a ``dims``-D model over a volume of ``spatial_shape`` (:func:`block_layout`)."""
        return block_layout(dims, spatial_shape, self.block_shape)

    @classmethod
    def build(cls, settings: PredictSettings | None = None, options: dict[str, Any] | None = None, **defaults) -> PredictSettings:
        """``settings`` as given, or new settings from keyword ``options`` (over ``defaults``); not both.

        Raises:
            TypeError: both were given, or an option that is not a field.
        """
        if settings is not None:
            if options:
                raise TypeError(f"give PredictSettings or keyword options, not both (got {sorted(options)})")
            return settings
        unknown = sorted(set(options or {}) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unknown prediction options {unknown}; see PredictSettings")
        return cls(**{**defaults, **(options or {})})
