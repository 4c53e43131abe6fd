"""`ifkd evaluate`: reconstruct every test view, score it against the ground truth, write tables.

Every method goes through the same code: its mesh is brought into the canonical object frame with
the view's known rotation (view-frame methods) -- equivalent to moving the GT into the view frame with
E_i, since every metric is rotation-invariant except the axis-aligned 32^3 voxel IoU, which is
computed in the canonical frame for all methods alike.

Ground truth per shape: the stored surface samples + normals (Chamfer, normals, F-score, edge
Chamfer), the 32^3 voxels plus every cell a surface sample falls in (the paper's voxel IoU, binvox-like
surface + fill on both sides, as the prediction is voxelised) and, for OccNet's volumetric IoU, uniform points
in the padded box [-0.55, 0.55]^3 whose GT occupancy is looked up in the 128^3 grid (cell size
1/128; points outside the grid are empty).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ifkd.data.format import RENDER_DIR, SHAPE_FILE, load_image, read_index, read_shape, read_views, shape_dir
from ifkd.data.loader import image_to_tensor
from ifkd.eval.metrics import evaluate_mesh, iou_voxels, voxelize_mesh_occupancy
from ifkd.geometry.camera import view_transform
from ifkd.geometry.voxels import uniform_points_in_grid
from ifkd.io import InputError, atomic_write_json, atomic_write_text, check_writable
from ifkd.reconstruct import Reconstructor, to_object_frame, view_rotation_gl

TABLE_COLUMNS = [
    ("iou", "IoU ↑", "{:.3f}"),
    ("iou_voxels_32", "IoU 32³ ↑", "{:.3f}"),
    ("chamfer_l1_x10", "Chamfer-L1 ×10 ↓", "{:.3f}"),
    ("edge_chamfer_x1000", "ECD ×1000 ↓", "{:.3f}"),
    ("fscore_1", "F@1% ↑", "{:.3f}"),
    ("fscore_2", "F@2% ↑", "{:.3f}"),
    ("normal_consistency", "NC ↑", "{:.3f}"),
]
"""Columns of the Table-1 layout: metric key, header, format."""


@dataclass(frozen=True)
class EvalOptions:
    split: str = "test"
    views: str = "first"
    """'first' (OccNet: view 0 only), 'all', or a number of views per shape"""
    resolution: int | None = None
    limit: int | None = None
    """evaluate at most this many shapes (quick looks)"""
    known_distance: bool = True
    """query at the view's true camera distance (False: the config's nominal one: fully camera-free)"""
    seed: int = 0


def surface_filled_voxels(vox: np.ndarray, surface_points: np.ndarray, half: float = 0.5) -> np.ndarray:
    """(R, R, R) cell-centre voxels | the cells holding any of the (M, 3) surface samples: the binvox-like
    "surface + fill" grid that ``voxelize_mesh_occupancy`` makes of a prediction. Cell-centre voxels
    alone would drop thin parts that the prediction's surface cells keep (a perfect mesh scored 0.56)."""
    res = vox.shape[0]
    out = np.array(vox, dtype=bool, copy=True)
    idx = np.floor((np.asarray(surface_points) + half) * (res / (2.0 * half))).astype(np.int64)
    idx = idx[np.all((idx >= 0) & (idx < res), axis=1)]
    out[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return out


def _view_indices(n_views: int, views: str) -> list[int]:
    if views == "first":
        return [0]
    if views == "all":
        return list(range(n_views))
    try:
        k = int(views)
    except ValueError:
        raise InputError(f"--views {views!r}: expected 'first', 'all' or a number") from None
    return list(range(min(k, n_views)))


def evaluate_model(
    rec: Reconstructor,
    data_root: str | Path,
    opts: EvalOptions,
    progress: bool | None = None,
    skipped: list[str] | None = None,
):
    """Per-(shape, view) metric rows for one model over one split.

    A damaged shape (unreadable file, NaN, bad metadata, ...) raises :class:`InputError`, unless a list
    is passed as ``skipped``: then its one-line reason is appended there and the others are scored.
    """
    root = Path(data_root)
    index = read_index(root)
    keys = list(index["splits"].get(opts.split, []))
    if not keys:
        raise InputError(f"{root / 'index.json'}: split {opts.split!r} is empty")
    keys = keys[: opts.limit] if opts.limit else keys
    cfg = rec.cfg
    rows: list[dict] = []
    for key in tqdm(
        keys, desc=f"evaluate {cfg.method}", unit="shape", disable=None if progress is None else not progress
    ):
        try:
            rows.extend(_evaluate_shape(rec, root, key, opts))
        except InputError as exc:
            if skipped is None:
                raise
            reason = str(exc) if str(shape_dir(root, key)) in str(exc) else f"{shape_dir(root, key)}: {exc}"
            skipped.append(reason)
            print(f"  skipped: {reason}", file=sys.stderr)
    return rows


def _evaluate_shape(rec: Reconstructor, root: Path, key: str, opts: EvalOptions) -> list[dict]:
    """Metric rows of one shape's scored views (reads, reconstructs and scores; raises on bad input)."""
    cfg = rec.cfg
    rows = []
    folder = shape_dir(root, key)
    res_in = (cfg.data.voxel_resolution,) if rec.model.input_kind == "voxels" else ()
    gt = read_shape(folder / SHAPE_FILE, voxel_resolutions=tuple(sorted({32, 128, *res_in})))
    names, views = read_views(folder / RENDER_DIR)
    rng = np.random.default_rng([opts.seed, zlib.crc32(key.encode())])  # stable across runs
    iou_pts, iou_occ = uniform_points_in_grid(gt.voxels[128], cfg.eval.iou_points, rng)
    vox32 = surface_filled_voxels(gt.voxels[32], gt.surface_points)
    for v in _view_indices(len(views), opts.views):
        view = views[v]
        if rec.model.input_kind == "voxels":
            inp = torch.from_numpy(gt.voxels[cfg.data.voxel_resolution].astype(np.float32))[None, None]
        else:
            rgba = load_image(folder / RENDER_DIR / names[v])
            inp = image_to_tensor(rgba, cfg.data.image_size, cfg.data.background)[None]
        distance = view.distance if opts.known_distance else None
        (out,) = rec.reconstruct(inp, resolution=opts.resolution, distance=distance)
        mesh = out.mesh
        if out.frame == "view":
            mesh = to_object_frame(mesh, view_rotation_gl(view_transform(view)))
        metrics = evaluate_mesh(
            mesh,
            gt.surface_points,
            gt.surface_normals,
            iou_pts,
            iou_occ,
            n_surface=cfg.eval.surface_points,
            n_edge_samples=cfg.eval.edge_points,
            rng=np.random.default_rng(opts.seed),
        )
        metrics["iou_voxels_32"] = iou_voxels(voxelize_mesh_occupancy(mesh, 32), vox32)
        metrics["edge_chamfer_x1000"] = 1000.0 * metrics.get("edge_chamfer", float("nan"))
        metrics["queries"] = float(out.n_queries)
        metrics["seconds"] = float(sum(out.timings.values()))
        rows.append({"shape": key, "category": key.split("/")[0], "view": v, **metrics})
    return rows


def summarise(rows: list[dict]) -> dict:
    """Per-category means (NaN-aware) and the unweighted mean of category means (OccNet's)."""
    cats: dict[str, list[dict]] = {}
    for r in rows:
        cats.setdefault(r["category"], []).append(r)
    keys = [k for k, _, _ in TABLE_COLUMNS]
    per_cat = {
        c: {k: float(np.nanmean([r.get(k, np.nan) for r in rs])) for k in keys} | {"n": len(rs)}
        for c, rs in sorted(cats.items())
    }
    mean = {k: float(np.nanmean([v[k] for v in per_cat.values()])) for k in keys}
    return {"per_category": per_cat, "mean": mean, "n": len(rows)}


def markdown_table(summary: dict, title: str = "") -> str:
    head = "| category | n | " + " | ".join(h for _, h, _ in TABLE_COLUMNS) + " |"
    sep = "|---|---:|" + "---:|" * len(TABLE_COLUMNS)
    lines = [f"### {title}", ""] if title else []
    lines += [head, sep]
    for cat, vals in summary["per_category"].items():
        cells = " | ".join(fmt.format(vals[k]) for k, _, fmt in TABLE_COLUMNS)
        lines.append(f"| {cat} | {vals['n']} | {cells} |")
    cells = " | ".join(fmt.format(summary["mean"][k]) for k, _, fmt in TABLE_COLUMNS)
    lines.append(f"| **mean (of classes)** | {summary['n']} | {cells} |")
    return "\n".join(lines) + "\n"


def write_results(rows: list[dict], out_dir: str | Path, title: str, meta: dict) -> dict:
    """per_shape.csv, summary.json and table.md (atomic writes)."""
    out = Path(out_dir)
    check_writable(out)
    summary = summarise(rows)
    if rows:
        buf = io.StringIO()
        fields = list(rows[0].keys())
        writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(out / "per_shape.csv", buf.getvalue())
    full = {**meta, **summary}
    atomic_write_json(out / "summary.json", full)
    notes = (
        "\nIoU: volumetric, uniform points in [-0.55, 0.55]^3 (OccNet); IoU 32³: voxelised (the paper's). "
        "Chamfer-L1 ×10 and ECD ×1000 in units of the GT's longest bounding-box edge (OccNet's unit). "
        "Class mean = unweighted mean of the per-class means.\n"
    )
    if meta.get("skipped"):
        notes += f"\n{len(meta['skipped'])} damaged shape(s) skipped, not scored (listed in summary.json).\n"
    atomic_write_text(out / "table.md", markdown_table(summary, title) + notes)
    return full


def run_evaluation(
    model: str | Path, data_root: str | Path, out_dir: str | Path, opts: EvalOptions, device="auto"
):
    """Evaluate one trained run end to end; returns the summary. Damaged shapes are skipped and listed
    in the summary's ``skipped`` (one reason each); the caller decides whether that is an error."""
    check_writable(out_dir)
    rec = Reconstructor.from_run(model, device=device)
    skipped: list[str] = []
    rows = evaluate_model(rec, data_root, opts, skipped=skipped)
    if not rows:
        first = skipped[0] if skipped else "none"
        raise InputError(f"no shape of split {opts.split!r} could be evaluated; first problem: {first}")
    meta = {
        "model": str(model),
        "method": rec.cfg.method,
        "data": str(data_root),
        "options": opts.__dict__,
        "skipped": skipped,
    }
    summary = write_results(rows, out_dir, f"{rec.cfg.method} on {Path(data_root).name} ({opts.split})", meta)
    return summary


def load_summary(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
