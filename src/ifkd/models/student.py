"""The IFKD student: U-Net pixel-aligned features sampled at points projected by the fixed camera M_c
(no camera estimation), decoded to occupancy; trained with reconstruction + L1 distillation to z2.

Points live in the view-aligned, object-centred frame (``R_i p``); the camera distance puts them in
front of M_c (the true one in training, :data:`NOMINAL_DISTANCE` when unknown at inference).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ifkd.config import StudentConfig
from ifkd.geometry.camera import fixed_camera_matrix
from ifkd.models.base import Batch, Method
from ifkd.models.decoder import PointDecoder
from ifkd.models.sampling import NOMINAL_DISTANCE, full_precision, pixel_aligned_features
from ifkd.models.unet import UNet

KD_FEATURES = ("pixel", "point")
"""What the KD head reads: z1 (``pixel``) or the decoder's first hidden layer (``point``)."""
POSITION_DIMS = 3
"""The decoder also sees the point's view-centred coordinates (x, y, z): unlike the depth z + d
they do not depend on the unknown camera distance, and they tell the decoder where along the ray it is."""


class StudentCode(NamedTuple):
    """What :meth:`IFKDStudent.encode` returns for a batch of images."""

    features: torch.Tensor
    """(B, feature_channels, H, W) U-Net feature map"""
    global_code: torch.Tensor | None
    """(B, latent_dim) pooled bottleneck code (the 'ifkd-global' variant), else None"""


