"""Ground-truth point sampling shared by the procedural shapes and real meshes: point-value pairs and
area-uniform surface samples in the object frame."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trimesh

PADDED_HALF = 0.55
"""Half side of OccNet's padded query box [-0.55, 0.55]^3 (object frame, bounding-box diagonal 1)."""
NEAR_SURFACE_SIGMAS = (0.01, 0.03)
"""Std. devs (object units) of the isotropic Gaussian noise around surface samples: equal shares."""


def sample_uniform(n: int, rng: np.random.Generator, half: float = PADDED_HALF) -> np.ndarray:
    """(n, 3) float64 points uniform in the cube [-half, half]^3."""
    return rng.uniform(-half, half, size=(n, 3))


def sample_point_values(
    occupancy_fn: Callable[[np.ndarray], np.ndarray],
    surface_points: np.ndarray,
    rng: np.random.Generator,
    n_total: int = 10000,
    n_uniform: int = 128,
    sigmas: tuple[float, ...] = NEAR_SURFACE_SIGMAS,
    half: float = PADDED_HALF,
) -> tuple[np.ndarray, np.ndarray]:
    """IM-NET-style point-value pairs: points (n_total, 3) float32 and occupancies (n_total,) uint8.

    Layout: the first ``n_uniform`` points are uniform in [-half, half]^3; the remaining
    ``n_total - n_uniform`` are surface samples (drawn with replacement from ``surface_points`` (S, 3))
    plus isotropic Gaussian noise, split in equal shares over ``sigmas`` (default 0.01 and 0.03 object
    units, i.e. 1 % and 3 % of the bounding-box diagonal; the first sigma takes the remainder), then
    clipped to the cube. Labels are ``occupancy_fn`` ((M, 3) float64 -> (M,) bool) evaluated at the
    float32-rounded points, so a stored point and its label always agree.
    """
    surface_points = np.asarray(surface_points, dtype=np.float64)
    if not 0 <= n_uniform <= n_total:
        raise ValueError(f"need 0 <= n_uniform <= n_total, got {n_uniform}, {n_total}")
    n_near = n_total - n_uniform
    if n_near and (surface_points.ndim != 2 or surface_points.shape[1] != 3 or len(surface_points) == 0):
        raise ValueError(f"surface_points must be a non-empty (S, 3) array, got {surface_points.shape}")
    shares = np.full(len(sigmas), n_near // len(sigmas))
    shares[0] += n_near - shares.sum()
    parts = [sample_uniform(n_uniform, rng, half)]
    for sigma, k in zip(sigmas, shares):
        base = surface_points[rng.integers(0, len(surface_points), size=k)]
        parts.append(base + rng.normal(0.0, sigma, size=(k, 3)))
    points = np.clip(np.concatenate(parts), -half, half).astype(np.float32)
    occupancies = np.asarray(occupancy_fn(points.astype(np.float64)), dtype=bool)
    if occupancies.shape != (n_total,):
        raise ValueError(f"occupancy_fn returned shape {occupancies.shape}, expected ({n_total},)")
    return points, occupancies.astype(np.uint8)


def sample_mesh_surface(
    mesh: trimesh.Trimesh, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` area-uniform samples on ``mesh``: points (n, 3) float64 and their faces' unit normals (n, 3).

    Deterministic for a given ``rng`` (trimesh's own sampler draws from a global seed).
    """
    areas = np.asarray(mesh.area_faces, dtype=np.float64)
    total = float(areas.sum()) if len(areas) else 0.0
    if not total > 0.0:
        raise ValueError("cannot sample the surface of a mesh with zero area")
    face = rng.choice(len(areas), size=n, p=areas / total)
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1.0  # fold the unit square onto the triangle so samples stay uniform
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    tri = np.asarray(mesh.triangles, dtype=np.float64)[face]
    points = tri[:, 0] + u[:, None] * (tri[:, 1] - tri[:, 0]) + v[:, None] * (tri[:, 2] - tri[:, 0])
    return points, np.asarray(mesh.face_normals, dtype=np.float64)[face]
