"""The isotropic 3D residual U-Net used for synapses (Lee et al. 2017 "superhuman", as in AdaSyn)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .adain import adain as adain_fn
from .registry import register

NORMS = ("batch", "group", "instance")


def norm3d(kind: str, channels: int) -> nn.Module:
    """``batch`` (BatchNorm3d), ``group`` (GroupNorm, up to 8 groups that divide ``channels``) or ``instance``."""
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "group":
        groups = max(g for g in range(1, 9) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    raise ValueError(f"norm {kind!r} is not one of {NORMS}")


class MaxPool3d(nn.MaxPool3d):
    """``nn.MaxPool3d`` that keeps a bf16 input in bf16 under autocast.

    CPU autocast runs ``max_pool3d`` in fp32: a bf16 activation would be cast up, pooled and cast
    back down by the next convolution, two copies of the activation for nothing, since a maximum
    is exact in any dtype (the result is the same either way).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x)


def conv_norm_elu(cin: int, cout: int, kernel: int, norm: str) -> nn.Sequential:
    """``kernel``-cubed convolution (same padding), normalisation, ELU."""
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, padding=kernel // 2, bias=False), norm3d(norm, cout), nn.ELU(inplace=True))


class ResBlock3d(nn.Module):
    """Two 3x3x3 conv + norm layers with an identity shortcut: ``ELU(x + norm(conv(ELU(norm(conv(x))))))``."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_elu(channels, channels, 3, norm),
            nn.Conv3d(channels, channels, 3, padding=1, bias=False),
            norm3d(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x + self.body(x))


@register("resunet3d")
class ResUNet3D(nn.Module):
    """Residual 3D U-Net with a 5x5x5 embedding, additive skips and two separate sigmoid heads.

    Encoder: 5x5x5 embedding conv, then at each of the five levels a residual block (levels 1-4
    first max-pool by 2 and widen with a 3x3x3 conv). Decoder: trilinear upsampling by 2 and a
    1x1x1 conv to the level's width (applied before the upsampling, which it commutes with),
    norm and ELU, the encoder feature added (not concatenated), a residual
    block. Output: a 3x3x3 conv, then one 1x1x1 head per channel (pre, post), concatenated into
    logits ``(B, out_channels, Z, Y, X)``. Input sizes must be multiples of 16 per axis.

    Args:
        in_channels: image channels (1 for EM).
        out_channels: sigmoid output channels (2: pre, post), each with its own head.
        widths: five level widths, default the paper's (28, 36, 48, 64, 80).
        adain: during training, restyle source features with target statistics after the
            embedding and after the first residual block (``forward(x, style=x_target)``);
            never at inference (AdaSyn).
        norm: ``group`` (default: independent of batch size, identical in train and eval),
            ``batch`` or ``instance``.
    """

    spatial_dims = 3
    """Spatial axes of its input (read from the class by :func:`~.registry.model_dims`)."""

    adain_default = True  # AdaIN is part of the synapse recipe (METHOD.md)
    norms = NORMS

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        widths: tuple[int, ...] = (28, 36, 48, 64, 80),
        adain: bool = True,
        norm: str | None = None,
    ):
        super().__init__()
        if len(widths) != 5:
            raise ValueError(f"resunet3d needs 5 widths, got {widths}")
        norm = norm or "group"
        self.in_channels, self.out_channels, self.spatial_dims = in_channels, out_channels, 3
        self.use_adain = bool(adain)
        self.embed = conv_norm_elu(in_channels, widths[0], 5, norm)
        self.down = nn.ModuleList()
        self.enc = nn.ModuleList()
        cin = widths[0]
        for i, w in enumerate(widths):
            self.down.append(nn.Identity() if i == 0 else nn.Sequential(MaxPool3d(2), conv_norm_elu(cin, w, 3, norm)))
            self.enc.append(ResBlock3d(w, norm))
            cin = w
        self.up = nn.ModuleList()
        self.up_norm = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(3, -1, -1):
            self.up.append(nn.Conv3d(cin, widths[i], 1, bias=False))
            self.up_norm.append(nn.Sequential(norm3d(norm, widths[i]), nn.ELU(inplace=True)))
            self.dec.append(ResBlock3d(widths[i], norm))
            cin = widths[i]
        self.out = conv_norm_elu(cin, cin, 3, norm)
        self.heads = nn.ModuleList(nn.Conv3d(cin, 1, 1) for _ in range(out_channels))

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        restyle = self.use_adain and self.training and style is not None
        x = self.embed(x)
        if restyle:
            with torch.no_grad():
                style = self.embed(style)
            x = adain_fn(x, style)
        skips = []
        for i, (down, enc) in enumerate(zip(self.down, self.enc)):
            x = enc(down(x))
            if restyle and i == 0:
                with torch.no_grad():
                    style = enc(style)
                x = adain_fn(x, style)
            skips.append(x)
        for up, up_norm, dec, skip in zip(self.up, self.up_norm, self.dec, reversed(skips[:-1])):
            # the 1x1x1 conv commutes with trilinear upsampling, so it runs at the coarse level (8x cheaper)
            x = F.interpolate(up(x), scale_factor=2, mode="trilinear", align_corners=False)
            x = dec(up_norm(x) + skip)
        x = self.out(x)
        return torch.cat([head(x) for head in self.heads], dim=1)
