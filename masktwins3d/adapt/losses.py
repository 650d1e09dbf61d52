"""The MaskTwins losses as pure functions of logits (METHOD.md).

Heads: ``softmax`` (C classes, integer labels) or ``sigmoid`` (one independent channel each,
0/1 labels, per-channel thresholds).
"""

from __future__ import annotations

from enum import Enum
from typing import Sequence

import torch
import torch.nn.functional as F


class Head(str, Enum):
    SOFTMAX = "softmax"
    SIGMOID = "sigmoid"


class Weighting(str, Enum):
    QUALITY = "quality"  # DACS: one scalar per batch, fraction of confident voxels
    PER_VOXEL = "per_voxel"  # ignore voxels below the threshold


class CMSpace(str, Enum):
    LOGITS = "logits"  # official code: mse_loss(logits1, logits2)
    PROBS = "probs"  # as the paper writes it


def small_tensor(values, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A few constants on ``device`` without stalling a GPU: pinned host memory, asynchronous copy
    (a plain copy from a Python list would wait for every queued kernel)."""
    t = torch.tensor(values, dtype=dtype)
    if torch.device(device).type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def supervised_loss(
    logits: torch.Tensor, target: torch.Tensor, head: Head, pos_weight: Sequence[float] | None = None
) -> torch.Tensor:
    """``L_sup``: cross-entropy (softmax; target ``(B, *S)`` int) or BCE (sigmoid; target like logits).

    ``pos_weight`` (sigmoid only): weight of the positive voxels per channel (one value for all
    channels, or one per channel); ``None`` or all ones is plain BCE.
    """
    if Head(head) is Head.SOFTMAX:
        return F.cross_entropy(logits, target.long())
    return F.binary_cross_entropy_with_logits(logits, target.float(), pos_weight=_pos_weight(pos_weight, logits))


def _pos_weight(pos_weight: Sequence[float] | None, logits: torch.Tensor) -> torch.Tensor | None:
    """``pos_weight`` as a tensor broadcasting over ``(B, C, *S)`` logits, or None for plain BCE."""
    if pos_weight is None or all(w == 1.0 for w in pos_weight):
        return None
    weight = small_tensor(list(pos_weight), logits.dtype, logits.device)
    return weight.reshape(1, -1, *([1] * (logits.ndim - 2))) if len(pos_weight) > 1 else weight.reshape(())


def pseudo_label(
    teacher_logits: torch.Tensor, head: Head, threshold: float | Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard pseudo-label and a confidence mask from teacher logits.

    Softmax: label ``argmax``, confident where ``max prob >= threshold``.
    Sigmoid: label ``p_c >= delta_c`` per channel, confident where ``max(p, 1 - p) >= delta_c``.

    Returns:
        ``(label, confident)``: label ``(B, *S)`` int64 (softmax) or float like logits (sigmoid);
        confident is a bool tensor of the label's shape.
    """
    with torch.no_grad():
        if Head(head) is Head.SOFTMAX:
            prob = torch.softmax(teacher_logits.float(), dim=1)
            maxprob, label = prob.max(dim=1)
            return label, maxprob >= float(threshold)
        prob = torch.sigmoid(teacher_logits.float())
        delta = small_tensor(threshold, prob.dtype, prob.device)
        delta = delta.reshape(1, -1, *([1] * (prob.ndim - 2))) if delta.ndim else delta
        label = (prob >= delta).float()
        return label, torch.maximum(prob, 1 - prob) >= delta


def _per_voxel_ce(logits: torch.Tensor, label: torch.Tensor, head: Head) -> torch.Tensor:
    if Head(head) is Head.SOFTMAX:
        return F.cross_entropy(logits, label, reduction="none")
    return F.binary_cross_entropy_with_logits(logits, label, reduction="none")


def weighted_ce(
    logits: torch.Tensor, label: torch.Tensor, confident: torch.Tensor, head: Head, weighting: Weighting
) -> torch.Tensor:
    """Cross-entropy against a hard pseudo-label.

    ``quality``: mean CE times ``q = mean(confident)`` (one scalar per batch, DACS).
    ``per_voxel``: CE averaged over all voxels with unconfident voxels contributing 0.
    """
    ce = _per_voxel_ce(logits, label, head)
    conf = confident.float()
    if Weighting(weighting) is Weighting.QUALITY:
        return ce.mean() * conf.mean()
    return (ce * conf).mean()


def consistency_loss(
    view_logits: Sequence[torch.Tensor],
    label: torch.Tensor,
    confident: torch.Tensor,
    head: Head,
    weighting: Weighting,
    view_weights: Sequence[float],
) -> torch.Tensor:
    """``L_cl = sum_k w_k CE(p_k, y_hat)``; MaskTwins uses ``w = (lambda, 1 - lambda)``, K views ``1/K``."""
    return sum(w * weighted_ce(lg, label, confident, head, weighting) for w, lg in zip(view_weights, view_logits))


def cross_mask_loss(view_logits: Sequence[torch.Tensor], space: CMSpace, head: Head) -> torch.Tensor:
    """``L_cm``: MSE between the views' predictions, averaged over all view pairs.

    On logits (official) or probabilities (softmax / sigmoid); gradient flows into both views.
    """
    if CMSpace(space) is CMSpace.PROBS:
        act = (lambda t: torch.softmax(t, dim=1)) if Head(head) is Head.SOFTMAX else torch.sigmoid
        view_logits = [act(t) for t in view_logits]
    pairs = [(i, j) for i in range(len(view_logits)) for j in range(i + 1, len(view_logits))]
    return sum(F.mse_loss(view_logits[i], view_logits[j]) for i, j in pairs) / len(pairs)
