"""The student's image encoder: the original U-Net (Ronneberger et al. 2015) giving a pixel-aligned
feature map at input resolution, with the skip-connection variants of the paper's Table 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ifkd.models.sampling import full_precision

SKIP_VARIANTS = ("skip", "cnn5", "stn")


NORMS = ("batch", "group", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The normalisation after each conv: BatchNorm, GroupNorm (about 4 channels per group, the same in
    training and at inference: no running statistics) or none (the 2015 U-Net had none)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(max(1, min(32, channels // 4)), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"student.norm {kind!r}: choose from {list(NORMS)}")


def double_conv(c_in: int, c_out: int, norm: str = "batch") -> nn.Sequential:
    """U-Net's block: (3x3 conv - norm - ReLU) x 2 (convs are bias-free when a norm supplies the shift)."""
    bias = norm == "none"
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias),
        norm_layer(norm, c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias),
        norm_layer(norm, c_out),
        nn.ReLU(inplace=True),
    )


class SpatialTransformer(nn.Module):
    """Jaderberg et al.'s STN on a feature map: a small localisation net predicts an affine 2x3 that
    resamples the map; the last layer starts at zero weight and identity bias, so it starts as identity."""

    def __init__(self, channels: int, hidden: int = 32) -> None:
        super().__init__()
        self.localisation = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
        )
        self.theta = nn.Linear(hidden, 6)
        nn.init.zeros_(self.theta.weight)
        with torch.no_grad():
            self.theta.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W) resampled by the predicted affine map (computed in float32)."""
        theta = self.theta(self.localisation(x)).float().reshape(-1, 2, 3)
        with full_precision(x):
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            # align_corners=False on both calls: the identity theta samples exactly at pixel centres.
            out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out.to(x.dtype)


def skip_path(variant: str, channels: int, norm: str = "batch") -> nn.Module:
    """The module a skip connection passes through: identity, a 5-layer CNN, or an STN."""
    if variant == "skip":
        return nn.Identity()
    if variant == "cnn5":
        layers: list[nn.Module] = []
        for _ in range(5):
            conv = nn.Conv2d(channels, channels, 3, padding=1, bias=norm == "none")
            layers += [conv, norm_layer(norm, channels)]
            layers.append(nn.ReLU(inplace=True))
        return nn.Sequential(*layers)
    if variant == "stn":
        return SpatialTransformer(channels)
    raise ValueError(f"student.skip {variant!r}: choose from {list(SKIP_VARIANTS)}")


class UNet(nn.Module):
    """Image (B, in_channels, H, W) -> (feature map (B, feature_channels, H, W), bottleneck (B, C_b, h, w)).

    ``depth`` max-pool levels, widths base * 2^level (base 64, depth 4: 64 ... 1024 as in the paper);
    up path: 2x2 transposed conv, concatenation with the (variant) skip, double conv; 1x1 conv head.
    Sizes not divisible by 2^depth are replicate-padded at the bottom/right and the output cropped,
    so feature pixel (i, j) stays aligned with image pixel (i, j).
    """

    def __init__(
        self,
        in_channels: int = 3,
        base: int = 64,
        depth: int = 4,
        feature_channels: int = 64,
        skip: str = "skip",
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"student.depth must be >= 1, got {depth}")
        widths = [base * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.inc = double_conv(in_channels, widths[0], norm)
        self.downs = nn.ModuleList(double_conv(widths[i], widths[i + 1], norm) for i in range(depth))
        self.skips = nn.ModuleList(skip_path(skip, widths[i], norm) for i in range(depth))
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth)
        )
        self.up_convs = nn.ModuleList(double_conv(2 * widths[i], widths[i], norm) for i in range(depth))
        self.head = nn.Conv2d(widths[0], feature_channels, 1)
        self.feature_channels = feature_channels
        self.bottleneck_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        H, W = x.shape[-2:]
        m = 2**self.depth
        pad_h, pad_w = (-H) % m, (-W) % m
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        net = self.inc(x)
        skips = []
        for down in self.downs:
            skips.append(net)
            net = down(F.max_pool2d(net, 2))
        bottleneck = net
        for level in reversed(range(self.depth)):
            up = self.ups[level](net)
            net = self.up_convs[level](torch.cat([self.skips[level](skips[level]), up], dim=1))
        return self.head(net)[..., :H, :W], bottleneck
