"""The WASPSYN synapse scorer (ISBI 2023 challenge), with the official matching as the default.

Official rule (mode ``waspsyn``, ``docs/EVALUATION.md``):

- the GT is shifted by ``-offset`` (WASPSYN ground truth is global, predictions chunk-local);
- pre points: Hungarian assignment (``scipy.optimize.linear_sum_assignment``) on the raw
  Euclidean distance matrix, **then** assigned pairs farther than ``r_pre`` (11 voxels) are
  dropped; a pair at exactly ``r_pre`` matches. ``F1_pre = 2TP / (2TP + FP + FN)``;
- posts only inside matched pre pairs: for each matched (pred pre, GT pre) pair, the posts linked
  to each side are matched the same way with ``r_post`` (6.5 voxels); ``F1_post`` is the mean of
  the per-pair F1 over the pairs with posts on at least one side (0 when no pair is left). Posts
  of unmatched pres are ignored;
- ``F1 = (F1_pre + F1_post) / 2``; a dataset scores the mean over its volumes.

Distances are computed as the official scorer does (``sqrt`` of the sum of squared differences,
in float64), so equal distances reach the same ``linear_sum_assignment`` as there and ties are
resolved identically (deterministically).

Mode ``strict`` (diagnostics): pairs beyond the radius cost a constant larger than any sum of
within-radius distances, so the assignment finds the **maximum number** of within-radius
matches (Hungarian-then-radius finds fewer in a few % of small cases), the least total distance
among those.

Conventions (ours; the official code divides by zero): both sides without pre points gives F1 1
with ``empty: true``; one side empty gives 0. A ratio 0/0 is 1 when both sides are empty (no
predictions and no ground truth) and 0 otherwise: precision with no prediction, recall with no
ground truth, ``connectivity`` with no matched post (1 only when there is no post on either side)
and ``pair_recall`` with no GT post (1 only when no post was predicted either).
``mean_distance`` is None (JSON null) when nothing matched.

Extras (ours, not part of the official score): ``post_unlinked`` matches all posts globally,
links ignored (AdaSyn's diagnostic); ``connectivity`` is the fraction of those matched posts
whose predicted pre is the pre matched to their GT post's pre; ``pair_recall`` is the fraction
of GT (pre, post) edges recovered, i.e. GT posts matched (globally) to a predicted post whose
pre is matched to the GT post's pre. ``post_linked`` also sums TP/FP/FN over the scored pairs.
"""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import UserError
from ..io.points import SynapsePoints, offset_from_gt_name, read_points
from ..modes import MatchMode, values

R_PRE, R_POST = 11.0, 6.5
"""Official match radii in voxels (88 nm and 52 nm at 8 nm)."""


MODES = values(MatchMode)


def _mode(mode: str | MatchMode) -> MatchMode:
    try:
        return MatchMode(mode.value if isinstance(mode, Enum) else mode)
    except ValueError:
        raise UserError(f"--mode {mode!r} is unknown; use one of {', '.join(MODES)}") from None


def distances(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(len(pred), len(gt))`` Euclidean distances, summed as the official scorer does."""
    d2 = (pred[:, None, 0] - gt[None, :, 0]) ** 2
    d2 += (pred[:, None, 1] - gt[None, :, 1]) ** 2
    d2 += (pred[:, None, 2] - gt[None, :, 2]) ** 2
    return np.sqrt(d2)


def match(
    pred: np.ndarray, gt: np.ndarray, radius: float, mode: str | MatchMode = MatchMode.WASPSYN
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match two point sets within ``radius``.

    Args:
        pred: ``(n, 3)`` predicted points.
        gt: ``(m, 3)`` ground-truth points.
        radius: largest matching distance, voxels (inclusive).
        mode: ``waspsyn`` (Hungarian, then drop pairs beyond the radius) or ``strict``.

    Returns:
        ``(pred rows, gt rows, distances)`` of the matched pairs, ordered by pred row.
    """
    mode = _mode(mode)
    pred, gt = np.asarray(pred, np.float64).reshape(-1, 3), np.asarray(gt, np.float64).reshape(-1, 3)
    if len(pred) == 0 or len(gt) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    dist = distances(pred, gt)
    cost = dist
    if mode is MatchMode.STRICT:
        # beyond the radius: more than any sum of within-radius distances of one assignment
        big = (float(radius) + 1.0) * (min(dist.shape) + 1)
        cost = np.where(dist <= radius, dist, big)
    rows, cols = linear_sum_assignment(cost)
    keep = dist[rows, cols] <= radius
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64), dist[rows, cols][keep]


