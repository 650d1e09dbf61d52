"""What every post-processing step accepts as a probability map, checked in one place.

A map holds float probabilities in [0, 1] (values up to :data:`RANGE_TOLERANCE` outside, from
blending round-off, are accepted and the callers clip or compare them as they are) or uint8
probabilities scaled 0..255 (``round(p * 255)`` as ``masktwins3d predict --dtype uint8`` writes).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

RANGE_TOLERANCE = 1e-3
"""Float probabilities may stray this far outside [0, 1] (blending round-off)."""


def check_probabilities(prob: np.ndarray, where: str = "probabilities") -> bool:
    """Raise a :class:`UserError` unless ``prob`` is uint8, or finite floats within [0, 1] ± tolerance.

    Args:
        prob: the map (any shape).
        where: what to name in the error message (e.g. ``prob.zarr channel 0 (pre)``).

    Returns:
        True when float values lie outside [0, 1] (within the tolerance), so the caller may clip.
    """
    if prob.dtype == np.uint8:
        return False
    if prob.dtype.kind != "f":
        raise UserError(f"{where} have dtype {prob.dtype}; give float probabilities in [0, 1] or uint8 scaled 0..255")
    if not prob.size:
        return False
    lo, hi = float(np.min(prob)), float(np.max(prob))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise UserError(f"{where} hold NaN or inf; fix the prediction (re-run predict) before post-processing")
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise UserError(f"{where} range from {lo:g} to {hi:g}, not [0, 1]; give sigmoid/softmax probabilities, not logits")
    return lo < 0 or hi > 1
