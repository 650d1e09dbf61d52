"""What the Evaluate widget draws, as plain numpy: error maps of masks and the outcome of every
synapse point (the paper's Fig. 6 colours). No Qt here, so each rule has a direct unit test.

Masks: ``0`` agreement, ``1`` false negative (ground truth the prediction missed, drawn red),
``2`` false positive (predicted where the ground truth has none, drawn green).

Points: pre points are matched as the WASPSYN scorer matches them
(:func:`~masktwins3d.evaluate.synapse.match`, radius ``r_pre``); posts are matched only inside
matched pre pairs (radius ``r_post``), as the official linked post score does. A matched
prediction is a true positive (magenta, drawn at the predicted point), an unmatched prediction a
false positive (cyan), an unmatched ground-truth point a false negative (yellow, drawn at the
ground truth). Posts of unmatched pres are drawn as FP / FN although the official score leaves
them out, because they are errors a person wants to see; the TP counts equal the scorer's.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..evaluate.synapse import R_POST, R_PRE, match
from ..io.points import SynapsePoints

FN, FP = 1, 2
ERROR_COLORS = {None: "transparent", 0: "transparent", FN: "#ff0000", FP: "#00ff00"}
"""Mask error colours: false negatives red, false positives green."""

OUTCOME_COLORS = {"tp": "#ff00ff", "fn": "#ffff00", "fp": "#00ffff"}
"""Point outcome colours (the paper's Fig. 6): TP magenta, FN yellow, FP cyan."""


def mask_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """uint8 map of ``pred`` against ``gt`` (both nonzero = foreground): 1 FN, 2 FP, 0 otherwise."""
    p, g = np.asarray(pred) != 0, np.asarray(gt) != 0
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} differs from ground truth shape {g.shape}")
    out = np.zeros(p.shape, np.uint8)
    out[g & ~p] = FN
    out[p & ~g] = FP
    return out


def _outcomes(pred: np.ndarray, gt: np.ndarray, tp_pred: np.ndarray, tp_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    points = np.concatenate([pred.reshape(-1, 3), gt[~tp_gt].reshape(-1, 3)])
    labels = np.array(["tp" if t else "fp" for t in tp_pred] + ["fn"] * int((~tp_gt).sum()), dtype=object)
    return points, labels


def point_outcomes(
    pred: SynapsePoints,
    gt: SynapsePoints,
    r_pre: float = R_PRE,
    r_post: float = R_POST,
    offset: Sequence[float] = (0, 0, 0),
    mode: str = "waspsyn",
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every pre and post point with its outcome.

    Args:
        pred: predicted points (its own voxel frame).
        gt: ground-truth points; ``offset`` is subtracted from them (as in ``score_synapses``).
        r_pre / r_post: match radii, voxels (official 11 and 6.5).
        offset: position of the prediction's frame in the ground truth's, ZYX voxels.
        mode: ``waspsyn`` (official) or ``strict`` matching.

    Returns:
        ``{"pre": (points, outcomes), "post": (points, outcomes)}``: ``(K, 3)`` coordinates in the
        prediction's frame (predicted points first, in their order, then the missed ground truth)
        and ``(K,)`` labels ``"tp"``, ``"fp"`` or ``"fn"``.
    """
    off = np.asarray(offset, np.float64).reshape(3)
    gt_pre, gt_post = gt.pre - off, gt.post_zyx - off
    p_rows, g_rows, _ = match(pred.pre, gt_pre, r_pre, mode)
    tp_pre_pred, tp_pre_gt = np.zeros(len(pred.pre), bool), np.zeros(len(gt_pre), bool)
    tp_pre_pred[p_rows], tp_pre_gt[g_rows] = True, True
    tp_post_pred, tp_post_gt = np.zeros(len(pred.post), bool), np.zeros(len(gt_post), bool)
    for pr, gr in zip(p_rows, g_rows):
        pi, gi = np.flatnonzero(pred.post_pre == pr), np.flatnonzero(gt.post_pre == gr)
        a, b, _ = match(pred.post_zyx[pi], gt_post[gi], r_post, mode)
        tp_post_pred[pi[a]], tp_post_gt[gi[b]] = True, True
    return {
        "pre": _outcomes(pred.pre, gt_pre, tp_pre_pred, tp_pre_gt),
        "post": _outcomes(pred.post_zyx, gt_post, tp_post_pred, tp_post_gt),
    }
