"""The 13 ShapeNet SVR categories as procedural part-based families: ``make_shape(category, seed)``.

Feeds the synthetic dataset writer. Frame: +Y up, **front = +Z** (a chair's seat edge, a car's and
an airplane's nose, a screen, a speaker's drivers, a rifle's muzzle, a boat's bow), +X to the side.
ShapeNet v2 puts the front at -Z: mirror z to match it. Parts overlap where they join (a leg runs
into the seat) so no internal face is shared exactly; shapes come back normalised (bounding-box
centre at the origin, diagonal 1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ifkd.data.synth.primitives import (
    Box,
    Capsule,
    Color,
    ConvexPolyhedron,
    Cylinder,
    Ellipsoid,
    Part,
    Shape,
    rotation_about,
    rotation_y_to,
)

CATEGORIES: dict[str, str] = {
    "airplane": "02691156",
    "bench": "02828884",
    "cabinet": "02933112",
    "car": "02958343",
    "chair": "03001627",
    "display": "03211117",
    "lamp": "03636649",
    "loudspeaker": "03691459",
    "rifle": "04090263",
    "sofa": "04256520",
    "table": "04379243",
    "telephone": "04401088",
    "vessel": "04530566",
}
"""Category name -> ShapeNet synset id (the 13 classes of the R2N2 / OccNet SVR benchmark)."""

_PALETTES = (
    ((120, 80, 50), (165, 118, 75), (92, 58, 34), (205, 172, 130), (60, 40, 25)),  # woods
    ((172, 174, 182), (92, 94, 102), (212, 212, 216), (52, 54, 60), (132, 142, 152)),  # metals
    ((232, 160, 150), (150, 200, 222), (200, 222, 160), (242, 212, 140), (190, 170, 222)),  # pastels
    ((202, 42, 40), (40, 92, 202), (242, 192, 30), (30, 152, 72), (242, 242, 242)),  # vivid
    ((40, 40, 46), (202, 62, 50), (232, 232, 226), (60, 112, 162), (122, 122, 122)),  # dark + accent
)
_X, _Y, _Z = np.eye(3)


def _palette(rng: np.random.Generator) -> list[Color]:
    """Five jittered colours of one randomly chosen palette, in random order (index = part role)."""
    base = np.array(_PALETTES[rng.integers(len(_PALETTES))])[rng.permutation(5)]
    rgb = np.clip(base + rng.integers(-20, 21, size=base.shape), 0, 255)
    return [(int(r), int(g), int(b), 255) for r, g, b in rgb]


def _box(lo, hi, color: Color) -> Box:
    """Axis-aligned box from its min and max corners."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return Box(half_extents=(hi - lo) / 2, center=(hi + lo) / 2, color=color)


def _beam(p0, p1, width: float, depth: float, color: Color) -> Box:
    """A box of cross-section width x depth whose axis runs from p0 to p1 (legs, rails, struts)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    length = np.linalg.norm(p1 - p0)
    return Box(
        half_extents=(width / 2, length / 2, depth / 2),
        center=(p0 + p1) / 2,
        rotation=rotation_y_to(p1 - p0),
        color=color,
    )


def _rod(p0, p1, radius: float, color: Color, taper: float = 1.0, capsule: bool = False) -> Part:
    """A cylinder (or capsule) from p0 to p1; ``taper`` narrows it towards p1."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    half, rot = np.linalg.norm(p1 - p0) / 2, rotation_y_to(p1 - p0)
    if capsule:
        return Capsule(radius=radius, half_length=half, center=(p0 + p1) / 2, rotation=rot, color=color)
    return Cylinder(
        radius=radius, half_height=half, taper=taper, center=(p0 + p1) / 2, rotation=rot, color=color
    )


def _prism(profile_zy, x0: float, x1: float, color: Color) -> ConvexPolyhedron:
    """Convex side profile [(z, y), ...] extruded from x = x0 to x = x1."""
    zy = np.asarray(profile_zy, float)
    pts = [np.column_stack([np.full(len(zy), x), zy[:, 1], zy[:, 0]]) for x in (x0, x1)]
    return ConvexPolyhedron.from_points(np.concatenate(pts), color)


