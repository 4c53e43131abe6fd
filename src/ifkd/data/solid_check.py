"""Is a shape's ground truth a plausible solid? The checks that flag degenerate labels where they are made.

A wrong inside test fails quietly: every label 0 (a double-sided soup whose winding numbers cancel),
everything outside labelled inside (an inverted or leaking mesh), or a solid with holes where the object
is (parts lost). Each check compares the labels with something independent of the inside test: the
surface samples' bounding box, and the object's own silhouettes in its renders. Used by the importer
(a flagged shape stays out of the splits) and by ``ifkd data info --check``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ifkd.data.format import ShapeRecord
from ifkd.geometry.camera import Viewpoint, intrinsics, project_to_pixels, view_transform
from ifkd.geometry.voxels import voxel_centers

LEAK_MARGIN = 1.0 / 64.0
"""Points farther than this outside the surface's bounding box cannot be inside a correct solid."""

LEAK_MAX = 0.01
"""Flag when more than this share of the points beyond that margin is labelled inside."""

COVER_MIN = 0.8
"""Flag when the solid's projection covers less than this share of the object's pixels in some view."""

ALPHA_MIN = 128
"""Pixels with at least this alpha are the object's silhouette."""


def silhouette_cover(grid: np.ndarray, views: list[Viewpoint], images: list[np.ndarray]) -> list[float]:
    """Per view, the share of silhouette pixels (alpha >= ALPHA_MIN) within one projected cell of an
    occupied cell centre of the bool voxel grid (R, R, R) [x, y, z]."""
    res = grid.shape[0]
    centres = voxel_centers(res)[grid.reshape(-1)].astype(np.float64)
    out = []
    for view, img in zip(views, images):
        h, w = img.shape[:2]
        mask = img[..., 3] >= ALPHA_MIN
        if not mask.any():
            out.append(1.0)
            continue
        pix, depth = project_to_pixels(centres, view_transform(view), w, h)
        col, row = np.floor(pix[:, 0]).astype(np.int64), np.floor(pix[:, 1]).astype(np.int64)
        ok = (depth > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        hit = np.zeros((h, w), dtype=bool)
        hit[row[ok], col[ok]] = True
        # One cell seen from this view spans about f * cell / depth pixels; fill the gaps between centres.
        focal = float(intrinsics(w, h)[0, 0])
        near = float(np.median(depth[ok])) if ok.any() else 1.0
        radius = int(np.ceil(focal * (1.0 / res) / max(near, 1e-6)))
        hit = ndimage.binary_dilation(hit, iterations=max(1, radius))
        out.append(float((hit & mask).sum() / mask.sum()))
    return out


def solid_problems(
    record: ShapeRecord,
    iou: tuple[np.ndarray, np.ndarray] | None,
    views: list[Viewpoint],
    images: list[np.ndarray],
    stats: dict | None = None,
) -> list[str]:
    """One-line reasons why this ground truth is not a plausible solid; empty when it passes.

    ``iou``: the evaluation points and labels, when the shape has them; ``views``/``images``: its renders;
    ``stats``: a dict that receives the measured numbers (leak share, worst silhouette cover).
    """
    stats = {} if stats is None else stats
    pts = [np.asarray(record.points, dtype=np.float64)]
    occ = [np.asarray(record.occupancies, dtype=bool)]
    if iou is not None:
        pts.append(np.asarray(iou[0], dtype=np.float64))
        occ.append(np.asarray(iou[1], dtype=bool))
    points, labels = np.concatenate(pts), np.concatenate(occ)
    grid = record.voxels[max(record.voxels)] if record.voxels else None
    problems = []
    if not labels.any() and (grid is None or not grid.any()):
        problems.append(f"empty solid: 0 of {len(labels)} labelled points inside")
        return problems
    if len(record.surface_points):
        lo = record.surface_points.min(axis=0) - LEAK_MARGIN
        hi = record.surface_points.max(axis=0) + LEAK_MARGIN
        beyond = np.any((points < lo) | (points > hi), axis=1)
        stats["leak"] = round(float(labels[beyond].mean()), 5) if beyond.any() else 0.0
        if beyond.any() and labels[beyond].mean() > LEAK_MAX:
            problems.append(
                f"solid leaks: {labels[beyond].mean():.0%} of the points beyond the surface's bounding box "
                "are labelled inside (inverted or leaking mesh)"
            )
    if grid is not None and views:
        cover = silhouette_cover(grid, views, images)
        worst = int(np.argmin(cover))
        stats["cover_min"] = round(cover[worst], 4)
        if cover[worst] < COVER_MIN:
            problems.append(
                f"solid covers {cover[worst]:.0%} of the object's silhouette in view {worst} "
                f"(< {COVER_MIN:.0%}: hollow, missing parts, or thinner than one voxel)"
            )
    return problems


MESH_SOURCES = ("meshes", "r2n2")
"""Dataset sources whose solids come from our inside test of a mesh (the others bring their labels)."""


def dataset_problems(root, index: dict) -> list[str]:
    """Dataset-level lines for ``ifkd data info --check``: an import made with an inside test older than
    the current one (its ShapeNet soups came out empty), and the shapes flagged degenerate at import."""
    from ifkd.data.format import INDEX_FILE
    from ifkd.data.shapenet.occupancy import INSIDE_TEST_VERSION

    path = f"{root}/{INDEX_FILE}"
    lines = []
    version = index.get("inside_test_version", 1)
    if index.get("source") in MESH_SOURCES and version < INSIDE_TEST_VERSION:
        lines.append(
            f"{path}: imported with inside test v{version}, which labels double-sided meshes (ShapeNet's) "
            f"empty; re-import it with `ifkd data import {index['source']}` (v{INSIDE_TEST_VERSION})"
        )
    lines += [
        f"{root}/{key}: flagged at import, kept out of the splits: {reason}"
        for key, reason in sorted(index.get("degenerate", {}).items())
    ]
    return lines
