"""The paper's baselines, predicting canonical (object-frame) shapes: an IM-NET-style global-latent
SVR network ('global') and a DISN-style network that estimates the camera to place local features ('camera').
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

CAM_LOSS_WEIGHT = 1.0
"""Weight of the camera loss in the 'camera' baseline's total."""
DETACH_ESTIMATED_CAMERA = True
"""Project with the estimated camera detached: the camera head learns from the camera loss alone, as
DISN trains its camera network apart; reconstruction cannot bend the pose to suit the features."""
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def rotation_6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """Zhou et al. 2019's continuous 6D rotation (B, 6) -> rotation matrices (B, 3, 3).

    Gram-Schmidt on the two 3-vectors; they become the first two *rows* (pytorch3d's convention).
    """
    a1, a2 = x[..., :3], x[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-2)


def place_in_camera(points: torch.Tensor, rotation: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
    """Object-frame points (B, N, 3) -> camera frame R p + (0, 0, d), with R (B, 3, 3), d (B,); fp32."""
    with full_precision(points):
        t = F.pad(distance.float().reshape(-1, 1), (2, 0)).unsqueeze(1)  # (B, 1, 3) = (0, 0, d)
        return points.float() @ rotation.float().transpose(1, 2) + t


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN with a projected shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """ResNet-18 layout (stem + 4 stages of 2 blocks, widths base x 1/2/4/8) -> global latent (B, latent_dim).

    base 64 gives ResNet-18's widths, as IM-NET's SVR encoder; the cpu preset shrinks ``base``.
    """

    def __init__(self, base: int, latent_dim: int, blocks_per_stage: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, base, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(base),
            nn.ReLU(inplace=True),
        ]
        c = base
        for i in range(4):
            width = base * 2**i
            for j in range(blocks_per_stage):
                layers.append(BasicBlock(c, width, stride=2 if j == 0 and i > 0 else 1))
                c = width
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(c, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).mean(dim=(2, 3)))