def view_centred_points(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Object-frame ``batch['points']`` (B, N, 3) -> (R_i p (B, N, 3), true camera distance (B,))."""
    E = batch["E"].float()
    with full_precision(E):
        return batch["points"].float() @ E[:, :3, :3].transpose(1, 2), E[:, 2, 3]


def distance_tensor(distance: torch.Tensor | float | None, batch: int, ref: torch.Tensor) -> torch.Tensor:
    """Camera distance as (B, 1): None -> :data:`NOMINAL_DISTANCE`; a float or (B,) tensor broadcasts."""
    if distance is None:
        distance = NOMINAL_DISTANCE
    d = torch.as_tensor(distance, dtype=torch.float32, device=ref.device).reshape(-1, 1)
    return d.expand(batch, 1)


class IFKDStudent(Method):
    """U-Net -> feature map; z1 = bilinear sample at p' = M_c (R_i p + (0, 0, d)); decoder(z1 ⊕ R_i p [⊕ g]).

    A training image reframed by the loader's framing jitter (``batch['framing']`` = (s, dx, dy)) is
    sampled at s p' + (dx, dy) instead (:func:`~.sampling.apply_framing`), so the feature still comes from the
    pixel the point projects to; at inference nothing is reframed.

    ``teacher_dim`` (the teacher's z2 size) adds the KD projection head (z1, or the decoder's first
    hidden layer with ``kd_feature='point'``) -> z2 space; without it the
    student trains on reconstruction alone (the 'ifkd-nokd' ablation). ``kd_weight`` is lambda.
    """

    frame = "view"
    input_kind = "image"

    def __init__(self, cfg: StudentConfig, teacher_dim: int | None = None, kd_weight: float = 1.0) -> None:
        super().__init__()
        self.kd_weight = kd_weight
        self.unet = UNet(3, cfg.base_channels, cfg.depth, cfg.feature_channels, cfg.skip, cfg.norm)
        self.global_head = (
            nn.Linear(self.unet.bottleneck_channels, cfg.latent_dim) if cfg.global_code else None
        )
        extra = cfg.latent_dim if cfg.global_code else 0
        self.decoder = PointDecoder(cfg.feature_channels + POSITION_DIMS + extra, cfg.decoder_hidden)
        self.uses_teacher = teacher_dim is not None
        # A linear regressor (FitNets' choice): z1 must hold the teacher's features linearly, and it stays
        # cheap although z2 can be hundreds of channels wide at every one of B x N points.
        if cfg.kd_feature not in KD_FEATURES:
            raise ValueError(f"student.kd_feature {cfg.kd_feature!r}: choose from {list(KD_FEATURES)}")
        self.kd_feature = cfg.kd_feature
        kd_in = cfg.feature_channels if cfg.kd_feature == "pixel" else cfg.decoder_hidden
        self.kd_head = nn.Linear(kd_in, teacher_dim) if teacher_dim is not None else None
        self.register_buffer(
            "M_c", torch.as_tensor(fixed_camera_matrix(), dtype=torch.float32), persistent=False
        )

    def encode(self, inputs: torch.Tensor) -> StudentCode:
        """Images (B, 3, H, W) -> :class:`StudentCode`."""
        fmap, bottleneck = self.unet(inputs)
        g = None if self.global_head is None else self.global_head(bottleneck.mean(dim=(2, 3)))
        return StudentCode(fmap, g)

    def point_features(
        self,
        code: StudentCode,
        points: torch.Tensor,
        distance: torch.Tensor | float | None = None,
        framing: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """z1 (B, N, feature_channels) at view-centred points (B, N, 3) placed at ``distance`` (B,), in
        an image reframed by ``framing`` (B, 3) (None: not reframed; see :func:`~.sampling.apply_framing`)."""
        d = distance_tensor(distance, points.shape[0], points)
        p_cam = points.float() + F.pad(d, (2, 0)).unsqueeze(1)  # + (0, 0, d)
        return pixel_aligned_features(code.features, p_cam, self.M_c, framing)

    def _decoder_input(self, code: StudentCode, points: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        """z1 (B, N, C) ⊕ view-centred xyz (B, N, 3) [⊕ global code] -> (B, N, decoder in_dim)."""
        parts = [z1, points.float()]
        if code.global_code is not None:
            parts.append(code.global_code.float().unsqueeze(1).expand(-1, points.shape[1], -1))
        return torch.cat(parts, dim=-1)

    def _logits(self, code: StudentCode, points: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        return self.decoder(self._decoder_input(code, points, z1))

    def decode(
        self,
        code: StudentCode,
        points: torch.Tensor,
        distance: torch.Tensor | float | None = None,
        framing: torch.Tensor | None = None,
    ):
        """Occupancy logits (B, N) at view-centred points (B, N, 3); distance (B,) or None (nominal);
        ``framing`` (B, 3) of a reframed training image, None at inference."""
        return self._logits(code, points, self.point_features(code, points, distance, framing))

    def training_losses(
        self, batch: Batch, kd_active: bool = False, teacher: Method | None = None
    ) -> dict[str, torch.Tensor]:
        """recon = MSE(sigmoid(logit), occ); with ``kd_active``: kd = L1(kd_head(f), z2) where f is z1
        or the decoder's first hidden layer (``student.kd_feature``) and z2 comes from the frozen teacher
        (a VoxelTeacher in eval mode) at the same object-frame points; loss = recon + kd_weight * kd."""
        points, distance = view_centred_points(batch)
        code = self.encode(batch["image"])
        z1 = self.point_features(code, points, distance, batch.get("framing"))
        logits, hidden = self.decoder.forward_with_hidden(self._decoder_input(code, points, z1))
        recon = F.mse_loss(torch.sigmoid(logits.float()), batch["occ"].float())
        out = {"recon": recon}
        if not kd_active:
            out["loss"] = recon
            return out
        if teacher is None or self.kd_head is None:
            raise ValueError("kd_active needs a teacher and a student built with teacher_dim (a KD method)")
        if teacher.training:
            # BatchNorm statistics of the teacher would drift on student batches.
            raise ValueError("the teacher must be frozen in eval mode for KD: call teacher.eval()")
        with torch.no_grad():
            z2 = teacher.point_features(teacher.encode(batch["voxels"]), batch["points"]).float()
        kd = F.l1_loss(self.kd_head(z1 if self.kd_feature == "pixel" else hidden).float(), z2)
        out["kd"] = kd
        out["loss"] = recon + self.kd_weight * kd
        return out

    def predict(self, batch: Batch) -> torch.Tensor:
        """Occupancy probabilities (B, N) at object-frame ``batch['points']`` using the known E."""
        points, distance = view_centred_points(batch)
        code = self.encode(batch["image"])
        return torch.sigmoid(self.decode(code, points, distance, batch.get("framing")).float())
