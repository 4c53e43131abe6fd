"""The R2N2 camera convention: view transforms E_i, the fixed intrinsic M_c, and projection.

Every other module gets its camera facts from here, so the convention lives in one place.

Frames (decided once):

* **Object frame** = ShapeNet v1's: +Y up, object centred, bounding-box diagonal 1. R2N2 renders
  ShapeNet v1 models in exactly these coordinates.
* **Blender frame**: Z up. OccNet's ``blender_T`` maps an object-frame point x to Blender coordinates
  ``blender_T @ x = (x, -z, y)``.
* **View frame** = the camera frame in the OpenCV convention: camera at the origin, +Z forward
  (optical axis), +X right, +Y down in the image. ``E_i = [R_i | t_i]`` (4x4) takes object-frame points
  into it. For R2N2 viewpoints ``t_i = (0, 0, d_i)`` with ``d_i = distance_ratio * 1.75``: the object
  centre lies on the optical axis at depth d_i.

The R2N2 viewpoint (one line of ``rendering_metadata.txt``): azimuth (deg), elevation (deg),
in-plane rotation (deg, 0 in practice and unused by the peers), distance ratio, and a "fov" column
(about 25) that is *not* the lens field of view. The real lens is 35 mm on a 32 mm sensor, so the
horizontal field of view is 2*atan(16/35) = 49.13 deg for every view, whatever that column says.

Intrinsics for a W x H image: f_u = 35*W/32, f_v = 35*H/32 pixels, principal point (W/2, H/2) in
continuous pixel coordinates where pixel i covers [i, i+1) (Blender's and grid_sample's
``align_corners=False`` convention). The paper's fixed M_c drops the offset and works in
normalised coordinates: u_n = 2*f_u/W * x/z = (35/16) * x/z, the same for every image size, which is
exactly what ``torch.nn.functional.grid_sample(align_corners=False)`` expects ((-1, -1) is the top-left
corner of the top-left pixel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np
import torch

F_MM = 35.0
"""Focal length of the R2N2 Blender camera, in millimetres."""
SENSOR_MM = 32.0
"""Sensor width of the R2N2 Blender camera, in millimetres."""
CAM_MAX_DIST = 1.75
"""Camera distance = distance_ratio * CAM_MAX_DIST (object-frame units)."""
NOMINAL_DISTANCE_RATIO = 0.775
"""The distance ratio assumed when a view's true one is unknown (inference on a plain image): the middle
of R2N2's range 0.65-0.9. The one copy: ``EvalConfig.distance_ratio`` and the models refer to it."""
NORMALISED_FOCAL = 2.0 * F_MM / SENSOR_MM
"""Focal length in normalised image units ([-1, 1] across the width): 2.1875."""
FOV_DEG = float(np.degrees(2.0 * np.arctan(SENSOR_MM / (2.0 * F_MM))))
"""The true horizontal field of view of the R2N2 camera (49.13 deg)."""

BLENDER_T = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""OccNet's ``blender_T``: ShapeNet v1 (Y up) -> Blender (Z up)."""

# Blender's camera object rotation used by R2N2's script (a 90 deg turn up to float noise); we keep
# the exact float values so our matrices agree with the peers' to the last bit they print.
_CAM_ROT = np.array(
    [
        [1.910685676922942e-15, 4.371138828673793e-08, 1.0],
        [1.0, -4.371138828673793e-08, -0.0],
        [4.371138828673793e-08, 1.0, -4.371138828673793e-08],
    ]
)
# Blender cameras look down -Z with +Y up; flip to the OpenCV convention (+Z forward, +Y down).
_CAM_FIX = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class Viewpoint:
    """One R2N2 viewpoint, as a line of ``rendering_metadata.txt``."""

    azimuth: float
    """degrees, rotation about the up axis"""
    elevation: float
    """degrees, camera height angle above the ground plane"""
    in_plane: float = 0.0
    """degrees, rotation about the optical axis (0 in R2N2; applied by us when non-zero)"""
    distance_ratio: float = 0.8
    """camera distance / 1.75"""
    fov: float = 25.0
    """R2N2's 5th column, kept verbatim; not the lens field of view (see module docstring)"""

    @property
    def distance(self) -> float:
        """Camera-to-object-centre distance in object-frame units."""
        return self.distance_ratio * CAM_MAX_DIST

    def as_row(self) -> list[float]:
        return [self.azimuth, self.elevation, self.in_plane, self.distance_ratio, self.fov]


def parse_metadata_line(line: str, where: str = "rendering_metadata.txt") -> Viewpoint:
    """Parse one ``rendering_metadata.txt`` row. R2N2 writes ``[az, el, ...]`` or plain numbers."""
    cleaned = line.strip().strip("[]").replace(",", " ")
    try:
        values = [float(v) for v in cleaned.split()]
    except ValueError as exc:
        raise ValueError(f"{where}: not a number in line {line.strip()!r}") from exc
    if len(values) != 5:
        raise ValueError(f"{where}: expected 5 numbers (az el inplane dist fov), got {len(values)}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{where}: non-finite value in line {line.strip()!r}")
    return Viewpoint(*values)


