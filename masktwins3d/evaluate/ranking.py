"""Average precision from per-score tallies, exact and streamable (pure numerics).

AP follows ``sklearn.metrics.average_precision_score`` for binary labels: the precision-recall
curve has one point per *distinct* score (tied scores form a single step), and

    AP = Σ_k (R_k − R_{k−1}) · P_k      (thresholds k in descending score order, R_{−1} = 0)

which is not interpolated. Because only the number of positives and negatives at each distinct
score matters, a volume can be reduced section by section to a :class:`ScoreTally` (sorted
distinct scores with their positive and negative counts), tallies merged, and the AP computed
at the end: the result equals sklearn on the flattened volume. Memory is O(number of distinct
scores): at most 256 for uint8 probabilities, about 15 k for float16, up to ~10^9 for float32.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

import numpy as np


class ScoreTally(NamedTuple):
    """Distinct scores in ascending order with how many positives / negatives hold each.

    Args:
        values: 1-D array of distinct scores, ascending (any real dtype).
        pos: int64 count of positive samples at each score.
        neg: int64 count of negative samples at each score.
    """

    values: np.ndarray
    pos: np.ndarray
    neg: np.ndarray


def _run_counts(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of an ascending array and how often each occurs."""
    if sorted_values.size == 0:
        return sorted_values, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], sorted_values[1:] != sorted_values[:-1])))
    counts = np.diff(np.append(starts, sorted_values.size)).astype(np.int64)
    return sorted_values[starts], counts


def _uint8_tally(scores: np.ndarray, labels: np.ndarray) -> ScoreTally:
    pos = np.bincount(scores[labels], minlength=256).astype(np.int64)
    neg = np.bincount(scores[~labels], minlength=256).astype(np.int64)
    keep = (pos + neg) > 0
    return ScoreTally(np.arange(256, dtype=np.uint8)[keep], pos[keep], neg[keep])


def score_tally(scores: np.ndarray, labels: np.ndarray) -> ScoreTally:
    """Tally positives and negatives per distinct score.

    Args:
        scores: real scores, any shape (NaN not allowed). uint8 scores are tallied by their codes,
            so values stay uint8; any strictly increasing map (e.g. ``/255``) keeps the AP.
        labels: boolean (or 0/1) ground truth, same shape.
    """
    scores = np.asarray(scores).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"score_tally: {scores.size} scores but {labels.size} labels")
    if scores.dtype == np.uint8:
        return _uint8_tally(scores, labels)
    pv, pc = _run_counts(np.sort(scores[labels]))
    nv, nc = _run_counts(np.sort(scores[~labels]))
    zeros = np.zeros
    return merge_tallies(
        [
            ScoreTally(pv, pc, zeros(pc.size, dtype=np.int64)),
            ScoreTally(nv, zeros(nc.size, dtype=np.int64), nc),
        ]
    )


def merge_tallies(tallies: Iterable[ScoreTally]) -> ScoreTally:
    """Merge tallies into one (counts of equal scores add up).

    Args:
        tallies: tallies whose ``values`` share a dtype family (all uint8, or all float).
    """
    tallies = [t for t in tallies if t.values.size]
    if not tallies:
        return ScoreTally(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    if len(tallies) == 1:
        return tallies[0]
    values = np.concatenate([t.values for t in tallies])
    pos = np.concatenate([t.pos for t in tallies])
    neg = np.concatenate([t.neg for t in tallies])
    # each input is sorted, so a stable sort (timsort/radix) of the concatenation is near linear
    order = np.argsort(values, kind="stable")
    values, pos, neg = values[order], pos[order], neg[order]
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    return ScoreTally(values[starts], np.add.reduceat(pos, starts), np.add.reduceat(neg, starts))


def average_precision_from_tally(tally: ScoreTally) -> float:
    """Step-wise AP of a tally, as ``sklearn.metrics.average_precision_score``.

    With no positive sample, sklearn (≥ 1.3) sets recall to 1 at every threshold and the AP
    becomes the precision at the highest score, i.e. 0.0; this returns 0.0 likewise.

    Args:
        tally: the scores' tally; must hold at least one sample.
    """
    if tally.values.size == 0:
        raise ValueError("average precision of zero samples is undefined")
    pos = tally.pos[::-1].astype(np.int64)  # descending score order
    neg = tally.neg[::-1].astype(np.int64)
    tps = np.cumsum(pos)
    fps = np.cumsum(neg)
    n_pos = int(tps[-1])
    if n_pos == 0:
        return 0.0
    hit = pos > 0  # only thresholds where recall increases contribute
    precision = tps[hit] / (tps[hit] + fps[hit]).astype(np.float64)
    return float(max(0.0, np.dot(pos[hit].astype(np.float64), precision) / n_pos))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of ``scores`` against binary ``labels`` (sklearn semantics).

    Args:
        scores: real scores, any shape.
        labels: boolean or 0/1 ground truth, same shape.
    """
    return average_precision_from_tally(score_tally(scores, labels))


class TallyAccumulator:
    """Streams tallies section by section and merges them in amortised near-linear time.

    Args:
        min_merge: buffered entries below which no merge happens (keeps merges few for small tallies).
    """

    def __init__(self, min_merge: int = 1 << 22):
        self.min_merge = min_merge
        self._merged: ScoreTally | None = None
        self._buffer: list[ScoreTally] = []
        self._buffered = 0

    def add(self, tally: ScoreTally) -> None:
        """Add one section's tally."""
        self._buffer.append(tally)
        self._buffered += tally.values.size
        merged_size = 0 if self._merged is None else self._merged.values.size
        if self._buffered >= max(self.min_merge, merged_size):
            self._flush()

    def _flush(self) -> None:
        parts = ([self._merged] if self._merged is not None else []) + self._buffer
        self._merged = merge_tallies(parts)
        self._buffer, self._buffered = [], 0

    def result(self) -> ScoreTally:
        """The merged tally of everything added so far."""
        self._flush()
        assert self._merged is not None
        return self._merged
