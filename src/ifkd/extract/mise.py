"""Sampling an implicit field on a corner grid, densely or coarse-to-fine (OccNet's MISE idea).

Inference evaluates the network here, then ``marching_cubes.extract_mesh`` turns the grid into a mesh.
Grid convention: see :mod:`ifkd.extract.marching_cubes` (corner i at ``-half + i * 2 * half / R``).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

import numpy as np
from scipy import ndimage

from ifkd.extract.marching_cubes import grid_axis

FieldFn = Callable[[np.ndarray], np.ndarray]
"""``fn(points (N, 3) float32, object frame) -> (N,)`` field values (probabilities, or logits with
threshold 0)."""

DEFAULT_HALF = 0.55
"""OccNet's padded box [-0.55, 0.55]^3 (side 1.1) around the unit object box."""
DEFAULT_BATCH = 65_536


def _evaluate(fn: FieldFn, points: np.ndarray, batch_points: int) -> np.ndarray:
    """fn over (K, 3) float32 points in chunks of ``batch_points`` -> (K,) float32."""
    out = np.empty(len(points), dtype=np.float32)
    for start in range(0, len(points), batch_points):
        chunk = points[start : start + batch_points]
        result = np.asarray(fn(chunk), dtype=np.float32).reshape(-1)
        if result.shape[0] != len(chunk):
            raise ValueError(f"field fn returned {result.shape[0]} values for {len(chunk)} points")
        out[start : start + len(chunk)] = result
    return out


def _points_at(index: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """(K, 3) integer corner indices -> (K, 3) float32 object coordinates."""
    return axis[index].astype(np.float32)


def dense_grid(
    fn: FieldFn, resolution: int = 128, half: float = DEFAULT_HALF, batch_points: int = DEFAULT_BATCH
) -> np.ndarray:
    """Evaluate ``fn`` at every corner of an R-cell grid: (R+1, R+1, R+1) float32 values.

    Points are generated per chunk, so memory stays at one chunk of coordinates (matters at 256^3).
    """
    axis = grid_axis(resolution, half)
    n = resolution + 1
    values = np.empty(n**3, dtype=np.float32)
    for start in range(0, n**3, batch_points):
        flat = np.arange(start, min(start + batch_points, n**3))
        index = np.stack(np.unravel_index(flat, (n, n, n)), axis=1)
        values[flat] = _evaluate(fn, _points_at(index, axis), batch_points)
    return values.reshape(n, n, n)


def _straddling_cells(values: np.ndarray, threshold: float) -> np.ndarray:
    """(R+1)^3 corner values -> (R, R, R) bool: cells with corners on both sides of the threshold."""
    inside = values >= threshold
    r = values.shape[0] - 1
    any_in = np.zeros((r, r, r), dtype=bool)
    all_in = np.ones((r, r, r), dtype=bool)
    for dx, dy, dz in product((0, 1), repeat=3):
        corner = inside[dx : dx + r, dy : dy + r, dz : dz + r]
        any_in |= corner
        all_in &= corner
    return any_in & ~all_in


def _corners_of(cells: np.ndarray) -> np.ndarray:
    """(R, R, R) bool cells -> (R+1)^3 bool: corners touching at least one marked cell."""
    r = cells.shape[0]
    corners = np.zeros((r + 1,) * 3, dtype=bool)
    for dx, dy, dz in product((0, 1), repeat=3):
        corners[dx : dx + r, dy : dy + r, dz : dz + r] |= cells
    return corners


def upsample_linear(values: np.ndarray) -> np.ndarray:
    """(R+1)^3 corner grid -> (2R+1)^3 by trilinear interpolation (separable: one axis at a time).

    Old corners keep their values exactly (even indices); new corners are averages of neighbours.
    """
    for ax in range(3):
        n = values.shape[ax]
        shape = list(values.shape)
        shape[ax] = 2 * n - 1
        out = np.empty(shape, dtype=values.dtype)
        even = [slice(None)] * 3
        even[ax] = slice(0, None, 2)
        odd = [slice(None)] * 3
        odd[ax] = slice(1, None, 2)
        out[tuple(even)] = values
        out[tuple(odd)] = 0.5 * (values.take(range(n - 1), axis=ax) + values.take(range(1, n), axis=ax))
        values = out
    return values


def coarse_to_fine(
    fn: FieldFn,
    resolution: int = 128,
    coarse_resolution: int = 32,
    threshold: float = 0.5,
    half: float = DEFAULT_HALF,
    batch_points: int = DEFAULT_BATCH,
    dilation: int = 1,
) -> tuple[np.ndarray, int]:
    """Sample ``fn`` on an R-cell grid, evaluating it only near the surface.

    Level 0 evaluates every corner of the ``coarse_resolution`` grid. Each further level marks the
    cells whose corners straddle ``threshold``, grows that set by ``dilation`` cells (face neighbours,
    so a surface that bulges through a cell face without flipping a coarse corner is still caught),
    halves the cell size, fills every corner by trilinear interpolation from the coarser level and
    then evaluates ``fn`` at the marked cells' corners not evaluated before. Far from the surface the
    interpolated values keep the sign of their (same-sided) coarse corners, so marching cubes sees
    the same surface as on a dense grid, except for features that miss every coarse corner
    (thinner than about one coarse cell), as in OccNet's MISE.

    Args:
        fn: field, ``fn(points (N, 3) float32) -> (N,)``, called with at most ``batch_points`` points.
        resolution: final cells per side; must be ``coarse_resolution * 2**k``.
        threshold: level in the units of fn's output (0.5 for probabilities).

    Returns:
        values: (R+1, R+1, R+1) float32 corner grid (evaluated or interpolated).
        n_queries: number of points fn was evaluated at (a dense grid needs (R+1)^3).
    """
    levels = np.log2(resolution / coarse_resolution) if coarse_resolution >= 1 else -1.0
    if levels < 0 or levels != int(levels):
        raise ValueError(
            f"resolution ({resolution}) must be coarse_resolution ({coarse_resolution}) times a power of 2"
        )
    values = dense_grid(fn, coarse_resolution, half, batch_points)
    n_queries = values.size
    evaluated = np.ones(values.shape, dtype=bool)
    structure = ndimage.generate_binary_structure(3, 1)
    r = coarse_resolution
    while r < resolution:
        active = _straddling_cells(values, threshold)
        if dilation > 0 and active.any():
            active = ndimage.binary_dilation(active, structure=structure, iterations=dilation)
        values = upsample_linear(values)
        r *= 2
        was_evaluated = np.zeros(values.shape, dtype=bool)
        was_evaluated[::2, ::2, ::2] = evaluated
        fine_cells = active.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
        need = _corners_of(fine_cells) & ~was_evaluated
        index = np.argwhere(need)  # row-major order, the same order as values[need]
        if len(index):
            values[need] = _evaluate(fn, _points_at(index, grid_axis(r, half)), batch_points)
        evaluated = was_evaluated | need
        n_queries += len(index)
    return values, int(n_queries)
