"""Networks behind a small registry: ``build_model(cfg)`` picks one by name.

Adding a model is one file: define the ``nn.Module`` and decorate it with ``@register("name")``.
"""

from .registry import MODELS, build_model, model_dims, register
from . import resunet3d, unet2d  # noqa: F401  (register "resunet3d", "unet2d")

__all__ = ["MODELS", "build_model", "model_dims", "register"]
