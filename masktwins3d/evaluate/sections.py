"""Read a probability volume and a binary label volume one z-section at a time, validating as it goes.

Inputs are numpy arrays or anything array-like with ``shape``, ``dtype`` and ``__getitem__``
(a :class:`masktwins3d.io.Volume`, an h5py or zarr array); only one section is in memory at a time.

Accepted values:
- probabilities: float16/32/64 in [0, 1] (a slack of ``RANGE_SLACK`` absorbs blending round-off;
  values are *not* clipped), or uint8 probabilities scaled 0..255, read as ``code / 255``.
  NaN or ±inf stop with a :class:`UserError`. Axes ZYX, or CZYX with one channel or ``channel`` given.
- labels: bool, or integers/floats whose values over the whole volume are within {0, 1} or
  within {0, 255} (``G = label / 255`` when the maximum is above 1, as the DA-ISC reference does).
  Anything else, {0, 1, 255} included, stops with a :class:`UserError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UserError

RANGE_SLACK = 1e-3
"""Probabilities may leave [0, 1] by this much (float round-off of blended windows)."""


def source_name(obj: Any, default: str) -> str:
    """A name for messages: the volume's ``path`` when it has one, else ``default``."""
    path = getattr(obj, "path", None)
    return str(path) if path else default


def _axes(obj: Any, name: str) -> str:
    shape = tuple(obj.shape)
    axes = getattr(obj, "axes", None) or {3: "zyx", 4: "czyx"}.get(len(shape))
    if axes not in ("zyx", "czyx") or len(axes) != len(shape):
        raise UserError(f"{name} has shape {shape}; expected ZYX or CZYX (a 2D image needs a z axis of size 1)")
    if 0 in shape:
        raise UserError(f"{name} has shape {shape} with an empty axis; nothing to evaluate")
    return axes


def _show(values: np.ndarray, limit: int = 8) -> str:
    found = np.unique(values)
    shown = [v.item() for v in found[:limit]]
    return f"{shown}{'...' if found.size > limit else ''}"


class ProbabilitySections:
    """Foreground probabilities, one z-section at a time.

    Args:
        pred: ZYX or CZYX array-like of probabilities (float in [0, 1], or uint8 0..255).
        channel: channel to read from a CZYX volume; required when it has more than one channel.
        name: how messages call the volume (default: its ``path``, else "prediction").
    """

    def __init__(self, pred: Any, channel: int | None = None, name: str | None = None):
        self.array = pred
        self.name = name or source_name(pred, "prediction")
        self.axes = _axes(pred, self.name)
        self.dtype = np.dtype(pred.dtype)
        if not (self.dtype == np.uint8 or np.issubdtype(self.dtype, np.floating)):
            raise UserError(
                f"{self.name} has dtype {self.dtype}; expected float probabilities in [0, 1] "
                "or uint8 probabilities scaled 0..255 (pass the probability volume, not a mask or labels)"
            )
        shape = tuple(int(s) for s in pred.shape)
        if self.axes == "czyx":
            n_channels = shape[0]
            if channel is None:
                if n_channels != 1:
                    raise UserError(
                        f"{self.name} has {n_channels} channels (CZYX); choose the foreground one "
                        "with --channel (e.g. --channel 1 for a 2-class softmax)"
                    )
                channel = 0
            if not 0 <= int(channel) < n_channels:
                raise UserError(f"--channel {channel} is out of range for {self.name}, which has {n_channels} channels")
            self.channel: int | None = int(channel)
            self.shape = shape[1:]
        else:
            if channel is not None:
                raise UserError(f"{self.name} has no channel axis (ZYX, shape {shape}); drop --channel {channel}")
            self.channel = None
            self.shape = shape

    def raw(self, z: int) -> np.ndarray:
        """Section ``z`` as stored (YX, native dtype)."""
        index = (self.channel, z) if self.channel is not None else z
        section = np.asarray(self.array[index])
        if section.shape != self.shape[1:]:
            raise UserError(f"{self.name}: section {z} read as shape {section.shape}, expected {self.shape[1:]}")
        return section

    def read(self, z: int) -> tuple[np.ndarray, np.ndarray]:
        """Section ``z`` as stored and as float64 probabilities (uint8 divided by 255), validated."""
        raw = self.raw(z)
        prob = raw.astype(np.float64)
        if raw.dtype == np.uint8:
            prob /= 255.0
            return raw, prob
        lo, hi = float(prob.min()), float(prob.max())  # NaN propagates through min/max
        if not (np.isfinite(lo) and np.isfinite(hi)):
            bad = int(np.count_nonzero(~np.isfinite(prob)))
            raise UserError(
                f"{self.name} holds {bad} NaN/inf values in section z={z}; "
                "fix the prediction (re-run predict) before evaluating"
            )
        if lo < -RANGE_SLACK or hi > 1.0 + RANGE_SLACK:
            raise UserError(
                f"{self.name} holds values in [{lo:.6g}, {hi:.6g}] at z={z}; expected probabilities in [0, 1] "
                "(apply sigmoid/softmax to logits, or store uint8 0..255)"
            )
        return raw, prob


class LabelSections:
    """Binary ground truth, one z-section at a time, as bool.

    The value set is checked across the whole volume while reading: {0, 1} and {0, 255} are
    accepted (bool always); a volume mixing 1 and 255, or holding any other value, stops.

    Args:
        gt: ZYX array-like (CZYX with a single channel is accepted too).
        name: how messages call the volume (default: its ``path``, else "ground truth").
    """

    def __init__(self, gt: Any, name: str | None = None):
        self.array = gt
        self.name = name or source_name(gt, "ground truth")
        axes = _axes(gt, self.name)
        shape = tuple(int(s) for s in gt.shape)
        if axes == "czyx":
            if shape[0] != 1:
                raise UserError(f"{self.name} has {shape[0]} channels; ground truth must be one binary ZYX volume")
            self.squeeze = True
            shape = shape[1:]
        else:
            self.squeeze = False
        self.shape = shape
        self.dtype = np.dtype(gt.dtype)
        if not (self.dtype == bool or np.issubdtype(self.dtype, np.integer) or np.issubdtype(self.dtype, np.floating)):
            raise UserError(f"{self.name} has dtype {self.dtype}; expected binary labels (0/1, 0/255 or bool)")
        self._first_one: int | None = None  # z of the first section holding a 1
        self._first_255: int | None = None

    def read(self, z: int) -> np.ndarray:
        """Section ``z`` as a boolean mask, validated."""
        section = np.asarray(self.array[(0, z) if self.squeeze else z])
        if section.shape != self.shape[1:]:
            raise UserError(f"{self.name}: section {z} read as shape {section.shape}, expected {self.shape[1:]}")
        if section.dtype == bool:
            return section
        fg = section != 0
        ones = section == 1
        bad = fg & ~ones & (section != 255)
        if bad.any():
            raise UserError(
                f"{self.name} holds values {_show(section)} at z={z}; "
                "ground truth must be binary (0/1, 0/255 or bool): binarise it first, e.g. `label > 0`"
            )
        if self._first_one is None and ones.any():
            self._first_one = z
        if self._first_255 is None and (fg & ~ones).any():
            self._first_255 = z
        if self._first_one is not None and self._first_255 is not None:
            raise UserError(
                f"{self.name} holds values 0, 1 and 255 (1 at z={self._first_one}, 255 at z={self._first_255}); "
                "ground truth must be 0/1 or 0/255, not both: binarise it first, e.g. `label > 0`"
            )
        return fg
