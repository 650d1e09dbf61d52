"""Paired comparisons of two methods over seeds: per-seed differences, their mean and a t interval.

Methods are compared on equal terms when every seed trains both from the same data and the same
starting point; the per-seed difference then removes what the seed does to both, and its
Student-t interval says whether the mean difference is distinguishable from zero.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """``a - b`` per seed, with the mean and its two-sided Student-t confidence interval.

    Args:
        a / b: one score per seed for each method, in the same seed order.
        confidence: coverage of the interval (default 0.95).

    Returns:
        ``{"n", "per_seed", "mean", "sd", "low", "high", "positive"}``: ``positive`` counts the
        seeds where ``a > b``; with one seed ``sd``, ``low`` and ``high`` are NaN.
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired scores need one value per seed for both methods, got {a.shape} and {b.shape}")
    d = a - b
    n = int(d.size)
    mean = float(d.mean())
    if n < 2:
        sd = low = high = math.nan
    else:
        sd = float(d.std(ddof=1))
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    return {"n": n, "per_seed": d.tolist(), "mean": mean, "sd": sd, "low": low, "high": high, "positive": int((d > 0).sum())}


def format_difference(diff: dict, scale: float = 100.0, digits: int = 1) -> str:
    """``+m [low, high] (per seed: ..., k/n positive)`` in the given scale (100: percent points)."""
    f = lambda v: f"{scale * v:+.{digits}f}"  # noqa: E731
    seeds = ", ".join(f(v) for v in diff["per_seed"])
    interval = f" [{f(diff['low'])}, {f(diff['high'])}]" if math.isfinite(diff["low"]) else ""
    return f"{f(diff['mean'])}{interval} (per seed {seeds}; {diff['positive']}/{diff['n']} positive)"
