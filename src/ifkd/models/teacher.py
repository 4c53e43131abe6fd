"""The voxel teacher: IF-Net-style 3D CNN (Chibane et al. 2020) whose multi-scale point features z2
are the distillation target of the IFKD student; also the paper's "simple teacher" ablation.

Input voxels (B, 1, R, R, R), axes (x, y, z), cell centres on [-0.5, 0.5]^3 (object frame).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ifkd.config import TeacherConfig
from ifkd.models.base import Batch, Method
from ifkd.models.sampling import displacement_offsets, sample_volume

IFNET_DISPLACEMENT_DISTANCE = 0.0361
"""IF-Net's neighbourhood offset in object units: their 0.0722 in grid_sample's [-1, 1] coordinates
(ShapeNet128Vox), i.e. about 4.6 cells of a 128^3 grid."""
IFNET_DISPLACEMENT: float | None = None
"""Default offset for 'ifnet' teachers: None = off. Off by default because the 7 samples per point make
z2 7x wider (1687 dims in the paper preset) and the teacher's sampling 7x dearer, on every KD step;
pass ``displacement=IFNET_DISPLACEMENT_DISTANCE`` to :class:`VoxelTeacher` for IF-Net's neighbourhood."""

TEACHER_KINDS = ("ifnet", "simple")


def _stage(c_in: int, c_out: int, convs: int, batch_norm: bool) -> nn.Sequential:
    """``convs`` x (3x3x3 conv + ReLU), then BatchNorm as IF-Net places it (after the stage)."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv3d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.ReLU(inplace=True)]
    if batch_norm:
        layers.append(nn.BatchNorm3d(c_out))
    return nn.Sequential(*layers)


def teacher_feature_dim(cfg: TeacherConfig, displacement: float | None = IFNET_DISPLACEMENT) -> int:
    """Size D of z2 for a teacher config: (1 + sum(channels)) for 'ifnet' (x 7 with the neighbourhood),
    channels[-1] for 'simple'. The student sizes its KD head with it without building a teacher."""
    if cfg.kind == "simple":
        return int(cfg.channels[-1])
    offsets = 1 if displacement is None else 7
    return (1 + int(sum(cfg.channels))) * offsets


class VoxelTeacher(Method):
    """IF-Net (kind='ifnet') or simple 3D CNN (kind='simple') occupancy network on voxel grids.

    'ifnet': 4 stages of two 3x3x3 convs + ReLU + BatchNorm with max-pool 2 between them; z2 concatenates
    trilinear samples of the input grid and of every stage (5 scales), each at the point and its 6
    IF-Net neighbours (when ``displacement`` is set). 'simple': 4 single conv + ReLU layers with the
    same pooling, z2 = the last layer's features alone. Decoder (IF-Net's): z2 (+ the point's
    coordinates) -> 2h -> h -> h -> 1 with ReLU.
    """

    frame = "object"
    input_kind = "voxels"

    def __init__(self, cfg: TeacherConfig, displacement: float | None = IFNET_DISPLACEMENT) -> None:
        super().__init__()
        if cfg.kind not in TEACHER_KINDS:
            raise ValueError(f"teacher.kind {cfg.kind!r}: choose from {list(TEACHER_KINDS)}")
        if len(cfg.channels) != 4:
            raise ValueError(f"teacher.channels must list 4 stage widths, got {cfg.channels}")
        self.kind = cfg.kind
        simple = cfg.kind == "simple"
        widths = (1, *cfg.channels)
        self.stages = nn.ModuleList(
            _stage(widths[i], widths[i + 1], convs=1 if simple else 2, batch_norm=not simple)
            for i in range(4)
        )
        self.displacement = None if simple else displacement
        offsets = displacement_offsets(self.displacement) if self.displacement else torch.zeros(1, 3)
        self.register_buffer("offsets", offsets, persistent=False)  # (K, 3) object units
        self.feature_dim = teacher_feature_dim(cfg, self.displacement)
        h = cfg.decoder_hidden
        self.decoder = nn.Sequential(
            nn.Linear(self.feature_dim + 3, 2 * h),
            nn.ReLU(inplace=True),
            nn.Linear(2 * h, h),
            nn.ReLU(inplace=True),
            nn.Linear(h, h),
            nn.ReLU(inplace=True),
            nn.Linear(h, 1),
        )

    def encode(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        """Voxels (B, 1, R, R, R) -> feature volumes to sample: [grid, stage1..4] ('ifnet') or [stage4]
        ('simple'); stage k has resolution R / 2^(k-1). R must be divisible by 8."""
        if inputs.dim() != 5 or inputs.shape[1] != 1:
            raise ValueError(f"teacher expects voxels (B, 1, R, R, R), got {tuple(inputs.shape)}")
        if any(r % 8 for r in inputs.shape[2:]):
            # Three poolings must keep every stage's cells aligned with the grid's [-0.5, 0.5] extent.
            raise ValueError(f"teacher voxel resolution must divide by 8, got {tuple(inputs.shape[2:])}")
        volumes = [inputs]
        net = inputs
        for i, stage in enumerate(self.stages):
            if i > 0:
                net = F.max_pool3d(net, 2)
            net = stage(net)
            volumes.append(net)
        return volumes[-1:] if self.kind == "simple" else volumes

    def point_features(self, code: list[torch.Tensor], points: torch.Tensor) -> torch.Tensor:
        """z2 (B, N, feature_dim) at object-frame points (B, N, 3): per scale, K offsets x C channels."""
        B, N, _ = points.shape
        shifted = points.unsqueeze(1) + self.offsets.to(points.dtype)[None, :, None, :]  # (B, K, N, 3)
        feats = [sample_volume(vol, shifted).permute(0, 2, 1, 3).reshape(B, N, -1) for vol in code]
        return torch.cat(feats, dim=-1)

    def decode(self, code: list[torch.Tensor], points: torch.Tensor, distance: torch.Tensor | None = None):
        """Occupancy logits (B, N) at object-frame points (B, N, 3); ``distance`` is unused."""
        z2 = self.point_features(code, points)
        return self.decoder(torch.cat([z2, points.float()], dim=-1)).squeeze(-1)

    def training_losses(
        self, batch: Batch, kd_active: bool = False, teacher: Method | None = None
    ) -> dict[str, torch.Tensor]:
        """MSE between sigmoid(logit) and the GT occupancy at the batch's object-frame points."""
        logits = self.decode(self.encode(batch["voxels"]), batch["points"])
        recon = F.mse_loss(torch.sigmoid(logits.float()), batch["occ"].float())
        return {"loss": recon, "recon": recon}

    def predict(self, batch: Batch) -> torch.Tensor:
        """Occupancy probabilities (B, N) at ``batch['points']`` (object frame)."""
        return torch.sigmoid(self.decode(self.encode(batch["voxels"]), batch["points"]).float())
