"""Vehicle category builders (airplane, car, vessel) for ``families.make_shape``.

Frame: +Y up, front = +Z (the nose, the bow), +X to the side; not normalised.
"""

from __future__ import annotations

import numpy as np

from ifkd.data.synth.parts_helpers import X_AXIS, Z_AXIS, Builder, beam, box, prism, rod
from ifkd.data.synth.primitives import (
    Capsule,
    Color,
    ConvexPolyhedron,
    Cylinder,
    Ellipsoid,
    Part,
    rotation_y_to,
)


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
    parts: list[Part] = [prism(body, -w / 2, w / 2, c[0])]
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
                Cylinder(
                    radius=wr, half_height=ww / 2, center=ctr, rotation=rotation_y_to(X_AXIS), color=c[2]
                )
            )
    if rng.random() < 0.2:  # rear spoiler on two posts
        z = -l2 + 0.2
        parts.append(box((-w * 0.45, top + 0.13, z - 0.12), (w * 0.45, top + 0.18, z + 0.12), c[3]))
        parts += [
            beam((s * w * 0.3, top - 0.05, z), (s * w * 0.3, top + 0.16, z), 0.04, 0.08, c[3])
            for s in (-1, 1)
        ]
    return parts


def _airplane(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    fr = u(0.035, 0.07)
    if rng.random() < 0.5:
        parts: list[Part] = [
            Capsule(radius=fr, half_length=0.5 - fr, rotation=rotation_y_to(Z_AXIS), color=c[0])
        ]
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
                    rotation=rotation_y_to(-Z_AXIS),
                    color=c[3],
                )
            )
            parts.append(
                beam(ctr + (0, er * 0.5, -el * 0.2), (x, wy + tr / 2, wz - el * 0.2), 0.014, el * 0.5, c[3])
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
        parts.append(rod((0, dh * 0.5, zm), (0, dh + mh, zm), u(0.005, 0.009), c[1]))
        boom = u(0.25, 0.4)
        parts.append(rod((0, dh + 0.06, zm), (0, dh + 0.06, zm - boom), 0.005, c[1], capsule=True))
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
            parts.append(box((-b * 0.3, deck, zm - 0.3), (b * 0.3, dh + u(0.03, 0.06), zm - 0.1), c[3]))
    elif kind == "motor":  # stacked cabins, shrinking upward
        z1, wb, y = u(0.0, 0.2), b * u(0.6, 0.85), deck
        for _ in range(int(rng.integers(1, 4))):
            cl, ch = u(0.2, 0.4), u(0.04, 0.09)
            parts.append(box((-wb / 2, y, z1 - cl), (wb / 2, y + ch, z1), c[3]))
            y, z1, wb = y + ch - 0.005, z1 - u(0.02, 0.08), wb * u(0.7, 0.9)
        parts.append(rod((0, y, z1 - 0.05), (0, y + u(0.05, 0.15), z1 - 0.05), 0.006, c[1]))
    else:  # cargo ship: bridge tower at the stern, containers and a funnel
        parts.append(
            box((-b * 0.45, deck, -0.48), (b * 0.45, dh + u(0.12, 0.22), -0.48 + u(0.08, 0.14)), c[3])
        )
        parts.append(
            rod((0, deck, -0.45), (0, dh + u(0.15, 0.28), -0.45), u(0.02, 0.035), c[1], taper=u(0.7, 1.0))
        )
        for z in np.arange(-0.3, 0.45 - bow, u(0.08, 0.12)):
            for x in (-b * 0.22, b * 0.22):
                parts.append(
                    box(
                        (x - b * 0.2, deck, z),
                        (x + b * 0.2, dh + 0.03 * int(rng.integers(1, 4)), z + 0.07),
                        c[int(rng.integers(1, 5))],
                    )
                )
    return parts


VEHICLE_BUILDERS: dict[str, Builder] = {
    "airplane": _airplane,
    "car": _car,
    "vessel": _vessel,
}
"""Category name -> builder for the vehicle categories."""
