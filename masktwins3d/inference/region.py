"""Predict one in-memory region: the settings of a prediction, the forward pass (flip TTA, bf16
autocast) and the blended sliding window over a ``(Z, Y, X)`` region.

This is the compute of one block of :mod:`.blockwise` (and all of :func:`.predict.predict_array`):
a 2D model sees the region as ``Z`` sections whose windows are batched together; a 3D model sees
one ``(Z, Y, X)`` image. Windows are blended on the logits with :func:`.window.sliding_window`
(accumulated in float32), then the head's activation gives probabilities.

>>> settings = check_window_settings(2, patch_size=(256, 256), overlap=0.25, blend="gaussian", batch_size=4)
>>> prob = predict_region(model, normalised_zyx, settings, device="cpu")   # (C, Z, Y, X) float32
"""

from __future__ import annotations

import itertools
import weakref
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..errors import UserError
from .. import modes
from ..modes import Head, OutDtype
from .window import BlendMode, sliding_window

_GRAPHS: "weakref.WeakKeyDictionary[torch.nn.Module, tuple]" = weakref.WeakKeyDictionary()
"""Captured CUDA graphs per model: ``(weight addresses, {(batch shape, dtype, device, amp): (input, graph, output) or None})``."""

OUT_DTYPES = modes.values(OutDtype)
"""Output dtypes: probabilities as float32/float16, or uint8 = round(p * 255)."""


Activation = Head
"""The network head decides the written activation: ``softmax`` (classes 1..K-1) or ``sigmoid`` (all K channels)."""


@dataclass(frozen=True)
class WindowSettings:
    """Everything that decides a region's probabilities (checked by :func:`check_window_settings`;
    the defaults a user sees are :class:`~.settings.PredictSettings`').

    Args:
        patch_size: window, voxels: (Y, X) for a 2D model, (Z, Y, X) for a 3D model.
        overlap: fraction of a window shared with its neighbour, per patch axis, each in [0, 1).
        blend: weighting of overlapping windows (:class:`~.window.BlendMode`).
        batch_size: windows per forward pass.
        tta: flip test-time augmentation: the logits are the mean over all flips of the spatial axes.
        activation: the model's head (softmax or sigmoid).
        amp: bf16 autocast of the forward pass, on any device (the choice made by
            :func:`masktwins3d.precision.resolve_precision`; logits are blended in float32).
        cuda_graphs: replay each batch shape's forward pass as a CUDA graph (CUDA only; default True).
    """

    patch_size: tuple[int, ...]
    overlap: tuple[float, ...]
    blend: BlendMode
    batch_size: int
    tta: bool
    activation: Activation
    amp: bool
    cuda_graphs: bool = True

    @property
    def dims(self) -> int:
        """Spatial axes of the model: 2 or 3."""
        return len(self.patch_size)


def check_blend(blend: BlendMode | str) -> BlendMode:
    """``blend`` as a :class:`~.window.BlendMode`, or a one-line :class:`UserError` with the choices."""
    try:
        return BlendMode(blend)
    except ValueError:
        raise UserError(f"--blend {blend!r} is unknown; use one of {list(modes.values(BlendMode))}") from None


