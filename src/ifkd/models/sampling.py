"""Feature sampling at query points: trilinear from voxel feature volumes (teacher, z2) and bilinear
from image feature maps at points projected by M_c (students and the camera baseline, z1). The one place
that knows grid_sample's axes.

Both helpers compute in float32 whatever the autocast dtype: coordinates in bf16 would be off by
about a pixel at 128 px, and grid_sample promotes mixed inputs anyway.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from ifkd.geometry.camera import CAM_MAX_DIST, NOMINAL_DISTANCE_RATIO, project

OBJECT_HALF_EXTENT = 0.5
"""Voxel grids cover [-0.5, 0.5]^3 of the object frame (cell centres at -0.5 + (i + 0.5) / R)."""


def full_precision(ref: torch.Tensor) -> contextlib.AbstractContextManager:
    """Turn autocast off around coordinate maths (rotations, projections): under bf16 autocast a matmul
    would round coordinates to 3 significant digits, about a quarter pixel at 128 px."""
    return torch.autocast(device_type=ref.device.type, enabled=False)


def object_to_volume_grid(points: torch.Tensor) -> torch.Tensor:
    """Object-frame points (..., 3) as (x, y, z) -> grid_sample coordinates (..., 3) in [-1, 1].

    Volumes are stored (B, C, X, Y, Z), i.e. grid_sample's (D, H, W); its last-dim coordinates index
    (W, H, D), hence the reversal to (z, y, x). With ``align_corners=False`` -1 is the outer face of
    the first cell, so a cell centre maps exactly onto its voxel.
    """
    return points.flip(-1) / OBJECT_HALF_EXTENT


def sample_volume(volume: torch.Tensor, points: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Trilinear features of ``volume`` (B, C, X, Y, Z) at object-frame ``points`` (B, N, 3) -> (B, N, C).

    Also accepts points (B, K, N, 3) (several offsets per point) -> (B, K, N, C).
    ``padding_mode='zeros'`` (IF-Net's default) makes features fade to zero outside the grid.
    """
    squeeze = points.dim() == 3
    pts = points.unsqueeze(1) if squeeze else points  # (B, K, N, 3)
    grid = object_to_volume_grid(pts.float()).unsqueeze(1)  # (B, 1, K, N, 3)
    out = F.grid_sample(
        volume.float(), grid, mode="bilinear", padding_mode=padding_mode, align_corners=False
    )  # (B, C, 1, K, N)
    out = out.squeeze(2).permute(0, 2, 3, 1)  # (B, K, N, C)
    return out.squeeze(1) if squeeze else out


def sample_image(fmap: torch.Tensor, uv: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Bilinear features of ``fmap`` (B, C, H, W) at normalised image points ``uv`` (B, N, 2) -> (B, N, C).

    ``uv`` follows :func:`ifkd.geometry.camera.project`: (-1, -1) is the top-left corner of the
    top-left pixel (``align_corners=False``), u runs left->right, v top->bottom.
    ``padding_mode='border'``: points projecting outside the image get the border (background)
    features, which describe what surrounds the object better than zeros would.
    """
    grid = uv.float().unsqueeze(1)  # (B, 1, N, 2)
    out = F.grid_sample(fmap.float(), grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    return out.squeeze(2).transpose(1, 2)  # (B, N, C)


def displacement_offsets(distance: float, device: torch.device | None = None) -> torch.Tensor:
    """IF-Net's neighbourhood: the point itself and +-distance along each axis -> (7, 3), object units."""
    offsets = torch.zeros(7, 3, device=device)
    for axis in range(3):
        offsets[1 + 2 * axis, axis] = distance
        offsets[2 + 2 * axis, axis] = -distance
    return offsets


NOMINAL_DISTANCE = NOMINAL_DISTANCE_RATIO * CAM_MAX_DIST
"""Camera distance assumed when the true one is unknown: the camera module's nominal ratio (the middle
of R2N2's range, :data:`~ifkd.geometry.camera.NOMINAL_DISTANCE_RATIO`) x 1.75, as the reconstructor uses."""


def apply_framing(uv: torch.Tensor, framing: torch.Tensor | None) -> torch.Tensor:
    """Normalised image points uv (B, N, 2) -> s * uv + (dx, dy) for ``framing`` (B, 3) = (s, dx, dy), the
    training loader's framing jitter (``batch['framing']``, :func:`ifkd.data.loader.reframe`): where
    the points are in the reframed image. None (inference) leaves uv as M_c projects it."""
    if framing is None:
        return uv
    f = framing.to(device=uv.device, dtype=torch.float32)
    return uv * f[:, None, :1] + f[:, None, 1:]


def pixel_aligned_features(
    fmap: torch.Tensor, points_cam: torch.Tensor, M_c: torch.Tensor, framing: torch.Tensor | None = None
) -> torch.Tensor:
    """Sample ``fmap`` (B, C, H, W) at the projections of camera-frame points (B, N, 3) -> (B, N, C).

    The one place where points are projected to feature-map coordinates: M_c, then the image's framing
    (B, 3) (None: identity, as at inference), then bilinear ``grid_sample`` (``align_corners=False``).
    """
    with full_precision(points_cam):
        uv, _ = project(points_cam.float(), None, M_c.float())
        return sample_image(fmap, apply_framing(uv, framing), padding_mode="border")
