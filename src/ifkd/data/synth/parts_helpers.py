"""Small part constructors shared by the category builders (``families_*.py``): boxes, beams, rods, prisms.

Frame as in ``families.py``: +Y up, front = +Z, +X to the side.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ifkd.data.synth.primitives import Box, Capsule, Color, ConvexPolyhedron, Cylinder, Part, rotation_y_to

Builder = Callable[[np.random.Generator, list[Color]], list[Part]]
"""A category builder: ``(rng, palette of 5 colours indexed by part role) -> parts`` (not normalised)."""

X_AXIS, Y_AXIS, Z_AXIS = np.eye(3)


def box(lo, hi, color: Color) -> Box:
    """Axis-aligned box from its min and max corners."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return Box(half_extents=(hi - lo) / 2, center=(hi + lo) / 2, color=color)


def beam(p0, p1, width: float, depth: float, color: Color) -> Box:
    """A box of cross-section width x depth whose axis runs from p0 to p1 (legs, rails, struts)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    length = np.linalg.norm(p1 - p0)
    return Box(
        half_extents=(width / 2, length / 2, depth / 2),
        center=(p0 + p1) / 2,
        rotation=rotation_y_to(p1 - p0),
        color=color,
    )


def rod(p0, p1, radius: float, color: Color, taper: float = 1.0, capsule: bool = False) -> Part:
    """A cylinder (or capsule) from p0 to p1; ``taper`` narrows it towards p1."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    half, rot = np.linalg.norm(p1 - p0) / 2, rotation_y_to(p1 - p0)
    if capsule:
        return Capsule(radius=radius, half_length=half, center=(p0 + p1) / 2, rotation=rot, color=color)
    return Cylinder(
        radius=radius, half_height=half, taper=taper, center=(p0 + p1) / 2, rotation=rot, color=color
    )


def prism(profile_zy, x0: float, x1: float, color: Color) -> ConvexPolyhedron:
    """Convex side profile [(z, y), ...] extruded from x = x0 to x = x1."""
    zy = np.asarray(profile_zy, float)
    pts = [np.column_stack([np.full(len(zy), x), zy[:, 1], zy[:, 0]]) for x in (x0, x1)]
    return ConvexPolyhedron.from_points(np.concatenate(pts), color)