def _chair(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    w, d, h, t = u(0.4, 0.6), u(0.4, 0.55), u(0.38, 0.5), u(0.03, 0.08)
    parts: list[Part] = [_box((-w / 2, h - t, -d / 2), (w / 2, h, d / 2), c[0])]
    under = h - t / 2  # legs and columns run up to mid-seat
    base = rng.choice(["legs", "round", "pedestal"], p=[0.45, 0.3, 0.25])
    if base == "pedestal":
        rc, arm, lt = u(0.018, 0.03), u(0.24, 0.32), u(0.025, 0.04)
        ys = 2 * rc + lt / 2 - 0.005
        parts.append(_rod((0, ys - lt, 0), (0, under, 0), u(0.02, 0.04), c[1]))
        for a in 2 * np.pi * np.arange(5) / 5 + u(0, 2 * np.pi):
            end = np.array([arm * np.cos(a), ys, arm * np.sin(a)])
            parts += [
                _beam((0, ys, 0), end, lt, lt, c[1]),
                Ellipsoid(radii=np.full(3, rc), center=end - (0, ys - rc, 0), color=c[2]),
            ]
    else:
        lt, inset, splay = u(0.02, 0.05), u(0.0, 0.04), u(0.0, 0.05) * (rng.random() < 0.4)
        for sx in (-1, 1):
            for sz in (-1, 1):
                x, z = sx * (w / 2 - inset - lt / 2), sz * (d / 2 - inset - lt / 2)
                foot, top = (x + sx * splay, 0.0, z + sz * splay), (x, under, z)
                parts.append(
                    _rod(foot, top, lt / 2, c[1]) if base == "round" else _beam(foot, top, lt, lt, c[1])
                )
            if rng.random() < 0.4:  # side stretcher between front and back leg
                y, x = u(0.08, 0.2), sx * (w / 2 - inset - lt / 2 + splay * 0.6)
                parts.append(_beam((x, y, -(d / 2 - inset)), (x, y, d / 2 - inset), lt * 0.4, lt * 0.4, c[1]))
    bh, bt, tilt = u(0.3, 0.6), u(0.02, 0.06), u(0.0, 0.25)
    rot, pivot = rotation_about(_X, -tilt), np.array([0.0, under, -d / 2 + bt / 2])

    def back_box(x0: float, x1: float, y0: float, y1: float, depth: float, color: Color) -> Box:
        local = np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0.0])
        half = ((x1 - x0) / 2, (y1 - y0) / 2, depth / 2)
        return Box(half_extents=half, center=pivot + rot @ local, rotation=rot, color=color)

    style, w2 = (
        rng.choice(["panel", "slats", "spindles", "frame"]),
        w / 2 - 0.003,
    )  # no face flush with the seat's
    if style == "panel":
        parts.append(back_box(-w2, w2, 0.0, bh, bt, c[3]))
    else:
        pw, rail = u(0.025, 0.05), u(0.04, 0.1)
        parts += [back_box(s * w2 - (s > 0) * pw, s * w2 + (s < 0) * pw, 0.0, bh, bt, c[1]) for s in (-1, 1)]
        parts.append(back_box(-w2, w2, bh - rail, bh, bt * 0.9, c[3]))
        if style == "slats":
            for y in np.linspace(t, bh - rail, rng.integers(1, 4) + 2)[1:-1]:
                parts.append(back_box(-w / 2 + pw / 2, w / 2 - pw / 2, y - 0.025, y + 0.025, bt * 0.7, c[3]))
        elif style == "spindles":
            sw = u(0.012, 0.03)
            for x in np.linspace(-w / 2 + pw, w / 2 - pw, rng.integers(2, 6) + 2)[1:-1]:
                parts.append(back_box(x - sw / 2, x + sw / 2, 0.0, bh - rail / 2, bt * 0.6, c[3]))
    if rng.random() < 0.3:  # arms
        ah, aw, at = h + u(0.15, 0.25), u(0.03, 0.07), u(0.02, 0.04)
        for s in (-1, 1):
            x = s * (w / 2 - aw / 2)
            parts.append(_box((x - aw / 2, ah - at, -d / 2), (x + aw / 2, ah, d / 2 - 0.02), c[1]))
            parts.append(
                _beam((x, h - t / 2, d / 2 - 0.06), (x, ah - at / 2, d / 2 - 0.06), aw * 0.6, aw * 0.6, c[1])
            )
    return parts


