"""Ground truth of a real mesh: labelled points, voxel grids, evaluation labels and outer-surface samples.

Every label comes from one inside test, :class:`ifkd.geometry.inside.InsideTest`, which is right on
ShapeNet's double-sided polygon soups as well as on closed meshes (see that module for the method).
Voxel grids are filled coarse to fine: a cell inherits its parent's label unless the parent touches
the surface or a differently labelled neighbour, so a 128^3 grid costs a few hundred thousand queries.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy import ndimage

from ifkd.geometry.inside import InsideTest
from ifkd.geometry.sampling import PADDED_HALF, sample_mesh_surface, sample_point_values, sample_uniform
from ifkd.geometry.voxels import OBJECT_HALF, voxel_centers

INSIDE_TEST_VERSION = 2
"""Recorded in every imported dataset's index. 1: generalised winding numbers of the raw mesh (empty on
double-sided soups such as ShapeNet's); 2: clean + orient by visibility + winding/enclosure/sheets."""


def _cells_of(points: np.ndarray, res: int, half: float) -> np.ndarray:
    """(res, res, res) bool: cells that contain at least one of points (N, 3)."""
    idx = np.floor((points + half) / (2.0 * half) * res).astype(np.int64)
    idx = idx[np.all((idx >= 0) & (idx < res), axis=1)]
    grid = np.zeros((res, res, res), dtype=bool)
    grid[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return grid


def voxelize_coarse_to_fine(
    occupancy,
    surface_points: np.ndarray,
    resolutions: tuple[int, ...],
    half: float = OBJECT_HALF,
    base: int = 16,
) -> dict[int, np.ndarray]:
    """Bool (R, R, R) grids [x, y, z] for each R: cell occupied iff occupancy(its centre).

    occupancy: points (N, 3) -> (N,) bool. surface_points (M, 3): dense samples of the surface
    (spacing below the finest cell) marking where labels may change. Equals a dense evaluation
    wherever the label does not change inside a surface-free 3x3x3 block of coarse cells.
    """
    wanted = sorted(set(int(r) for r in resolutions))
    base = min(base, wanted[0])
    grids: dict[int, np.ndarray] = {}
    res = base
    grid = occupancy(voxel_centers(res, half)).reshape(res, res, res)
    while True:
        grids[res] = grid
        if res >= wanted[-1]:
            break
        if any(res < r < 2 * res for r in wanted):  # not a doubling chain: evaluate densely
            res = next(r for r in wanted if r > res)
            grid = occupancy(voxel_centers(res, half)).reshape(res, res, res)
            continue
        # Uncertain parents: containing surface (a surface-free cell lies wholly on one side), or
        # face-adjacent to a cell with the other label.
        edge = ndimage.binary_dilation(grid) != ndimage.binary_erosion(grid, border_value=1)
        unsure = _cells_of(surface_points, res, half) | edge
        child = np.repeat(np.repeat(np.repeat(grid, 2, 0), 2, 1), 2, 2)
        unsure_child = np.repeat(np.repeat(np.repeat(unsure, 2, 0), 2, 1), 2, 2)
        res *= 2
        idx = np.nonzero(unsure_child.reshape(-1))[0]
        child.reshape(-1)[idx] = occupancy(voxel_centers(res, half)[idx])
        grid = child
    return {r: grids[r] for r in wanted}


def outer_surface(inside: InsideTest, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` area-uniform samples (n, 3) of the surface a viewer sees, with unit normals (n, 3).

    Patches that no visibility probe saw from outside (seats inside car bodies, internal faces, inner
    walls) are dropped, as OccNet's watertight meshes drop them; normals point to each patch's more
    visible side. Falls back to every patch when none was seen (a closed box around everything).
    """
    keep = inside.visible_faces()
    mesh = inside.clean
    if keep.any():
        mesh = trimesh.Trimesh(mesh.vertices, np.asarray(mesh.faces)[keep], process=False)
    return sample_mesh_surface(mesh, n, rng)


def band_samples(
    mesh: trimesh.Trimesh, finest: int, rng: np.random.Generator, per_cell: float = 4.0
) -> np.ndarray:
    """Dense surface samples (~``per_cell`` per finest-cell face area) plus all vertices, marking the
    cells the surface passes through for :func:`voxelize_coarse_to_fine`."""
    cell = 2.0 * OBJECT_HALF / finest
    n = int(np.clip(per_cell * mesh.area / cell**2, 10_000, 2_000_000))
    pts, _ = sample_mesh_surface(mesh, n, rng)
    return np.concatenate([pts, np.asarray(mesh.vertices)])


def iou_points(inside, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """OccNet's evaluation points: n uniform in the padded box [-0.55, 0.55]^3, stored as float16 as
    OccNet stores them, labelled at the float16-rounded coordinates -> (points (n, 3) float16, (n,) bool)."""
    pts = sample_uniform(n, rng, PADDED_HALF).astype(np.float16)
    return pts, np.asarray(inside(pts.astype(np.float64)), dtype=bool)


def mesh_ground_truth(
    mesh: trimesh.Trimesh,
    rng: np.random.Generator,
    n_points: int = 10_000,
    n_uniform: int = 128,
    n_surface: int = 16_384,
    voxel_resolutions: tuple[int, ...] = (32, 64, 128),
    n_iou: int = 100_000,
    n_eval_surface: int = 100_000,
):
    """Everything ``shape.npz`` stores, for a mesh already in the object frame -> ShapeRecord.

    Points/occupancies go through the same :func:`ifkd.geometry.sampling.sample_point_values` as the
    procedural data; the evaluation points (``n_iou``, 0 for none) are OccNet's 100k uniform ones;
    surface samples (``n_surface``, and ``n_eval_surface`` more for the metrics) are the visible surface.
    """
    from ifkd.data.format import ShapeRecord, eval_surface_arrays, iou_arrays

    inside = InsideTest(mesh, seed=int(rng.integers(1 << 31)))
    surface, normals = outer_surface(inside, n_surface, rng)
    points, occ = sample_point_values(inside, surface, rng, n_total=n_points, n_uniform=n_uniform)
    voxels = {}
    if voxel_resolutions:
        band = band_samples(inside.clean, max(voxel_resolutions), rng)
        voxels = voxelize_coarse_to_fine(inside, band, tuple(voxel_resolutions))
    record = ShapeRecord(points, occ, surface.astype(np.float32), normals.astype(np.float32), voxels)
    if n_iou:
        record.extra.update(iou_arrays(*iou_points(inside, rng, n_iou)))
    if n_eval_surface:
        record.extra.update(eval_surface_arrays(*outer_surface(inside, n_eval_surface, rng)))
    return record