def _ratio(num: int, den: int, both_empty: bool) -> float:
    return 1.0 if both_empty else (num / den if den else 0.0)


def counts(tp: int, n_pred: int, n_gt: int) -> dict:
    """TP/FP/FN, precision, recall and F1 = 2TP / (2TP + FP + FN); all three 1 when both sides are empty."""
    fp, fn = n_pred - tp, n_gt - tp
    empty = n_pred == 0 and n_gt == 0
    return {
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "precision": float(_ratio(tp, n_pred, empty)),
        "recall": float(_ratio(tp, n_gt, empty)),
        "f1": float(_ratio(2 * tp, 2 * tp + fp + fn, empty)),
    }


def _rows_by_pre(links: np.ndarray) -> dict[int, np.ndarray]:
    """Post rows of each pre row, ascending (the order the official boolean mask gives)."""
    groups: dict[int, list[int]] = {}
    for row, pre in enumerate(links.tolist()):
        groups.setdefault(pre, []).append(row)
    return {pre: np.asarray(rows, np.int64) for pre, rows in groups.items()}


def _check_radius(value: float, name: str) -> float:
    try:
        r = float(value)
    except (TypeError, ValueError):
        r = float("nan")
    if not (math.isfinite(r) and r >= 0):
        official = R_PRE if name == "r-pre" else R_POST
        raise UserError(f"--{name} {value!r} must be a finite distance >= 0 in voxels (official: {official:g})")
    return r


