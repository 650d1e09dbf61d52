"""Semantic mitochondria scores with the DA-ISC protocol (MaskTwins Table 2), streamed per section.

Protocol (see ``docs/EVALUATION.md``, "Mitochondria"): with probabilities ``P`` and binary ground
truth ``G``, binarise ``B = P >= threshold`` (0.5) and score

- ``map``: average precision of ``P`` against ``G`` (sklearn ``average_precision_score``: step-wise,
  not interpolated, tied scores form one step);
- ``f1``: foreground F1 of ``B``; ``mcc``: Matthews correlation of ``B``; ``iou``: |B∧G| / |B∨G|.

Mode ``"2d"`` (default, protocol ``da-isc-2d``) scores each z-section over all its pixels and
reports the arithmetic mean over sections. Mode ``"3d"`` (protocol ``da-isc-3d``) scores the
whole flattened volume once, streaming exact confusion counts and per-score tallies, so the
numbers equal sklearn on the flattened arrays without holding them.

Sections whose ground truth is empty are counted and reported in one
:class:`EmptySectionWarning`. In 2d mode the ``empty`` rule decides what happens to them:

- ``"skip"`` (default): left out of the means; their rows carry ``None`` scores.
- ``"include"``: scored like any other section, as the DA-ISC reference does where defined:
  AP = 0.0 (current sklearn: no positives → recall 1 at every threshold → AP = precision at the
  top score = 0), F1 = 0.0, MCC = 0.0 (sklearn's values), and IoU = 0.0 when the prediction is
  empty too (the reference gets 0/0 = NaN, which would poison its mean; we define it as 0.0,
  sklearn ``jaccard_score``'s value). So an empty section scores 0 on all four, whatever the prediction.

In 3d mode empty sections are just counted (the volume is one sample); a volume with no
foreground at all scores AP = F1 = MCC = IoU = 0.0 and warns.
"""

from __future__ import annotations

import math
import warnings
from enum import Enum
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import UserError
from .binary import ZERO_COUNTS, Counts, binary_counts, scores_from_counts
from .ranking import TallyAccumulator, average_precision_from_tally, score_tally
from .sections import LabelSections, ProbabilitySections
from ..modes import EmptyRule, EvalMode

METRICS = ("iou", "f1", "mcc", "map")


class EmptySectionWarning(UserWarning):
    """Some z-sections have no foreground in the ground truth (issued once per evaluation)."""


def _enum(cls: type[Enum], value: Any, flag: str) -> Any:
    try:
        return cls(value.value if isinstance(value, Enum) else value)
    except ValueError:
        choices = ", ".join(m.value for m in cls)  # type: ignore[attr-defined]
        raise UserError(f"{flag} {value!r} is not one of: {choices}") from None


