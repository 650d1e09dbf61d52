"""Model registry: names to constructors, so configs choose a network by ``model.name``."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..errors import UserError

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator that makes a model constructible as ``model.name: <name>``."""

    def deco(cls: type) -> type:
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = cls
        cls.registry_name = name
        return cls

    return deco


def model_class(cfg) -> type:
    """The registered class of ``cfg.name``, or a one-line :class:`UserError` naming the choices."""
    if cfg.name not in MODELS:
        raise UserError(f"model.name={cfg.name!r} is unknown; choose one of {sorted(MODELS)}")
    return MODELS[cfg.name]


def model_dims(cfg) -> int:
    """Spatial axes (2 or 3) of the network ``cfg`` names, from its class: nothing is built."""
    return int(model_class(cfg).spatial_dims)


def build_model(cfg) -> nn.Module:
    """Build the network described by a :class:`~masktwins3d.config.ModelConfig`."""
    cls = model_class(cfg)
    adain = getattr(cls, "adain_default", False) if cfg.adain is None else cfg.adain
    norms = getattr(cls, "norms", None)
    if cfg.norm is not None and norms is not None and cfg.norm not in norms:
        raise UserError(f"model.norm={cfg.norm!r} is not available for {cfg.name}; use one of {list(norms)} or null")
    extra = {} if cfg.norm is None else {"norm": cfg.norm}
    return cls(in_channels=cfg.in_channels, out_channels=cfg.out_channels, widths=tuple(cfg.widths), adain=adain, **extra)