def format_metadata_line(view: Viewpoint) -> str:
    """One row in R2N2's own layout (space-separated numbers, readable by its scripts)."""
    return " ".join(repr(float(v)) for v in view.as_row())


def r2n2_rotation(azimuth: float, elevation: float, in_plane: float = 0.0) -> np.ndarray:
    """R_i (3x3, float64): object frame -> view frame (OpenCV axes), R2N2's exact construction."""
    sa, ca = np.sin(np.radians(-azimuth)), np.cos(np.radians(-azimuth))
    se, ce = np.sin(np.radians(-elevation)), np.cos(np.radians(-elevation))
    world_to_obj = np.array([[ca * ce, -sa, ca * se], [sa * ce, ca, sa * se], [-se, 0.0, ce]]).T
    rot = _CAM_FIX @ _CAM_ROT.T @ world_to_obj @ BLENDER_T
    if in_plane:
        # Rotate the image plane about the optical axis (R2N2 leaves this 0; we honour it).
        c, s = np.cos(np.radians(in_plane)), np.sin(np.radians(in_plane))
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ rot
    return rot


def view_transform(view: Viewpoint) -> np.ndarray:
    """E_i (4x4, float64): object frame -> view frame, ``[R_i | (0, 0, d_i)]``."""
    E = np.eye(4)
    E[:3, :3] = r2n2_rotation(view.azimuth, view.elevation, view.in_plane)
    # (0, 0, d) up to the float noise of R2N2's camera rotation, kept so E matches the peers' bits.
    t = _CAM_FIX @ (-_CAM_ROT.T @ np.array([view.distance, 0.0, 0.0]))
    if view.in_plane:
        c, s = np.cos(np.radians(view.in_plane)), np.sin(np.radians(view.in_plane))
        t = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ t
    E[:3, 3] = t
    return E


def intrinsics(width: int, height: int | None = None) -> np.ndarray:
    """K (3x3) in pixels for a W x H render: f = 35*W/32, principal point at the centre."""
    height = width if height is None else height
    return np.array(
        [
            [F_MM * width / SENSOR_MM, 0.0, width / 2.0],
            [0.0, F_MM * height / SENSOR_MM, height / 2.0],
            [0.0, 0.0, 1.0],
        ]
    )


def fixed_camera_matrix() -> np.ndarray:
    """M_c (3x3): the paper's fixed, offset-free camera, in normalised [-1, 1] image units."""
    return np.diag([NORMALISED_FOCAL, NORMALISED_FOCAL, 1.0])


def occnet_cameras(view: Viewpoint, width: int = 137) -> tuple[np.ndarray, np.ndarray]:
    """(camera_mat (3x3), world_mat (3x4)) as OccNet writes them in ``cameras.npz``.

    OccNet's world_mat applies to object-frame (ShapeNet v1) points and is ``E_i[:3]`` exactly.
    """
    return intrinsics(width), view_transform(view)[:3]


def viewpoint_from_world_mat(world_mat: np.ndarray, fov: float = 25.0) -> Viewpoint:
    """Recover (azimuth, elevation, distance) from an R2N2-style world_mat (3x4 or 4x4)."""
    R, t = np.asarray(world_mat, dtype=np.float64)[:3, :3], np.asarray(world_mat)[:3, 3]
    cam_centre = -R.T @ t  # camera position in the object frame (Y up)
    dist = float(np.linalg.norm(cam_centre))
    elevation = float(np.degrees(np.arcsin(np.clip(cam_centre[1] / dist, -1.0, 1.0))))
    # R2N2 puts the camera at azimuth az measured from +X towards +Z of the object frame.
    azimuth = float(np.degrees(np.arctan2(cam_centre[2], cam_centre[0]))) % 360.0
    if azimuth > 360.0 - 1e-9:  # -0.0 wraps to 360
        azimuth = 0.0
    return Viewpoint(azimuth, elevation, 0.0, dist / CAM_MAX_DIST, fov)


def camera_position(view: Viewpoint) -> np.ndarray:
    """The camera centre in the object frame (3,)."""
    E = view_transform(view)
    return -E[:3, :3].T @ E[:3, 3]


@overload
def transform_points(points: np.ndarray, E: np.ndarray) -> np.ndarray: ...
@overload
def transform_points(points: torch.Tensor, E: torch.Tensor) -> torch.Tensor: ...
def transform_points(points, E):
    """Apply 4x4 (or 3x4) transforms: points (..., N, 3), E (..., 4, 4) -> (..., N, 3)."""
    R, t = E[..., :3, :3], E[..., :3, 3]
    return (
        points @ R.swapaxes(-1, -2) + t[..., None, :]
        if isinstance(points, np.ndarray)
        else (points @ R.transpose(-1, -2) + t.unsqueeze(-2))
    )


