"""The WASPSYN synapse scorer (ISBI 2023 challenge), with the official matching as the default.

Pre points: Hungarian assignment on the raw Euclidean distance matrix, **then** pairs farther
than ``r_pre`` are dropped (mode ``waspsyn``, the official rule); mode ``strict`` makes every
pair beyond the radius cost a large constant instead, which finds the maximum number of
within-radius matches. Posts are scored only inside matched pre pairs: for each pair, the posts
linked to either side are matched the same way with ``r_post``; ``F1_post`` is the mean of the
per-pair F1 over pairs that have posts on at least one side. ``F1 = (F1_pre + F1_post) / 2``.
The GT is shifted by ``-offset`` (WASPSYN predictions are chunk-local, GT is global).

Edge cases (ours; the official code divides by zero): both sides empty gives F1 1 with
``empty: true``; one side empty gives 0. Precision of no predictions and recall of no ground
truth are 1 by convention only when the other side is empty too, else 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ..errors import UserError
from ..io.points import SynapsePoints, offset_from_gt_name, read_points

MODES = ("waspsyn", "strict")
R_PRE, R_POST = 11.0, 6.5
"""Official match radii in voxels (88 nm and 52 nm at 8 nm)."""


def match(pred: np.ndarray, gt: np.ndarray, radius: float, mode: str = "waspsyn") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matched ``(pred rows, gt rows, distances)`` of two point sets within ``radius``.

    ``waspsyn``: Hungarian on the distances, then drop pairs beyond ``radius``. ``strict``:
    Hungarian on distances with pairs beyond ``radius`` set to a large constant, then drop them.
    """
    if mode not in MODES:
        raise UserError(f"--mode {mode!r} is unknown; use one of {list(MODES)}")
    pred, gt = np.asarray(pred, np.float64).reshape(-1, 3), np.asarray(gt, np.float64).reshape(-1, 3)
    if len(pred) == 0 or len(gt) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    dist = cdist(pred, gt)
    cost = dist if mode == "waspsyn" else np.where(dist <= radius, dist, 1e6 + dist.max())
    rows, cols = linear_sum_assignment(cost)
    keep = dist[rows, cols] <= radius
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64), dist[rows, cols][keep]


def counts(tp: int, n_pred: int, n_gt: int) -> dict:
    """TP/FP/FN, precision, recall and F1 = 2TP / (2TP + FP + FN) (1 when both sides are empty)."""
    fp, fn = n_pred - tp, n_gt - tp
    empty = n_pred == 0 and n_gt == 0
    return {
        "tp": int(tp), "fp": int(fp), "fn": int(fn),
        "precision": 1.0 if empty else (tp / n_pred if n_pred else 0.0),
        "recall": 1.0 if empty else (tp / n_gt if n_gt else 0.0),
        "f1": 1.0 if empty else 2 * tp / (2 * tp + fp + fn),
    }


