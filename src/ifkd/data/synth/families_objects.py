"""Object category builders (display, lamp, loudspeaker, rifle, telephone) for ``families.make_shape``.

Frame: +Y up, front = +Z (a screen, a speaker's drivers, a rifle's muzzle), +X to the side; not normalised.
"""

from __future__ import annotations

import numpy as np

from ifkd.data.synth.parts_helpers import X_AXIS, Y_AXIS, Z_AXIS, Builder, beam, box, prism, rod
from ifkd.data.synth.primitives import (
    Box,
    Color,
    ConvexPolyhedron,
    Cylinder,
    Ellipsoid,
    Part,
    rotation_about,
    rotation_y_to,
)


def _display(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    w = u(0.45, 0.9)
    hs, pt, kind = w * u(0.5, 0.8), u(0.015, 0.05), rng.choice(["stand", "crt", "feet"], p=[0.6, 0.2, 0.2])
    y0 = u(0.02, 0.04) + (u(0.05, 0.2) if kind == "stand" else u(0.0, 0.04))
    parts: list[Part] = [box((-w / 2, y0, -pt / 2), (w / 2, y0 + hs, pt / 2), c[0])]
    bez = u(0.01, 0.04)
    parts.append(
        box((-w / 2 + bez, y0 + bez, 0.0), (w / 2 - bez, y0 + hs - bez, pt / 2 + u(0.002, 0.006)), c[1])
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
        parts.append(box((-w * 0.3, 0.0, -depth * 0.6), (w * 0.3, y0 + 0.01, depth * 0.1), c[2]))
    elif kind == "stand":
        bd, nw = u(0.12, 0.25), u(0.03, 0.08)
        if rng.random() < 0.5:
            parts.append(box((-w * u(0.15, 0.3), 0.0, -bd / 2), (w * u(0.15, 0.3), 0.025, bd / 2), c[2]))
        else:
            parts.append(
                Cylinder(
                    radius=bd * 0.6, half_height=0.0125, taper=u(0.7, 1.0), center=(0, 0.0125, 0), color=c[2]
                )
            )
        zn = -pt / 2 - 0.01
        parts.append(beam((0, 0.01, zn + u(-0.03, 0.03)), (0, y0 + hs * 0.5, zn), nw, 0.02 + 0.01, c[2]))
    else:  # two feet under the panel
        for s in (-1, 1):
            parts.append(box((s * w * 0.35 - 0.02, 0.0, -0.08), (s * w * 0.35 + 0.02, y0 + 0.02, 0.08), c[2]))
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
        return rod(np.asarray(tip) - axis * length, tip, radius, c[1], taper=u(0.35, 0.85))

    if kind == "floor":
        top = u(1.2, 1.7)
        parts.append(rod((0, bt / 2, 0), (0, top, 0), pr, c[2]))
        if rng.random() < 0.35:  # 2-3 arms with small down-facing shades
            for a in 2 * np.pi * np.arange(int(rng.integers(2, 4))) / 3 + u(0, np.pi):
                end = np.array([np.cos(a) * u(0.2, 0.35), top + u(-0.1, 0.1), np.sin(a) * u(0.2, 0.35)])
                parts.append(rod((0, top - 0.05, 0), end, pr * 0.8, c[2], capsule=True))
                parts.append(shade(end + (0, 0.02, 0), Y_AXIS, u(0.06, 0.1), u(0.08, 0.14)))
        else:
            hh = u(0.15, 0.3)
            parts.append(shade((0, top + hh * 0.6, 0), Y_AXIS, u(0.15, 0.25), hh))
    elif kind == "table":  # vase-like body, short neck, big shade
        bh, br = u(0.15, 0.3), u(0.05, 0.1)
        parts.append(Ellipsoid(radii=(br, bh / 2, br), center=(0, bt + bh / 2 - 0.01, 0), color=c[3]))
        top = bt + bh + u(0.1, 0.2)
        parts.append(rod((0, bt + bh * 0.8, 0), (0, top, 0), pr, c[2]))
        hh = u(0.15, 0.28)
        parts.append(shade((0, top + hh * 0.3, 0), Y_AXIS, u(0.14, 0.24), hh))
    else:  # desk: pole, upper arm, head pointing down and forward
        h1, l2, ang = u(0.25, 0.45), u(0.25, 0.45), u(0.2, 1.0)
        elbow = np.array([0.0, bt + h1, 0.0])
        head = elbow + l2 * np.array([0.0, np.sin(ang) * 0.4, np.cos(ang)])
        parts += [
            rod((0, bt / 2, 0), elbow, pr, c[2], capsule=True),
            rod(elbow, head, pr, c[2], capsule=True),
        ]
        parts.append(shade(head + (0, 0.01, 0), (0, 1.0, -u(0.0, 0.8)), u(0.06, 0.12), u(0.1, 0.18)))
    return parts


def _loudspeaker(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    w, h, d, foot = u(0.18, 0.4), u(0.25, 1.0), u(0.18, 0.35), u(0.01, 0.04) * (rng.random() < 0.4)
    parts: list[Part] = [box((-w / 2, foot, -d / 2), (w / 2, foot + h, d / 2), c[0])]
    n = int(rng.integers(1, 2 + min(int(h / w), 2)))
    ys = foot + h * (np.arange(n) + 0.5) / n
    for i, y in enumerate(ys[::-1]):  # the top driver is the tweeter
        r = min(w * (u(0.08, 0.15) if i == 0 and n > 1 else u(0.3, 0.42)), h / (2 * n) * 0.9)
        ring = u(0.005, 0.012)
        parts.append(
            Cylinder(
                radius=r, half_height=ring, center=(0, y, d / 2), rotation=rotation_y_to(Z_AXIS), color=c[1]
            )
        )
        parts.append(Ellipsoid(radii=(r * 0.8, r * 0.8, r * u(0.15, 0.35)), center=(0, y, d / 2), color=c[2]))
    for sx in (-1, 1) if foot else ():
        for sz in (-1, 1):
            p = np.array([sx * (w / 2 - 0.03), 0.0, sz * (d / 2 - 0.03)])
            parts.append(rod(p, p + (0, foot + 0.01, 0), 0.015, c[3]))
    return parts


def _rifle(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    rl, rh, rw = u(0.22, 0.35), u(0.05, 0.09), u(0.03, 0.045)
    parts: list[Part] = [box((-rw / 2, -rh / 2, -rl / 2), (rw / 2, rh / 2, rl / 2), c[0])]
    br, bl, yb = u(0.007, 0.014), u(0.35, 0.65), rh * u(0.0, 0.25)
    muzzle = np.array([0.0, yb, rl / 2 + bl])
    parts.append(rod((0, yb, rl / 2 - 0.02), muzzle, br, c[1]))
    if rng.random() < 0.3:  # muzzle brake
        parts.append(rod(muzzle - (0, 0, 0.04), muzzle + (0, 0, 0.01), br * 1.6, c[1]))
    if rng.random() < 0.6:  # handguard around the barrel root
        hl, hr = u(0.15, 0.3), u(0.016, 0.028)
        parts.append(rod((0, yb, rl / 2 - 0.01), (0, yb, rl / 2 + hl), hr, c[2], taper=u(0.8, 1.0)))
    sl, drop, bh = u(0.22, 0.35), u(0.0, 0.05), u(0.05, 0.09)
    z0 = -rl / 2 + 0.02
    stock = [
        (z0, rh / 2 * 0.8),
        (z0, -rh / 2),
        (z0 - sl, -rh / 2 - drop - bh * 0.6),
        (z0 - sl, rh / 2 - drop),
    ]
    parts.append(prism(stock, -rw * 0.45, rw * 0.45, c[2]))
    grip_top = np.array([0.0, -rh / 2 + 0.01, -rl / 2 + u(0.04, 0.08)])
    grip_dir = np.array([0.0, -1.0, -u(0.2, 0.5)])
    parts.append(
        beam(
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
            beam(
                mag_top,
                mag_top + u(0.08, 0.2) * np.array([0.0, -1.0, u(0.0, 0.4)]),
                rw * 0.7,
                u(0.03, 0.06),
                c[3],
            )
        )
    if rng.random() < 0.5:  # scope on two mounts
        sr, sl2, ys = u(0.015, 0.025), u(0.15, 0.3), rh / 2 + u(0.025, 0.04)
        parts.append(rod((0, ys, -sl2 / 2), (0, ys, sl2 / 2), sr, c[3]))
        parts.append(rod((0, ys, sl2 / 2 - 0.01), (0, ys, sl2 / 2 + 0.04), sr, c[3], taper=1.4))
        parts += [beam((0, rh / 2 - 0.005, z), (0, ys, z), 0.012, 0.02, c[3]) for z in (-sl2 / 4, sl2 / 4)]
    if rng.random() < 0.2:  # bipod
        z = rl / 2 + bl * 0.6
        parts += [rod((0, yb, z), (s * 0.06, yb - 0.2, z + 0.04), 0.005, c[3], capsule=True) for s in (-1, 1)]
    return parts


def _telephone(rng: np.random.Generator, c: list[Color]) -> list[Part]:
    u = rng.uniform
    kind = rng.choice(["smartphone", "keypad", "desk"], p=[0.5, 0.3, 0.2])
    if kind == "desk":  # wedge base, handset on top, buttons on the slope
        w, d, hf, hb = u(0.18, 0.25), u(0.15, 0.22), u(0.03, 0.05), u(0.06, 0.1)
        parts: list[Part] = [prism([(-d / 2, 0), (d / 2, 0), (d / 2, hf), (-d / 2, hb)], -w / 2, w / 2, c[0])]
        hr = u(0.018, 0.025)
        z, y = -d / 2 + hr + 0.01, hb + hr * 0.4
        parts.append(rod((-w * 0.45, y, z), (w * 0.45, y, z), hr, c[1], capsule=True))
        parts += [
            Ellipsoid(radii=(hr * 1.2, hr * 1.2, hr * 1.5), center=(s * w * 0.4, y - 0.005, z), color=c[1])
            for s in (-1, 1)
        ]
        slope = np.arctan2(hb - hf, d)
        rot = rotation_about(X_AXIS, slope)
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
    parts = [box((-w / 2, 0, -t / 2), (w / 2, h, t / 2), c[0])]
    m, bump = u(0.003, 0.008), u(0.001, 0.002)
    screen_lo = m * 3 if kind == "smartphone" else h * u(0.45, 0.55)
    parts.append(box((-w / 2 + m, screen_lo, t / 2 - 0.001), (w / 2 - m, h - m * 2, t / 2 + bump), c[1]))
    if kind == "smartphone":
        if rng.random() < 0.5:  # camera bump on the back
            parts.append(
                Cylinder(
                    radius=w * 0.12,
                    half_height=0.0015,
                    center=(-w * 0.25, h * 0.85, -t / 2),
                    rotation=rotation_y_to(-Z_AXIS),
                    color=c[2],
                )
            )
        parts += [
            box((w / 2 - 0.001, y, -t * 0.25), (w / 2 + 0.0015, y + h * 0.08, t * 0.25), c[2])
            for y in h * np.array([0.6, 0.72])
        ]
    else:
        for i in range(3):
            for j in range(4):
                ctr = np.array([w * 0.28 * (i - 1), screen_lo * (0.18 + 0.2 * j), t / 2])
                parts.append(
                    box(ctr - (w * 0.1, 0.006, 0.001), ctr + (w * 0.1, 0.006, u(0.002, 0.004)), c[2])
                )
        if rng.random() < 0.3:  # antenna
            parts.append(
                rod((w * 0.3, h - 0.01, 0), (w * 0.3, h + u(0.02, 0.05), 0), 0.003, c[2], capsule=True)
            )
    return parts


OBJECT_BUILDERS: dict[str, Builder] = {
    "display": _display,
    "lamp": _lamp,
    "loudspeaker": _loudspeaker,
    "rifle": _rifle,
    "telephone": _telephone,
}
"""Category name -> builder for the household/handheld object categories."""
