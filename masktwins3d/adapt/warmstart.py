"""Warm start: begin a run from the weights of an earlier one (``train.init``).

A lab usually has a source model already. Adapting it, instead of training source and target
losses from scratch, saves the source-only phase and makes comparisons budget-fair: every
adapting method starts from the same noadapt checkpoint and is compared with noadapt continued
for the same iterations. Only weights are taken; the optimiser, schedule and iteration start
afresh.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..data.resample import zoom_factors
from ..errors import UserError
from .trainer import load_checkpoint

# model config keys that change no weight: AdaIN restyles features during training only
_WEIGHTLESS = ("adain",)


def init_weights(path: str | Path, model_config: dict, weights: str = "ema", voxel_size=None) -> tuple[dict, dict]:
    """The state dict that starts this run, and a record of where it came from.

    Args:
        path: ``checkpoint.pt`` (or a snapshot) of an earlier run.
        model_config: this run's model config as a dict (``dataclasses.asdict(run.model)``).
        weights: ``ema`` (the checkpoint's EMA weights) or ``student``.
        voxel_size: ZYX nm this run's model learns at (None: not checked, as under
            ``data.resample=never``); when it and the checkpoint's are both known and differ
            in-plane by more than 5 %, one line.

    Returns:
        ``(state_dict, info)``; ``info`` has the path, its sha256, the weights and the step.
    """
    state = load_checkpoint(path)
    theirs = dict(state["model_config"])
    for key in sorted(set(theirs) | set(model_config)):
        if key in _WEIGHTLESS or theirs.get(key) == model_config.get(key):
            continue
        raise UserError(f"train.init={path} holds a model with {key}={theirs.get(key)!r} but this run has "
                        f"model.{key}={model_config.get(key)!r}; set model.{key}={theirs.get(key)!r} or start from a checkpoint of this model")
    theirs_vs = state.get("voxel_size")
    if voxel_size is not None and theirs_vs is not None and zoom_factors(theirs_vs, voxel_size) is not None:
        raise UserError(f"train.init={path} learned at {_nm(theirs_vs)} nm but this run learns at {_nm(voxel_size)} nm; "
                        f"set data.train_voxel_size=[{', '.join(f'{v:g}' for v in theirs_vs)}] to adapt it at its own scale")
    if weights == "ema":
        if state.get("teacher") is None:
            raise UserError(f"train.init={path} holds no EMA weights (its run had teacher.ema=false); pass train.init_weights=student")
        sd = state["teacher"]
    else:
        sd = state["model"]
    info = {"path": str(path), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(), "weights": weights, "step": int(state.get("step", 0))}
    return sd, info


def _nm(voxel_size) -> str:
    return " x ".join(f"{float(v):g}" for v in voxel_size)