def _tally_input(raw: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Scores to tally: the stored codes when an exact, order-preserving view (faster), else float64."""
    return raw if raw.dtype in (np.uint8, np.float32, np.float64) else prob


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else float("nan")


def _warn_empty(empty_z: list[int], n_sections: int, gt_name: str, what: str) -> None:
    shown = ", ".join(str(z) for z in empty_z[:10]) + (", ..." if len(empty_z) > 10 else "")
    warnings.warn(
        EmptySectionWarning(
            f"{len(empty_z)} of {n_sections} z-sections of {gt_name} have no foreground (z = {shown}); {what}"
        ),
        stacklevel=4,
    )


def _evaluate_2d(probs, labels, threshold: float, rule: EmptyRule, progress: bool) -> dict:
    rows: list[dict] = []
    empty_z: list[int] = []
    for z in tqdm(range(probs.shape[0]), disable=not progress, desc="mito 2d", unit="section"):
        raw, prob = probs.read(z)
        gt = labels.read(z)
        counts = binary_counts(prob >= threshold, gt)
        is_empty = counts.tp + counts.fn == 0
        row: dict[str, Any] = {"z": z, **{m: None for m in METRICS}, "empty": is_empty, **counts._asdict()}
        if is_empty:
            empty_z.append(z)
        if not (is_empty and rule is EmptyRule.SKIP):
            row.update(scores_from_counts(counts))
            row["map"] = average_precision_from_tally(score_tally(_tally_input(raw, prob), gt))
        rows.append(row)
    scored = [r for r in rows if r["map"] is not None]
    if empty_z:
        if rule is EmptyRule.INCLUDE:
            what = "they are scored 0 on all four metrics (empty='include')"
        elif scored:
            what = "they are left out of the means (empty='skip'; pass --empty include to score them as 0)"
        else:
            what = "no section is left to score, so all means are NaN (empty='skip'; --empty include scores them 0)"
        _warn_empty(empty_z, len(rows), labels.name, what)
    summary = {m: _mean([r[m] for r in scored]) for m in METRICS}
    return {**summary, "n_sections": len(rows), "n_empty": len(empty_z), "n_scored": len(scored), "sections": rows}


def _evaluate_3d(probs, labels, threshold: float, progress: bool) -> dict:
    counts: Counts = ZERO_COUNTS
    tallies = TallyAccumulator()
    empty_z: list[int] = []
    n = probs.shape[0]
    for z in tqdm(range(n), disable=not progress, desc="mito 3d", unit="section"):
        raw, prob = probs.read(z)
        gt = labels.read(z)
        section_counts = binary_counts(prob >= threshold, gt)
        if section_counts.tp + section_counts.fn == 0:
            empty_z.append(z)
        counts = counts + section_counts
        tallies.add(score_tally(_tally_input(raw, prob), gt))
    if len(empty_z) == n:
        _warn_empty(empty_z, n, labels.name, "the volume has no foreground, so all four scores are 0")
    result = scores_from_counts(counts)
    result["map"] = average_precision_from_tally(tallies.result())
    return {**result, "n_sections": n, "n_empty": len(empty_z), "n_scored": n, **counts._asdict()}


def evaluate_mito(
    pred: Any,
    gt: Any,
    mode: str | EvalMode = "2d",
    empty: str | EmptyRule = "skip",
    threshold: float = 0.5,
    channel: int | None = None,
    progress: bool = False,
) -> dict:
    """Score a mitochondria probability volume against binary ground truth (DA-ISC protocol).

    Reads one z-section of each volume at a time (memory: a few section-sized float64 arrays,
    plus in 3d mode one tally entry per distinct probability value, see ``ranking.py``).

    Args:
        pred: foreground probabilities, ZYX or CZYX (numpy array or Volume-like): float in [0, 1]
            (float16/32/64), or uint8 scaled 0..255 (read as value / 255).
        gt: binary ground truth, ZYX, same spatial shape: bool, 0/1 or 0/255.
        mode: ``"2d"`` mean over z-sections (the published protocol) or ``"3d"`` flattened volume.
        empty: 2d only, sections with empty ground truth: ``"skip"`` (default) or ``"include"``.
        threshold: binarisation ``B = P >= threshold`` for F1, MCC and IoU (default 0.5).
        channel: channel of a CZYX ``pred`` holding the foreground; needed when C > 1.
        progress: show a tqdm bar over sections.

    Returns:
        dict with ``protocol`` ("da-isc-2d" / "da-isc-3d"), ``mode``, the four scores ``iou``,
        ``f1``, ``mcc``, ``map`` (fractions; NaN when no section could be scored), ``n_sections``,
        ``n_empty``, ``n_scored``, ``threshold``, ``empty``, ``channel``, ``shape`` (ZYX), ``pred``
        and ``gt`` (names), and in 2d ``sections``: one row per z with ``z``, the four scores (None
        when skipped), ``empty`` and the counts ``tp``, ``fp``, ``fn``, ``tn``; in 3d the volume's
        counts ``tp``, ``fp``, ``fn``, ``tn``.

    Raises:
        UserError: bad mode/empty/threshold, shapes that differ, unsupported dtypes, several channels
            without ``channel``, non-binary labels, NaN/inf or out-of-range probabilities.
    """
    eval_mode = _enum(EvalMode, mode, "--mode")
    rule = _enum(EmptyRule, empty, "--empty")
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise UserError(f"--threshold {threshold!r} is not a number; use a probability in [0, 1], e.g. 0.5") from None
    if not 0.0 <= threshold <= 1.0:
        raise UserError(f"--threshold {threshold} is outside [0, 1]; use a probability, e.g. 0.5")
    probs = ProbabilitySections(pred, channel=channel)
    labels = LabelSections(gt)
    if probs.shape != labels.shape:
        raise UserError(
            f"{probs.name} has spatial shape {probs.shape} but {labels.name} has {labels.shape}; "
            "evaluate a prediction of the same region as the ground truth (crop one of them)"
        )
    if eval_mode is EvalMode.SECTIONS:
        scores = _evaluate_2d(probs, labels, threshold, rule, progress)
    else:
        scores = _evaluate_3d(probs, labels, threshold, progress)
    head = {
        "protocol": f"da-isc-{eval_mode.value}",
        "mode": eval_mode.value,
        **{m: scores.pop(m) for m in METRICS},
        "n_sections": scores.pop("n_sections"),
        "n_empty": scores.pop("n_empty"),
        "n_scored": scores.pop("n_scored"),
        "threshold": threshold,
        "empty": rule.value,
        "channel": probs.channel,
        "shape": list(probs.shape),
        "pred": probs.name,
        "gt": labels.name,
    }
    return {**head, **scores}
