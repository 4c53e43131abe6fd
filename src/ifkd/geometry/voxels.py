"""Voxel grids in the object frame: cell centres, voxelising an occupancy function, bit packing, pooling.

The dataset writer stores teacher inputs with these functions, so the layout below is the on-disk format.

Layout (decided once): a grid of resolution R covers the cube [-half, half]^3 (half = 0.5: the object
frame, bounding-box diagonal 1) with R cells per axis of size 2*half/R. Cell (i, j, k) has centre
``(-half + (i + 0.5) * 2*half/R, ..., ...)`` for (x, y, z) = (i, j, k), and arrays are indexed
``grid[i, j, k]`` = ``grid[x, y, z]`` in C order (z fastest). Occupancy is sampled at cell centres
(not "any part of the cell"), at every resolution. Packed form: ``np.packbits(grid.reshape(-1))``
(big-endian bit order within each byte, last byte zero-padded), ``ceil(R^3 / 8)`` uint8 values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ifkd.io import InputError

OBJECT_HALF = 0.5
"""Half side of the cube the voxel grids cover: the object frame's [-0.5, 0.5]^3."""


def cell_centers_1d(res: int, half: float = OBJECT_HALF) -> np.ndarray:
    """(res,) float32 cell-centre coordinates along one axis of the grid over [-half, half]."""
    if res < 1:
        raise ValueError(f"voxel resolution must be >= 1, got {res}")
    return (-half + (np.arange(res, dtype=np.float64) + 0.5) * (2.0 * half / res)).astype(np.float32)


def voxel_centers(res: int, half: float = OBJECT_HALF) -> np.ndarray:
    """(res^3, 3) float32 cell centres, row ``(i * res + j) * res + k`` = centre of cell [i, j, k]."""
    xs = cell_centers_1d(res, half)
    grid = np.stack(np.meshgrid(xs, xs, xs, indexing="ij"), axis=-1)
    return grid.reshape(-1, 3)


def voxelize(
    occupancy_fn: Callable[[np.ndarray], np.ndarray],
    res: int,
    half: float = OBJECT_HALF,
    chunk: int = 1 << 18,
) -> np.ndarray:
    """(res, res, res) bool: ``occupancy_fn`` ((M, 3) float32 points -> (M,) bool) at every cell centre.

    The generic (slow, obvious) path: any occupancy function, evaluated ``chunk`` points at a time.
    """
    pts = voxel_centers(res, half)
    out = np.empty(len(pts), dtype=bool)
    for start in range(0, len(pts), chunk):
        out[start : start + chunk] = np.asarray(occupancy_fn(pts[start : start + chunk]), dtype=bool)
    return out.reshape(res, res, res)


def pack_voxels(grid: np.ndarray) -> np.ndarray:
    """(ceil(R^3 / 8),) uint8: the C-order flattened bool grid (R, R, R), bit-packed."""
    grid = np.asarray(grid)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise ValueError(f"pack_voxels expects a cubic (R, R, R) grid, got shape {grid.shape}")
    return np.packbits(grid.reshape(-1).astype(bool))


def unpack_voxels(packed: np.ndarray, res: int, where: str = "packed voxels") -> np.ndarray:
    """(res, res, res) bool from :func:`pack_voxels` output.

    Raises InputError naming ``where`` (e.g. "shape.npz: 'voxels_64'") if the type or size is wrong.
    """
    packed = np.asarray(packed)
    expected = (res**3 + 7) // 8
    if packed.dtype != np.uint8 or packed.ndim != 1:
        raise InputError(f"{where}: expected a 1-D uint8 array, got {packed.dtype} {packed.shape}")
    if len(packed) != expected:
        raise InputError(
            f"{where}: {len(packed)} bytes, but a {res}^3 grid needs {expected} bytes (wrong resolution?)"
        )
    return np.unpackbits(packed, count=res**3).astype(bool).reshape(res, res, res)


def downsample_voxels(grid: np.ndarray, factor: int) -> np.ndarray:
    """(R/f, R/f, R/f) bool max-pool of a cubic bool grid: a coarse cell is set if any fine cell is.

    Note this is "any occupied", not centre sampling: coarser than :func:`voxelize` at the lower
    resolution (thin parts never vanish).
    """
    grid = np.asarray(grid, dtype=bool)
    res = grid.shape[0]
    if grid.ndim != 3 or len(set(grid.shape)) != 1 or factor < 1 or res % factor:
        raise ValueError(f"cannot max-pool a grid of shape {grid.shape} by {factor}")
    r = res // factor
    return grid.reshape(r, factor, r, factor, r, factor).any(axis=(1, 3, 5))


def voxel_lookup(grid: np.ndarray, points: np.ndarray, half: float = OBJECT_HALF) -> np.ndarray:
    """(N,) bool: the cell of a (R, R, R) grid tiling [-half, half]^3 that each (N, 3) point falls in
    (points outside the grid are empty)."""
    res = grid.shape[0]
    idx = np.floor((np.asarray(points) + half) / (2.0 * half) * res).astype(np.int64)
    inside = np.all((idx >= 0) & (idx < res), axis=1)
    occ = np.zeros(len(idx), dtype=bool)
    occ[inside] = grid[idx[inside, 0], idx[inside, 1], idx[inside, 2]]
    return occ


def uniform_points_in_grid(grid: np.ndarray, n: int, rng: np.random.Generator, half: float = 0.55):
    """(n, 3) float32 points uniform in [-half, half]^3 (OccNet's padded box) and their (n,) bool
    occupancy looked up in a grid on the unit box: labels for uniform training/IoU points."""
    pts = rng.uniform(-half, half, size=(n, 3)).astype(np.float32)
    return pts, voxel_lookup(grid, pts)