class GlobalSVR(Method):
    """IM-NET-style SVR: image -> one global latent; decoder(latent ⊕ p) at object-frame points.

    It projects nothing, so a reframed training image (``batch['framing']``) is a plain augmentation here.
    """

    frame = "object"
    input_kind = "image"

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(cfg.base_channels, cfg.latent_dim)
        self.decoder = PointDecoder(cfg.latent_dim + 3, cfg.decoder_hidden)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) -> latent (B, latent_dim)."""
        return self.encoder(inputs)

    def decode(self, code: torch.Tensor, points: torch.Tensor, distance: torch.Tensor | None = None):
        """Logits (B, N) at object-frame points (B, N, 3); ``distance`` is unused."""
        latent = code.float().unsqueeze(1).expand(-1, points.shape[1], -1)
        return self.decoder(torch.cat([latent, points.float()], dim=-1))

    def training_losses(
        self, batch: Batch, kd_active: bool = False, teacher: Method | None = None
    ) -> dict[str, torch.Tensor]:
        logits = self.decode(self.encode(batch["image"]), batch["points"])
        recon = F.mse_loss(torch.sigmoid(logits.float()), batch["occ"].float())
        return {"loss": recon, "recon": recon}

    def predict(self, batch: Batch) -> torch.Tensor:
        return torch.sigmoid(self.decode(self.encode(batch["image"]), batch["points"]).float())


class CameraCode(NamedTuple):
    """What :meth:`CameraSVR.encode` returns: features, global latent and the estimated camera."""

    features: torch.Tensor
    """(B, feature_channels, H, W) U-Net feature map"""
    global_code: torch.Tensor
    """(B, latent_dim)"""
    rotation: torch.Tensor
    """(B, 3, 3) estimated R_i (object -> view frame)"""
    distance: torch.Tensor
    """(B,) estimated camera distance; t_i = (0, 0, distance)"""


class CameraSVR(Method):
    """DISN-style: a camera head estimates E_i = [R(6D) | (0, 0, d)] from the image; object-frame
    points are projected with it into the U-Net feature map; decoder(local ⊕ global ⊕ p).

    The camera head and the global latent share the U-Net encoder (its pooled bottleneck); DISN uses a
    separate camera CNN and two decoders summed -- one shared encoder and one decoder keep it CPU-sized.

    Framing jitter: the camera head learns the render's true E (the camera loss ignores the reframing,
    which an [R | (0, 0, d)] camera cannot express), and the points it projects are moved by the
    training image's known framing, s uv + (dx, dy), so the local features come from the right pixels.
    """

    frame = "object"
    input_kind = "image"

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.unet = UNet(3, cfg.base_channels, cfg.depth, cfg.feature_channels, cfg.skip, cfg.norm)
        c = self.unet.bottleneck_channels
        self.global_head = nn.Linear(c, cfg.latent_dim)
        self.camera_head = nn.Sequential(nn.Linear(c, cfg.decoder_hidden), nn.ReLU(inplace=True))
        self.camera_out = nn.Linear(cfg.decoder_hidden, 7)  # 6D rotation + distance offset
        self.decoder = PointDecoder(cfg.feature_channels + cfg.latent_dim + 3, cfg.decoder_hidden)
        self.register_buffer("identity_6d", torch.tensor(IDENTITY_6D), persistent=False)
        self.register_buffer(
            "M_c", torch.as_tensor(fixed_camera_matrix(), dtype=torch.float32), persistent=False
        )

    def encode(self, inputs: torch.Tensor) -> CameraCode:
        """Images (B, 3, H, W) -> :class:`CameraCode` (camera outputs start near identity, nominal d)."""
        fmap, bottleneck = self.unet(inputs)
        pooled = bottleneck.mean(dim=(2, 3))
        raw = self.camera_out(self.camera_head(pooled)).float()
        rotation = rotation_6d_to_matrix(raw[:, :6] + self.identity_6d)
        distance = NOMINAL_DISTANCE + raw[:, 6]
        return CameraCode(fmap, self.global_head(pooled), rotation, distance)

    def decode(
        self,
        code: CameraCode,
        points: torch.Tensor,
        distance: torch.Tensor | None = None,
        framing: torch.Tensor | None = None,
    ):
        """Logits (B, N) at object-frame points (B, N, 3), projected with the *estimated* camera, then
        moved by the training image's known ``framing`` (B, 3) (None at inference); ``distance`` is
        unused (the estimated one is in the code)."""
        R, d = code.rotation, code.distance
        if DETACH_ESTIMATED_CAMERA:
            R, d = R.detach(), d.detach()
        p = points.float()
        local = pixel_aligned_features(code.features, place_in_camera(p, R, d), self.M_c, framing)
        latent = code.global_code.float().unsqueeze(1).expand(-1, points.shape[1], -1)
        return self.decoder(torch.cat([local, latent, p], dim=-1))

    def training_losses(
        self, batch: Batch, kd_active: bool = False, teacher: Method | None = None
    ) -> dict[str, torch.Tensor]:
        """recon (MSE of sigmoid vs occ) + CAM_LOSS_WEIGHT * cam, where cam = mean squared distance
        between the batch points moved by the estimated and by the true E (DISN's camera loss)."""
        code = self.encode(batch["image"])
        logits = self.decode(code, batch["points"], framing=batch.get("framing"))
        recon = F.mse_loss(torch.sigmoid(logits.float()), batch["occ"].float())
        p, E = batch["points"].float(), batch["E"].float()
        with full_precision(p):
            p_true = p @ E[:, :3, :3].transpose(1, 2) + E[:, :3, 3].unsqueeze(1)
            p_est = place_in_camera(p, code.rotation, code.distance)
            cam = (p_est - p_true).square().sum(-1).mean()
        return {"loss": recon + CAM_LOSS_WEIGHT * cam, "recon": recon, "cam": cam}

    def predict(self, batch: Batch) -> torch.Tensor:
        code = self.encode(batch["image"])
        return torch.sigmoid(self.decode(code, batch["points"], framing=batch.get("framing")).float())