def score_synapses(
    pred: SynapsePoints,
    gt: SynapsePoints,
    mode: str = "waspsyn",
    r_pre: float = R_PRE,
    r_post: float = R_POST,
    offset: Sequence[int] = (0, 0, 0),
) -> dict:
    """Score predicted pre/post points against the ground truth of one volume (see module doc).

    Args:
        pred: predicted points, chunk-local voxel coordinates.
        gt: ground-truth points; ``offset`` is subtracted from them.
        mode: ``waspsyn`` (official, default) or ``strict``.
        r_pre / r_post: match radii in voxels (11, 6.5).
        offset: z, y, x of the volume's first voxel in the GT's coordinates.

    Returns:
        A JSON-ready dict: ``pre``, ``post_linked``, ``post_unlinked``, ``connectivity``,
        ``pair_recall``, ``f1_pre``, ``f1_post``, ``f1``, ``mode``, ``r_pre``, ``r_post``,
        ``offset``, ``empty``.
    """
    off = np.asarray(offset, np.float64).reshape(3)
    gt_pre, gt_post = gt.pre - off, gt.post_zyx - off
    gt_link, pred_link = gt.post_pre, pred.post_pre

    p_rows, g_rows, p_dist = match(pred.pre, gt_pre, r_pre, mode)
    pre = {**counts(len(p_rows), len(pred.pre), len(gt_pre)), "mean_distance": float(p_dist.mean()) if len(p_dist) else None}

    pair_f1, tp_l, fp_l, fn_l = [], 0, 0, 0
    for pr, gr in zip(p_rows, g_rows):
        pp, gp = pred.post_zyx[pred_link == pr], gt_post[gt_link == gr]
        if len(pp) == 0 and len(gp) == 0:
            continue  # pairs with no posts on either side are skipped (official)
        a, _, _ = match(pp, gp, r_post, mode)
        c = counts(len(a), len(pp), len(gp))
        pair_f1.append(c["f1"])
        tp_l, fp_l, fn_l = tp_l + c["tp"], fp_l + c["fp"], fn_l + c["fn"]
    post_linked = {
        "macro_f1": float(np.mean(pair_f1)) if pair_f1 else 0.0,
        **counts(tp_l, tp_l + fp_l, tp_l + fn_l),
        "n_pairs": len(pair_f1),
    }
    if not pair_f1:
        post_linked.update(precision=0.0, recall=0.0, f1=0.0)

    # ours: all posts matched globally, ignoring links, and how well the links agree
    q_rows, h_rows, _ = match(pred.post_zyx, gt_post, r_post, mode)
    post_unlinked = counts(len(q_rows), len(pred.post), len(gt_post))
    pre_of_gt = {int(g): int(p) for p, g in zip(p_rows, g_rows)}
    agree = [pre_of_gt.get(int(gt_link[h])) == int(pred_link[q]) for q, h in zip(q_rows, h_rows)]
    connectivity = float(np.mean(agree)) if agree else 0.0
    pair_recall = float(np.sum(agree) / len(gt_post)) if len(gt_post) else (1.0 if len(pred.post) == 0 else 0.0)

    empty = len(pred.pre) == 0 and len(gt_pre) == 0
    if empty:
        f1_pre = f1_post = 1.0
    elif len(pred.pre) == 0 or len(gt_pre) == 0:
        f1_pre = f1_post = 0.0
    else:
        f1_pre, f1_post = pre["f1"], post_linked["macro_f1"]
    return {
        "pre": pre,
        "post_linked": post_linked,
        "post_unlinked": post_unlinked,
        "connectivity": connectivity,
        "pair_recall": pair_recall,
        "f1_pre": float(f1_pre),
        "f1_post": float(f1_post),
        "f1": float(0.5 * (f1_pre + f1_post)),
        "mode": mode,
        "r_pre": float(r_pre),
        "r_post": float(r_post),
        "offset": [int(v) for v in off],
        "empty": bool(empty),
    }


def pair_submission(pred_dir: str | Path, gt_dir: str | Path) -> list[tuple[Path, Path]]:
    """``(pred, gt)`` file pairs: each ``syns_zyx_*.h5`` GT with ``<GT stem>_predict.h5`` in ``pred_dir``."""
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for d, what in ((pred_dir, "PRED_DIR"), (gt_dir, "GT_DIR")):
        if not d.is_dir():
            raise UserError(f"{what} {d} is not a folder; give the folder of the h5 files")
    gts = sorted(p for p in gt_dir.glob("*.h5") if offset_from_gt_name(p) is not None)
    if not gts:
        raise UserError(f"no ground truth named syns_zyx_{{z0}}-{{z1}}_{{y0}}-{{y1}}_{{x0}}-{{x1}}.h5 in {gt_dir}; check GT_DIR")
    pairs = []
    for g in gts:
        p = pred_dir / f"{g.stem}_predict.h5"
        if not p.is_file():
            raise UserError(f"prediction {p} for {g.name} is missing; name each prediction <GT name>_predict.h5")
        pairs.append((p, g))
    return pairs


def score_submission(pred_dir, gt_dir, mode: str = "waspsyn", r_pre: float = R_PRE, r_post: float = R_POST) -> tuple[dict[str, dict], float]:
    """Score every volume of a WASPSYN submission; per-volume reports and the mean F1."""
    pairs = pair_submission(pred_dir, gt_dir)
    loaded = [(g, read_points(p), read_points(g)) for p, g in pairs]  # all inputs checked before scoring
    per_volume = {g.stem: score_synapses(pp, gg, mode, r_pre, r_post, offset_from_gt_name(g)) for g, pp, gg in loaded}
    return per_volume, float(np.mean([r["f1"] for r in per_volume.values()]))
