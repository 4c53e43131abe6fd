"""Marching cubes over a grid of corner values: the step from a sampled field to a triangle mesh.

Grid convention, shared by the whole package (``mise.py`` builds grids this way): for a grid of R
cells per side in the box [-half, half]^3, ``values[i, j, k]`` is the field at corner
``(x_i, y_j, z_k)`` with ``x_i = -half + i * 2 * half / R``, i = 0..R (``np.meshgrid(..., indexing='ij')``).
"""

from __future__ import annotations

import mcubes
import numpy as np
import trimesh

PAD_OFFSET = 1e6
"""The grid is padded with ``threshold - PAD_OFFSET``: far below the level, as OccNet pads logits with
-1e6, so a surface that reaches the box closes exactly on the box face (vertex offset ~1e-6 cells)."""


def grid_axis(resolution: int, half: float) -> np.ndarray:
    """Corner coordinates along one axis: (R+1,) float64, ``-half + i * 2 * half / R``."""
    if resolution < 1:
        raise ValueError(f"grid resolution must be >= 1 cell, got {resolution}")
    return -half + np.arange(resolution + 1, dtype=np.float64) * (2.0 * half / resolution)


def empty_mesh() -> trimesh.Trimesh:
    """A mesh with no vertices and no faces (what an empty field extracts to)."""
    return trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), process=False)


def extract_mesh(values: np.ndarray, threshold: float = 0.5, half: float = 0.55) -> trimesh.Trimesh:
    """Triangle mesh of the level set ``values == threshold`` (PyMCubes), in object coordinates.

    Args:
        values: (R+1, R+1, R+1) float field at the grid corners (convention in the module docstring);
            "inside" is where values exceed the threshold (probabilities > 0.5, logits > 0).
        threshold: level, in the units of ``values``.
        half: half side of the box the grid spans.

    Returns:
        A ``trimesh.Trimesh`` (V vertices, F faces, unprocessed: vertices exactly as marching cubes put
        them) whose faces wind counter-clockwise seen from outside, so its volume is positive. A field
        that never crosses the threshold gives an empty mesh.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3 or len(set(values.shape)) != 1 or values.shape[0] < 2:
        raise ValueError(f"values must be a cubic (R+1, R+1, R+1) grid with R >= 1, got {values.shape}")
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ValueError(f"values has {bad} non-finite entries; the field must be finite to extract a mesh")
    resolution = values.shape[0] - 1
    padded = np.pad(values, 1, mode="constant", constant_values=threshold - PAD_OFFSET)
    # PyMCubes returns vertices in index units of the padded grid (no half-cell shift, unlike OccNet's
    # own libmcubes fork) and winds faces outward when the inside holds the larger values.
    vertices, faces = mcubes.marching_cubes(padded, float(threshold))
    if len(faces) == 0:
        return empty_mesh()
    vertices = (vertices - 1.0) * (2.0 * half / resolution) - half
    return trimesh.Trimesh(vertices, faces.astype(np.int64), process=False)
