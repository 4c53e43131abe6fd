"""Reader for IM-NET's per-category hdf5 files (``<synset>_vox256.hdf5``) with the move to our frame.

Contents: ``voxels`` [N, 64, 64, 64, 1] uint8, ``points_16/32/64`` [N, P, 3] uint8 indices in a 256^3
grid (space = (p + 0.5) / 256 - 0.5) with ``values_*`` [N, P, 1], and ``pixels`` [N, 24, 137, 137]
grayscale renders on white. IM-NET's data scripts "flip & transpose to convert coord from shapenet_v1
to shapenet_v2": v2[a, b, c] = v1[D-1-c, b, a], i.e. x_imnet = z_v1, z_imnet = -x_v1. We undo it
(x_v1 = -z, z_v1 = x, y unchanged) and re-normalise with the box of the occupied 64^3 cells (centre at
the origin, diagonal 1), since IM-NET's grid fits the model's longest edge, not our diagonal.
h5py is optional: a clear InputError says how to install it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ifkd.io import InputError

LEVELS = (16, 32, 64)
GRID = 256


@dataclass
class ImnetShape:
    """One shape of an IM-NET file, in our object frame."""

    points: np.ndarray
    """(P, 3) float32: all levels' sample points"""
    occupancies: np.ndarray
    """(P,) uint8"""
    voxels: np.ndarray
    """(64, 64, 64) bool [x, y, z] in IM-NET's cube, axes turned back to v1"""
    pixels: np.ndarray | None
    """(24, 137, 137) uint8 grayscale on white, or None"""
    loc: np.ndarray
    scale: float


def _h5py():
    try:
        import h5py
    except ImportError:
        raise InputError("reading IM-NET hdf5 files needs h5py: pip install h5py") from None
    return h5py


def imnet_to_v1(points: np.ndarray) -> np.ndarray:
    """(N, 3) points in IM-NET's (v2-oriented) frame -> v1 orientation: (x, y, z) -> (-z, y, x)."""
    p = np.asarray(points, dtype=np.float64)
    return np.stack([-p[:, 2], p[:, 1], p[:, 0]], axis=1)


def imnet_grid_to_v1(grid: np.ndarray) -> np.ndarray:
    """(D, D, D) grid indexed in IM-NET's frame -> indexed [x, y, z] in v1 orientation (exact for cells)."""
    # v1[x, y, z] = imnet[z, y, D-1-x]: the inverse of IM-NET's flip(transpose(v1, (2, 1, 0)), 2).
    return np.ascontiguousarray(np.flip(grid, 2).transpose(2, 1, 0))


def read_names(path: str | Path) -> list[str]:
    """IM-NET's ``<synset>_vox256.txt``: one 'synset/model' per row, in the hdf5's order."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: name list not found")
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def count_shapes(path: str | Path) -> int:
    h5py = _h5py()
    path = Path(path)
    with _open(h5py, path) as f:
        return int(f["voxels"].shape[0])


def _open(h5py, path: Path):
    if not path.is_file():
        raise InputError(f"{path}: hdf5 file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable hdf5 file ({exc})") from None
    missing = [
        k for k in ["voxels"] + [f"{n}_{lv}" for lv in LEVELS for n in ("points", "values")] if k not in f
    ]
    if missing:
        f.close()
        raise InputError(f"{path}: missing datasets {missing} (not an IM-NET vox256 file?)")
    return f


def read_shape(path: str | Path, index: int) -> ImnetShape:
    """Shape ``index`` of an IM-NET hdf5 file, converted to our object frame and validated."""
    h5py = _h5py()
    path = Path(path)
    with _open(h5py, path) as f:
        n = f["voxels"].shape[0]
        if not 0 <= index < n:
            raise InputError(f"{path}: shape index {index} out of range (file has {n})")
        vox = np.asarray(f["voxels"][index])
        if vox.shape[:3] != (64, 64, 64):
            raise InputError(f"{path}: 'voxels' has shape {vox.shape}, expected (64, 64, 64, 1)")
        pts, vals = [], []
        for lv in LEVELS:
            p = np.asarray(f[f"points_{lv}"][index])
            v = np.asarray(f[f"values_{lv}"][index]).reshape(-1)
            if p.ndim != 2 or p.shape[1] != 3 or len(v) != len(p):
                raise InputError(f"{path}: 'points_{lv}'/'values_{lv}' shapes {p.shape}/{v.shape} disagree")
            pts.append((p.astype(np.float64) + 0.5) / GRID - 0.5)
            vals.append(v > 0)
        pixels = np.asarray(f["pixels"][index]) if "pixels" in f else None
    grid = imnet_grid_to_v1(vox.reshape(64, 64, 64) > 0)
    if not grid.any():
        raise InputError(f"{path}: shape {index} has no occupied voxels")
    # Re-normalise by the occupied cells' box (cell faces, not centres) to centre + diagonal 1.
    idx = np.argwhere(grid)
    lo, hi = idx.min(axis=0) / 64.0 - 0.5, (idx.max(axis=0) + 1) / 64.0 - 0.5
    loc, scale = (lo + hi) / 2.0, float(np.linalg.norm(hi - lo))
    points = (imnet_to_v1(np.concatenate(pts)) - loc) / scale
    return ImnetShape(
        points.astype(np.float32), np.concatenate(vals).astype(np.uint8), grid, pixels, loc, scale
    )
