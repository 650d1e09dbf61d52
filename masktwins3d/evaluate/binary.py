"""Confusion counts of binary masks and the scores derived from them (pure numerics).

Every score follows scikit-learn's binary definition with the positive class 1, including what
sklearn returns when a ratio is 0/0, so streamed per-section or per-volume numbers equal
``sklearn.metrics.f1_score`` / ``matthews_corrcoef`` / ``jaccard_score`` on the same voxels.
Counts are Python ints (exact at any volume size); scores are float64 fractions in [0, 1]
(MCC in [-1, 1]).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Counts(NamedTuple):
    """Confusion counts of a binary prediction against binary ground truth (voxels)."""

    tp: int
    fp: int
    fn: int
    tn: int

    def __add__(self, other: "Counts") -> "Counts":  # type: ignore[override]
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)


ZERO_COUNTS = Counts(0, 0, 0, 0)


def binary_counts(pred: np.ndarray, gt: np.ndarray) -> Counts:
    """Count true/false positives/negatives of ``pred`` against ``gt``.

    Args:
        pred: boolean prediction (any shape).
        gt: boolean ground truth, same shape as ``pred``.

    Returns:
        ``Counts(tp, fp, fn, tn)`` as Python ints.
    """
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"binary_counts: shapes differ, {pred.shape} vs {gt.shape}")
    n = int(pred.size)
    n_pred = int(np.count_nonzero(pred))
    n_gt = int(np.count_nonzero(gt))
    tp = int(np.count_nonzero(pred & gt))
    fp = n_pred - tp
    fn = n_gt - tp
    return Counts(tp, fp, fn, n - tp - fp - fn)


def f1_from_counts(tp: int, fp: int, fn: int, tn: int = 0) -> float:
    """Foreground F1 = 2TP / (2TP + FP + FN); 0.0 when nothing is predicted or true (sklearn's default)."""
    den = 2 * tp + fp + fn
    return 0.0 if den == 0 else 2.0 * tp / den


def iou_from_counts(tp: int, fp: int, fn: int, tn: int = 0) -> float:
    """Foreground IoU = |B∧G| / |B∨G| = TP / (TP + FP + FN).

    0/0 (empty prediction and empty ground truth) is defined as 0.0, the value of
    ``sklearn.metrics.jaccard_score``'s default ``zero_division`` and consistent with F1 = 0.0
    there (F1 = 2·IoU / (1 + IoU) everywhere). The DA-ISC reference divides with numpy and gets NaN.
    """
    den = tp + fp + fn
    return 0.0 if den == 0 else tp / den


def mcc_from_counts(tp: int, fp: int, fn: int, tn: int) -> float:
    """Matthews correlation coefficient; 0.0 when any marginal is empty (sklearn's convention).

    The numerator is exact integer arithmetic and the four marginals are multiplied as Python ints,
    so it stays exact for volumes of billions of voxels.
    """
    den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    if den == 0:
        return 0.0
    num = tp * tn - fp * fn
    return float(num / math.sqrt((tp + fp) * (tp + fn)) / math.sqrt((tn + fp) * (tn + fn)))


def scores_from_counts(counts: Counts) -> dict[str, float]:
    """The three thresholded scores ``{"iou", "f1", "mcc"}`` of one set of counts."""
    return {
        "iou": iou_from_counts(*counts),
        "f1": f1_from_counts(*counts),
        "mcc": mcc_from_counts(*counts),
    }
