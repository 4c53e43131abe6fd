"""One model from each source -> our files: ground truth, views, silhouette check (used by the importer).

Each ``import_*_model`` function converts one model and raises on any problem; the importer turns the
exception into a one-line reason and moves on.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ifkd.data.format import (
    EVAL_SURFACE_POINTS,
    IOU_POINTS,
    RENDER_DIR,
    SHAPE_FILE,
    VOXEL_RESOLUTIONS,
    ShapeRecord,
    iou_arrays,
    write_shape,
    write_views,
)
from ifkd.data.shapenet import binvox, meshes, occnet, r2n2
from ifkd.data.shapenet.occupancy import mesh_ground_truth
from ifkd.data.solid_check import solid_problems
from ifkd.geometry.camera import Viewpoint, draw_viewpoints, project_to_pixels, view_transform
from ifkd.io import InputError, atomic_write_json, read_json

SILHOUETTE_MIN = 0.98
"""Views where fewer GT surface points land on the object's pixels are reported."""

CHECK_FILE = "check.json"
"""Per imported shape: its check numbers and, when its ground truth is degenerate, the reason (written
before ``shape.npz``, so a finished shape always has it; a rerun reads it back)."""


@dataclass(frozen=True)
class ImportSettings:
    n_points: int = 10_000
    n_uniform: int = 128
    surface_points: int = 16_384
    iou_points: int = IOU_POINTS
    """OccNet-style uniform evaluation points with exact labels (0: none)"""
    eval_surface_points: int = EVAL_SURFACE_POINTS
    """OccNet-size surface samples + normals for the metrics (0: none)"""
    voxel_resolutions: tuple[int, ...] = VOXEL_RESOLUTIONS
    seed: int = 0
    views: int = 8
    """renders per shape for ``import_meshes`` (R2N2 and OccNet bring their own 24)"""
    image_size: int = 137
    supersample: int = 2
    v2_rotation: float = meshes.V2_ROTATION_DEG
    category: str = "real"
    """category name of ``import_meshes`` shapes"""


