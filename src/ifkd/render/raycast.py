"""CPU mesh renderer for R2N2-style views: embree rays through pixel centres (numpy raster fallback).

Used by the dataset writer (RGBA views), the report's figures and silhouette checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
import trimesh

from ifkd.geometry import camera
from ifkd.render import raster
from ifkd.render.shading import (
    DEFAULT_LIGHT,
    Light,
    RenderResult,
    check_camera,
    compose,
    image_size,
    mul3,
    sample_intrinsics,
    view_faces,
)

try:  # probed once: embreex is an optional accelerator (x86_64 wheels only)
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    HAS_EMBREE = True
except ImportError:  # pragma: no cover - depends on the platform
    RayMeshIntersector = None
    HAS_EMBREE = False

Backend = Literal["auto", "embree", "raster"]
FIGURE_COLOR = (150, 180, 220)
"""Default mesh colour (sRGB) of report figures: a light blue that reads well on white."""


def pixel_directions(K: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H*W, 3) view-frame ray directions K^-1 (i + 0.5, j + 0.5, 1), row-major, scaled to z = 1."""
    return _pixel_directions(tuple(np.asarray(K, dtype=np.float64).ravel()), width, height)


@lru_cache(maxsize=8)
def _pixel_directions(K: tuple[float, ...], width: int, height: int) -> np.ndarray:
    # Cached: every view of a dataset shares one K and size, and this is a fifth of a small render.
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    pix = np.stack([cols.ravel(), rows.ravel(), np.ones(cols.size)], axis=1)
    d = mul3(pix, np.linalg.inv(np.reshape(K, (3, 3))))
    d /= d[:, 2:3]
    d.flags.writeable = False
    return d


def _intersector(mesh: trimesh.Trimesh):
    """The mesh's embree intersector; trimesh caches ``mesh.ray`` so repeated views reuse one BVH."""
    ray = mesh.ray
    return ray if isinstance(ray, RayMeshIntersector) else RayMeshIntersector(mesh)


