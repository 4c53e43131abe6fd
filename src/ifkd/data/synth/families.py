"""The 13 ShapeNet SVR categories as procedural part-based families: ``make_shape(category, seed)``.

Feeds the synthetic dataset writer. Frame: +Y up, **front = +Z** (a chair's seat edge, a car's and
an airplane's nose, a screen, a speaker's drivers, a rifle's muzzle, a boat's bow), +X to the side.
ShapeNet v2 puts the front at -Z: mirror z to match it. Parts overlap where they join (a leg runs
into the seat) so no internal face is shared exactly; shapes come back normalised (bounding-box
centre at the origin, diagonal 1).
"""

from __future__ import annotations

import numpy as np

from ifkd.data.categories import SYNSETS
from ifkd.data.synth.families_furniture import FURNITURE_BUILDERS
from ifkd.data.synth.families_objects import OBJECT_BUILDERS
from ifkd.data.synth.families_vehicles import VEHICLE_BUILDERS
from ifkd.data.synth.parts_helpers import Builder
from ifkd.data.synth.primitives import Color
from ifkd.data.synth.shape import Shape

CATEGORIES: dict[str, str] = SYNSETS
"""Category name -> ShapeNet synset id: the families mimic these 13 classes."""

_PALETTES = (
    ((120, 80, 50), (165, 118, 75), (92, 58, 34), (205, 172, 130), (60, 40, 25)),  # woods
    ((172, 174, 182), (92, 94, 102), (212, 212, 216), (52, 54, 60), (132, 142, 152)),  # metals
    ((232, 160, 150), (150, 200, 222), (200, 222, 160), (242, 212, 140), (190, 170, 222)),  # pastels
    ((202, 42, 40), (40, 92, 202), (242, 192, 30), (30, 152, 72), (242, 242, 242)),  # vivid
    ((40, 40, 46), (202, 62, 50), (232, 232, 226), (60, 112, 162), (122, 122, 122)),  # dark + accent
)


def _palette(rng: np.random.Generator) -> list[Color]:
    """Five jittered colours of one randomly chosen palette, in random order (index = part role)."""
    base = np.array(_PALETTES[rng.integers(len(_PALETTES))])[rng.permutation(5)]
    rgb = np.clip(base + rng.integers(-20, 21, size=base.shape), 0, 255)
    return [(int(r), int(g), int(b), 255) for r, g, b in rgb]


_BUILDERS: dict[str, Builder] = {**FURNITURE_BUILDERS, **VEHICLE_BUILDERS, **OBJECT_BUILDERS}
"""Category name -> builder; the three groups together cover ``CATEGORIES``."""


def make_shape(category: str, seed: int) -> Shape:
    """The procedural shape ``seed`` of ``category`` (a key of ``CATEGORIES``), normalised.

    Deterministic: the same (category, seed) gives the same parts, sizes and colours on every machine.
    """
    if category not in _BUILDERS:
        raise ValueError(f"unknown category {category!r}; choose one of {', '.join(CATEGORIES)}")
    rng = np.random.default_rng(seed)
    parts = _BUILDERS[category](rng, _palette(rng))
    return Shape(tuple(parts), category).normalised()
