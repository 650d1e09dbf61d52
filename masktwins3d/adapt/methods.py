"""Training methods: each defines its loss for one iteration; the trainer only steps it.

``noadapt`` and ``oracle`` are supervised (on source, or on target labels). ``mic``, ``rmask``
and ``masktwins`` are presets of one masked-consistency method whose parts (CL, CMask/RMask,
CM, EMA, AdaIN) are independent switches, so the paper's ablation rows can be re-run.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn

from ..errors import UserError
from .losses import (Head, channel_cm_weights, cm_weight, consistency_loss, cross_mask_loss, cross_mask_per_channel, debias_choice,
                     foreground_fraction, pseudo_label, supervised_loss, weighted_channels)
from .masks import MaskKind, apply_mask, draw_masks
from .teacher import EMATeacher

# Method presets: the values that ``null`` config switches take for each method. ``adain=None``:
# the model's own default (``adain_default``: on for resunet3d, off for unet2d).
# Every method keeps an EMA of its weights (``teacher.ema``): supervised ones only to be scored
# with it (the weight average alone is worth several IoU points), the others also as teacher.
PRESETS: dict[str, dict] = {
    "noadapt": dict(cl=False, cm=False, kind="none", ratio=0.5, ema=True, adain=False),
    "oracle": dict(cl=False, cm=False, kind="none", ratio=0.5, ema=True, adain=False),
    "mic": dict(cl=True, cm=False, kind="single", ratio=0.7, ema=True, adain=None),
    "rmask": dict(cl=True, cm=True, kind="independent", ratio=0.5, ema=True, adain=None),
    "masktwins": dict(cl=True, cm=True, kind="complementary", ratio=0.5, ema=True, adain=None),
}
SUPERVISED = ("noadapt", "oracle")


def apply_preset(run):
    """Return ``run`` with every ``None`` switch set from ``PRESETS[run.method]``."""
    if run.method not in PRESETS:
        raise UserError(f"method={run.method!r} is unknown; choose one of {list(PRESETS)}")
    p = PRESETS[run.method]
    if run.method in SUPERVISED and run.model.adain:
        raise UserError(f"model.adain=true but method={run.method} sees no target images to take statistics from; set model.adain=null or false")
    adain = p["adain"]
    if adain is None and run.model.adain is None:
        from ..models import MODELS

        adain = bool(getattr(MODELS.get(run.model.name), "adain_default", False))

    def pick(value, default):
        return default if value is None else value

    cm_space = run.loss.cm_space or ("probs" if run.model.head == "sigmoid" else "logits")
    cl_pos_weight = run.loss.pos_weight if run.loss.cl_pos_weight is None else run.loss.cl_pos_weight
    return dataclasses.replace(
        run,
        mask=dataclasses.replace(run.mask, kind=pick(run.mask.kind, p["kind"]), ratio=pick(run.mask.ratio, p["ratio"])),
        loss=dataclasses.replace(run.loss, cl=pick(run.loss.cl, p["cl"]), cm=pick(run.loss.cm, p["cm"]), cm_space=cm_space,
                                 cl_pos_weight=list(cl_pos_weight)),
        teacher=dataclasses.replace(run.teacher, ema=pick(run.teacher.ema, p["ema"])),
        model=dataclasses.replace(run.model, adain=pick(run.model.adain, adain)),
    )


def pos_weight_prior(pos_weight, channels: int) -> torch.Tensor | None:
    """``log(pos_weight)`` per channel, ``(C,)``, or None when every weight is 1: the shift that
    BCE with ``pos_weight`` puts into the logits it learns."""
    weights = list(pos_weight) if len(pos_weight) > 1 else [pos_weight[0]] * channels
    if all(w == 1.0 for w in weights):
        return None
    return torch.log(torch.tensor(weights, dtype=torch.float32))


class StudentMethod(nn.Module):
    """Base of the methods: ``model`` is the student; ``net`` runs its gradient-carrying forwards.

    ``net`` is ``model`` itself, or after :meth:`set_net` its DistributedDataParallel wrapper
    (kept out of the submodules, so state dicts and the EMA teacher see the bare model).
    Losses return their logs as detached 0-d tensors: the trainer reads them (a GPU sync) only
    when it writes a log line.
    """

    model: nn.Module

    @property
    def net(self) -> nn.Module:
        net = self.__dict__.get("_net")
        return self.model if net is None else net

    def set_net(self, net: nn.Module) -> None:
        """Run the student's forwards through ``net`` (a wrapper of ``model``, e.g. DDP)."""
        self.__dict__["_net"] = net


