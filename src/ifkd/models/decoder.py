"""The occupancy decoders that turn per-point features into logits (student, ablations, baselines)."""

from __future__ import annotations

import torch
from torch import nn

LEAKY_SLOPE = 0.2
"""Negative slope of the LeakyReLU between the decoder's layers (IM-NET's value)."""


class PointDecoder(nn.Module):
    """The paper's 5-layer fully connected decoder with LeakyReLU: (B, N, in_dim) -> logits (B, N).

    Layers: in_dim -> hidden -> hidden -> hidden -> hidden -> 1 (five Linear layers), batched over
    every leading dimension. Inputs are whatever the caller concatenates (feature, point coordinates,
    global code); the decoder itself is frame-agnostic.
    """

    def __init__(self, in_dim: int, hidden: int, layers: int = 5) -> None:
        super().__init__()
        if layers < 2:
            raise ValueError(f"decoder needs at least 2 layers, got {layers}")
        dims = [in_dim] + [hidden] * (layers - 1)
        blocks: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            blocks += [nn.Linear(a, b), nn.LeakyReLU(LEAKY_SLOPE, inplace=True)]
        blocks.append(nn.Linear(hidden, 1))
        self.net = nn.Sequential(*blocks)
        self.in_dim = in_dim
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_hidden(x)[0]

    def forward_with_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, N), first hidden layer (B, N, hidden)): the hidden layer is a per-point feature
        that, unlike a pixel-aligned one, can vary along a camera ray (the KD target z2 does)."""
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"decoder expects {self.in_dim} input features, got {x.shape[-1]}")
        hidden = self.net[1](self.net[0](x))
        return self.net[2:](hidden).squeeze(-1), hidden
