"""The five-stage 2D U-Net used for mitochondria (DA-ISC)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .adain import adain as adain_fn
from .registry import register


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by InstanceNorm (affine) and ReLU.

    The ReLUs are not in place: InstanceNorm returns a view of its batch-norm result, and an
    in-place op on a view makes autograd copy the whole activation back in the backward pass
    (6-7 % of a CPU training step, fp32 and bf16 alike); the saved tensors are the same.
    """
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.InstanceNorm2d(cout, affine=True),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.InstanceNorm2d(cout, affine=True),
        nn.ReLU(),
    )


@register("unet2d")
class UNet2D(nn.Module):
    """Five-stage 2D U-Net: double conv per stage, max-pool down, transposed conv up, concat skips.

    Input height and width must be multiples of 16 (four 2x down-samplings); the sliding-window
    predictor uses such patch sizes.

    Args:
        in_channels: image channels (1 for EM).
        out_channels: classes of the softmax head (2: background, mitochondria).
        widths: five stage widths, default the paper's (64, 128, 256, 512, 512).
        adain: restyle source features after the first two stages with target statistics during
            training (``forward(x, style=x_target)``); never at inference.
        norm: ``instance`` only (DA-ISC's U-Net).
    """

    spatial_dims = 2
    """Spatial axes of its input (read from the class by :func:`~.registry.model_dims`)."""

    adain_default = False  # optional for mitochondria (METHOD.md)
    norms = ("instance",)

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        widths: tuple[int, ...] = (64, 128, 256, 512, 512),
        adain: bool = False,
        norm: str = "instance",
    ):
        super().__init__()
        if norm != "instance":
            raise ValueError(f"unet2d uses instance norm, got {norm!r}")
        if len(widths) != 5:
            raise ValueError(f"unet2d needs 5 widths, got {widths}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.spatial_dims = 2
        self.use_adain = adain
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(double_conv(cin, w))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(3, -1, -1):
            self.up.append(nn.ConvTranspose2d(cin, widths[i], 2, stride=2))
            self.dec.append(double_conv(2 * widths[i], widths[i]))
            cin = widths[i]
        self.head = nn.Conv2d(cin, out_channels, 1)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        restyle = self.use_adain and self.training and style is not None
        skips = []
        for i, stage in enumerate(self.down):
            if i > 0:
                x = self.pool(x)
                if restyle:
                    style = self.pool(style)
            x = stage(x)
            if restyle and i < 2:
                with torch.no_grad():
                    style = stage(style)
                x = adain_fn(x, style)
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1])):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)
