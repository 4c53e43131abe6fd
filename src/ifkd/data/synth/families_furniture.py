"""Furniture category builders (bench, cabinet, chair, sofa, table) for ``families.make_shape``.

Frame: +Y up, front = +Z (a seat's front edge, a cabinet's doors), +X to the side; not normalised.
"""

from __future__ import annotations

import numpy as np

from ifkd.data.synth.parts_helpers import X_AXIS, Builder, beam, box, rod
from ifkd.data.synth.primitives import Box, Color, Cylinder, Ellipsoid, Part, rotation_about


def _chair(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    w, d, h, t = u(0.4, 0.6), u(0.4, 0.55), u(0.38, 0.5), u(0.03, 0.08)
    parts: list[Part] = [box((-w / 2, h - t, -d / 2), (w / 2, h, d / 2), c[0])]
    under = h - t / 2  # legs and columns run up to mid-seat
    base = rng.choice(["legs", "round", "pedestal"], p=[0.45, 0.3, 0.25])
    if base == "pedestal":
        rc, arm, lt = u(0.018, 0.03), u(0.24, 0.32), u(0.025, 0.04)
        ys = 2 * rc + lt / 2 - 0.005
        parts.append(rod((0, ys - lt, 0), (0, under, 0), u(0.02, 0.04), c[1]))
        for a in 2 * np.pi * np.arange(5) / 5 + u(0, 2 * np.pi):
            end = np.array([arm * np.cos(a), ys, arm * np.sin(a)])
            parts += [
                beam((0, ys, 0), end, lt, lt, c[1]),
                Ellipsoid(radii=np.full(3, rc), center=end - (0, ys - rc, 0), color=c[2]),
            ]
    else:
        lt, inset, splay = u(0.02, 0.05), u(0.0, 0.04), u(0.0, 0.05) * (rng.random() < 0.4)
        for sx in (-1, 1):
            for sz in (-1, 1):
                x, z = sx * (w / 2 - inset - lt / 2), sz * (d / 2 - inset - lt / 2)
                foot, top = (x + sx * splay, 0.0, z + sz * splay), (x, under, z)
                parts.append(
                    rod(foot, top, lt / 2, c[1]) if base == "round" else beam(foot, top, lt, lt, c[1])
                )
            if rng.random() < 0.4:  # side stretcher between front and back leg
                y, x = u(0.08, 0.2), sx * (w / 2 - inset - lt / 2 + splay * 0.6)
                parts.append(beam((x, y, -(d / 2 - inset)), (x, y, d / 2 - inset), lt * 0.4, lt * 0.4, c[1]))
    bh, bt, tilt = u(0.3, 0.6), u(0.02, 0.06), u(0.0, 0.25)
    rot, pivot = rotation_about(X_AXIS, -tilt), np.array([0.0, under, -d / 2 + bt / 2])

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
            parts.append(box((x - aw / 2, ah - at, -d / 2), (x + aw / 2, ah, d / 2 - 0.02), c[1]))
            parts.append(
                beam((x, h - t / 2, d / 2 - 0.06), (x, ah - at / 2, d / 2 - 0.06), aw * 0.6, aw * 0.6, c[1])
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
        parts = [box((-w / 2, h - t, -d / 2), (w / 2, h, d / 2), c[0])]
        kind = rng.choice(["legs", "pedestal", "trestle"], p=[0.6, 0.15, 0.25])
    under, lt, inset = h - t / 2, u(0.025, 0.07), u(0.01, 0.08)
    xi, zi = w / 2 - inset - lt / 2, d / 2 - inset - lt / 2
    if kind == "legs":
        round_legs = rng.random() < 0.4
        for sx, sz in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
            foot, top = (sx * xi, 0.0, sz * zi), (sx * xi, under, sz * zi)
            parts.append(
                rod(foot, top, lt / 2, c[1], taper=u(0.6, 1.0))
                if round_legs
                else beam(foot, top, lt, lt, c[1])
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
                    parts.append(beam((a[0], y, a[1]), (b[0], y, b[1]), size[0], size[1], c[1]))
    elif kind == "pedestal":
        rb = u(0.18, min(w, d) * 0.45)
        parts.append(rod((0, 0.02, 0), (0, under, 0), u(0.03, 0.09), c[1], taper=u(0.5, 1.0)))
        if rng.random() < 0.5:
            parts.append(
                Cylinder(radius=rb, half_height=0.015, taper=u(0.6, 1.0), center=(0, 0.015, 0), color=c[1])
            )
        else:
            for a in np.pi / 2 * np.arange(4) + np.pi / 4:
                parts.append(beam((0, 0.02, 0), (rb * np.cos(a), 0.02, rb * np.sin(a)), 0.04, 0.04, c[1]))
    else:  # trestle: an end frame at each side and a stretcher between
        for s in (-1, 1):
            parts.append(box((s * xi - lt / 2, 0.04, -d * 0.3), (s * xi + lt / 2, under, d * 0.3), c[1]))
            parts.append(box((s * xi - lt, 0.0, -d * 0.42), (s * xi + lt, 0.05, d * 0.42), c[1]))
        y = u(0.15, 0.35) * h
        parts.append(beam((-xi, y, 0), (xi, y, 0), 0.04, lt * 0.5, c[1]))
    return parts


def _bench(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    w, d, h, t = u(1.0, 1.8), u(0.3, 0.5), u(0.38, 0.5), u(0.03, 0.07)
    n, gap = int(rng.integers(1, 6)), u(0.006, 0.015)
    depth = (d - (n - 1) * gap) / n
    parts: list[Part] = [
        box((-w / 2, h - t, -d / 2 + i * (depth + gap)), (w / 2, h, -d / 2 + i * (depth + gap) + depth), c[0])
        for i in range(n)
    ]
    under, lt, xi = h - t / 2, u(0.03, 0.06), w / 2 - u(0.03, 0.15)
    if rng.random() < 0.5:  # side panels
        for s in (-1, 1):
            parts.append(box((s * xi - lt / 2, 0.0, -d * 0.45), (s * xi + lt / 2, under, d * 0.45), c[1]))
    else:
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(
                    beam((sx * xi, 0.0, sz * (d / 2 - lt)), (sx * xi, under, sz * (d / 2 - lt)), lt, lt, c[1])
                )
            parts.append(
                beam((sx * xi, 0.1, -d / 2 + lt), (sx * xi, 0.1, d / 2 - lt), lt * 0.5, lt * 0.5, c[1])
            )
    if rng.random() < 0.5:  # back: two posts and one to three boards
        bh, tilt = u(0.25, 0.45), u(0.0, 0.25)
        top = np.array([0.0, h + bh, -d / 2 + lt / 2 - bh * np.sin(tilt)])
        for s in (-1, 1):
            parts.append(beam((s * xi, h - t, -d / 2 + lt / 2), top + (s * xi, 0, 0), lt, lt, c[1]))
        for f in np.linspace(0.35, 0.95, int(rng.integers(1, 4))):
            p = np.array([0.0, h - t, -d / 2 + lt / 2]) * (1 - f) + top * f + (0, 0, lt * 0.6)
            parts.append(box(p - (w / 2, 0.03, 0.012), p + (w / 2, 0.03, 0.012), c[0]))
    if rng.random() < 0.3:  # arms at both ends
        ah = h + u(0.15, 0.25)
        for s in (-1, 1):
            parts.append(box((s * w / 2 - 0.025, ah - 0.03, -d / 2), (s * w / 2 + 0.025, ah, d / 2), c[1]))
            parts.append(
                beam(
                    (s * w / 2, h - t, d / 2 - 0.04), (s * w / 2, ah - 0.015, d / 2 - 0.04), 0.03, 0.03, c[1]
                )
            )
    return parts


def _sofa(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    w, d, leg, cush = u(1.5, 2.4), u(0.8, 1.0), u(0.0, 0.12) * (rng.random() < 0.7), u(0.08, 0.15)
    seat = leg + u(0.2, 0.3)
    bt, bh, aw = u(0.15, 0.25), seat + cush + u(0.3, 0.5), u(0.1, 0.25) * (rng.random() < 0.85)
    parts: list[Part] = [box((-w / 2, leg, -d / 2), (w / 2, seat, d / 2), c[0])]
    parts.append(box((-w / 2, leg, -d / 2), (w / 2, bh, -d / 2 + bt), c[0]))
    ah = seat + cush + u(0.1, 0.25)
    for s in (-1, 1) if aw else ():
        x0, x1 = sorted((s * (w / 2 - aw), s * (w / 2 + 0.005)))  # proud of the base: no flush faces
        parts.append(box((x0, leg, -d / 2 - 0.005), (x1, ah, d / 2 + 0.01), c[1]))
        if rng.random() < 0.4:  # rolled arm top
            x = s * (w / 2 - aw / 2)
            parts.append(rod((x, ah, -d / 2 + 0.01), (x, ah, d / 2 - 0.01), aw * 0.55, c[1], capsule=True))
    n, gap = int(rng.integers(1, 4)), 0.012
    inner = w - 2 * aw
    cw = (inner - (n + 1) * gap) / n
    for i in range(n):
        x0 = -inner / 2 + gap + i * (cw + gap)
        parts.append(box((x0, seat - 0.02, -d / 2 + bt - 0.01), (x0 + cw, seat + cush, d / 2 - 0.01), c[2]))
        if rng.random() < 0.5:  # back cushion
            parts.append(
                box(
                    (x0, seat + cush - 0.02, -d / 2 + bt - 0.02),
                    (x0 + cw, bh - 0.03, -d / 2 + bt + u(0.08, 0.15)),
                    c[2],
                )
            )
    if rng.random() < 0.2:  # chaise: an L-shaped extension forward on one side
        s, length = rng.choice([-1, 1]), u(0.5, 0.8)
        x0, x1 = sorted((s * (w / 2 - aw + 0.02), s * (w / 2 - aw - u(0.6, 0.8))))  # runs into the arm
        parts.append(box((x0, leg, d / 2 - 0.05), (x1, seat, d / 2 + length), c[0]))
        parts.append(
            box((x0 + gap, seat - 0.02, d / 2 - 0.02), (x1 - gap, seat + cush, d / 2 + length - 0.01), c[2])
        )
    if leg > 0:
        for sx in (-1, 1):
            for sz in (-1, 1):
                p = np.array([sx * (w / 2 - 0.06), 0.0, sz * (d / 2 - 0.06)])
                parts.append(rod(p, p + (0, leg + 0.02, 0), u(0.015, 0.03), c[3], taper=u(1.0, 1.6)))
    return parts


def _cabinet(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    w, h, d, leg = u(0.5, 1.2), u(0.5, 1.8), u(0.35, 0.6), u(0.05, 0.15) * (rng.random() < 0.5)
    y0, y1, th = leg, leg + h, u(0.015, 0.03)
    parts: list[Part] = []
    if rng.random() < 0.35:  # open shelves: sides, top, bottom, back and shelf boards
        parts += [
            box((s * w / 2 - th * (s > 0), y0, -d / 2), (s * w / 2 + th * (s < 0), y1, d / 2), c[0])
            for s in (-1, 1)
        ]
        parts += [box((-w / 2, y, -d / 2), (w / 2, y + th, d / 2), c[0]) for y in (y0, y1 - th)]
        parts.append(
            box(
                (-w / 2 + th / 2, y0 + th / 2, -d / 2 + 0.003),
                (w / 2 - th / 2, y1 - th / 2, -d / 2 + th),
                c[1],
            )
        )
        for y in np.linspace(y0, y1, int(rng.integers(1, 5)) + 2)[1:-1]:
            parts.append(
                box((-w / 2 + th / 2, y, -d / 2 + th / 2), (w / 2 - th / 2, y + th, d / 2 - 0.01), c[0])
            )
    else:
        parts.append(box((-w / 2, y0, -d / 2), (w / 2, y1, d / 2), c[0]))
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
                box(
                    (xa + gap / 2, ya + gap / 2, d / 2 - 0.005),
                    (xb - gap / 2, yb - gap / 2, d / 2 + pt),
                    c[1],
                )
            )
            z = d / 2 + pt + hr * 0.6
            if vertical:
                x = xb - 0.06 if i == 0 and n == 2 else (xa + 0.06 if n == 2 else xb - 0.06)
                yc, half = (ya + yb) / 2, min(hl, (yb - ya) * 0.6) / 2
                parts.append(rod((x, yc - half, z), (x, yc + half, z), hr, c[2], capsule=True))
            else:
                yc, half = (ya + yb) / 2, min(hl, (xb - xa) * 0.6) / 2
                parts.append(rod((-half, yc, z), (half, yc, z), hr, c[2], capsule=True))
    if rng.random() < 0.3:  # overhanging top slab
        o = u(0.01, 0.04)
        parts.append(
            box((-w / 2 - o, y1 - 0.005, -d / 2 - o * 0.5), (w / 2 + o, y1 + u(0.02, 0.04), d / 2 + o), c[3])
        )
    if leg > 0:
        lt = u(0.025, 0.05)
        for sx in (-1, 1):
            for sz in (-1, 1):
                p = np.array([sx * (w / 2 - lt), 0.0, sz * (d / 2 - lt)])
                parts.append(beam(p, p + (0, leg + 0.01, 0), lt, lt, c[3]))
    return parts


FURNITURE_BUILDERS: dict[str, Builder] = {
    "bench": _bench,
    "cabinet": _cabinet,
    "chair": _chair,
    "sofa": _sofa,
    "table": _table,
}
"""Category name -> builder for the furniture categories."""
