"""Which points of space a mesh encloses, for real meshes: ShapeNet's polygon soups included.

ShapeNet models are double-sided soups: faces stored twice back to back, open shells, parts that
interpenetrate, internal faces, unmerged vertices, winding that flips from part to part. A generalised
winding number on such a soup cancels to 0 everywhere (each face's two copies subtend opposite solid
angles), so a plain winding-number test calls every ShapeNet model empty. :class:`InsideTest` works in
three steps, each fixing one of those pathologies:

1. **Clean**: merge coincident vertices, drop zero-area faces, keep one copy of every face that is
   stored more than once (in either orientation).
2. **Orient by visibility** (Borodin, Zachmann & Klein 2004): winding is made consistent across
   manifold edges (libigl's ``bfs_orient``), then every connected patch is probed from both sides:
   from points just off each side, ``K`` rays in fixed directions count how often that side sees the
   outside. A patch faces the side that sees out more. Patches seen from neither side (inner shells,
   internal faces, the inner one of a double wall) are **hidden**: they lie inside whatever hides them
   and take no part in the labels. Patches seen about equally from both sides are **sheets** (a table
   top modelled as one face, a wing as one surface): they enclose nothing.
3. **Label**: a point is inside when

   - ``|w| >= 0.5``, the generalised winding number (Jacobson et al. 2013; libigl's fast winding
     numbers, Barill et al. 2018) of the oriented shells: it closes small
     openings (a car without a floor, a box missing a face), counts interpenetrating parts once and
     ignores how each part was wound; or
   - **enclosed**: every ray of a fixed set of directions from the point hits the original soup (a
     certificate that needs no orientation at all: a closed part that orientation got wrong stays
     solid); or
   - within :data:`SHEET_HALF_THICKNESS` of a sheet: a zero-volume part gets the thickness of one
     128^3 voxel, as OccNet's depth fusion at 256^3 gives it, instead of vanishing from the labels and
     the voxel grids. Closed parts keep their exact volume however thin (a leg 0.01 wide, a rug): they
     may fall between the voxel centres, as procedural shapes' thin parts do.

What it does not do: a single-layer container (a cup or a bowl modelled as one open surface with no wall
thickness) is filled up to about its rim, since the winding number cannot tell an opening that a
modeller left from one that is the point of the object. Containers modelled with walls (a closed
surface) come out hollow.

Rays are cast with Embree (trimesh's ``embreex`` binding; trimesh's pure-Python intersector where it is
missing), winding numbers and distances with libigl: the numerical work runs in compiled code.
"""

from __future__ import annotations

from dataclasses import dataclass

import igl
import numpy as np
import trimesh

INSIDE_THRESHOLD = 0.5
"""|w| >= 0.5 is inside."""

SHEET_HALF_THICKNESS = 1.0 / 256.0
"""Points this close to a sheet are inside: half of one 128^3 voxel of the [-0.5, 0.5]^3 object box."""

PROBE_OFFSET = 5e-4
"""Visibility probes sit this far off a face (object units; below the thinnest part we model, 0.01)."""

SHEET_RATIO = 0.5
"""A visible patch whose less-visible side sees out at least this share as often as its other side is
a sheet (both sides are outside)."""

VISIBLE_MIN = 0.02
"""A side that sees out through fewer than this share of its rays is hidden."""

ENCLOSED_STAGES = (2, 6, 32)
"""Rays cast per stage of the enclosed test: a point is enclosed when every ray of every stage hits;
most outside points are settled by the first two rays."""


def fibonacci_directions(n: int, seed: int = 0) -> np.ndarray:
    """n (n, 3) unit vectors spread evenly over the sphere (golden-angle spiral), rotated by a fixed
    seeded rotation so that no ray runs along a coordinate axis (modelled faces often do)."""
    i = np.arange(n) + 0.5
    phi = np.arccos(1.0 - 2.0 * i / n)
    theta = np.pi * (1.0 + 5.0**0.5) * i
    d = np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return d @ q.T


