"""A training checkpoint's network, rebuilt from its model config and loaded with
``weights_only=True``: the last student or the EMA of its weights."""

from __future__ import annotations

from pathlib import Path

import torch

from ..adapt.trainer import load_checkpoint
from ..config import ModelConfig
from ..errors import UserError
from ..models import build_model
from .settings import check_weights


def model_from_checkpoint(path: str | Path, weights: str = "student") -> torch.nn.Module:
    """The network of a checkpoint, in eval mode (weights loaded with weights_only=True).

    Args:
        path: ``checkpoint.pt`` (or a snapshot) of a training run.
        weights: ``student`` (the last iterate, default) or ``ema`` (the EMA of the weights,
            which every method keeps unless trained with ``teacher.ema=false``).
    """
    weights = check_weights(weights).value
    state = load_checkpoint(path)
    if weights == "ema" and state.get("teacher") is None:
        raise UserError(f"{path} holds no EMA weights (trained with teacher.ema=false or by an older version); pass --weights student")
    cfg = ModelConfig(**state["model_config"])
    model = build_model(cfg)
    try:
        model.load_state_dict(state["teacher"] if weights == "ema" else state["model"])
    except RuntimeError as exc:
        raise UserError(f"{path}: weights do not fit model {cfg.name} {cfg.widths} ({str(exc).splitlines()[0]}); the checkpoint is damaged or from another version") from None
    model.head_kind = cfg.head
    return model.eval()
