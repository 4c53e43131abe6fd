"""Analytic solid primitives (``Part``s): exact inside tests, area-uniform surface samples, meshes.

The procedural ShapeNet-like families (``families.py``) build every shape from these parts, and
``shape.py`` unions them into a ``Shape`` whose occupancy, surface and voxels need no meshing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import ClassVar

import numpy as np
import trimesh
from scipy.spatial import ConvexHull

Color = tuple[int, int, int, int]
"""RGBA, 0-255."""
GREY: Color = (180, 180, 180, 255)

_Z_TO_Y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # proper rotation, +Z -> +Y


def rotation_about(axis: np.ndarray | tuple[float, float, float], angle: float) -> np.ndarray:
    """(3, 3) right-handed rotation by ``angle`` radians about ``axis`` (Rodrigues)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def rotation_y_to(direction: np.ndarray | tuple[float, float, float]) -> np.ndarray:
    """(3, 3) the smallest rotation taking local +Y onto ``direction`` (the axis of cylinders/capsules)."""
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    y = np.array([0.0, 1.0, 0.0])
    axis = np.cross(y, d)
    s, c = np.linalg.norm(axis), float(np.dot(y, d))
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    return rotation_about(axis, float(np.arctan2(s, c)))


def _times_matrix(q: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(N, 3) ``q @ m`` written out: for 3 columns this beats BLAS matmul several times over."""
    m = m.astype(q.dtype)
    return np.stack(
        [q[:, 0] * m[0, j] + q[:, 1] * m[1, j] + q[:, 2] * m[2, j] for j in range(m.shape[1])], axis=1
    )


def _unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _disk(n: int, radius: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform (x, z) samples on a disk of ``radius`` in the local XZ plane."""
    rho, theta = radius * np.sqrt(rng.random(n)), rng.uniform(0.0, 2.0 * np.pi, n)
    return rho * np.cos(theta), rho * np.sin(theta)


@dataclass(frozen=True, eq=False, kw_only=True)
class Part:
    """One solid: local geometry placed by a rigid transform ``p_world = rotation @ q_local + center``."""

    center: np.ndarray = field(default_factory=lambda: np.zeros(3))
    """(3,) world position of the local origin"""
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    """(3, 3) local -> world rotation"""
    color: Color = GREY
    axis_aligned: bool = field(init=False, default=False, repr=False)
    """rotation is exactly the identity (set on construction)"""

    _LENGTHS: ClassVar[tuple[str, ...]] = ()  # fields that scale with the part

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", np.asarray(self.center, dtype=np.float64).reshape(3))
        object.__setattr__(self, "rotation", np.asarray(self.rotation, dtype=np.float64).reshape(3, 3))
        # Most furniture parts are unrotated: skipping the matmul for them is exact and much faster.
        object.__setattr__(self, "axis_aligned", bool(np.array_equal(self.rotation, np.eye(3))))
        for name in self._LENGTHS:
            value = np.asarray(getattr(self, name), dtype=np.float64)
            object.__setattr__(self, name, value if value.ndim else float(value))

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> local frame, in the points' dtype."""
        q = points - self.center.astype(points.dtype)
        return q if self.axis_aligned else _times_matrix(q, self.rotation)

    def contains(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """(N,) bool: inside or on the solid shrunk by ``margin`` (margin > 0 means strictly inside)."""
        return self._contains_local(self.to_local(np.asarray(points)), margin)

    def contains_grid(self, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
        """(X, Y, Z) bool: :meth:`contains` at the grid points (xs[i], ys[j], zs[k]) of 1-D coordinates."""
        axes = np.meshgrid(xs, ys, zs, indexing="ij")
        pts = np.stack([a.reshape(-1) for a in axes], axis=1)
        return self.contains(pts).reshape(len(xs), len(ys), len(zs))

    def sample_surface(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` area-uniform surface points (N, 3) and unit outward normals (N, 3), world frame."""
        q, nq = self._sample_local(n, rng)
        return q @ self.rotation.T + self.center, nq @ self.rotation.T

    def to_mesh(self) -> trimesh.Trimesh:
        """A watertight triangle mesh of the part (world frame, faces coloured with ``color``)."""
        mesh = self._local_mesh()
        mesh.vertices = mesh.vertices @ self.rotation.T + self.center
        mesh.visual.face_colors = np.tile(np.array(self.color, np.uint8), (len(mesh.faces), 1))
        return mesh

    def rescaled(self, scale: float, offset: np.ndarray) -> Part:
        """A copy mapped by ``p -> scale * p + offset`` (uniform scale > 0)."""
        lengths = {name: getattr(self, name) * scale for name in self._LENGTHS}
        return replace(self, center=self.center * scale + np.asarray(offset), **lengths)

    @cached_property
    def bounds(self) -> np.ndarray:
        """(2, 3) exact world axis-aligned bounding box [min, max] (read-only, computed once)."""
        b = self._bounds()
        b.setflags(write=False)
        return b

    # Subclasses implement the local geometry.
    @cached_property
    def area(self) -> float:
        raise NotImplementedError

    @property
    def thickness(self) -> float:
        """The part's smallest extent (thin legs, panels, wings have small values)."""
        raise NotImplementedError

    def _contains_local(self, q: np.ndarray, margin: float) -> np.ndarray:
        raise NotImplementedError

    def _sample_local(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _bounds(self) -> np.ndarray:
        raise NotImplementedError

    def _local_mesh(self) -> trimesh.Trimesh:
        raise NotImplementedError


@dataclass(frozen=True, eq=False, kw_only=True)
class Box(Part):
    """An oriented box centred on the local origin."""

    half_extents: np.ndarray
    """(3,) half sizes along local x, y, z"""
    _LENGTHS: ClassVar[tuple[str, ...]] = ("half_extents",)

    @cached_property
    def area(self) -> float:
        hx, hy, hz = self.half_extents
        return float(8.0 * (hx * hy + hy * hz + hx * hz))

    def _bounds(self) -> np.ndarray:
        ext = np.abs(self.rotation) @ self.half_extents  # exact: the extremes are corners
        return np.stack([self.center - ext, self.center + ext])

    @property
    def thickness(self) -> float:
        return float(2.0 * self.half_extents.min())

    def _contains_local(self, q: np.ndarray, margin: float) -> np.ndarray:
        return np.all(np.abs(q) <= (self.half_extents - margin).astype(q.dtype), axis=1)

    def contains_grid(self, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
        if not self.axis_aligned:
            return super().contains_grid(xs, ys, zs)
        # Separable: the same per-coordinate float ops as contains(), on 1-D axes only.
        ax, ay, az = (
            np.abs(v - c) <= h
            for v, c, h in zip((xs, ys, zs), self.center.astype(xs.dtype), self.half_extents.astype(xs.dtype))
        )
        return ax[:, None, None] & ay[None, :, None] & az[None, None, :]

    def _sample_local(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        h = self.half_extents
        face_area = np.repeat([h[1] * h[2], h[0] * h[2], h[0] * h[1]], 2)  # faces -x, +x, -y, ...
        face = rng.choice(6, size=n, p=face_area / face_area.sum())
        axis, sign = face // 2, np.where(face % 2 == 1, 1.0, -1.0)
        q = rng.uniform(-1.0, 1.0, (n, 3)) * h
        rows = np.arange(n)
        q[rows, axis] = sign * h[axis]
        normals = np.zeros((n, 3))
        normals[rows, axis] = sign
        return q, normals

    def _local_mesh(self) -> trimesh.Trimesh:
        return trimesh.creation.box(extents=2.0 * self.half_extents)


@dataclass(frozen=True, eq=False, kw_only=True)
class Cylinder(Part):
    """A capped cylinder along local Y, centred; ``taper`` < 1 makes a cone frustum (top radius smaller)."""

    radius: float
    """bottom radius (at local y = -half_height)"""
    half_height: float
    taper: float = 1.0
    """top radius / bottom radius (0 gives a cone)"""
    sections: int = 32
    """mesh segments around the axis"""
    _LENGTHS: ClassVar[tuple[str, ...]] = ("radius", "half_height")

    @property
    def _radii(self) -> tuple[float, float]:
        return self.radius, self.radius * self.taper

    @cached_property
    def area(self) -> float:
        r0, r1 = self._radii
        slant = np.hypot(r1 - r0, 2.0 * self.half_height)
        return float(np.pi * ((r0 + r1) * slant + r0**2 + r1**2))

    def _bounds(self) -> np.ndarray:
        axis = self.rotation[:, 1]
        disk = np.sqrt(np.clip(1.0 - axis**2, 0.0, None))  # per-axis extent of a unit disk normal to axis
        ends = [(self.center + s * self.half_height * axis, r) for s, r in zip((-1, 1), self._radii)]
        lo = np.min([c - r * disk for c, r in ends], axis=0)
        hi = np.max([c + r * disk for c, r in ends], axis=0)
        return np.stack([lo, hi])

    @property
    def thickness(self) -> float:
        return float(min(2.0 * max(self._radii), 2.0 * self.half_height))

    def _contains_local(self, q: np.ndarray, margin: float) -> np.ndarray:
        r0, r1 = self._radii
        h = self.half_height
        r_at_y = r0 + (r1 - r0) * (q[:, 1] + h) / (2.0 * h)
        rho2 = q[:, 0] ** 2 + q[:, 2] ** 2
        return (np.abs(q[:, 1]) <= h - margin) & (rho2 <= np.maximum(r_at_y - margin, 0.0) ** 2)

    def _sample_local(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        r0, r1 = self._radii
        h = self.half_height
        areas = np.array([np.pi * (r0 + r1) * np.hypot(r1 - r0, 2.0 * h), np.pi * r0**2, np.pi * r1**2])
        which = rng.choice(3, size=n, p=areas / areas.sum())
        q, normals = np.zeros((n, 3)), np.zeros((n, 3))
        side = which == 0
        k = int(side.sum())
        # Lateral area density along the axis is proportional to r(t): invert its CDF.
        u = rng.random(k)
        if abs(r1 - r0) < 1e-12 * max(r0, r1):
            t = u
        else:
            t = (np.sqrt(r0**2 + u * (r1**2 - r0**2)) - r0) / (r1 - r0)
        theta = rng.uniform(0.0, 2.0 * np.pi, k)
        r = r0 + (r1 - r0) * t
        q[side] = np.stack([r * np.cos(theta), -h + 2.0 * h * t, r * np.sin(theta)], axis=1)
        nrm = np.stack([2.0 * h * np.cos(theta), np.full(k, r0 - r1), 2.0 * h * np.sin(theta)], axis=1)
        normals[side] = nrm / np.linalg.norm(nrm, axis=1, keepdims=True)
        for cap, y, radius in ((1, -h, r0), (2, h, r1)):
            sel = which == cap
            x, z = _disk(int(sel.sum()), radius, rng)
            q[sel] = np.stack([x, np.full_like(x, y), z], axis=1)
            normals[sel] = [0.0, np.sign(y), 0.0]
        return q, normals

    def _local_mesh(self) -> trimesh.Trimesh:
        r0, r1 = self._radii
        h = self.half_height
        profile = [[0.0, -h], [r0, -h]] + ([[r1, h]] if r1 > 0 else []) + [[0.0, h]]
        mesh = trimesh.creation.revolve(np.array(profile), sections=self.sections)
        mesh.vertices = mesh.vertices @ _Z_TO_Y.T
        return mesh


@dataclass(frozen=True, eq=False, kw_only=True)
class Capsule(Part):
    """A segment from local y = -half_length to +half_length swept by a ball of ``radius``."""

    radius: float
    half_length: float
    sections: int = 24
    _LENGTHS: ClassVar[tuple[str, ...]] = ("radius", "half_length")

    @cached_property
    def area(self) -> float:
        return float(4.0 * np.pi * self.radius * self.half_length + 4.0 * np.pi * self.radius**2)

    def _bounds(self) -> np.ndarray:
        ends = self.center + np.outer([-1.0, 1.0], self.half_length * self.rotation[:, 1])
        return np.stack([ends.min(axis=0) - self.radius, ends.max(axis=0) + self.radius])

    @property
    def thickness(self) -> float:
        return float(2.0 * self.radius)

    def _contains_local(self, q: np.ndarray, margin: float) -> np.ndarray:
        y = np.clip(q[:, 1], -self.half_length, self.half_length)
        d2 = q[:, 0] ** 2 + (q[:, 1] - y) ** 2 + q[:, 2] ** 2
        return d2 <= max(self.radius - margin, 0.0) ** 2

    def _sample_local(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        r, h = self.radius, self.half_length
        on_side = rng.random(n) < (4.0 * np.pi * r * h) / self.area
        normals = _unit_vectors(n, rng)
        normals[on_side, 1] = 0.0
        normals[on_side] /= np.linalg.norm(normals[on_side], axis=1, keepdims=True)
        q = r * normals
        q[on_side, 1] = rng.uniform(-h, h, int(on_side.sum()))
        q[~on_side, 1] += np.where(normals[~on_side, 1] >= 0.0, h, -h)  # hemispheres at the two ends
        return q, normals

    def _local_mesh(self) -> trimesh.Trimesh:
        mesh = trimesh.creation.capsule(
            height=2.0 * self.half_length, radius=self.radius, count=[self.sections, self.sections]
        )
        mesh.vertices = mesh.vertices @ _Z_TO_Y.T
        return mesh


@dataclass(frozen=True, eq=False, kw_only=True)
class Ellipsoid(Part):
    """An ellipsoid with semi-axes ``radii`` along local x, y, z (a sphere when they are equal)."""

    radii: np.ndarray
    """(3,) semi-axes"""
    _LENGTHS: ClassVar[tuple[str, ...]] = ("radii",)

    @cached_property
    def area(self) -> float:
        # Thomsen's formula: exact for spheres, within 1.1 % otherwise (only used to weight parts).
        a, b, c = self.radii
        p = 1.6075
        return float(4.0 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3.0) ** (1.0 / p))

    def _bounds(self) -> np.ndarray:
        ext = np.sqrt(((self.rotation * self.radii) ** 2).sum(axis=1))
        return np.stack([self.center - ext, self.center + ext])

    @property
    def thickness(self) -> float:
        return float(2.0 * self.radii.min())

    def _contains_local(self, q: np.ndarray, margin: float) -> np.ndarray:
        radii = np.maximum(self.radii - margin, 1e-12).astype(q.dtype)  # shrink approximates margin
        return ((q / radii) ** 2).sum(axis=1) <= 1.0

    def _sample_local(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        a, b, c = self.radii
        scale = np.array([b * c, a * c, a * b])  # area stretch of the map sphere -> ellipsoid per axis
        out, have = [np.zeros((0, 3))], 0
        while have < n:
            u = _unit_vectors(2 * (n - have) + 16, rng)
            stretch = np.sqrt(((u * scale) ** 2).sum(axis=1))
            keep = u[rng.random(len(u)) * scale.max() < stretch]  # rejection -> area-uniform
            out.append(keep)
            have += len(keep)
        u = np.concatenate(out)[:n]
        normals = u / self.radii
        return u * self.radii, normals / np.linalg.norm(normals, axis=1, keepdims=True)

    def _local_mesh(self) -> trimesh.Trimesh:
        mesh = trimesh.creation.icosphere(subdivisions=3)
        mesh.vertices = mesh.vertices * self.radii
        return mesh


@dataclass(frozen=True, eq=False, kw_only=True)
class ConvexPolyhedron(Part):
    """The convex hull of local ``vertices``: wedges, swept wings, boat hulls, car bodies."""

    vertices: np.ndarray
    """(V, 3) local points; the solid is their convex hull"""
    _LENGTHS: ClassVar[tuple[str, ...]] = ("vertices",)

    def __post_init__(self) -> None:
        super().__post_init__()
        hull = ConvexHull(self.vertices)  # qhull: outward unit normals n, inside n.x + d <= 0
        normals, offsets = hull.equations[:, :3], -hull.equations[:, 3]
        faces = hull.simplices.copy()
        tri = self.vertices[faces]
        cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        flip = np.einsum("ij,ij->i", cross, normals) < 0  # wind every triangle counter-clockwise
        faces[flip] = faces[flip][:, ::-1]
        object.__setattr__(self, "_faces", faces)
        object.__setattr__(self, "_face_normals", normals)
        object.__setattr__(self, "_face_areas", 0.5 * np.linalg.norm(cross, axis=1))
        # Each planar facet comes as several triangles: test each plane once.
        _, first = np.unique(np.round(hull.equations, 9), axis=0, return_index=True)
        object.__setattr__(self, "_planes", (normals[np.sort(first)], offsets[np.sort(first)]))

    @classmethod
    def from_points(cls, points: np.ndarray, color: Color = GREY) -> ConvexPolyhedron:
        """The hull of world ``points`` (N, 3), with the local origin at their mean."""
        points = np.asarray(points, dtype=np.float64)
        c = points.mean(axis=0)
        return cls(vertices=points - c, center=c, color=color)

    @cached_property
    def area(self) -> float:
        return float(self._face_areas.sum())

    def _bounds(self) -> np.ndarray:
        world = self.vertices @ self.rotation.T + self.center
        return np.stack([world.min(axis=0), world.max(axis=0)])

    @property
    def thickness(self) -> float:
        normals, _ = self._planes
        proj = self.vertices @ normals.T
        return float((proj.max(axis=0) - proj.min(axis=0)).min())

    def _contains_local(self, q: np.ndarray, margin: float) -> np.ndarray:
        normals, offsets = self._planes
        inside = np.ones(len(q), dtype=bool)
        for (a, b, c), o in zip(normals.astype(q.dtype), (offsets - margin).astype(q.dtype)):
            inside &= q[:, 0] * a + q[:, 1] * b + q[:, 2] * c <= o
        return inside

    def contains_grid(self, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
        if not self.axis_aligned:
            return super().contains_grid(xs, ys, zs)
        # Separable sums in the same order and dtype as _contains_local: bit-identical, far cheaper.
        qx, qy, qz = (v - c for v, c in zip((xs, ys, zs), self.center.astype(xs.dtype)))
        normals, offsets = self._planes
        inside = np.ones((len(xs), len(ys), len(zs)), dtype=bool)
        for (a, b, c), o in zip(normals.astype(xs.dtype), offsets.astype(xs.dtype)):
            inside &= (qx * a)[:, None, None] + (qy * b)[None, :, None] + (qz * c)[None, None, :] <= o
        return inside

    def _sample_local(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        areas = self._face_areas
        face = rng.choice(len(areas), size=n, p=areas / areas.sum())
        u, v = rng.random(n), rng.random(n)
        flip = u + v > 1.0
        u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
        tri = self.vertices[self._faces[face]]
        q = tri[:, 0] + u[:, None] * (tri[:, 1] - tri[:, 0]) + v[:, None] * (tri[:, 2] - tri[:, 0])
        return q, self._face_normals[face]

    def _local_mesh(self) -> trimesh.Trimesh:
        return trimesh.Trimesh(vertices=self.vertices, faces=self._faces)  # drops interior points