class Supervised(StudentMethod):
    """``L = L_sup`` on the labelled batch (source for ``noadapt``, target for ``oracle``).

    Args:
        model: the network.
        head: softmax or sigmoid.
        pos_weight: sigmoid head: BCE weight of positive voxels per channel (None: plain BCE).
        ema: keep an EMA of the weights (``teacher``), only to be scored with.
        alpha_max / mode: of the EMA (see :class:`~.teacher.EMATeacher`).
    """

    needs_target = False

    def __init__(self, model: nn.Module, head: Head, pos_weight=None, ema: bool = True, alpha_max: float = 0.999, mode: str = "ours"):
        super().__init__()
        self.model, self.head, self.pos_weight = model, Head(head), pos_weight
        self.teacher = EMATeacher(model, alpha_max, mode) if ema else None

    def loss(self, batch: dict, step: int) -> tuple[torch.Tensor, dict]:
        l_sup = supervised_loss(self.net(batch["source_image"]), batch["source_label"], self.head, self.pos_weight)
        fg = (batch["source_label"] > 0).float().mean()
        return l_sup, {"loss": l_sup.detach(), "l_sup": l_sup.detach(), "source_foreground": fg}

    def after_step(self, step: int) -> None:
        if self.teacher is not None:
            self.teacher.update(self.model, step)


