"""Picture grids for the report (the paper's Figs 4 and 5): input image, ground truth and each method's
mesh, every mesh drawn by our CPU renderer from the input view and from one other view.

All meshes are brought into the canonical object frame first (view-frame methods through the known
pose, as the evaluator does), then rendered with the dataset's R2N2 cameras, so every column of a row
is seen exactly as the input image was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image, ImageDraw, ImageFont

from ifkd.data.format import RENDER_DIR, SHAPE_FILE, load_image, read_shape, read_views, shape_dir
from ifkd.data.loader import model_input
from ifkd.data.show import voxels_to_mesh
from ifkd.geometry.camera import Viewpoint, view_transform
from ifkd.io import atomic_path
from ifkd.reconstruct import Reconstructor
from ifkd.render.raycast import FIGURE_COLOR, render_mesh_figure

GT_COLOR = (190, 190, 190)
"""Ground truth in grey, predictions in the figure blue: the two never get confused."""
OTHER_TURN = 90.0
"""Azimuth offset (degrees) of the second view: a side view shows the depth errors the input view hides."""


@dataclass
class Sample:
    """One test image and its ground truth."""

    key: str
    """'category/id'"""
    image: np.ndarray
    """(H, W, 4) uint8 RGBA render, as stored"""
    view: Viewpoint
    """the R2N2 viewpoint the image was rendered from"""
    gt: trimesh.Trimesh
    """object frame, the boundary of the stored 128^3 voxels"""
    voxels: dict[int, np.ndarray]
    """(R, R, R) bool grids on [-0.5, 0.5]^3 (teacher inputs)"""


def pick_shapes(keys: Sequence[str], n: int) -> list[str]:
    """Up to ``n`` keys from as many different categories as possible: categories spread evenly over
    their sorted list (first shape of each), then further shapes round-robin when n > categories."""
    by_cat: dict[str, list[str]] = {}
    for key in keys:
        by_cat.setdefault(key.split("/")[0], []).append(key)
    cats = sorted(by_cat)
    if not cats or n <= 0:
        return []
    order = [cats[int(i)] for i in np.unique(np.linspace(0, len(cats) - 1, min(n, len(cats))).round())]
    order += [c for c in cats if c not in order]
    picked: list[str] = []
    depth = 0
    while len(picked) < n and depth < max(len(v) for v in by_cat.values()):
        for cat in order:
            if depth < len(by_cat[cat]) and len(picked) < n:
                picked.append(sorted(by_cat[cat])[depth])
        depth += 1
    return picked


def load_samples(
    root: str | Path, keys: Sequence[str], view_index: int = 0, voxel_resolutions: Sequence[int] = ()
) -> list[Sample]:
    """Read each shape's ``view_index``-th render, its viewpoint, its 128^3 grid (the GT picture) and
    the grids of ``voxel_resolutions`` (teacher inputs)."""
    samples = []
    for key in keys:
        folder = shape_dir(root, key)
        names, views = read_views(folder / RENDER_DIR)
        v = min(view_index, len(views) - 1)
        res = tuple(sorted({128, *voxel_resolutions}))
        gt = read_shape(folder / SHAPE_FILE, voxel_resolutions=res, surface=False)
        image = load_image(folder / RENDER_DIR / names[v])
        samples.append(Sample(key, image, views[v], voxels_to_mesh(gt.voxels[128]), gt.voxels))
    return samples


def other_view(view: Viewpoint, turn: float = OTHER_TURN) -> Viewpoint:
    """The same camera turned ``turn`` degrees of azimuth around the object."""
    return replace(view, azimuth=(view.azimuth + turn) % 360.0)


def reconstruct_samples(
    rec: Reconstructor, samples: Sequence[Sample], resolution: int
) -> list[trimesh.Trimesh]:
    """One object-frame mesh per sample (voxel teachers read the sample's grid, others its image)."""
    meshes = []
    for s in samples:
        inputs = model_input(rec.model.input_kind, rec.cfg.data, rgba=s.image, voxels=s.voxels)
        (out,) = rec.reconstruct(inputs, resolution=resolution, poses=[s.view])
        meshes.append(out.mesh_object if out.mesh_object is not None else out.mesh)
    return meshes


def image_tile(rgba: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8: an RGBA render composited on white and resized."""
    img = Image.fromarray(rgba, "RGBA").resize((size, size), Image.LANCZOS)
    canvas = Image.new("RGB", img.size, "white")
    canvas.paste(img, (0, 0), img)
    return np.asarray(canvas)


def mesh_tile(
    mesh: trimesh.Trimesh, view: Viewpoint, size: int, color=FIGURE_COLOR, supersample: int = 3
) -> np.ndarray:
    """(size, size, 3) uint8: the object-frame mesh seen from an R2N2 viewpoint ('empty' when no faces)."""
    if len(mesh.faces) == 0:
        return text_tile("empty mesh", size)
    return render_mesh_figure(mesh, view_transform(view), size, tuple(color), supersample=supersample)


def text_tile(text: str, size: int, color=(150, 150, 150)) -> np.ndarray:
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    font = _font(max(10, size // 10))
    w = draw.textlength(text, font=font)
    draw.text(((size - w) / 2, size / 2 - size // 20), text, fill=color, font=font)
    return np.asarray(img)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except TypeError:  # pragma: no cover - old Pillow: the fixed bitmap font
        return ImageFont.load_default()


def compose_grid(
    cells: Sequence[Sequence[np.ndarray | None]],
    col_labels: Sequence[str],
    row_labels: Sequence[str],
    tile: int,
    group_rows: int = 1,
) -> Image.Image:
    """Tiles (tile, tile, 3) in rows and columns under a header of column labels, with row labels on the
    left; a rule is drawn between groups of ``group_rows`` rows (the views of one shape). None = blank."""
    font = _font(max(11, tile // 10))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = int(max([probe.textlength(t, font=font) for t in row_labels] + [0])) + 16
    head_h = int(tile * 0.22) + 8
    gap = 2
    n_rows, n_cols = len(cells), len(col_labels)
    width = label_w + n_cols * (tile + gap)
    height = head_h + n_rows * (tile + gap) + (n_rows // max(group_rows, 1)) * 4
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for c, label in enumerate(col_labels):
        x = label_w + c * (tile + gap)
        text = _fit(draw, label, font, tile - 4)
        draw.text((x + (tile - draw.textlength(text, font=font)) / 2, 4), text, fill="black", font=font)
    y = head_h
    for r, row in enumerate(cells):
        if r and r % group_rows == 0:
            draw.line([(4, y + 1), (width - 4, y + 1)], fill=(200, 200, 200), width=1)
            y += 4
        draw.text((6, y + tile / 2 - tile // 16), row_labels[r], fill="black", font=font)
        for c, cell in enumerate(row):
            if cell is not None:
                img.paste(Image.fromarray(np.asarray(cell, dtype=np.uint8)), (label_w + c * (tile + gap), y))
        y += tile + gap
    return img


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: float) -> str:
    """Shorten a label with an ellipsis until it fits ``width`` pixels."""
    while len(text) > 3 and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…"
    return text


def content_box(images: Sequence[np.ndarray], margin: float = 0.12) -> tuple[int, int, int, int]:
    """A square (x0, y0, x1, y1) around the non-white pixels of same-size (S, S, 3) images, widened by
    ``margin`` of its side on each side and kept inside the image (whole image when all are blank)."""
    size = images[0].shape[0]
    mask = np.zeros(images[0].shape[:2], dtype=bool)
    for img in images:
        mask |= (np.asarray(img)[..., :3] < 245).any(axis=2)
    if not mask.any():
        return 0, 0, size, size
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    cy, cx = (rows[0] + rows[-1] + 1) / 2, (cols[0] + cols[-1] + 1) / 2
    side = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) * (1 + 2 * margin)
    side = int(min(size, max(side, size / 4)))
    x0 = int(np.clip(round(cx - side / 2), 0, size - side))
    y0 = int(np.clip(round(cy - side / 2), 0, size - side))
    return x0, y0, x0 + side, y0 + side


def _crop(img: np.ndarray, box: tuple[int, int, int, int], tile: int) -> np.ndarray:
    return np.asarray(Image.fromarray(img).crop(box).resize((tile, tile), Image.LANCZOS))


def comparison_grid(
    samples: Sequence[Sample],
    columns: Mapping[str, Sequence[trimesh.Trimesh]],
    tile: int = 128,
    oversample: int = 3,
) -> Image.Image:
    """Figs 4/5: per sample two rows (its input view; the view turned by :data:`OTHER_TURN`), columns
    input | GT | one per entry of ``columns`` (label -> one object-frame mesh per sample).

    Each row is zoomed onto the ground truth (and input image) with one crop shared by all its
    columns, so sizes stay comparable; pictures are drawn ``oversample`` times larger (one ray per
    pixel), then cropped and reduced, which anti-aliases them.
    """
    labels = ["input", "ground truth", *columns]
    cells: list[list[np.ndarray | None]] = []
    row_labels: list[str] = []
    big = tile * oversample
    for i, s in enumerate(samples):
        for k, view in enumerate((s.view, other_view(s.view))):
            gt = mesh_tile(s.gt, view, big, GT_COLOR, supersample=1)
            first = image_tile(s.image, big) if k == 0 else None
            box = content_box([gt] if first is None else [gt, first])
            row = [
                mesh_tile(meshes[i], view, big, supersample=1) if len(meshes[i].faces) else None
                for meshes in columns.values()
            ]
            left = (
                _crop(first, box, tile)
                if first is not None
                else text_tile(f"+{OTHER_TURN:.0f}° azimuth", tile)
            )
            crop = [
                _crop(img, box, tile) if img is not None else text_tile("empty mesh", tile) for img in row
            ]
            cells.append([left, _crop(gt, box, tile), *crop])
            row_labels.append(s.key if k == 0 else "")
    return compose_grid(cells, labels, row_labels, tile, group_rows=2)


def save_png(image: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG", optimize=True)
    return path