def score_synapses(
    pred: SynapsePoints,
    gt: SynapsePoints,
    mode: str | MatchMode = MatchMode.WASPSYN,
    r_pre: float = R_PRE,
    r_post: float = R_POST,
    offset: Sequence[int] = (0, 0, 0),
) -> dict:
    """Score predicted pre/post points against the ground truth of one volume (module doc).

    Args:
        pred: predicted points, chunk-local voxel coordinates (not shifted).
        gt: ground-truth points; ``offset`` is subtracted from them (pre and post).
        mode: ``waspsyn`` (official, default) or ``strict``.
        r_pre: pre match radius, voxels (default 11).
        r_post: post match radius, voxels (default 6.5).
        offset: z, y, x of the volume's first voxel in the GT's coordinates (default 0, 0, 0).

    Returns:
        A JSON-ready dict of plain Python values with keys ``pre`` {tp, fp, fn, precision,
        recall, f1, mean_distance}, ``post_linked`` {macro_f1, tp, fp, fn, precision, recall,
        f1, n_pairs}, ``post_unlinked`` {tp, fp, fn, precision, recall, f1}, ``connectivity``,
        ``pair_recall``, ``f1``, ``f1_pre``, ``f1_post``, ``mode``, ``r_pre``, ``r_post``,
        ``offset`` and ``empty``. ``f1_post`` equals ``post_linked.macro_f1``.
    """
    mode = _mode(mode)
    r_pre, r_post = _check_radius(r_pre, "r-pre"), _check_radius(r_post, "r-post")
    try:
        off = np.asarray(offset, np.float64).reshape(3)
    except (TypeError, ValueError):
        raise UserError(f"offset {offset!r} is not three numbers z,y,x") from None
    gt_pre, gt_post = gt.pre - off, gt.post_zyx - off
    gt_link, pred_link = gt.post_pre, pred.post_pre
    empty = len(pred.pre) == 0 and len(gt_pre) == 0

    # pre: one assignment over all points
    p_rows, g_rows, p_dist = match(pred.pre, gt_pre, r_pre, mode)
    pre = {
        **counts(len(p_rows), len(pred.pre), len(gt_pre)),
        "mean_distance": float(p_dist.mean()) if len(p_dist) else None,
    }

    # post (official): inside each matched pre pair
    pred_posts, gt_posts = _rows_by_pre(pred_link), _rows_by_pre(gt_link)
    none = np.zeros(0, np.int64)
    pair_f1: list[float] = []
    tp_l = fp_l = fn_l = 0
    for pr, gr in zip(p_rows, g_rows):
        pp, gp = pred.post_zyx[pred_posts.get(int(pr), none)], gt_post[gt_posts.get(int(gr), none)]
        if len(pp) == 0 and len(gp) == 0:
            continue  # no posts on either side: skipped, as the official scorer does
        c = counts(len(match(pp, gp, r_post, mode)[0]), len(pp), len(gp))
        pair_f1.append(c["f1"])
        tp_l, fp_l, fn_l = tp_l + c["tp"], fp_l + c["fp"], fn_l + c["fn"]
    if pair_f1:
        micro = counts(tp_l, tp_l + fp_l, tp_l + fn_l)
        post_linked = {"macro_f1": float(np.mean(pair_f1)), **micro, "n_pairs": len(pair_f1)}
    else:  # no pair left: 0, or 1 for an empty volume (nothing to find, nothing found)
        v = 1.0 if empty else 0.0
        post_linked = {"macro_f1": v, "tp": 0, "fp": 0, "fn": 0, "precision": v, "recall": v, "f1": v, "n_pairs": 0}

    # extras: all posts matched globally, links ignored; then how well the links agree
    q_rows, h_rows, _ = match(pred.post_zyx, gt_post, r_post, mode)
    post_unlinked = counts(len(q_rows), len(pred.post), len(gt_post))
    pred_pre_of_gt_pre = {int(g): int(p) for p, g in zip(p_rows, g_rows)}
    agree = int(sum(pred_pre_of_gt_pre.get(int(gt_link[h])) == int(pred_link[q]) for q, h in zip(q_rows, h_rows)))
    no_posts = len(pred.post) == 0 and len(gt_post) == 0
    connectivity = _ratio(agree, len(q_rows), no_posts)
    pair_recall = _ratio(agree, len(gt_post), no_posts)

    f1_pre = 1.0 if empty else pre["f1"]
    f1_post = post_linked["macro_f1"]
    return {
        "pre": pre,
        "post_linked": post_linked,
        "post_unlinked": post_unlinked,
        "connectivity": float(connectivity),
        "pair_recall": float(pair_recall),
        "f1": float(0.5 * (f1_pre + f1_post)),
        "f1_pre": float(f1_pre),
        "f1_post": float(f1_post),
        "mode": mode.value,
        "r_pre": r_pre,
        "r_post": r_post,
        "offset": [int(v) if float(v).is_integer() else float(v) for v in off],
        "empty": bool(empty),
    }


class VolumePair(NamedTuple):
    """One volume of a submission: its name, prediction file, GT file and offset (z, y, x)."""

    name: str
    pred: Path
    gt: Path
    offset: tuple[int, int, int]


GT_PATTERN = "syns_zyx_{z0}-{z1}_{y0}-{y1}_{x0}-{x1}.h5"