class MaskedConsistency(StudentMethod):
    """Source supervision plus masked target self-training (MaskTwins and its ablations).

    ``L = w_sup * L_sup + [cl] * sum_k w_k CE(f(M_k * x_T), y_hat) + [cm] * lambda_cm * MSE(views)``
    (``w_sup`` is ``loss.sup_weight``, 1 in the paper),
    with ``y_hat`` from the EMA teacher (or the detached student when EMA is off) on the unmasked
    target.

    Args:
        model: the student network.
        run: the resolved :class:`~masktwins3d.config.RunConfig`.
        fill: normalised value of masked voxels (0 for ``mask.fill: mean``).
        generator: torch generator that draws the masks.
    """

    needs_target = True

    def __init__(self, model: nn.Module, run, fill: float, generator: torch.Generator):
        super().__init__()
        self.model = model
        self.head = Head(run.model.head)
        self.mask, self.lcfg, self.fill, self.generator = run.mask, run.loss, fill, generator
        self.kind = MaskKind(run.mask.kind)
        self.teacher = EMATeacher(model, run.teacher.alpha_max, run.teacher.mode) if run.teacher.ema else None
        threshold = list(run.loss.threshold)
        self.threshold = threshold[0] if self.head is Head.SOFTMAX or len(threshold) == 1 else threshold
        self.adain = bool(run.model.adain)
        self.prior = pos_weight_prior(run.loss.pos_weight, run.model.out_channels) if (
            self.head is Head.SIGMOID and run.loss.debias_pos_weight) else None
        self.restart = bool(run.teacher.restart) and run.loss.target_start > 0
        # threshold_rule=prior: running per-channel foreground fraction of the source labels seen
        # so far (sum of batch fractions, number of batches); kept in checkpoints (extra_state)
        self.source_fg_sum = [0.0] * int(run.model.out_channels)
        self.source_fg_count = 0
        # loss.debias_fallback: running per-channel fraction of target voxels the debiased teacher
        # labels positive (sum of batch fractions; batches counted by source_fg_count's twin)
        self.debiased_fg_sum = [0.0] * int(run.model.out_channels)
        self.debiased_fg_count = 0
        # per channel, whether the last pseudo-labels came from the debiased teacher (loss.lambda_cm_debiased)
        self.debiased = [self.prior is not None] * int(run.model.out_channels)

    def extra_state(self) -> dict:
        """The method's own running statistics, stored in checkpoints so a resume continues them."""
        return {"source_fg_sum": list(self.source_fg_sum), "source_fg_count": int(self.source_fg_count),
                "debiased_fg_sum": list(self.debiased_fg_sum), "debiased_fg_count": int(self.debiased_fg_count)}

    def load_extra_state(self, state: dict | None) -> None:
        """Restore :meth:`extra_state` (a checkpoint without it, e.g. a warm start: start afresh)."""
        if state:
            self.source_fg_sum = [float(v) for v in state["source_fg_sum"]]
            self.source_fg_count = int(state["source_fg_count"])
            self.debiased_fg_sum = [float(v) for v in state.get("debiased_fg_sum", self.debiased_fg_sum)]
            self.debiased_fg_count = int(state.get("debiased_fg_count", 0))

    def source_prior(self, source_label: torch.Tensor) -> list[float]:
        """Add this batch's per-channel source foreground fraction (sigmoid labels ``(B, C, *S)``)
        and return the running mean."""
        dims = [d for d in range(source_label.ndim) if d != 1]
        batch = (source_label > 0).float().mean(dim=dims).tolist()
        self.source_fg_sum = [a + b for a, b in zip(self.source_fg_sum, batch)]
        self.source_fg_count += 1
        return [a / self.source_fg_count for a in self.source_fg_sum]

    def pseudo_labels(self, t_logits: torch.Tensor, prior: list[float] | None, logs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's ``(label, confident)``: debiased by ``log(pos_weight)`` with
        ``loss.debias_pos_weight``, per channel from the plain teacher while ``loss.debias_fallback``
        says the debiased one finds too little (:func:`~.losses.debias_choice`)."""
        def label_of(logits: torch.Tensor):
            return pseudo_label(logits, self.head, self.threshold, self.lcfg.threshold_rule, self.lcfg.cb_portion, prior,
                                self.lcfg.negative_threshold, self.lcfg.negative_band)

        n = t_logits.shape[1]
        if self.prior is None:
            self.debiased = [False] * n
            return label_of(t_logits)
        shift = self.prior.to(t_logits.device, t_logits.dtype).reshape(1, -1, *([1] * (t_logits.ndim - 2)))
        label, confident = label_of(t_logits - shift)  # the teacher's logits without the pos_weight bias
        if self.lcfg.debias_fallback is None or prior is None:
            self.debiased = [True] * n
            return label, confident
        dims = [d for d in range(label.ndim) if d != 1]
        batch = (label > 0).float().mean(dim=dims).tolist()
        self.debiased_fg_sum = [a + b for a, b in zip(self.debiased_fg_sum, batch)]
        self.debiased_fg_count += 1
        running = [a / self.debiased_fg_count for a in self.debiased_fg_sum]
        keep = debias_choice(running, prior, self.lcfg.debias_fallback)
        self.debiased = list(keep)
        logs["debiased_channels"] = torch.tensor(float(sum(keep)))
        if all(keep):
            return label, confident
        plain_label, plain_confident = label_of(t_logits)
        sel = torch.tensor(keep, device=label.device).reshape(1, -1, *([1] * (label.ndim - 2)))
        return torch.where(sel, label, plain_label), torch.where(sel, confident, plain_confident)

    def ema_step(self, step: int) -> int:
        """The teacher's EMA step: counted from ``target_start`` when ``teacher.restart`` re-copies it there."""
        return step - self.lcfg.target_start if self.restart and step >= self.lcfg.target_start else step

    def view_weights(self, n_views: int) -> list[float]:
        if n_views == 2:
            return [self.lcfg.view_weight, 1.0 - self.lcfg.view_weight]
        return [1.0 / n_views] * n_views

    def _predict_views(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.lcfg.views_batched:
            return list(self.net(torch.cat(views)).chunk(len(views)))
        return [self.net(v) for v in views]

    def loss(self, batch: dict, step: int) -> tuple[torch.Tensor, dict]:
        xs, ys, xt = batch["source_image"], batch["source_label"], batch["target_image"]
        logits_s = self.net(xs, style=xt) if self.adain else self.net(xs)
        l_sup = supervised_loss(logits_s, ys, self.head, self.lcfg.pos_weight)
        total, logs = self.lcfg.sup_weight * l_sup, {"l_sup": l_sup.detach()}
        logs["source_foreground"] = (ys > 0).float().mean()
        running = self.source_prior(ys) if (self.lcfg.threshold_rule == "prior" or self.lcfg.cm_guard) else None
        prior = running if self.lcfg.threshold_rule == "prior" else None
        if (self.lcfg.cl or self.lcfg.cm) and step >= self.lcfg.target_start:
            if self.teacher is not None and self.restart and step == self.lcfg.target_start:
                self.teacher.reset(self.model)  # pseudo-labels from the student as it is now, not from the
                # average of its source-only iterates
            if self.teacher is not None:
                t_logits = self.teacher(xt)
            else:
                with torch.no_grad():
                    t_logits = self.model(xt)
            label, confident = self.pseudo_labels(t_logits, prior, logs)
            masks = draw_masks(
                self.kind, (xt.shape[0], *xt.shape[2:]), self.mask.patch, self.mask.ratio,
                self.generator, self.mask.views, xt.device,
            )
            view_logits = self._predict_views([apply_mask(xt, m, self.fill) for m in masks])
            logs["quality"] = confident.float().mean()
            # label-free health check: a collapse of self-training shows as these falling towards 0,
            # far below source_foreground (the guard in the trainer warns)
            logs["pl_foreground"] = (label > 0).float().mean()
            logs["pred_foreground"] = sum(foreground_fraction(v, self.head) for v in view_logits) / len(view_logits)
            if self.lcfg.cl:
                l_cl = consistency_loss(
                    view_logits, label, confident, self.head, self.lcfg.weighting, self.view_weights(len(view_logits)),
                    self.lcfg.cl_pos_weight if self.head is Head.SIGMOID else None,
                )
                total = total + l_cl
                logs["l_cl"] = l_cl.detach()
            if self.lcfg.cm and len(view_logits) > 1:
                lam = self.lcfg.lambda_cm
                if self.lcfg.cm_guard:
                    lam = cm_weight(lam, float(logs["pl_foreground"]), sum(running) / len(running))
                    logs["lambda_cm"] = torch.tensor(lam)
                if self.lcfg.lambda_cm_debiased is not None:  # per channel, computed once: the weighted term and its mean
                    per_channel = cross_mask_per_channel(view_logits, self.lcfg.cm_space, self.head)
                    weights = channel_cm_weights(lam, self.lcfg.lambda_cm_debiased, self.debiased)
                    l_cm = per_channel.mean()
                    total = total + weighted_channels(per_channel, weights)
                    logs["lambda_cm"] = torch.tensor(sum(weights) / len(weights))
                else:
                    l_cm = cross_mask_loss(view_logits, self.lcfg.cm_space, self.head)
                    total = total + lam * l_cm
                logs["l_cm"] = l_cm.detach()
        logs["loss"] = total.detach()
        return total, logs

    def after_step(self, step: int) -> None:
        if self.teacher is not None:
            self.teacher.update(self.model, self.ema_step(step))


def build_method(run, model: nn.Module, fill: float, generator: torch.Generator) -> nn.Module:
    """The method object for ``run.method`` (supervised or masked consistency)."""
    if run.method in SUPERVISED:
        return Supervised(model, run.model.head, list(run.loss.pos_weight), bool(run.teacher.ema), run.teacher.alpha_max, run.teacher.mode)
    return MaskedConsistency(model, run, fill, generator)