def check_batch_size(batch_size) -> int:
    """``batch_size`` if a whole number >= 1, else a one-line :class:`UserError`."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise UserError(f"--batch-size {batch_size!r} must be a whole number >= 1, e.g. 4")
    return int(batch_size)


def check_activation(activation: Activation | str) -> Activation:
    """``activation`` as a head (:data:`Activation`), or a one-line :class:`UserError` with the fix."""
    try:
        return Activation(activation)
    except ValueError:
        names = list(modes.values(Activation))
        raise UserError(f"activation {activation!r} is unknown; set model.head to one of {names}") from None


def check_window_settings(
    dims: int,
    patch_size: Sequence[int],
    overlap: float | Sequence[float],
    blend: BlendMode | str,
    batch_size: int,
    tta: bool = False,
    activation: Activation | str = Activation.SOFTMAX,
    amp: bool = False,
) -> WindowSettings:
    """Validate prediction settings for a ``dims``-D model; a :class:`UserError` with the fix for the first bad one.

    Args:
        dims: the model's spatial axes (2 or 3).
        patch_size, overlap, blend, batch_size, tta, activation, amp: see :class:`WindowSettings`;
            ``overlap`` is one value or one per patch axis.
    """
    example, axes = ("256,256", "(Y, X)") if dims == 2 else ("64,64,64", "(Z, Y, X)")
    try:
        patch = tuple(int(p) for p in patch_size)
        ok = len(patch) == dims and all(p > 0 and p == q for p, q in zip(patch, patch_size))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UserError(f"--patch {patch_size!r} must be {dims} positive whole numbers {axes} for this {dims}D model, e.g. {example}")
    values = overlap if isinstance(overlap, (list, tuple)) else (overlap,)
    try:
        fractions = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        fractions = (float("nan"),)
    if len(fractions) not in (1, dims) or not all(0 <= f < 1 for f in fractions):
        raise UserError(
            f"--overlap {overlap!r} must be one fraction in [0, 1) or one per patch axis {axes}, e.g. 0.25 or {','.join(['0.25'] * dims)}"
        )
    return WindowSettings(
        patch_size=patch,
        overlap=fractions * dims if len(fractions) == 1 else fractions,
        blend=check_blend(blend),
        batch_size=check_batch_size(batch_size),
        tta=bool(tta),
        activation=check_activation(activation),
        amp=bool(amp),
    )


def check_out_dtype(out_dtype: str) -> str:
    """``out_dtype`` if it is one of :data:`OUT_DTYPES`, else a :class:`UserError`."""
    if out_dtype not in OUT_DTYPES:
        raise UserError(f"--dtype {out_dtype!r} is unknown; use one of {list(OUT_DTYPES)}")
    return out_dtype


def flips(dims: int) -> list[tuple[int, ...]]:
    """Every subset of the spatial axes of a ``(B, C, *spatial)`` batch, identity first (2D: 4, 3D: 8)."""
    axes = range(2, 2 + dims)
    return [combo for n in range(dims + 1) for combo in itertools.combinations(axes, n)]


class Forward:
    """The predictor the sliding window calls: float32 logits of a batch of windows.

    With ``tta`` the logits are the running mean over :func:`flips` of
    ``flip(model(flip(batch)))``; under bf16 autocast on the batch's device when ``amp``. On
    CUDA each batch shape's forward pass is captured once as a CUDA graph and replayed (the
    same kernels without Python and launch overhead per layer; the graphs are kept per model
    across blocks); a model that cannot be captured runs eagerly.

    Args:
        model: network in eval mode mapping ``(B, 1, *patch)`` to ``(B, K, *patch)`` logits.
        settings: the prediction's :class:`WindowSettings`.
    """

    def __init__(self, model: torch.nn.Module, settings: WindowSettings):
        self.model = model
        self.flips = flips(settings.dims) if settings.tta else [()]
        self.amp = settings.amp
        self.graphs = settings.cuda_graphs

    def _eager(self, batch: torch.Tensor) -> torch.Tensor:
        autocast = torch.autocast(batch.device.type, dtype=torch.bfloat16) if self.amp else nullcontext()
        with autocast:
            return self.model(batch).float()

    def _once(self, batch: torch.Tensor) -> torch.Tensor:
        if not (self.graphs and batch.is_cuda):
            return self._eager(batch)
        # graphs read the weights where they were at capture: recapture if the model moved (.to, .cpu/.cuda)
        where = tuple(t.data_ptr() for t in itertools.chain(self.model.parameters(), self.model.buffers()))
        entry = _GRAPHS.get(self.model)
        if entry is None or entry[0] != where:
            entry = _GRAPHS[self.model] = (where, {})
        cache = entry[1]
        key = (tuple(batch.shape), batch.dtype, str(batch.device), self.amp)
        if key not in cache:
            cache[key] = self._capture(batch)
        if cache[key] is None:  # not capturable: eager
            return self._eager(batch)
        static_in, graph, static_out = cache[key]
        static_in.copy_(batch)
        graph.replay()
        return static_out  # valid until the next replay: the sliding window consumes it first

    def _capture(self, batch: torch.Tensor):
        try:
            static_in = batch.clone()
            side = torch.cuda.Stream(device=batch.device)
            side.wait_stream(torch.cuda.current_stream(batch.device))
            with torch.cuda.stream(side):
                for _ in range(2):  # warm-up (cuDNN algorithm choice) outside the capture
                    self._eager(static_in)
            torch.cuda.current_stream(batch.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._eager(static_in)
            return static_in, graph, static_out
        except RuntimeError:
            return None

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if len(self.flips) == 1:
            return self._once(batch)
        mean = self._once(batch).clone()
        for count, axes in enumerate(self.flips[1:], start=2):
            pred = self._once(batch.flip(axes)).flip(axes)
            mean.add_(pred.sub(mean), alpha=1.0 / count)  # running mean: one extra buffer whatever the flips
        return mean


@torch.inference_mode()
def predict_region(
    model: torch.nn.Module,
    region: np.ndarray,
    settings: WindowSettings,
    device: str | torch.device = "cpu",
    crop: tuple[slice, ...] | None = None,
    out_dtype: str = "float32",
) -> np.ndarray:
    """Probabilities ``(C, Z, Y, X)`` of a normalised ``(Z, Y, X)`` region.

    A 2D model predicts the ``Z`` sections (their windows batched together), a 3D model the whole
    region; axes shorter than the patch are zero padded (0 is the mean after normalisation).
    Cropping and the dtype conversion happen on ``device``, so only the result travels back.

    Args:
        model: network in eval mode on ``device`` (``(B, 1, *patch)`` -> ``(B, K, *patch)`` logits).
        region: normalised float32 ``(Z, Y, X)`` array.
        settings: :class:`WindowSettings` (its patch decides 2D or 3D).
        device: where windows are predicted and stitched (default cpu).
        crop: ``(Z, Y, X)`` slices of the region to return (default: all of it).
        out_dtype: float32 (default) | float16 | uint8 (round(p * 255)).

    Returns:
        ``(K - 1, Z, Y, X)`` softmax classes 1..K-1, or ``(K, Z, Y, X)`` sigmoid channels, as ``out_dtype``.
    """
    device = torch.device(device)
    array = torch.from_numpy(np.ascontiguousarray(region, dtype=np.float32))
    if device.type == "cuda":
        array = array.pin_memory().to(device, non_blocking=True)
    image = array[:, None] if settings.dims == 2 else array[None, None]
    logits = sliding_window(
        image, Forward(model, settings), settings.patch_size, settings.overlap, settings.blend, settings.batch_size
    )
    # (Z, K, Y, X) for 2D, (1, K, Z, Y, X) for 3D -> (K, Z, Y, X)
    logits = logits.transpose(0, 1) if settings.dims == 2 else logits[0]
    if crop is not None:
        logits = logits[(slice(None), *crop)]
    if settings.activation == Activation.SOFTMAX:
        prob = torch.softmax(logits, dim=0)[1:]
    else:
        prob = torch.sigmoid(logits)
    return to_out_dtype(prob, out_dtype).cpu().numpy()


def output_channels(model: torch.nn.Module, settings: WindowSettings, device) -> int:
    """Channels written: K - 1 for softmax, K for sigmoid (K from ``model.out_channels``, else one probe window)."""
    k = getattr(model, "out_channels", None)
    if not isinstance(k, int):
        with torch.inference_mode():
            k = int(model(torch.zeros((1, 1, *settings.patch_size), device=device)).shape[1])
    if settings.activation == Activation.SOFTMAX:
        if k < 2:
            raise UserError(f"the model has {k} output channel; a softmax head needs >= 2: set model.head to sigmoid")
        return k - 1
    return k


def to_out_dtype(prob, out_dtype: str):
    """Probabilities in [0, 1] (numpy or torch) as ``out_dtype``: float32, float16, or uint8 = round(p * 255)."""
    if isinstance(prob, torch.Tensor):
        if out_dtype == "uint8":
            return torch.round(prob * 255.0).to(torch.uint8)
        return prob.to(getattr(torch, out_dtype))
    if out_dtype == "uint8":
        return np.rint(prob * 255.0).astype(np.uint8)
    return prob.astype(out_dtype, copy=False)