def project(points, E=None, M_c=None, eps: float = 1e-6):
    """Object (or view) points -> normalised image coordinates in [-1, 1] for ``grid_sample``.

    points: (..., N, 3) float; E: (..., 4, 4) view transform, or None when points are already in the
    view frame; M_c: (3, 3) fixed camera, default :func:`fixed_camera_matrix`.
    Returns (uv (..., N, 2), depth (..., N)). uv[..., 0] runs left->right, uv[..., 1] top->bottom,
    matching ``grid_sample(..., align_corners=False)``. Works on numpy arrays and torch tensors.
    """
    is_np = isinstance(points, np.ndarray)
    if M_c is None:
        M_c = fixed_camera_matrix()
    if not is_np and isinstance(M_c, np.ndarray):
        M_c = torch.as_tensor(M_c, dtype=points.dtype, device=points.device)
    pv = points if E is None else transform_points(points, E)
    z = pv[..., 2]
    # Clamp depth away from zero so points behind/at the camera do not produce inf/NaN features.
    zc = np.maximum(z, eps) if is_np else z.clamp_min(eps)
    pix = pv @ (M_c.T if is_np else M_c.transpose(-1, -2))
    uv = pix[..., :2] / zc[..., None]
    return uv, z


def unproject(uv, depth, M_c=None):
    """Inverse of :func:`project` in the view frame: uv (..., N, 2), depth (..., N) -> (..., N, 3)."""
    is_np = isinstance(uv, np.ndarray)
    if M_c is None:
        M_c = fixed_camera_matrix()
    fx, fy = float(M_c[0, 0]), float(M_c[1, 1])
    x = uv[..., 0] * depth / fx
    y = uv[..., 1] * depth / fy
    return np.stack([x, y, depth], axis=-1) if is_np else torch.stack([x, y, depth], dim=-1)


def normalised_to_pixels(uv: np.ndarray, width: int, height: int | None = None) -> np.ndarray:
    """[-1, 1] coordinates -> continuous pixel coordinates (pixel i covers [i, i+1))."""
    height = width if height is None else height
    out = np.empty_like(uv)
    out[..., 0] = (uv[..., 0] + 1.0) * 0.5 * width
    out[..., 1] = (uv[..., 1] + 1.0) * 0.5 * height
    return out


def project_to_pixels(points: np.ndarray, E: np.ndarray, width: int, height: int | None = None):
    """Object points (N, 3) -> pixel coordinates (N, 2) with the full K of a W x H render, and depth."""
    height = width if height is None else height
    pv = transform_points(points, E)
    pix = pv @ intrinsics(width, height).T
    return pix[:, :2] / pix[:, 2:3], pv[:, 2]


def view_aligned(E: np.ndarray) -> np.ndarray:
    """The rotation-only part of E_i (4x4): object frame -> view-aligned, object-centred frame.

    Reconstructions live in this frame: the image's orientation, the object's centre at the origin.
    """
    A = np.eye(4)
    A[:3, :3] = E[:3, :3]
    return A


def nominal_view_translation(distance: float) -> np.ndarray:
    """(3,) translation that puts a view-aligned, object-centred point set at a camera distance."""
    return np.array([0.0, 0.0, distance])


R2N2_AZIMUTH_RANGE = (0.0, 360.0)
R2N2_ELEVATION_RANGE = (25.0, 30.0)
R2N2_DISTANCE_RATIO_RANGE = (0.65, 0.9)
R2N2_FOV_COLUMN = 25.0
"""The ranges of R2N2's renders (and the metadata's "fov" column): the synthetic generator's and the
real-mesh importers' defaults."""


def draw_viewpoints(
    rng: np.random.Generator,
    n: int,
    azimuth_range: tuple[float, float] = R2N2_AZIMUTH_RANGE,
    elevation_range: tuple[float, float] = R2N2_ELEVATION_RANGE,
    distance_ratio_range: tuple[float, float] = R2N2_DISTANCE_RATIO_RANGE,
    fov: float = R2N2_FOV_COLUMN,
) -> list[Viewpoint]:
    """R2N2-like viewpoints: azimuth uniform, elevation 25-30, in-plane 0, distance ratio 0.65-0.9."""
    az = rng.uniform(*azimuth_range, size=n)
    el = rng.uniform(*elevation_range, size=n)
    dist = rng.uniform(*distance_ratio_range, size=n)
    return [
        Viewpoint(round(float(a), 4), round(float(e), 4), 0.0, round(float(d), 4), fov)
        for a, e, d in zip(az, el, dist)
    ]
