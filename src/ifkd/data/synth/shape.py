"""The union of analytic parts (``Shape``): occupancy, voxels, outer-surface samples, mesh, normalisation.

Built by the category families (``families.py``) from ``primitives.py`` parts; the dataset writer gets
its ground truth from it without ever meshing the union.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import trimesh

from ifkd.data.synth.primitives import Part
from ifkd.geometry.voxels import OBJECT_HALF, cell_centers_1d

# Tolerance (object units) of "strictly inside" / "on the surface" when hiding surface samples: a face
# flush with another part's face (a shelf flush with a cabinet side) is outer surface, sampled once.
_HIDDEN_MARGIN = 1e-7
# Bounding boxes are padded by this before the cheap pre-test, so that float32 queries on a box
# face never miss a part whose exact test would accept them.
_BBOX_PAD = 1e-6


@dataclass(frozen=True, eq=False)
class Shape:
    """A solid that is the union of ``parts`` (world frame = object frame once normalised)."""

    parts: tuple[Part, ...]
    category: str = ""

    @cached_property
    def bounds(self) -> np.ndarray:
        """(2, 3) exact axis-aligned bounding box of the union."""
        b = np.stack([p.bounds for p in self.parts])
        b = np.stack([b[:, 0].min(axis=0), b[:, 1].max(axis=0)])
        b.setflags(write=False)
        return b

    @cached_property
    def area(self) -> float:
        """Sum of part areas (an upper bound of the outer surface area)."""
        return float(sum(p.area for p in self.parts))

    def occupancy(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: ``points`` (N, 3) lie inside or on the union.

        Each part is tested only on the points inside its (padded) bounding box that no earlier part
        already claimed, which keeps this cheap for many thin parts.
        """
        points = np.asarray(points)
        inside = np.zeros(len(points), dtype=bool)
        for part in self.parts:
            lo, hi = part.bounds
            cand = ~inside & np.all((points >= lo - _BBOX_PAD) & (points <= hi + _BBOX_PAD), axis=1)
            idx = np.flatnonzero(cand)
            if len(idx):
                inside[idx] = part.contains(points[idx])
        return inside

    def voxelize(self, res: int, half: float = OBJECT_HALF) -> np.ndarray:
        """(res, res, res) bool occupancy at the cell centres of ``ifkd.geometry.voxels.voxel_centers``.

        Same values as ``voxels.voxelize(self.occupancy, res, half)`` (tested), but each part is
        evaluated only on the block of cells inside its bounding box (separably for unrotated boxes).
        """
        xs = cell_centers_1d(res, half)
        grid = np.zeros((res, res, res), dtype=bool)
        for part in self.parts:
            lo, hi = part.bounds
            start = np.searchsorted(xs, lo - _BBOX_PAD, side="left")
            stop = np.searchsorted(xs, hi + _BBOX_PAD, side="right")
            if np.all(stop > start):
                block = tuple(slice(i, j) for i, j in zip(start, stop))
                grid[block] |= part.contains_grid(*(xs[s] for s in block))
        return grid

    def sample_surface(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` area-uniform samples (N, 3) of the union's OUTER surface and outward unit normals (N, 3).

        Parts are sampled area-weighted; hidden samples (see :meth:`_hidden`) are dropped and the draw
        is topped up until ``n`` remain (in random order, so the first n are unbiased).
        """
        areas = np.array([p.area for p in self.parts])
        pts_out, nrm_out, have, m = [], [], 0, int(n * 1.25) + 16
        for _ in range(100):
            counts = rng.multinomial(m, areas / areas.sum())
            drawn = [part.sample_surface(int(k), rng) for part, k in zip(self.parts, counts)]
            pts = np.concatenate([d[0] for d in drawn])
            keep = ~self._hidden(pts, np.repeat(np.arange(len(self.parts)), counts))
            order = rng.permutation(np.flatnonzero(keep))
            pts_out.append(pts[order])
            nrm_out.append(np.concatenate([d[1] for d in drawn])[order])
            have += len(order)
            if have >= n:
                return np.concatenate(pts_out)[:n], np.concatenate(nrm_out)[:n]
            m = int((n - have) / max(len(order) / m, 0.05) * 1.2) + 16
        raise RuntimeError("sample_surface: the parts' surfaces are almost entirely hidden")

    def _hidden(self, points: np.ndarray, owner: np.ndarray) -> np.ndarray:
        """(N,) bool: ``points`` (N, 3), each on the surface of part ``owner`` (N,), are not outer surface.

        Hidden = strictly inside another part, or on the surface of a part listed earlier: a face
        region shared by two flush parts is then sampled once (by the earlier part), not twice.
        """
        hidden = np.zeros(len(points), dtype=bool)
        for j, part in enumerate(self.parts):
            lo, hi = part.bounds
            near = ~hidden & np.all((points >= lo - _BBOX_PAD) & (points <= hi + _BBOX_PAD), axis=1)
            for sel, margin in ((owner > j, -_HIDDEN_MARGIN), (owner < j, _HIDDEN_MARGIN)):
                idx = np.flatnonzero(near & sel)
                if len(idx):
                    hidden[idx] = part.contains(points[idx], margin=margin)
        return hidden

    def to_mesh(self) -> trimesh.Trimesh:
        """All part meshes in one (overlapping, not a boolean union) with per-face colours.

        A ray caster's first hit on it is a point of the union's outer surface; ``contains`` on it is
        NOT the union's occupancy (use :meth:`occupancy`).
        """
        meshes = [p.to_mesh() for p in self.parts]
        offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
        mesh = trimesh.Trimesh(
            vertices=np.concatenate([m.vertices for m in meshes]),
            faces=np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]),
            process=False,
        )
        mesh.visual.face_colors = np.concatenate([m.visual.face_colors for m in meshes])
        return mesh

    def rescaled(self, scale: float, offset: np.ndarray) -> Shape:
        """A copy mapped by ``p -> scale * p + offset``."""
        return Shape(tuple(p.rescaled(scale, offset) for p in self.parts), self.category)

    def normalised(self) -> Shape:
        """A copy in the ShapeNet v1 frame: bounding-box centre at the origin, bounding-box diagonal 1."""
        lo, hi = self.bounds
        scale = 1.0 / float(np.linalg.norm(hi - lo))
        return self.rescaled(scale, -0.5 * (lo + hi) * scale)
