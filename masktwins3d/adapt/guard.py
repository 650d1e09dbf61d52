"""A label-free guard against the collapse of self-training towards background (or its flood
towards foreground).

Self-training on pseudo-labels of a rare class (mitochondria are a few % of the voxels, synapse
cubes 0.1 %) can drift: the teacher finds a little less foreground, the student learns that,
the teacher follows, until nothing is found. That shows without target labels: the fraction of
target voxels pseudo-labelled foreground falls far below the foreground fraction of the source
labels. The guard follows both as running means and warns when their ratio drops below a
bound (tissue differs, so only a large drop is a sign). The opposite drift shows the same way:
a sigmoid teacher trained with a large ``pos_weight`` labels many times the source's foreground.
"""

from __future__ import annotations

import math


def collapse_warning(pl_foreground: float, source_foreground: float, ratio: float, step: int | None = None,
                     flood: float = 0.0) -> str | None:
    """The warning line when ``pl_foreground < ratio * source_foreground`` (collapse) or
    ``pl_foreground > flood * source_foreground`` (flood), else None.

    Args:
        pl_foreground: fraction of target voxels the teacher labels foreground (running mean).
        source_foreground: fraction of source label voxels that are foreground (running mean).
        ratio: lower bound on ``pl_foreground / source_foreground`` (0 turns it off).
        step: iteration, for the message.
        flood: upper bound on the same ratio (0 turns it off).
    """
    if not source_foreground > 0 or not math.isfinite(pl_foreground):
        return None
    at = f" at iteration {step}" if step is not None else ""
    if flood > 0 and pl_foreground > flood * source_foreground:
        return (f"warning: self-training may be flooding{at}: the teacher labels {100 * pl_foreground:.2f} % of target voxels "
                f"foreground against {100 * source_foreground:.3f} % in the source labels (above {flood:g}x); with a sigmoid "
                "head and loss.pos_weight, consider loss.threshold_rule=prior (positives capped at the source fraction)")
    if ratio <= 0 or pl_foreground >= ratio * source_foreground:
        return None
    return (f"warning: self-training may be collapsing{at}: the teacher labels {100 * pl_foreground:.2f} % of target voxels "
            f"foreground against {100 * source_foreground:.2f} % in the source labels (below {ratio:g}x); consider a later "
            "loss.target_start, a warm start (train.init), loss.threshold_rule=class_balanced or loss.weighting=per_voxel")


class CollapseGuard:
    """Running means of the logged foreground fractions and a warning when they diverge.

    Args:
        ratio: warn when the pseudo-label foreground falls below ``ratio`` x the source's (0: off).
        flood: warn when it rises above ``flood`` x the source's (0: off).
        momentum: weight of the past in the running means (per log line).
        patience: log lines with target losses before the guard may warn (the means settle).
    """

    def __init__(self, ratio: float = 0.25, momentum: float = 0.7, patience: int = 2, flood: float = 0.0):
        self.ratio, self.momentum, self.patience, self.flood = ratio, momentum, patience, flood
        self.pl = self.src = None
        self.seen = 0
        self.warned = False

    def _mix(self, old, new: float) -> float:
        return new if old is None else self.momentum * old + (1 - self.momentum) * new

    def update(self, logs: dict, step: int | None = None) -> str | None:
        """Take one log line (``pl_foreground``, ``source_foreground``); the warning, once per
        collapse (again only after the fractions have recovered), else None."""
        if "pl_foreground" not in logs or "source_foreground" not in logs:
            return None
        self.pl = self._mix(self.pl, float(logs["pl_foreground"]))
        self.src = self._mix(self.src, float(logs["source_foreground"]))
        self.seen += 1
        if self.seen < self.patience:
            return None
        msg = collapse_warning(self.pl, self.src, self.ratio, step, self.flood)
        if msg is None:
            self.warned = False
            return None
        if self.warned:
            return None
        self.warned = True
        return msg
