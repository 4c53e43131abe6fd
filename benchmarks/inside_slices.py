"""Picture sheets of imported solids: per shape, its first render and three slices of its 128^3 voxels.

Made to be looked at: a hollow, empty, inverted or leaking solid shows at once in the slices (white =
inside). Each slice goes through the solid's centre of mass, along x, y and z; a red border marks a
shape flagged degenerate by the import (it is kept out of the splits).

Usage: python benchmarks/inside_slices.py DATASET --out benchmarks/results/inside/NAME [--per-sheet 48]
Writes NAME_01.png, NAME_02.png ... and NAME.json (one line per shape: inside share, checks, flags).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ifkd.data.format import RENDER_DIR, SHAPE_FILE, load_image, read_index, read_shape, read_views
from ifkd.data.shapenet.convert import read_check

TILE = 96


def tile(root: Path, key: str, res: int) -> Image.Image:
    rec = read_shape(root / key / SHAPE_FILE, voxel_resolutions=(res,), surface=False)
    grid = rec.voxels[res]
    names, _ = read_views(root / key / RENDER_DIR)
    img = load_image(root / key / RENDER_DIR / names[0]).astype(np.float64)
    rgb = img[..., :3] * (img[..., 3:] / 255.0) + 255.0 * (1.0 - img[..., 3:] / 255.0)
    panels = [Image.fromarray(rgb.astype(np.uint8)).resize((TILE, TILE), Image.BILINEAR)]
    idx = np.argwhere(grid)
    c = idx.mean(axis=0).round().astype(int) if len(idx) else np.full(3, res // 2)
    # x slice shows (z right, y up); y slice (x right, z down); z slice (x right, y up)
    slices = [grid[c[0], :, :][::-1], grid[:, c[1], :].T, grid[:, :, c[2]].T[::-1]]
    for s in slices:
        panels.append(
            Image.fromarray((s * 255).astype(np.uint8)).resize((TILE, TILE), Image.NEAREST).convert("RGB")
        )
    out = Image.new("RGB", (4 * TILE + 6, TILE + 16), "white")
    for i, p in enumerate(panels):
        out.paste(p, (i * (TILE + 2), 14))
    ImageDraw.Draw(out).text((2, 1), key.split("/")[-1][:48], fill="black")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-sheet", type=int, default=48)
    ap.add_argument("--resolution", type=int, default=128)
    args = ap.parse_args()
    index = read_index(args.root)
    flagged = index.get("degenerate", {})
    keys = sorted({k for ks in index["splits"].values() for k in ks} | set(flagged))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows, cols = [], 3
    report = {}
    for start in range(0, len(keys), args.per_sheet):
        chunk = keys[start : start + args.per_sheet]
        tiles = []
        for key in chunk:
            t = tile(args.root, key, args.resolution)
            if key in flagged:
                ImageDraw.Draw(t).rectangle([0, 0, t.width - 1, t.height - 1], outline="red", width=3)
            tiles.append(t)
            report[key] = {**read_check(args.root, key), "flagged": flagged.get(key)}
        w, h = tiles[0].size
        n_rows = (len(tiles) + cols - 1) // cols
        sheet = Image.new("RGB", (cols * (w + 8), n_rows * (h + 8)), "#ddd")
        for i, t in enumerate(tiles):
            sheet.paste(t, ((i % cols) * (w + 8) + 4, (i // cols) * (h + 8) + 4))
        path = args.out.parent / f"{args.out.name}_{start // args.per_sheet + 1:02d}.png"
        sheet.save(path, optimize=True)
        rows.append(str(path))
    (args.out.parent / f"{args.out.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
