"""The MaskTwins losses as pure functions of logits (METHOD.md).

Heads: ``softmax`` (C classes, integer labels) or ``sigmoid`` (one independent channel each,
0/1 labels, per-channel thresholds).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from ..modes import CMSpace, Head, ThresholdRule, Weighting


def foreground_fraction(logits: torch.Tensor, head: Head) -> torch.Tensor:
    """Fraction of voxels predicted foreground (softmax: argmax > 0; sigmoid: p >= 0.5, all
    channels), a detached 0-d tensor: a label-free sign of how much a network finds."""
    with torch.no_grad():
        if Head(head) is Head.SOFTMAX:
            return (logits.argmax(dim=1) > 0).float().mean()
        return (logits >= 0).float().mean()


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


def class_balanced_thresholds(
    confidence: torch.Tensor, label: torch.Tensor, n_classes: int, delta: float, portion: float
) -> torch.Tensor:
    """CBST-style per-class thresholds (Zou et al. 2018): ``tau_c = min(delta, q_c)``, where
    ``q_c`` is the ``1 - portion`` quantile of ``confidence`` over the voxels pseudo-labelled
    ``c``; a class with no voxel keeps ``delta``. A class the teacher is unsure of (a rare
    foreground) thus still has its most confident ``portion`` of voxels taught, instead of none.

    Args:
        confidence: teacher confidence of each voxel's label (max softmax probability).
        label: pseudo-label of each voxel, ints in ``[0, n_classes)``, same shape.
        n_classes: number of classes.
        delta: the fixed threshold (upper bound of every ``tau_c``).
        portion: fraction in (0, 1] of each class's voxels that passes (at least).

    Returns:
        ``(n_classes,)`` float thresholds.
    """
    taus = []
    conf, lab = confidence.reshape(-1).float(), label.reshape(-1)
    for c in range(n_classes):
        values = conf[lab == c]
        if values.numel() == 0:
            taus.append(torch.tensor(float(delta), device=conf.device))
        else:
            taus.append(torch.clamp(torch.quantile(values, 1.0 - float(portion)), max=float(delta)))
    return torch.stack(taus)


def prior_threshold(prob: torch.Tensor, fraction: float) -> float:
    """The probability that the most confident ``fraction`` of the voxels of ``prob`` reach: the
    ``m``-th largest value, ``m = round(fraction * prob.numel())``; ``inf`` when ``m`` is 0 (no
    voxel passes), the smallest value when ``m`` is every voxel.

    With ``p >= prior_threshold(p, rho)`` as the positive pseudo-labels, at most the top ``rho``
    of the voxels (ties aside) are labelled foreground: the class prior of the source labels caps
    what the teacher may call foreground (class-balanced self-training, Zou et al. 2018).
    """
    flat = prob.reshape(-1)
    m = int(round(float(fraction) * flat.numel()))
    if m <= 0:
        return float("inf")
    m = min(m, flat.numel())
    return float(torch.topk(flat.float(), m, sorted=False).values.min())


def band_negatives(prob: torch.Tensor, fractions: Sequence[float]) -> torch.Tensor:
    """Per channel ``c`` of a sigmoid ``(B, C, *S)`` probability map, the voxels outside the
    batch's most confident ``fractions[c]`` (below :func:`prior_threshold`): a bool tensor like
    ``prob``. A channel whose fraction rounds to no voxel (or reaches every voxel) adds none.

    ``loss.negative_band``: the source labels call every voxel away from a synapse background;
    so does this rule on the target, except for the teacher's top ``band x`` source fraction
    (the capped positives and the unsure ones just below them, which teach nothing).
    """
    out = torch.zeros_like(prob, dtype=torch.bool)
    for c, fraction in enumerate(fractions):
        cut = prior_threshold(prob[:, c], min(float(fraction), 1.0))
        if math.isfinite(cut):
            out[:, c] = prob[:, c] < cut
    return out


def cm_weight(lambda_cm: float, pl_fraction: float, source_fraction: float) -> float:
    """``lambda_cm`` scaled by the pseudo-labels' foreground fraction over the source labels',
    capped at 1 (``loss.cm_guard``): ``lambda_cm * min(1, pl / source)``; ``lambda_cm`` itself
    while the source fraction is not yet known (0)."""
    if source_fraction <= 0:
        return float(lambda_cm)
    return float(lambda_cm) * min(1.0, max(0.0, float(pl_fraction)) / float(source_fraction))


def channel_cm_weights(lambda_cm: float, lambda_debiased: float | None, debiased: Sequence[bool]) -> list[float]:
    """Per channel, the weight of its L_cm (``loss.lambda_cm_debiased``): ``lambda_debiased`` where the
    channel's pseudo-labels come from the debiased teacher (:func:`debias_choice` True), ``lambda_cm``
    where they fall back to the plain one; ``lambda_cm`` on every channel when ``lambda_debiased``
    is None."""
    if lambda_debiased is None:
        return [float(lambda_cm)] * len(debiased)
    return [float(lambda_debiased) if d else float(lambda_cm) for d in debiased]


def debias_choice(debiased_fraction: Sequence[float], source_fraction: Sequence[float], ratio: float | None) -> list[bool]:
    """Per channel, whether the debiased teacher makes the pseudo-labels (``loss.debias_fallback``).

    Args:
        debiased_fraction: running fraction of target voxels the debiased teacher labels positive.
        source_fraction: running foreground fraction of the source labels.
        ratio: the fallback multiple (None: always debiased).

    Returns:
        True where ``debiased_fraction >= ratio * source_fraction`` (or ``ratio`` is None).
    """
    if ratio is None:
        return [True] * len(debiased_fraction)
    return [float(d) >= float(ratio) * float(s) for d, s in zip(debiased_fraction, source_fraction)]


def pseudo_label(
    teacher_logits: torch.Tensor,
    head: Head,
    threshold: float | Sequence[float],
    rule: ThresholdRule = ThresholdRule.FIXED,
    portion: float = 0.5,
    prior: Sequence[float] | None = None,
    negative: float | None = None,
    band: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard pseudo-label and a confidence mask from teacher logits.

    Softmax: label ``argmax``, confident where ``max prob >= tau[label]``, ``tau`` = delta
    (``fixed``) or :func:`class_balanced_thresholds` (``class_balanced``).
    Sigmoid, per channel ``c``: label ``p_c >= 0.5``; confident where ``p_c >= tau_c`` (positive)
    or ``p_c <= 1 - delta_c`` (negative), so voxels in between teach nothing; ``tau_c`` is
    ``delta_c`` (``fixed``) or ``min(delta_c, 1 - portion quantile of the p_c >= 0.5 voxels)``
    (``class_balanced``, positives only: background is never short of confident voxels), or
    ``max(delta_c, prior_threshold(p_c, prior[c]))`` (``prior``: at most the batch's most
    confident ``prior[c]`` fraction of voxels, the source labels' foreground fraction, are taught
    as positives, so a teacher whose probabilities are inflated, e.g. by ``pos_weight``, cannot
    flood the student; it never adds positives below ``delta_c``). A sigmoid voxel is a confident
    negative where ``p_c <= negative`` (default ``1 - delta_c``; 1.0 makes every voxel that is not
    a confident positive a negative). ``band`` (``prior`` only): a voxel outside the batch's most
    confident ``band * prior[c]`` fraction is a confident negative as well (:func:`band_negatives`),
    so the unsure voxels are at most ``band`` times the source foreground fraction.

    Returns:
        ``(label, confident)``: label ``(B, *S)`` int64 (softmax) or float like logits (sigmoid);
        confident is a bool tensor of the label's shape.
    """
    rule = ThresholdRule(rule)
    with torch.no_grad():
        if Head(head) is Head.SOFTMAX:
            prob = torch.softmax(teacher_logits.float(), dim=1)
            maxprob, label = prob.max(dim=1)
            delta = float(threshold if not isinstance(threshold, (list, tuple)) else threshold[0])
            if rule is ThresholdRule.PRIOR:
                raise ValueError("threshold_rule=prior is defined for sigmoid heads only")
            if rule is ThresholdRule.FIXED:
                return label, maxprob >= delta
            taus = class_balanced_thresholds(maxprob, label, prob.shape[1], delta, portion)
            return label, maxprob >= taus[label]
        prob = torch.sigmoid(teacher_logits.float())
        n = prob.shape[1]
        deltas = [float(threshold)] * n if not isinstance(threshold, (list, tuple)) else (
            [float(t) for t in threshold] if len(threshold) == n else [float(threshold[0])] * n)
        if rule is ThresholdRule.PRIOR:
            if prior is None or len(prior) not in (1, n):
                raise ValueError(f"threshold_rule=prior needs one source foreground fraction per channel ({n}), got {prior}")
            prior = [float(f) for f in prior] if len(prior) == n else [float(prior[0])] * n
        pos = []
        for c in range(n):
            if rule is ThresholdRule.FIXED:
                pos.append(deltas[c])
            elif rule is ThresholdRule.PRIOR:
                pos.append(max(deltas[c], prior_threshold(prob[:, c], prior[c])))
            else:
                pc = prob[:, c]
                cand = pc[pc >= 0.5]
                pos.append(deltas[c] if cand.numel() == 0 else min(deltas[c], float(torch.quantile(cand, 1.0 - float(portion)))))
        shape = (1, n, *([1] * (prob.ndim - 2)))
        tau_pos = small_tensor(pos, prob.dtype, prob.device).reshape(shape)
        tau_neg = small_tensor([1.0 - d if negative is None else float(negative) for d in deltas], prob.dtype, prob.device).reshape(shape)
        positive = prob >= tau_pos
        negative_mask = prob <= tau_neg
        if band is not None and rule is ThresholdRule.PRIOR:
            negative_mask = negative_mask | band_negatives(prob, [band * f for f in prior])
        if negative is not None or rule is ThresholdRule.PRIOR:
            # the cap (or a negative bound that may reach above 0.5) decides the label too: a voxel
            # is a positive only where it is a confident one
            return positive.float(), positive | negative_mask
        label = (prob >= 0.5).float()
        return label, positive | negative_mask


