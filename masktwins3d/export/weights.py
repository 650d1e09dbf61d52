"""The two weight files of an exported model, checked against each other before they are kept.

:func:`write_weights` wraps the network with its head's activation (the exported model returns
probabilities), traces it to TorchScript, writes the state dict and the self-contained
architecture file (:mod:`.architecture`), rebuilds the model from that file alone, and requires
the eager network, the TorchScript module and the rebuilt model to agree on the test input.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .architecture import architecture_source, load_architecture

ARCHITECTURE_FILE = "masktwins3d_net.py"
STATE_DICT_FILE = "weights.pt"
TORCHSCRIPT_FILE = "weights_torchscript.pt"

AGREE = {"rtol": 1e-4, "atol": 1e-5}
"""How closely the TorchScript module and the rebuilt model must reproduce the network."""


@dataclass(frozen=True)
class Weights:
    """What :func:`write_weights` wrote.

    Args:
        expected: the network's output for the test input (float32, batch and channel first).
        kwargs: keyword arguments of the architecture file's module class.
    """

    expected: np.ndarray
    kwargs: dict


class WithHead(torch.nn.Module):
    """``net`` followed by softmax over the channels (``head="softmax"``) or a sigmoid per channel.

    Args:
        net: the trained network (returns logits).
        head: "softmax" or "sigmoid".
    """

    def __init__(self, net: torch.nn.Module, head: str):
        super().__init__()
        self.net = net
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        return torch.softmax(logits, dim=1) if self.head == "softmax" else torch.sigmoid(logits)


def write_weights(folder: Path, model: torch.nn.Module, model_config: dict, x: np.ndarray) -> Weights:
    """Write :data:`STATE_DICT_FILE`, :data:`TORCHSCRIPT_FILE` and :data:`ARCHITECTURE_FILE` into ``folder``.

    Args:
        folder: where the files go.
        model: the network in eval mode.
        model_config: the checkpoint's ``model_config`` (name, in/out channels, widths, norm, head).
        x: the preprocessed test input (float32, batch and channel first).

    Raises:
        RuntimeError: the TorchScript module or the rebuilt model disagree with the network.
    """
    head = model_config.get("head", "softmax")
    wrapped = WithHead(model, head).eval()
    inp = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch.no_grad(), warnings.catch_warnings():
        # the trace keeps the norm layers' shape checks as constants; every size the package allows passes them
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated; bioimage.io consumers still load TorchScript
        expected = wrapped(inp).numpy().astype(np.float32)
        scripted = torch.jit.trace(wrapped, inp, check_trace=False)
    arch = folder / ARCHITECTURE_FILE
    arch.write_text(architecture_source(model_config["name"]), encoding="utf-8")
    kwargs = {
        "model": model_config["name"],
        "in_channels": int(model_config["in_channels"]),
        "out_channels": int(model_config["out_channels"]),
        "widths": [int(w) for w in model_config["widths"]],
        "norm": model_config.get("norm"),
        "head": head,
    }
    rebuilt = load_architecture(arch)(**kwargs).eval()
    rebuilt.load_state_dict(wrapped.state_dict())
    with torch.no_grad():
        for what, net in (("the TorchScript weights", scripted), ("the architecture file", rebuilt)):
            got = net(inp).numpy()
            if not np.allclose(got, expected, **AGREE):
                raise RuntimeError(f"export: {what} give outputs up to {np.abs(got - expected).max():.3g} away from the network's")
    torch.save(wrapped.state_dict(), folder / STATE_DICT_FILE)
    scripted.save(str(folder / TORCHSCRIPT_FILE))
    return Weights(expected, kwargs)
