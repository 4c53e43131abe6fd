"""Reader/writer for binvox voxel files (ShapeNetVox32, OccNet's model.binvox, HSP-style 128^3 grids).

Format: an ASCII header ``#binvox 1`` / ``dim D D D`` / ``translate tx ty tz`` / ``scale s`` / ``data``,
then run-length pairs of bytes (value, count), count in 1..255. The cells are stored with the *y* index
running fastest, then z, then x (binvox's "xzy" order): flat index = x * D*D + z * D + y. We read the
runs into a (x, z, y) array and transpose axes 1 and 2 to get our [x, y, z] indexing. Cell (i, j, k)
covers ``translate + scale * ([i, j, k] + [0..1]) / D`` in the model's coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ifkd.geometry.voxels import voxel_centers
from ifkd.io import InputError, atomic_write_bytes


@dataclass
class Binvox:
    """A binvox grid: ``grid`` (D, D, D) bool indexed [x, y, z]; cell frame given by translate/scale."""

    grid: np.ndarray
    translate: np.ndarray
    """(3,) model coordinates of the grid's min corner"""
    scale: float
    """side length of the whole grid in model units"""

    def cell_centres(self) -> np.ndarray:
        """(D^3, 3) model-frame centres of cells, C order over [x, y, z]."""
        d = self.grid.shape[0]
        idx = np.stack(np.meshgrid(*(np.arange(d),) * 3, indexing="ij"), axis=-1).reshape(-1, 3)
        return self.translate + self.scale * (idx + 0.5) / d


def _header_line(fh, path: Path, expect: str) -> list[str]:
    raw = fh.readline(256)
    try:
        parts = raw.decode("ascii").split()
    except UnicodeDecodeError:
        parts = []
    if not parts or parts[0] != expect:
        raise InputError(f"{path}: not a binvox file (expected a '{expect}' header line, got {raw[:40]!r})")
    return parts


def read_binvox(path: str | Path) -> Binvox:
    """Read and validate a .binvox file; raises InputError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: binvox file not found")
    with open(path, "rb") as fh:
        magic = _header_line(fh, path, "#binvox")
        if len(magic) < 2 or magic[1] != "1":
            raise InputError(f"{path}: unsupported binvox version {' '.join(magic[1:])!r} (expected 1)")
        try:
            dims = [int(v) for v in _header_line(fh, path, "dim")[1:]]
            translate = np.array([float(v) for v in _header_line(fh, path, "translate")[1:]])
            scale = float(_header_line(fh, path, "scale")[1])
        except (ValueError, IndexError):
            raise InputError(f"{path}: malformed binvox header (dim/translate/scale)") from None
        _header_line(fh, path, "data")
        body = np.frombuffer(fh.read(), dtype=np.uint8)
    if len(dims) != 3 or len(set(dims)) != 1 or dims[0] < 1 or dims[0] > 1024:
        raise InputError(f"{path}: binvox dims {dims} are not a cube of side 1..1024")
    if translate.shape != (3,) or not np.all(np.isfinite(translate)) or not np.isfinite(scale) or scale <= 0:
        raise InputError(f"{path}: invalid translate {translate.tolist()} / scale {scale}")
    if len(body) % 2:
        raise InputError(f"{path}: truncated run-length data (odd number of bytes)")
    values, counts = body[0::2], body[1::2].astype(np.int64)
    d = dims[0]
    if counts.sum() != d**3:
        raise InputError(f"{path}: run lengths cover {int(counts.sum())} cells, expected {d}^3 = {d**3}")
    flat = np.repeat(values > 0, counts)
    grid = flat.reshape(d, d, d).transpose(0, 2, 1)  # file order (x, z, y) -> ours [x, y, z]
    return Binvox(np.ascontiguousarray(grid), translate, scale)


def binvox_bytes(vox: Binvox) -> bytes:
    """Encode a grid [x, y, z] as binvox bytes (inverse of :func:`read_binvox`)."""
    grid = np.asarray(vox.grid, dtype=bool)
    d = grid.shape[0]
    flat = grid.transpose(0, 2, 1).reshape(-1).astype(np.uint8)  # ours [x, y, z] -> file (x, z, y)
    change = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    vals, cnts = [], []
    for start, length in zip(starts, lengths):
        while length > 0:  # counts are one byte: split long runs
            step = min(int(length), 255)
            vals.append(flat[start])
            cnts.append(step)
            length -= step
    runs = np.stack([np.array(vals, dtype=np.uint8), np.array(cnts, dtype=np.uint8)], axis=1)
    t = " ".join(repr(float(v)) for v in vox.translate)
    header = f"#binvox 1\ndim {d} {d} {d}\ntranslate {t}\nscale {float(vox.scale)!r}\ndata\n"
    return header.encode("ascii") + runs.tobytes()


def write_binvox(path: str | Path, vox: Binvox) -> None:
    atomic_write_bytes(path, binvox_bytes(vox))


def resample_to_object_grid(vox: Binvox, res: int, half: float = 0.5) -> np.ndarray:
    """(res, res, res) bool grid [x, y, z] over [-half, half]^3: each cell centre looks up the binvox
    cell containing it (nearest neighbour; outside the binvox grid is empty)."""
    d = vox.grid.shape[0]
    pts = voxel_centers(res, half).astype(np.float64)
    idx = np.floor((pts - vox.translate) / vox.scale * d).astype(np.int64)
    ok = np.all((idx >= 0) & (idx < d), axis=1)
    out = np.zeros(len(pts), dtype=bool)
    out[ok] = vox.grid[idx[ok, 0], idx[ok, 1], idx[ok, 2]]
    return out.reshape(res, res, res)
