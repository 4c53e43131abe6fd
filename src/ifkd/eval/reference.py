"""The ground truth as a field: what every metric gives a perfect occupancy field through our extraction.

OccNet's tables carry such a row (the voxelised ground truth). Scored by the same evaluator, on the same
grid and with the same samples as the methods, it is the floor of each column on that benchmark: IoU and
Chamfer-L1 show what the extraction grid costs a perfect field, and ECD shows how much of that column is
the grid's staircase rather than the prediction (on a coarse grid a blurred field can score below it).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from ifkd.config import Config
from ifkd.models.base import Batch, Method
from ifkd.reconstruct import Reconstructor

REFERENCE_VOXELS = 128
"""Resolution of the ground-truth grid the reference field reads (the finest the data stores)."""


class VoxelField(Method):
    """Occupancy of a shape's own (B, 1, R, R, R) ground-truth grid, trilinear between cell centres.

    The grid covers [-0.5, 0.5]^3 (axes x, y, z; cell centres as in :mod:`ifkd.models.base`), so the field's
    0.5 level lies on the cells' faces: the solid the voxels describe, not a smoothed one. Nothing is
    learnt; it is a :class:`Method` only so that the reconstructor and evaluator serve it like any other.
    """

    frame = "object"
    input_kind = "voxels"

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 1, R, R, R) occupancy -> itself (float)."""
        return inputs.float()

    def decode(self, code: torch.Tensor, points: torch.Tensor, distance=None) -> torch.Tensor:
        """Logits (B, N): +-10 for inside/outside at object-frame points (B, N, 3)."""
        # grid_sample reads (x, y, z) as (W, H, D); our grids index (x, y, z) as (D, H, W).
        grid = (2.0 * points.float()[..., [2, 1, 0]]).reshape(points.shape[0], -1, 1, 1, 3)
        occ = F.grid_sample(code, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        occ = occ.reshape(points.shape[0], -1)  # (B, N)
        return torch.where(occ >= 0.5, 10.0, -10.0)

    def training_losses(self, batch: Batch, kd_active: bool = False, teacher: Method | None = None):
        raise TypeError("the reference field is the ground truth: it has nothing to train")

    def predict(self, batch: Batch) -> torch.Tensor:
        return torch.sigmoid(self.decode(self.encode(batch["voxels"]), batch["points"]))


def reference_reconstructor(cfg: Config, device: str = "cpu") -> Reconstructor:
    """The ground truth's 128^3 grid as a field, extracted and scored with ``cfg``'s evaluation settings
    (a benchmark's: grid, coarse level, sample counts), so that its row sits beside the methods'."""
    cfg = replace(cfg, method="reference", data=replace(cfg.data, voxel_resolution=REFERENCE_VOXELS))
    return Reconstructor(VoxelField(), cfg, device)