def clean_soup(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Coincident vertices merged, zero-area faces dropped, every repeated face (either orientation,
    any vertex order) kept once. Returns a new mesh; the input is untouched."""
    out = trimesh.Trimesh(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces), process=False)
    out.merge_vertices(merge_tex=True, merge_norm=True)
    out.update_faces(out.nondegenerate_faces())
    key = np.sort(np.asarray(out.faces), axis=1)
    _, first = np.unique(key, axis=0, return_index=True)
    out.update_faces(np.sort(first))
    out.remove_unreferenced_vertices()
    return out


def _ray_intersector(mesh: trimesh.Trimesh):
    """Embree where available (two-sided, any-hit queries), else trimesh's pure-Python fallback."""
    try:
        from trimesh.ray.ray_pyembree import RayMeshIntersector

        return RayMeshIntersector(mesh)
    except Exception:  # embreex missing on this platform
        from trimesh.ray.ray_triangle import RayMeshIntersector

        return RayMeshIntersector(mesh)


def _escape_share(rays, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(N,) share of ``directions`` (K, 3) along which a ray from each origin (N, 3) hits nothing."""
    n, k = len(origins), len(directions)
    if n == 0:
        return np.zeros(0)
    hit = rays.intersects_any(np.repeat(origins, k, axis=0), np.tile(directions, (n, 1)))
    return 1.0 - hit.reshape(n, k).mean(axis=1)


@dataclass(frozen=True)
class PatchReport:
    """What orientation found: per patch of the cleaned mesh, its role and its two sides' visibility."""

    labels: np.ndarray
    """(F,) patch id of each face of the cleaned mesh"""
    role: np.ndarray
    """(P,) str: 'shell' (encloses volume, visible), 'sheet' (both sides visible: encloses nothing),
    'hidden' (seen from neither side)"""
    front: np.ndarray
    """(P,) share of rays that escape from the front side's probes (after orientation)"""
    back: np.ndarray
    """(P,) same for the back side"""


class InsideTest:
    """Inside test of one triangle soup: ``__call__(points (N, 3)) -> (N,) bool``.

    ``mesh`` is in any frame; ``probes`` visibility probes per patch (area-weighted, 4 to 32 each),
    ``rays`` directions per probe. ``seed`` fixes probe placement, so a test is deterministic.
    """

    def __init__(self, mesh: trimesh.Trimesh, probes: int = 2048, rays: int = 32, seed: int = 0):
        if len(mesh.faces) == 0:
            raise ValueError("an inside test needs at least one triangle")
        self.rays = _ray_intersector(trimesh.Trimesh(mesh.vertices, mesh.faces, process=False))
        self.directions = fibonacci_directions(rays, seed)
        self.stages = [fibonacci_directions(k, seed + 1 + i) for i, k in enumerate(ENCLOSED_STAGES)]
        clean = clean_soup(mesh)
        # libigl's BFS makes winding consistent across manifold edges and numbers the patches.
        faces, patches = igl.bfs_orient(np.ascontiguousarray(clean.faces, dtype=np.int64))
        clean = trimesh.Trimesh(clean.vertices, faces, process=False)
        faces, report = self._orient(clean, patches, probes, np.random.default_rng(seed))
        self.clean, self.report = trimesh.Trimesh(clean.vertices, faces, process=False), report
        role = report.role[report.labels]
        self._v = np.ascontiguousarray(clean.vertices, dtype=np.float64)
        self._f_solid = np.ascontiguousarray(faces[role == "shell"], dtype=np.int64)
        self._f_sheet = np.ascontiguousarray(faces[role == "sheet"], dtype=np.int64)
        if len(self._f_sheet):
            used = self._v[np.unique(self._f_sheet)]
            self._sheet_box = (
                used.min(axis=0) - SHEET_HALF_THICKNESS,
                used.max(axis=0) + SHEET_HALF_THICKNESS,
            )

    def _orient(
        self, mesh: trimesh.Trimesh, labels: np.ndarray, probes: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, PatchReport]:
        """Faces (F, 3) with every patch (``labels`` (F,) patch ids) facing its more visible side, and
        the per-patch report."""
        labels = np.unique(labels, return_inverse=True)[1].reshape(-1)
        n_patch = int(labels.max()) + 1
        area = mesh.area_faces
        patch_area = np.bincount(labels, weights=area, minlength=n_patch)
        per = np.clip(np.round(probes * patch_area / patch_area.sum()), 4, 32).astype(np.int64)
        # Area-weighted probe faces per patch: sort faces by patch, draw inside each patch's range.
        order = np.argsort(labels, kind="stable")
        start = np.searchsorted(labels[order], np.arange(n_patch))
        cum = np.cumsum(area[order])
        base = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0.0)
        owner = np.repeat(np.arange(n_patch), per)
        u = base[owner] + rng.random(len(owner)) * patch_area[owner]
        face = order[np.minimum(np.searchsorted(cum, u, side="right"), len(order) - 1)]
        uv = rng.random((len(face), 2))
        uv = np.where(uv.sum(axis=1, keepdims=True) > 1.0, 1.0 - uv, uv)
        tri = mesh.triangles[face]
        p = tri[:, 0] + uv[:, :1] * (tri[:, 1] - tri[:, 0]) + uv[:, 1:] * (tri[:, 2] - tri[:, 0])
        normal = mesh.face_normals[face]
        out_f = _escape_share(self.rays, p + PROBE_OFFSET * normal, self.directions)
        out_b = _escape_share(self.rays, p - PROBE_OFFSET * normal, self.directions)
        count = np.bincount(owner, minlength=n_patch)
        front = np.bincount(owner, weights=out_f, minlength=n_patch) / count
        back = np.bincount(owner, weights=out_b, minlength=n_patch) / count
        flip = back > front
        front, back = np.where(flip, back, front), np.where(flip, front, back)
        hidden = front < VISIBLE_MIN
        sheet = ~hidden & (back >= SHEET_RATIO * front)
        role = np.select([hidden, sheet], ["hidden", "sheet"], "shell")
        faces = np.asarray(mesh.faces).copy()
        faces[flip[labels]] = faces[flip[labels]][:, ::-1]
        return faces, PatchReport(labels, role, front, back)

    def winding_number(self, points: np.ndarray) -> np.ndarray:
        """(N,) generalised winding numbers of points (N, 3) w.r.t. the oriented shells."""
        points = np.ascontiguousarray(np.asarray(points, dtype=np.float64).reshape(-1, 3))
        if len(self._f_solid) == 0 or len(points) == 0:
            return np.zeros(len(points))
        return igl.fast_winding_number(self._v, self._f_solid, points)

    def enclosed(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: every ray of :data:`ENCLOSED_STAGES` from the point hits the original soup."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        alive = np.arange(len(points))
        for dirs in self.stages:
            if len(alive) == 0:
                break
            alive = alive[_escape_share(self.rays, points[alive], dirs) == 0.0]
        out = np.zeros(len(points), dtype=bool)
        out[alive] = True
        return out

    def near_sheet(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: within :data:`SHEET_HALF_THICKNESS` of a sheet patch."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        out = np.zeros(len(points), dtype=bool)
        if not len(self._f_sheet):
            return out
        lo, hi = self._sheet_box
        cand = np.flatnonzero(np.all((points >= lo) & (points <= hi), axis=1))
        if len(cand):
            d2 = igl.point_mesh_squared_distance(np.ascontiguousarray(points[cand]), self._v, self._f_sheet)[
                0
            ]
            out[cand] = d2 <= SHEET_HALF_THICKNESS**2
        return out

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        inside = np.abs(self.winding_number(points)) >= INSIDE_THRESHOLD
        rest = np.flatnonzero(~inside)
        inside[rest] = self.enclosed(points[rest])
        rest = rest[~inside[rest]]
        inside[rest] = self.near_sheet(points[rest])
        return inside

    def visible_faces(self) -> np.ndarray:
        """(F,) bool over the cleaned mesh's faces: patches seen from outside (shells and sheets); the
        hidden ones (inner shells, internal faces) are not part of the surface a viewer sees."""
        return self.report.role[self.report.labels] != "hidden"
