"""`ifkd data show`: a PNG contact sheet of one shape -- its views over the ground truth seen the same way.

The ground truth is drawn from the stored 128^3 voxels (marching cubes), so the sheet works for any
dataset in our format, synthetic or imported; row 1 shows the renders, row 2 the GT from each view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from ifkd.data.format import RENDER_DIR, SHAPE_FILE, load_image, read_shape, read_views, shape_dir
from ifkd.extract.marching_cubes import extract_mesh
from ifkd.geometry.camera import view_transform
from ifkd.io import atomic_path
from ifkd.render.raycast import render_mesh_figure


def voxels_to_mesh(grid: np.ndarray) -> trimesh.Trimesh:
    """Boolean (R, R, R) grid of cells on [-0.5, 0.5]^3 -> a closed mesh at the cells' boundary."""
    res = grid.shape[0]
    # Cell centres become grid corners of a grid one cell smaller on each side; pad so it closes.
    padded = np.pad(grid.astype(np.float32), 1)
    half = 0.5 * (res + 1) / res
    return extract_mesh(padded, 0.5, half)


def write_shape_sheet(
    root: str | Path, key: str, out: str | Path, tile: int = 137, max_views: int = 8
) -> Path:
    folder = shape_dir(root, key)
    names, views = read_views(folder / RENDER_DIR)
    names, views = names[:max_views], views[:max_views]
    gt = read_shape(folder / SHAPE_FILE, voxel_resolutions=(128,), surface=False)
    mesh = voxels_to_mesh(gt.voxels[128])
    sheet = Image.new("RGB", (tile * len(views), tile * 2), "white")
    for i, (name, view) in enumerate(zip(names, views)):
        rgba = load_image(folder / RENDER_DIR / name)
        img = Image.fromarray(rgba, "RGBA").resize((tile, tile), Image.BILINEAR)
        sheet.paste(img, (i * tile, 0), img)
        fig = render_mesh_figure(mesh, view_transform(view), tile)
        sheet.paste(Image.fromarray(fig), (i * tile, tile))
    out = Path(out)
    with atomic_path(out, suffix=".png") as tmp:
        sheet.save(tmp, format="PNG")
    return out