def pair_submission(pred_dir: str | Path, gt_dir: str | Path) -> list[VolumePair]:
    """Pair every ground-truth file with its prediction; a :class:`UserError` if one is missing.

    Two layouts are recognised (both may be mixed):

    - flat: ``GT_DIR/syns_zyx_*.h5`` with ``PRED_DIR/<GT stem>_predict.h5``; the volume is named
      by the GT stem;
    - one folder per volume (the CodaLab ``ref``/``res`` layout): ``GT_DIR/<vol>/syns_zyx_*.h5``
      (exactly one) with the single ``PRED_DIR/<vol>/*predict.h5``; the volume is named ``<vol>``.

    The offset of each volume is parsed from its GT name. Predictions without a GT are ignored.

    Args:
        pred_dir: folder of the predictions (chunk-local voxel coordinates).
        gt_dir: folder of the ground truth (global voxel coordinates).
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for d, what in ((pred_dir, "PRED_DIR"), (gt_dir, "GT_DIR")):
        if not d.is_dir():
            raise UserError(f"{what} {d} is not a folder; give the folder of the .h5 point files")

    def gts_in(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.is_file() and offset_from_gt_name(p) is not None)

    pairs = []
    for g in gts_in(gt_dir):
        p = pred_dir / f"{g.stem}_predict.h5"
        if not p.is_file():
            raise UserError(
                f"prediction {p} for {g} is missing; "
                f"name each prediction <GT name>_predict.h5 (e.g. {g.stem}_predict.h5)"
            )
        pairs.append(VolumePair(g.stem, p, g, offset_from_gt_name(g)))  # type: ignore[arg-type]
    for sub in sorted(d for d in gt_dir.iterdir() if d.is_dir()):
        found = gts_in(sub)
        if not found:
            continue
        if len(found) > 1:
            names = ", ".join(f.name for f in found)
            raise UserError(
                f"{sub} holds {len(found)} ground-truth files ({names}); keep one {GT_PATTERN} per volume folder"
            )
        g = found[0]
        preds = sorted((pred_dir / sub.name).glob("*predict.h5")) if (pred_dir / sub.name).is_dir() else []
        if len(preds) != 1:
            what = "is missing" if not preds else f"is ambiguous ({', '.join(p.name for p in preds)})"
            folder = pred_dir / sub.name
            raise UserError(
                f"prediction {folder}/*predict.h5 for {g} {what}; put exactly one <name>_predict.h5 in {folder}"
            )
        pairs.append(VolumePair(sub.name, preds[0], g, offset_from_gt_name(g)))  # type: ignore[arg-type]
    pairs.sort(key=lambda v: v.name)
    if not pairs:
        raise UserError(f"no ground truth named {GT_PATTERN} in {gt_dir} or its sub-folders; check GT_DIR")
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UserError(
            f"volume name {dup} appears twice in {gt_dir} (as a file and as a folder); keep one layout per volume"
        )
    return pairs


def score_submission(
    pred_dir: str | Path,
    gt_dir: str | Path,
    mode: str | MatchMode = MatchMode.WASPSYN,
    r_pre: float = R_PRE,
    r_post: float = R_POST,
) -> tuple[dict[str, dict], float]:
    """Score every volume of a WASPSYN submission (layouts: :func:`pair_submission`).

    All files are paired, read and checked before any scoring.

    Args:
        pred_dir: folder of the predictions (chunk-local voxel coordinates).
        gt_dir: folder of the ground truth; each volume's offset comes from its GT name.
        mode: ``waspsyn`` (official, default) or ``strict``.
        r_pre: pre match radius, voxels (default 11).
        r_post: post match radius, voxels (default 6.5).

    Returns:
        ``(per_volume, mean_f1)``: :func:`score_synapses` reports by volume name (sorted), and the
        mean of their ``f1`` (the CodaLab ``correct`` value).
    """
    mode = _mode(mode)
    _check_radius(r_pre, "r-pre")
    _check_radius(r_post, "r-post")
    pairs = pair_submission(pred_dir, gt_dir)
    loaded = [(v, read_points(v.pred), read_points(v.gt)) for v in pairs]
    per_volume = {v.name: score_synapses(p, g, mode, r_pre, r_post, v.offset) for v, p, g in loaded}
    return per_volume, float(np.mean([r["f1"] for r in per_volume.values()]))
