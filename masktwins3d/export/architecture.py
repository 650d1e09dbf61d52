"""A self-contained architecture file for an exported model: the network's source plus its head.

A bioimage.io package must run without masktwins3d installed, so the architecture is one Python
file that needs torch only: the AdaIN helper and the network module of the checkpoint
(:mod:`masktwins3d.models.unet2d` or :mod:`~masktwins3d.models.resunet3d`) with the package's
relative imports and registry decorator taken out, then :data:`WRAPPER`, a module
``MaskTwinsNet`` that builds the network and applies the head's activation (softmax over the
classes, or a sigmoid per channel), so the exported model returns probabilities.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path

import torch.nn as nn

from ..models import adain as adain_module
from ..models.registry import MODELS

CALLABLE = "MaskTwinsNet"
"""Name of the module class in the architecture file."""

WRAPPER = '''

NETWORKS = {NETWORKS}


class MaskTwinsNet(nn.Module):
    """The trained network followed by its head's activation: probabilities out.

    Args:
        model: network name ({NAMES}).
        in_channels: image channels (1 for EM).
        out_channels: classes (softmax head) or channels (sigmoid head).
        widths: the five stage widths.
        norm: normalisation layers (None: the network's default).
        head: "softmax" (over the channel axis) or "sigmoid" (per channel).
    """

    def __init__(self, model, in_channels, out_channels, widths, norm=None, head="softmax"):
        super().__init__()
        extra = {{}} if norm is None else {{"norm": norm}}
        self.net = NETWORKS[model](in_channels=in_channels, out_channels=out_channels, widths=tuple(widths), adain=False, **extra)
        self.head = head

    def forward(self, x):
        logits = self.net(x)
        return torch.softmax(logits, dim=1) if self.head == "softmax" else torch.sigmoid(logits)
'''

_DROP = re.compile(r"^(from \.adain import|from \.registry import|from __future__|@register\()")
_PACKAGE_IMPORT = re.compile(r"^\s*(from \.|import masktwins3d|from masktwins3d)")


def architecture_source(model_name: str) -> str:
    """The text of the architecture file for registry model ``model_name`` (needs torch only)."""
    cls = MODELS[model_name]
    network = sys.modules[cls.__module__]
    parts = ['"""masktwins3d network, exported for bioimage.io (needs torch only)."""\n',
             "from __future__ import annotations\n"]
    for module in (adain_module, network):
        lines = [line for line in inspect.getsource(module).splitlines() if not _DROP.match(line)]
        other = [line.strip() for line in lines if _PACKAGE_IMPORT.match(line)]
        if other:  # the file must run without masktwins3d: inline what it needs here first
            raise RuntimeError(f"{module.__name__} imports {other[0]!r}; the exported architecture file would not run without masktwins3d")
        body = "\n".join(lines)
        body = re.sub(r'^""".*?"""\n', "", body, count=1, flags=re.S)  # the module docstring
        parts.append(f"\n# ---- from {module.__name__} ----\n{body.strip()}\n")
    parts.append("\nadain_fn = adain\n")
    parts.append(WRAPPER.format(NETWORKS="{" + f"{model_name!r}: {cls.__name__}" + "}", NAMES=model_name))
    return "\n".join(parts)


def load_architecture(path: Path) -> type[nn.Module]:
    """Import the architecture file at ``path`` on its own (as a consumer would) and return its module class."""
    spec = importlib.util.spec_from_file_location(f"_masktwins3d_export_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, CALLABLE)