def _table(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    h, t = u(0.45, 0.8), u(0.02, 0.06)
    if rng.random() < 0.3:
        r = u(0.35, 0.6)
        parts: list[Part] = [Cylinder(radius=r, half_height=t / 2, center=(0, h - t / 2, 0), color=c[0])]
        w = d = r * np.sqrt(2)
        kind = rng.choice(["legs", "pedestal"], p=[0.4, 0.6])
    else:
        w = u(0.8, 1.8)
        d = min(w * u(0.45, 0.9), 1.0)
        parts = [_box((-w / 2, h - t, -d / 2), (w / 2, h, d / 2), c[0])]
        kind = rng.choice(["legs", "pedestal", "trestle"], p=[0.6, 0.15, 0.25])
    under, lt, inset = h - t / 2, u(0.025, 0.07), u(0.01, 0.08)
    xi, zi = w / 2 - inset - lt / 2, d / 2 - inset - lt / 2
    if kind == "legs":
        round_legs = rng.random() < 0.4
        for sx, sz in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
            foot, top = (sx * xi, 0.0, sz * zi), (sx * xi, under, sz * zi)
            parts.append(
                _rod(foot, top, lt / 2, c[1], taper=u(0.6, 1.0))
                if round_legs
                else _beam(foot, top, lt, lt, c[1])
            )
        bar = max(lt * 0.4, 0.015)
        for y, prob, size in ((h - t - 0.035, 0.5, (bar, 0.08)), (u(0.08, 0.2), 0.35, (bar, bar))):
            if rng.random() < prob:  # apron under the top, or low stretchers
                for a, b in (
                    ((-xi, -zi), (xi, -zi)),
                    ((-xi, zi), (xi, zi)),
                    ((-xi, -zi), (-xi, zi)),
                    ((xi, -zi), (xi, zi)),
                ):
                    parts.append(_beam((a[0], y, a[1]), (b[0], y, b[1]), size[0], size[1], c[1]))
    elif kind == "pedestal":
        rb = u(0.18, min(w, d) * 0.45)
        parts.append(_rod((0, 0.02, 0), (0, under, 0), u(0.03, 0.09), c[1], taper=u(0.5, 1.0)))
        if rng.random() < 0.5:
            parts.append(
                Cylinder(radius=rb, half_height=0.015, taper=u(0.6, 1.0), center=(0, 0.015, 0), color=c[1])
            )
        else:
            for a in np.pi / 2 * np.arange(4) + np.pi / 4:
                parts.append(_beam((0, 0.02, 0), (rb * np.cos(a), 0.02, rb * np.sin(a)), 0.04, 0.04, c[1]))
    else:  # trestle: an end frame at each side and a stretcher between
        for s in (-1, 1):
            parts.append(_box((s * xi - lt / 2, 0.04, -d * 0.3), (s * xi + lt / 2, under, d * 0.3), c[1]))
            parts.append(_box((s * xi - lt, 0.0, -d * 0.42), (s * xi + lt, 0.05, d * 0.42), c[1]))
        y = u(0.15, 0.35) * h
        parts.append(_beam((-xi, y, 0), (xi, y, 0), 0.04, lt * 0.5, c[1]))
    return parts


def _bench(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    w, d, h, t = u(1.0, 1.8), u(0.3, 0.5), u(0.38, 0.5), u(0.03, 0.07)
    n, gap = int(rng.integers(1, 6)), u(0.006, 0.015)
    depth = (d - (n - 1) * gap) / n
    parts: list[Part] = [
        _box(
            (-w / 2, h - t, -d / 2 + i * (depth + gap)), (w / 2, h, -d / 2 + i * (depth + gap) + depth), c[0]
        )
        for i in range(n)
    ]
    under, lt, xi = h - t / 2, u(0.03, 0.06), w / 2 - u(0.03, 0.15)
    if rng.random() < 0.5:  # side panels
        for s in (-1, 1):
            parts.append(_box((s * xi - lt / 2, 0.0, -d * 0.45), (s * xi + lt / 2, under, d * 0.45), c[1]))
    else:
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(
                    _beam(
                        (sx * xi, 0.0, sz * (d / 2 - lt)), (sx * xi, under, sz * (d / 2 - lt)), lt, lt, c[1]
                    )
                )
            parts.append(
                _beam((sx * xi, 0.1, -d / 2 + lt), (sx * xi, 0.1, d / 2 - lt), lt * 0.5, lt * 0.5, c[1])
            )
    if rng.random() < 0.5:  # back: two posts and one to three boards
        bh, tilt = u(0.25, 0.45), u(0.0, 0.25)
        top = np.array([0.0, h + bh, -d / 2 + lt / 2 - bh * np.sin(tilt)])
        for s in (-1, 1):
            parts.append(_beam((s * xi, h - t, -d / 2 + lt / 2), top + (s * xi, 0, 0), lt, lt, c[1]))
        for f in np.linspace(0.35, 0.95, int(rng.integers(1, 4))):
            p = np.array([0.0, h - t, -d / 2 + lt / 2]) * (1 - f) + top * f + (0, 0, lt * 0.6)
            parts.append(_box(p - (w / 2, 0.03, 0.012), p + (w / 2, 0.03, 0.012), c[0]))
    if rng.random() < 0.3:  # arms at both ends
        ah = h + u(0.15, 0.25)
        for s in (-1, 1):
            parts.append(_box((s * w / 2 - 0.025, ah - 0.03, -d / 2), (s * w / 2 + 0.025, ah, d / 2), c[1]))
            parts.append(
                _beam(
                    (s * w / 2, h - t, d / 2 - 0.04), (s * w / 2, ah - 0.015, d / 2 - 0.04), 0.03, 0.03, c[1]
                )
            )
    return parts


def _sofa(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    w, d, leg, cush = u(1.5, 2.4), u(0.8, 1.0), u(0.0, 0.12) * (rng.random() < 0.7), u(0.08, 0.15)
    seat = leg + u(0.2, 0.3)
    bt, bh, aw = u(0.15, 0.25), seat + cush + u(0.3, 0.5), u(0.1, 0.25) * (rng.random() < 0.85)
    parts: list[Part] = [_box((-w / 2, leg, -d / 2), (w / 2, seat, d / 2), c[0])]
    parts.append(_box((-w / 2, leg, -d / 2), (w / 2, bh, -d / 2 + bt), c[0]))
    ah = seat + cush + u(0.1, 0.25)
    for s in (-1, 1) if aw else ():
        x0, x1 = sorted((s * (w / 2 - aw), s * (w / 2 + 0.005)))  # proud of the base: no flush faces
        parts.append(_box((x0, leg, -d / 2 - 0.005), (x1, ah, d / 2 + 0.01), c[1]))
        if rng.random() < 0.4:  # rolled arm top
            x = s * (w / 2 - aw / 2)
            parts.append(_rod((x, ah, -d / 2 + 0.01), (x, ah, d / 2 - 0.01), aw * 0.55, c[1], capsule=True))
    n, gap = int(rng.integers(1, 4)), 0.012
    inner = w - 2 * aw
    cw = (inner - (n + 1) * gap) / n
    for i in range(n):
        x0 = -inner / 2 + gap + i * (cw + gap)
        parts.append(_box((x0, seat - 0.02, -d / 2 + bt - 0.01), (x0 + cw, seat + cush, d / 2 - 0.01), c[2]))
        if rng.random() < 0.5:  # back cushion
            parts.append(
                _box(
                    (x0, seat + cush - 0.02, -d / 2 + bt - 0.02),
                    (x0 + cw, bh - 0.03, -d / 2 + bt + u(0.08, 0.15)),
                    c[2],
                )
            )
    if rng.random() < 0.2:  # chaise: an L-shaped extension forward on one side
        s, length = rng.choice([-1, 1]), u(0.5, 0.8)
        x0, x1 = sorted((s * (w / 2 - aw + 0.02), s * (w / 2 - aw - u(0.6, 0.8))))  # runs into the arm
        parts.append(_box((x0, leg, d / 2 - 0.05), (x1, seat, d / 2 + length), c[0]))
        parts.append(
            _box((x0 + gap, seat - 0.02, d / 2 - 0.02), (x1 - gap, seat + cush, d / 2 + length - 0.01), c[2])
        )
    if leg > 0:
        for sx in (-1, 1):
            for sz in (-1, 1):
                p = np.array([sx * (w / 2 - 0.06), 0.0, sz * (d / 2 - 0.06)])
                parts.append(_rod(p, p + (0, leg + 0.02, 0), u(0.015, 0.03), c[3], taper=u(1.0, 1.6)))
    return parts


def _cabinet(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    w, h, d, leg = u(0.5, 1.2), u(0.5, 1.8), u(0.35, 0.6), u(0.05, 0.15) * (rng.random() < 0.5)
    y0, y1, th = leg, leg + h, u(0.015, 0.03)
    parts: list[Part] = []
    if rng.random() < 0.35:  # open shelves: sides, top, bottom, back and shelf boards
        parts += [
            _box((s * w / 2 - th * (s > 0), y0, -d / 2), (s * w / 2 + th * (s < 0), y1, d / 2), c[0])
            for s in (-1, 1)
        ]
        parts += [_box((-w / 2, y, -d / 2), (w / 2, y + th, d / 2), c[0]) for y in (y0, y1 - th)]
        parts.append(
            _box(
                (-w / 2 + th / 2, y0 + th / 2, -d / 2 + 0.003),
                (w / 2 - th / 2, y1 - th / 2, -d / 2 + th),
                c[1],
            )
        )
        for y in np.linspace(y0, y1, int(rng.integers(1, 5)) + 2)[1:-1]:
            parts.append(
                _box((-w / 2 + th / 2, y, -d / 2 + th / 2), (w / 2 - th / 2, y + th, d / 2 - 0.01), c[0])
            )
    else:
        parts.append(_box((-w / 2, y0, -d / 2), (w / 2, y1, d / 2), c[0]))
        pt, gap, m = u(0.012, 0.025), 0.006, u(0.01, 0.03)
        if rng.random() < 0.5:  # doors side by side, vertical handles near the middle
            n, vertical = int(rng.integers(1, 3)), True
            cells = [
                (-w / 2 + m + i * (w - 2 * m) / n, y0 + m, -w / 2 + m + (i + 1) * (w - 2 * m) / n, y1 - m)
                for i in range(n)
            ]
        else:  # a column of drawers, horizontal handles
            n, vertical = int(rng.integers(2, 6)), False
            cells = [
                (-w / 2 + m, y0 + m + i * (h - 2 * m) / n, w / 2 - m, y0 + m + (i + 1) * (h - 2 * m) / n)
                for i in range(n)
            ]
        hr, hl = u(0.008, 0.014), u(0.05, 0.16)
        for i, (xa, ya, xb, yb) in enumerate(cells):
            parts.append(
                _box(
                    (xa + gap / 2, ya + gap / 2, d / 2 - 0.005),
                    (xb - gap / 2, yb - gap / 2, d / 2 + pt),
                    c[1],
                )
            )
            z = d / 2 + pt + hr * 0.6
            if vertical:
                x = xb - 0.06 if i == 0 and n == 2 else (xa + 0.06 if n == 2 else xb - 0.06)
                yc, half = (ya + yb) / 2, min(hl, (yb - ya) * 0.6) / 2
                parts.append(_rod((x, yc - half, z), (x, yc + half, z), hr, c[2], capsule=True))
            else:
                yc, half = (ya + yb) / 2, min(hl, (xb - xa) * 0.6) / 2
                parts.append(_rod((-half, yc, z), (half, yc, z), hr, c[2], capsule=True))
    if rng.random() < 0.3:  # overhanging top slab
        o = u(0.01, 0.04)
        parts.append(
            _box((-w / 2 - o, y1 - 0.005, -d / 2 - o * 0.5), (w / 2 + o, y1 + u(0.02, 0.04), d / 2 + o), c[3])
        )
    if leg > 0:
        lt = u(0.025, 0.05)
        for sx in (-1, 1):
            for sz in (-1, 1):
                p = np.array([sx * (w / 2 - lt), 0.0, sz * (d / 2 - lt)])
                parts.append(_beam(p, p + (0, leg + 0.01, 0), lt, lt, c[3]))
    return parts


def _car(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    length, w, gc, bh, wr, ww = (
        u(3.6, 5.0),
        u(1.6, 2.0),
        u(0.15, 0.3),
        u(0.45, 0.75),
        u(0.3, 0.4),
        u(0.18, 0.28),
    )
    l2, top = length / 2, gc + bh
    nose, tail = u(0.1, 0.5), u(0.05, 0.3)
    body = [
        (-l2, gc + 0.1),
        (-l2 + 0.1, gc),
        (l2 - 0.15, gc),
        (l2, gc + 0.15),
        (l2 - nose, top),
        (-l2 + tail, top),
        (-l2, top - 0.1),
    ]
    parts: list[Part] = [_prism(body, -w / 2, w / 2, c[0])]
    kind = rng.choice(["sedan", "hatch", "suv", "pickup"])
    cl = (
        length
        * {"sedan": u(0.4, 0.5), "hatch": u(0.5, 0.6), "suv": u(0.6, 0.72), "pickup": u(0.28, 0.35)}[kind]
    )
    ch = u(0.5, 0.7) if kind == "suv" else u(0.35, 0.5)
    front = l2 - nose - u(0.3, 0.8) if kind != "pickup" else u(0.2, 0.6)
    ws, rs = u(0.3, 0.6), (u(0.05, 0.2) if kind in ("hatch", "suv", "pickup") else u(0.3, 0.6))
    wb, wt = w * u(0.9, 0.97) / 2, w * u(0.75, 0.9) / 2
    cab = [
        (x, y, z)
        for y, hw, z0, z1 in (
            (top - 0.02, wb, front - cl, front),
            (top + ch, wt, front - cl + rs, front - ws),
        )
        for x in (-hw, hw)
        for z in (z0, z1)
    ]
    parts.append(ConvexPolyhedron.from_points(np.array(cab), c[1]))
    wheelbase = length * u(0.55, 0.65)
    for sx in (-1, 1):
        for sz in (-1, 1):
            ctr = (sx * (w / 2 - ww * 0.35), wr, sz * wheelbase / 2 + u(-0.05, 0.05))
            parts.append(
                Cylinder(radius=wr, half_height=ww / 2, center=ctr, rotation=rotation_y_to(_X), color=c[2])
            )
    if rng.random() < 0.2:  # rear spoiler on two posts
        z = -l2 + 0.2
        parts.append(_box((-w * 0.45, top + 0.13, z - 0.12), (w * 0.45, top + 0.18, z + 0.12), c[3]))
        parts += [
            _beam((s * w * 0.3, top - 0.05, z), (s * w * 0.3, top + 0.16, z), 0.04, 0.08, c[3])
            for s in (-1, 1)
        ]
    return parts


def _airplane(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    fr = u(0.035, 0.07)
    if rng.random() < 0.5:
        parts: list[Part] = [Capsule(radius=fr, half_length=0.5 - fr, rotation=rotation_y_to(_Z), color=c[0])]
    else:
        parts = [Ellipsoid(radii=(fr, fr * u(1.0, 1.3), 0.5), color=c[0])]
    span, cr, taper, sweep = u(0.7, 1.2), u(0.12, 0.3), u(0.2, 0.7), u(0.0, 0.3)
    zw, yw, tr, dih = u(-0.1, 0.12), fr * u(-0.6, 0.6), u(0.018, 0.035), u(-0.05, 0.12)

    def wing(x_tip: float, y: float, z: float, chord: float, back: float, rise: float, thick: float) -> Part:
        """Tapered, swept slab from a root just across x = 0 (so the two halves overlap) to x_tip."""
        root = (-np.sign(x_tip) * 0.005, y, thick, z, z - chord)
        tip = (x_tip, y + rise, thick * 0.75, z - back, z - back - chord * taper)
        pts = [(x, yc + s * th / 2, zz) for x, yc, th, *zs in (root, tip) for s in (-1, 1) for zz in zs]
        return ConvexPolyhedron.from_points(np.array(pts), c[1])

    for s in (-1, 1):
        parts.append(wing(s * span / 2, yw, zw, cr, sweep, dih * span / 2, tr))
    ht, hc, t_tail = u(0.25, 0.45), u(0.07, 0.13), rng.random() < 0.25
    fh, fc = u(0.1, 0.2), u(0.1, 0.18)
    zt = -0.5 + fr + hc
    z_tip, half_t = -0.48 + u(0.02, 0.4) * fc, u(0.006, 0.015)  # swept fin: tip trails the root
    root_tip = ((0.0, -0.48, -0.48 + fc), (fr + fh, z_tip, z_tip + fc * u(0.3, 0.6)))
    fin = [(x, y, z) for x in (-half_t, half_t) for y, z0, z1 in root_tip for z in (z0, z1)]
    parts.append(ConvexPolyhedron.from_points(np.array(fin), c[2]))
    for s in (-1, 1):
        parts.append(wing(s * ht / 2, fr + fh * 0.9 if t_tail else 0.0, zt, hc, hc * 0.3, 0.0, tr * 0.8))
    n_eng = int(rng.choice([0, 2, 4], p=[0.3, 0.5, 0.2]))
    er, el = u(0.02, 0.04), u(0.1, 0.18)
    for f in [u(0.2, 0.35), u(0.5, 0.65)][: n_eng // 2]:
        for s in (-1, 1):
            x = s * f * span / 2
            wy, wz = yw + f * dih * span / 2 - tr / 2, zw - f * sweep
            ctr = np.array([x, wy - er - 0.01, wz - cr * 0.3 + el * 0.3])
            parts.append(
                Cylinder(
                    radius=er,
                    half_height=el / 2,
                    taper=u(0.7, 1.0),
                    center=ctr,
                    rotation=rotation_y_to(-_Z),
                    color=c[3],
                )
            )
            parts.append(
                _beam(ctr + (0, er * 0.5, -el * 0.2), (x, wy + tr / 2, wz - el * 0.2), 0.014, el * 0.5, c[3])
            )
    return parts


def _display(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    w = u(0.45, 0.9)
    hs, pt, kind = w * u(0.5, 0.8), u(0.015, 0.05), rng.choice(["stand", "crt", "feet"], p=[0.6, 0.2, 0.2])
    y0 = u(0.02, 0.04) + (u(0.05, 0.2) if kind == "stand" else u(0.0, 0.04))
    parts: list[Part] = [_box((-w / 2, y0, -pt / 2), (w / 2, y0 + hs, pt / 2), c[0])]
    bez = u(0.01, 0.04)
    parts.append(
        _box((-w / 2 + bez, y0 + bez, 0.0), (w / 2 - bez, y0 + hs - bez, pt / 2 + u(0.002, 0.006)), c[1])
    )
    if kind == "crt":  # tapered tube behind the panel on a low plinth
        depth, k = w * u(0.5, 0.8), u(0.4, 0.7)
        back = [
            (sx * hw, yc + sy * hh, z)
            for z, hw, hh in (
                (-pt / 2 + 0.01, w * 0.45, hs * 0.45),
                (-pt / 2 - depth, w * 0.45 * k, hs * 0.45 * k),
            )
            for yc in [y0 + hs / 2]
            for sx in (-1, 1)
            for sy in (-1, 1)
        ]
        parts.append(ConvexPolyhedron.from_points(np.array(back), c[0]))
        parts.append(_box((-w * 0.3, 0.0, -depth * 0.6), (w * 0.3, y0 + 0.01, depth * 0.1), c[2]))
    elif kind == "stand":
        bd, nw = u(0.12, 0.25), u(0.03, 0.08)
        if rng.random() < 0.5:
            parts.append(_box((-w * u(0.15, 0.3), 0.0, -bd / 2), (w * u(0.15, 0.3), 0.025, bd / 2), c[2]))
        else:
            parts.append(
                Cylinder(
                    radius=bd * 0.6, half_height=0.0125, taper=u(0.7, 1.0), center=(0, 0.0125, 0), color=c[2]
                )
            )
        zn = -pt / 2 - 0.01
        parts.append(_beam((0, 0.01, zn + u(-0.03, 0.03)), (0, y0 + hs * 0.5, zn), nw, 0.02 + 0.01, c[2]))
    else:  # two feet under the panel
        for s in (-1, 1):
            parts.append(
                _box((s * w * 0.35 - 0.02, 0.0, -0.08), (s * w * 0.35 + 0.02, y0 + 0.02, 0.08), c[2])
            )
    return parts


def _lamp(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    rb, bt = u(0.08, 0.2), u(0.02, 0.05)
    parts: list[Part] = [
        Cylinder(radius=rb, half_height=bt / 2, taper=u(0.6, 1.0), center=(0, bt / 2, 0), color=c[0])
    ]
    pr, kind = u(0.008, 0.02), rng.choice(["floor", "table", "desk"], p=[0.35, 0.3, 0.35])

    def shade(tip, axis, radius: float, length: float) -> Part:
        """Frustum whose wide opening faces -axis, narrow end at ``tip``."""
        axis = np.asarray(axis, float) / np.linalg.norm(axis)
        return _rod(np.asarray(tip) - axis * length, tip, radius, c[1], taper=u(0.35, 0.85))

    if kind == "floor":
        top = u(1.2, 1.7)
        parts.append(_rod((0, bt / 2, 0), (0, top, 0), pr, c[2]))
        if rng.random() < 0.35:  # 2-3 arms with small down-facing shades
            for a in 2 * np.pi * np.arange(int(rng.integers(2, 4))) / 3 + u(0, np.pi):
                end = np.array([np.cos(a) * u(0.2, 0.35), top + u(-0.1, 0.1), np.sin(a) * u(0.2, 0.35)])
                parts.append(_rod((0, top - 0.05, 0), end, pr * 0.8, c[2], capsule=True))
                parts.append(shade(end + (0, 0.02, 0), _Y, u(0.06, 0.1), u(0.08, 0.14)))
        else:
            hh = u(0.15, 0.3)
            parts.append(shade((0, top + hh * 0.6, 0), _Y, u(0.15, 0.25), hh))
    elif kind == "table":  # vase-like body, short neck, big shade
        bh, br = u(0.15, 0.3), u(0.05, 0.1)
        parts.append(Ellipsoid(radii=(br, bh / 2, br), center=(0, bt + bh / 2 - 0.01, 0), color=c[3]))
        top = bt + bh + u(0.1, 0.2)
        parts.append(_rod((0, bt + bh * 0.8, 0), (0, top, 0), pr, c[2]))
        hh = u(0.15, 0.28)
        parts.append(shade((0, top + hh * 0.3, 0), _Y, u(0.14, 0.24), hh))
    else:  # desk: pole, upper arm, head pointing down and forward
        h1, l2, ang = u(0.25, 0.45), u(0.25, 0.45), u(0.2, 1.0)
        elbow = np.array([0.0, bt + h1, 0.0])
        head = elbow + l2 * np.array([0.0, np.sin(ang) * 0.4, np.cos(ang)])
        parts += [
            _rod((0, bt / 2, 0), elbow, pr, c[2], capsule=True),
            _rod(elbow, head, pr, c[2], capsule=True),
        ]
        parts.append(shade(head + (0, 0.01, 0), (0, 1.0, -u(0.0, 0.8)), u(0.06, 0.12), u(0.1, 0.18)))
    return parts


def _loudspeaker(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    w, h, d, foot = u(0.18, 0.4), u(0.25, 1.0), u(0.18, 0.35), u(0.01, 0.04) * (rng.random() < 0.4)
    parts: list[Part] = [_box((-w / 2, foot, -d / 2), (w / 2, foot + h, d / 2), c[0])]
    n = int(rng.integers(1, 2 + min(int(h / w), 2)))
    ys = foot + h * (np.arange(n) + 0.5) / n
    for i, y in enumerate(ys[::-1]):  # the top driver is the tweeter
        r = min(w * (u(0.08, 0.15) if i == 0 and n > 1 else u(0.3, 0.42)), h / (2 * n) * 0.9)
        ring = u(0.005, 0.012)
        parts.append(
            Cylinder(radius=r, half_height=ring, center=(0, y, d / 2), rotation=rotation_y_to(_Z), color=c[1])
        )
        parts.append(Ellipsoid(radii=(r * 0.8, r * 0.8, r * u(0.15, 0.35)), center=(0, y, d / 2), color=c[2]))
    for sx in (-1, 1) if foot else ():
        for sz in (-1, 1):
            p = np.array([sx * (w / 2 - 0.03), 0.0, sz * (d / 2 - 0.03)])
            parts.append(_rod(p, p + (0, foot + 0.01, 0), 0.015, c[3]))
    return parts


def _rifle(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    rl, rh, rw = u(0.22, 0.35), u(0.05, 0.09), u(0.03, 0.045)
    parts: list[Part] = [_box((-rw / 2, -rh / 2, -rl / 2), (rw / 2, rh / 2, rl / 2), c[0])]
    br, bl, yb = u(0.007, 0.014), u(0.35, 0.65), rh * u(0.0, 0.25)
    muzzle = np.array([0.0, yb, rl / 2 + bl])
    parts.append(_rod((0, yb, rl / 2 - 0.02), muzzle, br, c[1]))
    if rng.random() < 0.3:  # muzzle brake
        parts.append(_rod(muzzle - (0, 0, 0.04), muzzle + (0, 0, 0.01), br * 1.6, c[1]))
    if rng.random() < 0.6:  # handguard around the barrel root
        hl, hr = u(0.15, 0.3), u(0.016, 0.028)
        parts.append(_rod((0, yb, rl / 2 - 0.01), (0, yb, rl / 2 + hl), hr, c[2], taper=u(0.8, 1.0)))
    sl, drop, bh = u(0.22, 0.35), u(0.0, 0.05), u(0.05, 0.09)
    z0 = -rl / 2 + 0.02
    stock = [
        (z0, rh / 2 * 0.8),
        (z0, -rh / 2),
        (z0 - sl, -rh / 2 - drop - bh * 0.6),
        (z0 - sl, rh / 2 - drop),
    ]
    parts.append(_prism(stock, -rw * 0.45, rw * 0.45, c[2]))
    grip_top = np.array([0.0, -rh / 2 + 0.01, -rl / 2 + u(0.04, 0.08)])
    grip_dir = np.array([0.0, -1.0, -u(0.2, 0.5)])
    parts.append(
        _beam(
            grip_top,
            grip_top + u(0.08, 0.12) * grip_dir / np.linalg.norm(grip_dir),
            rw * 0.8,
            u(0.025, 0.035),
            c[2],
        )
    )
    if rng.random() < 0.8:
        mag_top = np.array([0.0, -rh / 2 + 0.01, rl / 2 * u(-0.1, 0.5)])
        parts.append(
            _beam(
                mag_top,
                mag_top + u(0.08, 0.2) * np.array([0.0, -1.0, u(0.0, 0.4)]),
                rw * 0.7,
                u(0.03, 0.06),
                c[3],
            )
        )
    if rng.random() < 0.5:  # scope on two mounts
        sr, sl2, ys = u(0.015, 0.025), u(0.15, 0.3), rh / 2 + u(0.025, 0.04)
        parts.append(_rod((0, ys, -sl2 / 2), (0, ys, sl2 / 2), sr, c[3]))
        parts.append(_rod((0, ys, sl2 / 2 - 0.01), (0, ys, sl2 / 2 + 0.04), sr, c[3], taper=1.4))
        parts += [_beam((0, rh / 2 - 0.005, z), (0, ys, z), 0.012, 0.02, c[3]) for z in (-sl2 / 4, sl2 / 4)]
    if rng.random() < 0.2:  # bipod
        z = rl / 2 + bl * 0.6
        parts += [
            _rod((0, yb, z), (s * 0.06, yb - 0.2, z + 0.04), 0.005, c[3], capsule=True) for s in (-1, 1)
        ]
    return parts


def _telephone(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    kind = rng.choice(["smartphone", "keypad", "desk"], p=[0.5, 0.3, 0.2])
    if kind == "desk":  # wedge base, handset on top, buttons on the slope
        w, d, hf, hb = u(0.18, 0.25), u(0.15, 0.22), u(0.03, 0.05), u(0.06, 0.1)
        parts: list[Part] = [
            _prism([(-d / 2, 0), (d / 2, 0), (d / 2, hf), (-d / 2, hb)], -w / 2, w / 2, c[0])
        ]
        hr = u(0.018, 0.025)
        z, y = -d / 2 + hr + 0.01, hb + hr * 0.4
        parts.append(_rod((-w * 0.45, y, z), (w * 0.45, y, z), hr, c[1], capsule=True))
        parts += [
            Ellipsoid(radii=(hr * 1.2, hr * 1.2, hr * 1.5), center=(s * w * 0.4, y - 0.005, z), color=c[1])
            for s in (-1, 1)
        ]
        slope = np.arctan2(hb - hf, d)
        rot = rotation_about(_X, slope)
        for i in range(3):
            for j in range(4):
                zz = d * (0.3 - 0.12 * j)
                ctr = (w * 0.12 * (i - 1), hf + (hb - hf) * (d / 2 - zz) / d + 0.002, zz)
                parts.append(Box(half_extents=(0.012, 0.004, 0.01), center=ctr, rotation=rot, color=c[2]))
        return parts
    w, h, t = (
        (u(0.06, 0.08), u(0.12, 0.16), u(0.007, 0.011))
        if kind == "smartphone"
        else (u(0.045, 0.06), u(0.1, 0.14), u(0.012, 0.02))
    )
    parts = [_box((-w / 2, 0, -t / 2), (w / 2, h, t / 2), c[0])]
    m, bump = u(0.003, 0.008), u(0.001, 0.002)
    screen_lo = m * 3 if kind == "smartphone" else h * u(0.45, 0.55)
    parts.append(_box((-w / 2 + m, screen_lo, t / 2 - 0.001), (w / 2 - m, h - m * 2, t / 2 + bump), c[1]))
    if kind == "smartphone":
        if rng.random() < 0.5:  # camera bump on the back
            parts.append(
                Cylinder(
                    radius=w * 0.12,
                    half_height=0.0015,
                    center=(-w * 0.25, h * 0.85, -t / 2),
                    rotation=rotation_y_to(-_Z),
                    color=c[2],
                )
            )
        parts += [
            _box((w / 2 - 0.001, y, -t * 0.25), (w / 2 + 0.0015, y + h * 0.08, t * 0.25), c[2])
            for y in h * np.array([0.6, 0.72])
        ]
    else:
        for i in range(3):
            for j in range(4):
                ctr = np.array([w * 0.28 * (i - 1), screen_lo * (0.18 + 0.2 * j), t / 2])
                parts.append(
                    _box(ctr - (w * 0.1, 0.006, 0.001), ctr + (w * 0.1, 0.006, u(0.002, 0.004)), c[2])
                )
        if rng.random() < 0.3:  # antenna
            parts.append(
                _rod((w * 0.3, h - 0.01, 0), (w * 0.3, h + u(0.02, 0.05), 0), 0.003, c[2], capsule=True)
            )
    return parts


def _vessel(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    b, dh, bow, keel = u(0.15, 0.3), u(0.06, 0.14), u(0.15, 0.35), u(0.2, 0.6)
    hull = (
        [(s * b / 2, dh, -0.5) for s in (-1, 1)]
        + [(s * b / 2, dh, 0.5 - bow) for s in (-1, 1)]
        + [(0, dh + u(0, 0.03), 0.5)]
    )
    hull += [(s * b * keel / 2, 0, z) for s in (-1, 1) for z in (-0.47, 0.5 - bow * 1.5)] + [
        (0, dh * 0.3, 0.5 - bow * 0.4)
    ]
    parts: list[Part] = [ConvexPolyhedron.from_points(np.array(hull), c[0])]
    kind = rng.choice(["sail", "motor", "ship"], p=[0.35, 0.35, 0.3])
    deck = dh - 0.01
    if kind == "sail":
        mh, zm, st = u(0.5, 1.0), u(-0.05, 0.15), u(0.01, 0.014)
        parts.append(_rod((0, dh * 0.5, zm), (0, dh + mh, zm), u(0.005, 0.009), c[1]))
        boom = u(0.25, 0.4)
        parts.append(_rod((0, dh + 0.06, zm), (0, dh + 0.06, zm - boom), 0.005, c[1], capsule=True))
        sail = [
            (x, y, z)
            for x in (-st / 2, st / 2)
            for y, z in ((dh + 0.062, zm - 0.005), (dh + mh * 0.95, zm - 0.005), (dh + 0.062, zm - boom))
        ]
        parts.append(ConvexPolyhedron.from_points(np.array(sail), c[2]))
        if rng.random() < 0.6:  # jib
            jib = [
                (x, y, z)
                for x in (-st / 2, st / 2)
                for y, z in (
                    (dh - 0.005, zm + 0.01),
                    (dh + mh * 0.8, zm + 0.005),
                    (dh - 0.005, 0.5 - bow * 0.5),
                )
            ]
            parts.append(ConvexPolyhedron.from_points(np.array(jib), c[2]))
        if rng.random() < 0.5:
            parts.append(_box((-b * 0.3, deck, zm - 0.3), (b * 0.3, dh + u(0.03, 0.06), zm - 0.1), c[3]))
    elif kind == "motor":  # stacked cabins, shrinking upward
        z1, wb, y = u(0.0, 0.2), b * u(0.6, 0.85), deck
        for _ in range(int(rng.integers(1, 4))):
            cl, ch = u(0.2, 0.4), u(0.04, 0.09)
            parts.append(_box((-wb / 2, y, z1 - cl), (wb / 2, y + ch, z1), c[3]))
            y, z1, wb = y + ch - 0.005, z1 - u(0.02, 0.08), wb * u(0.7, 0.9)
        parts.append(_rod((0, y, z1 - 0.05), (0, y + u(0.05, 0.15), z1 - 0.05), 0.006, c[1]))
    else:  # cargo ship: bridge tower at the stern, containers and a funnel
        parts.append(
            _box((-b * 0.45, deck, -0.48), (b * 0.45, dh + u(0.12, 0.22), -0.48 + u(0.08, 0.14)), c[3])
        )
        parts.append(
            _rod((0, deck, -0.45), (0, dh + u(0.15, 0.28), -0.45), u(0.02, 0.035), c[1], taper=u(0.7, 1.0))
        )
        for z in np.arange(-0.3, 0.45 - bow, u(0.08, 0.12)):
            for x in (-b * 0.22, b * 0.22):
                parts.append(
                    _box(
                        (x - b * 0.2, deck, z),
                        (x + b * 0.2, dh + 0.03 * int(rng.integers(1, 4)), z + 0.07),
                        c[int(rng.integers(1, 5))],
                    )
                )
    return parts


_BUILDERS: dict[str, Callable[[np.random.Generator, list[Color]], list[Part]]] = {
    "airplane": _airplane,
    "bench": _bench,
    "cabinet": _cabinet,
    "car": _car,
    "chair": _chair,
    "display": _display,
    "lamp": _lamp,
    "loudspeaker": _loudspeaker,
    "rifle": _rifle,
    "sofa": _sofa,
    "table": _table,
    "telephone": _telephone,
    "vessel": _vessel,
}


def make_shape(category: str, seed: int) -> Shape:
    """The procedural shape ``seed`` of ``category`` (a key of ``CATEGORIES``), normalised.

    Deterministic: the same (category, seed) gives the same parts, sizes and colours on every machine.
    """
    if category not in _BUILDERS:
        raise ValueError(f"unknown category {category!r}; choose one of {', '.join(CATEGORIES)}")
    rng = np.random.default_rng(seed)
    parts = _BUILDERS[category](rng, _palette(rng))
    return Shape(tuple(parts), category).normalised()