def shape_rng(seed: int, key: str) -> np.random.Generator:
    """Per-shape generator from the global seed and the key (independent of order and workers)."""
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def silhouette_agreement(points: np.ndarray, views: list[Viewpoint], images: list[np.ndarray]) -> list[float]:
    """Per view, the share of object-frame points (N, 3) whose projection falls on a pixel with alpha > 0."""
    out = []
    for view, img in zip(views, images):
        h, w = img.shape[:2]
        pix, depth = project_to_pixels(points, view_transform(view), w, h)
        col, row = np.floor(pix[:, 0]).astype(np.int64), np.floor(pix[:, 1]).astype(np.int64)
        ok = (depth > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        hit = np.zeros(len(points), dtype=bool)
        hit[ok] = img[row[ok], col[ok], 3] > 0
        out.append(float(hit.mean()))
    return out


def _finish(out: Path, key: str, views, images, record: ShapeRecord) -> dict:
    """Write views, the check file, then shape.npz (last: marks completion); return the check numbers,
    with ``degenerate`` (a one-line reason) when the ground truth is not a plausible solid."""
    from ifkd.data.format import IOU_OCC_KEY, IOU_POINTS_KEY

    agree = silhouette_agreement(record.surface_points, views, images)
    iou = None
    if IOU_POINTS_KEY in record.extra:
        pts = np.asarray(record.extra[IOU_POINTS_KEY])
        iou = (pts, np.unpackbits(record.extra[IOU_OCC_KEY], count=len(pts)).astype(bool))
    stats: dict = {}
    problems = solid_problems(record, iou, views, images, stats)
    info = {
        "silhouette_min": round(min(agree), 4),
        "silhouette_mean": round(float(np.mean(agree)), 4),
        "inside_share": round(float(np.mean(iou[1] if iou else record.occupancies)), 5),
        **stats,
    }
    if problems:
        info["degenerate"] = "; ".join(problems)
    write_views(out / key / RENDER_DIR, views, images)
    atomic_write_json(out / key / CHECK_FILE, info)
    write_shape(out / key / SHAPE_FILE, record)
    return info


def read_check(out: Path, key: str) -> dict:
    """The check numbers an earlier run stored for out/key ({} for shapes imported before they existed)."""
    path = Path(out) / key / CHECK_FILE
    return read_json(path) if path.is_file() else {}


def _ground_truth(mesh, key: str, s: ImportSettings) -> ShapeRecord:
    return mesh_ground_truth(
        mesh,
        shape_rng(s.seed, key),
        s.n_points,
        s.n_uniform,
        s.surface_points,
        s.voxel_resolutions,
        s.iou_points,
        s.eval_surface_points,
    )


def import_r2n2_model(
    out: Path, key: str, render_dir: Path, meshes_dir: Path, s: ImportSettings, voxels_dir: Path | None = None
) -> dict:
    """R2N2 renders of ``render_dir`` + the matching ShapeNetCore mesh [+ ShapeNetVox32 grid] -> out/key.

    Returns check numbers: mesh version, v1 frame deviation, silhouette agreement."""
    synset, model = render_dir.parent.name, render_dir.name
    views, paths = r2n2.read_model_views(render_dir)
    found = meshes.find_shapenet_mesh(meshes_dir, synset, model)
    if found is None:
        raise InputError(
            f"no mesh under {meshes_dir / synset / model} ({meshes.V1_FILE} or {meshes.V2_FILE})"
        )
    mesh = meshes.load_shapenet_mesh(found[0], found[1], s.v2_rotation)
    record = _ground_truth(mesh, key, s)
    notes = {"mesh_version": found[1]}
    if found[1] == 1:
        off, diag = meshes.v1_frame_deviation(mesh)
        notes.update(v1_centre_offset=round(off, 4), v1_diagonal_error=round(diag, 4))
    if voxels_dir is not None:
        vox = binvox.read_binvox(Path(voxels_dir) / synset / model / "model.binvox")
        record.extra.update(
            binvox=np.packbits(vox.grid.reshape(-1)),
            binvox_translate=vox.translate,
            binvox_scale=np.float64(vox.scale),
        )
    images = [r2n2.load_render(p) for p in paths]
    return {**notes, **_finish(out, key, views, images, record)}


def _voxels_from_points(points: np.ndarray, occ: np.ndarray, resolutions) -> dict[int, np.ndarray]:
    """Grids from labelled points by nearest neighbour (OccNet's 100k points: spacing ~0.024 x scale)."""
    from scipy.spatial import cKDTree

    from ifkd.geometry.voxels import voxel_centers

    tree = cKDTree(points)
    return {
        r: occ[tree.query(voxel_centers(r), workers=1)[1]].astype(bool).reshape(r, r, r) for r in resolutions
    }


def import_occnet_model(out: Path, key: str, model_dir: Path, s: ImportSettings) -> dict:
    """OccNet model folder -> out/key: its points/labels and surface kept (in our frame), voxels by
    nearest neighbour from the labelled points, views from img_choy2016 with recovered viewpoints."""
    points, occ, loc, scale = occnet.read_points(model_dir / "points.npz")
    surface, normals = occnet.read_pointcloud(model_dir / "pointcloud.npz")
    views, paths = occnet.read_cameras(model_dir / occnet.IMG_DIR)
    voxels = _voxels_from_points(points, occ, s.voxel_resolutions)
    # OccNet's 100k uniform points are its evaluation points: kept as ours too (labels as OccNet made them)
    extra = {"occnet_loc": loc, "occnet_scale": np.float64(scale), **iou_arrays(points, occ)}
    record = ShapeRecord(
        points.astype(np.float32), occ, surface.astype(np.float32), normals.astype(np.float32), voxels, extra
    )
    images = [occnet.load_view_image(p) for p in paths]
    return _finish(out, key, views, images, record)


def import_mesh_file(out: Path, key: str, path: Path, s: ImportSettings) -> dict:
    """Any mesh file -> out/key: normalised (box centre, diagonal 1), ground truth, R2N2-like renders."""
    from ifkd.render.raycast import render

    mesh, loc, scale = meshes.normalise(meshes.load_mesh(path))
    record = _ground_truth(mesh, key, s)
    record.extra.update(source_loc=loc, source_scale=np.float64(scale))
    views = draw_viewpoints(shape_rng(s.seed + 1, key), s.views)
    images = [
        render(mesh, view_transform(v), s.image_size, supersample=s.supersample, filter_width=1.5).rgba
        for v in views
    ]
    return _finish(out, key, views, images, record)