def _embree_buffers(
    mesh: trimesh.Trimesh, E: np.ndarray, K: np.ndarray, tris: np.ndarray, normals: np.ndarray, size: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """(face_index (H, W) int64 with -1 = miss, depth (H, W) float64) from first hits of pixel-centre rays.

    tris: (F, 3, 3) and unit normals (F, 3), both in the view frame; size: (W, H) of the sample grid.
    """
    width, height = size
    d_view = pixel_directions(K, width, height)
    R_inv = np.linalg.inv(E[:3, :3])
    origin = -R_inv @ E[:3, 3]  # the camera centre in the object frame
    d_obj = mul3(d_view, R_inv)
    origins = np.broadcast_to(origin, d_obj.shape)
    face_index = np.asarray(_intersector(mesh).intersects_first(origins, d_obj), dtype=np.int64)
    depth = np.full(face_index.shape, np.inf)
    hit = face_index >= 0
    fi, d = face_index[hit], d_view[hit]
    # Embree runs in float32; redo the hit in float64 on the face's plane n.x = n.v0. Directions have
    # z = 1, so the ray parameter is the depth. Grazing hits (ill-conditioned) take the face's mean depth.
    num = np.einsum("ij,ij->i", normals[fi], tris[fi, 0])
    den = np.einsum("ij,ij->i", normals[fi], d)
    grazing = np.abs(den) <= 1e-9 * np.linalg.norm(d, axis=1)
    t = np.divide(num, den, out=np.zeros_like(num), where=~grazing)
    depth[hit] = np.where(grazing | (t <= 0.0), tris[fi, :, 2].mean(axis=1), t)
    return face_index.reshape(height, width), depth.reshape(height, width)


def render(
    mesh: trimesh.Trimesh,
    E: np.ndarray,
    width: int,
    height: int | None = None,
    *,
    face_colors: np.ndarray | None = None,
    K: np.ndarray | None = None,
    light: Light = DEFAULT_LIGHT,
    supersample: int = 1,
    filter_width: float = 1.0,
    backend: Backend = "auto",
) -> RenderResult:
    """Render ``mesh`` (object frame) as a W x H RGBA view with depth, face ids and normals.

    E: (4, 4) object -> view transform, OpenCV axes (:func:`ifkd.geometry.camera.view_transform`).
    K: (3, 3) intrinsics in pixels, default :func:`ifkd.geometry.camera.intrinsics` (W, H).
    Pixel (row j, col i) is sampled at its centre (i + 0.5, j + 0.5); with ``supersample`` s > 1 at an
    s x s grid of sub-pixel centres, alpha = coverage (anti-aliased edges, like R2N2's renders);
    ``filter_width`` > 1 widens the pixel filter (Blender's default is 1.5 px).
    face_colors: (F, 3|4) uint8 or one (3,) colour; default the mesh's colours, else grey.
    backend: "embree" rays, "raster" (numpy z-buffer) or "auto" (embree when installed).
    """
    width, height = image_size(width, height)
    E, K = check_camera(E, K, width, height)
    if backend == "auto":
        backend = "embree" if HAS_EMBREE else "raster"
    if backend == "raster":
        return raster.render(
            mesh,
            E,
            width,
            height,
            face_colors=face_colors,
            K=K,
            light=light,
            supersample=supersample,
            filter_width=filter_width,
        )
    if backend != "embree":
        raise ValueError(f"unknown render backend {backend!r}; expected 'auto', 'embree' or 'raster'")
    if not HAS_EMBREE:
        raise RuntimeError("backend='embree' needs the embreex package (pip install embreex)")
    s = int(supersample)
    Ks = sample_intrinsics(K, supersample)
    tris, normals, face_rgb = view_faces(mesh, E, face_colors, light)
    if len(tris) == 0:  # embree cannot build a scene without triangles
        face_index = np.full((height * s, width * s), -1, dtype=np.int64)
        depth = np.full(face_index.shape, np.inf)
    else:
        face_index, depth = _embree_buffers(mesh, E, Ks, tris, normals, (width * s, height * s))
    return compose(face_rgb, normals, face_index, depth, s, filter_width)


def _size(size: int | tuple[int, int]) -> tuple[int, int]:
    """An image size given as one int (square) or (width, height)."""
    return (size, size) if np.isscalar(size) else (int(size[0]), int(size[1]))


def render_views(
    mesh: trimesh.Trimesh, views: Sequence[camera.Viewpoint], size: int | tuple[int, int], **kwargs
) -> list[RenderResult]:
    """One :func:`render` per R2N2 viewpoint; ``size`` is W (square) or (W, H); kwargs go to render."""
    width, height = _size(size)
    return [render(mesh, camera.view_transform(v), width, height, **kwargs) for v in views]


def silhouette(
    mesh: trimesh.Trimesh, E: np.ndarray, size: int | tuple[int, int], *, backend: Backend = "auto"
) -> np.ndarray:
    """(H, W) bool: pixels whose centre ray hits the mesh (E: (4, 4) object -> view)."""
    width, height = _size(size)
    return render(mesh, E, width, height, backend=backend).mask


def render_mesh_figure(
    mesh: trimesh.Trimesh,
    E: np.ndarray,
    size: int | tuple[int, int],
    color: tuple[int, int, int] = FIGURE_COLOR,
    *,
    supersample: int = 3,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """(H, W, 3) uint8 opaque figure: the mesh in one colour, anti-aliased over a plain background."""
    width, height = _size(size)
    rgba = render(mesh, E, width, height, face_colors=np.asarray(color), supersample=supersample).rgba
    alpha = rgba[..., 3:4].astype(np.float64) / 255.0
    out = rgba[..., :3] * alpha + np.asarray(background, dtype=np.float64) * (1.0 - alpha)
    return np.round(out).astype(np.uint8)