def _per_voxel_ce(logits: torch.Tensor, label: torch.Tensor, head: Head, pos_weight: Sequence[float] | None = None) -> torch.Tensor:
    if Head(head) is Head.SOFTMAX:
        return F.cross_entropy(logits, label, reduction="none")
    return F.binary_cross_entropy_with_logits(logits, label, reduction="none", pos_weight=_pos_weight(pos_weight, logits))


def class_quality(label: torch.Tensor, confident: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per-class quality ``q_c = mean(confident | label == c)`` (0 for an absent class), ``(n_classes,)``."""
    lab, conf = label.reshape(-1).long(), confident.reshape(-1).float()
    count = torch.bincount(lab, minlength=n_classes).float()
    hits = torch.bincount(lab, weights=conf, minlength=n_classes)
    return torch.where(count > 0, hits / count.clamp(min=1.0), torch.zeros_like(count))


def weighted_ce(
    logits: torch.Tensor,
    label: torch.Tensor,
    confident: torch.Tensor,
    head: Head,
    weighting: Weighting,
    pos_weight: Sequence[float] | None = None,
) -> torch.Tensor:
    """Cross-entropy against a hard pseudo-label.

    Softmax head:
    ``quality``: mean CE times ``q = mean(confident)`` (one scalar per batch, DACS);
    ``per_voxel``: CE averaged over all voxels with unconfident voxels contributing 0;
    ``class_quality``: mean of ``q_label * CE`` with the per-class quality of :func:`class_quality`
    (a confident background no longer lends its weight to an unsure foreground).
    Sigmoid head: unconfident voxels always contribute 0 (``quality`` and ``per_voxel`` are the
    same); ``class_quality`` also weights each voxel by the quality of its channel's class
    (positive or negative). ``pos_weight``: BCE weight of the positive voxels (sigmoid only), as
    in ``L_sup``.
    """
    ce = _per_voxel_ce(logits, label, head, pos_weight)
    conf = confident.float()
    weighting = Weighting(weighting)
    if Head(head) is Head.SOFTMAX:
        if weighting is Weighting.QUALITY:
            return ce.mean() * conf.mean()
        if weighting is Weighting.PER_VOXEL:
            return (ce * conf).mean()
        q = class_quality(label, confident, logits.shape[1])
        return (ce * q[label]).mean()
    if weighting is Weighting.CLASS_QUALITY:
        weights = torch.zeros_like(conf)
        for c in range(logits.shape[1]):
            q = class_quality(label[:, c], confident[:, c], 2)
            weights[:, c] = q[label[:, c].long()]
        conf = conf * weights
    return (ce * conf).mean()


def consistency_loss(
    view_logits: Sequence[torch.Tensor],
    label: torch.Tensor,
    confident: torch.Tensor,
    head: Head,
    weighting: Weighting,
    view_weights: Sequence[float],
    pos_weight: Sequence[float] | None = None,
) -> torch.Tensor:
    """``L_cl = sum_k w_k CE(p_k, y_hat)``; MaskTwins uses ``w = (lambda, 1 - lambda)``, K views ``1/K``."""
    return sum(w * weighted_ce(lg, label, confident, head, weighting, pos_weight) for w, lg in zip(view_weights, view_logits))


def cross_mask_loss(
    view_logits: Sequence[torch.Tensor], space: CMSpace, head: Head, channel_weights: Sequence[float] | None = None
) -> torch.Tensor:
    """``L_cm``: MSE between the views' predictions, averaged over all view pairs.

    On logits (official) or probabilities (softmax / sigmoid); gradient flows into both views.
    ``channel_weights``: one weight per channel ``c`` of ``(B, C, *S)`` predictions; the result is
    then ``sum_c w_c * MSE_c / C`` (``MSE_c`` over channel ``c``'s voxels), which is ``w * MSE``
    when every ``w_c`` is ``w``.
    """
    if CMSpace(space) is CMSpace.PROBS:
        act = (lambda t: torch.softmax(t, dim=1)) if Head(head) is Head.SOFTMAX else torch.sigmoid
        view_logits = [act(t) for t in view_logits]
    pairs = [(i, j) for i in range(len(view_logits)) for j in range(i + 1, len(view_logits))]
    if channel_weights is None:
        return sum(F.mse_loss(view_logits[i], view_logits[j]) for i, j in pairs) / len(pairs)
    return weighted_channels(cross_mask_per_channel(view_logits, space, head, activated=True), channel_weights)


def cross_mask_per_channel(view_logits: Sequence[torch.Tensor], space: CMSpace, head: Head, activated: bool = False) -> torch.Tensor:
    """``L_cm`` per channel, ``(C,)``: each channel's MSE between the views (over its voxels), averaged over
    view pairs; its mean is :func:`cross_mask_loss`. ``activated``: the views are already in ``space``."""
    if not activated and CMSpace(space) is CMSpace.PROBS:
        act = (lambda t: torch.softmax(t, dim=1)) if Head(head) is Head.SOFTMAX else torch.sigmoid
        view_logits = [act(t) for t in view_logits]
    pairs = [(i, j) for i in range(len(view_logits)) for j in range(i + 1, len(view_logits))]
    dims = [d for d in range(view_logits[0].ndim) if d != 1]
    return sum(((view_logits[i] - view_logits[j]) ** 2).mean(dim=dims) for i, j in pairs) / len(pairs)


def weighted_channels(per_channel: torch.Tensor, channel_weights: Sequence[float]) -> torch.Tensor:
    """``sum_c w_c * per_channel[c] / C``; one line when the number of weights is not the number of channels."""
    if len(channel_weights) != per_channel.shape[0]:
        raise ValueError(f"channel_weights has {len(channel_weights)} values for {per_channel.shape[0]} channels")
    return (small_tensor(list(channel_weights), per_channel.dtype, per_channel.device) * per_channel).mean()
