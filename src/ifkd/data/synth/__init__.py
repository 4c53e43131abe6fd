"""The procedural ShapeNet-like dataset: analytic part-based shapes (``make_shape``) in the object frame."""

from ifkd.data.synth.families import CATEGORIES, make_shape
from ifkd.data.synth.primitives import (
    Box,
    Capsule,
    ConvexPolyhedron,
    Cylinder,
    Ellipsoid,
    Part,
    rotation_about,
    rotation_y_to,
)
from ifkd.data.synth.shape import Shape

__all__ = [
    "CATEGORIES",
    "Box",
    "Capsule",
    "ConvexPolyhedron",
    "Cylinder",
    "Ellipsoid",
    "Part",
    "Shape",
    "make_shape",
    "rotation_about",
    "rotation_y_to",
]
