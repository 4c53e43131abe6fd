"""`ifkd evaluate`: reconstruct every test view, score it against the ground truth, write tables.

Every method goes through the same code: its mesh is brought into the canonical object frame with
the view's known rotation (view-frame methods) -- equivalent to moving the GT into the view frame with
E_i, since every metric is rotation-invariant except the axis-aligned 32^3 voxel IoU, which is
computed in the canonical frame for all methods alike.

Ground truth per shape: the stored evaluation surface samples + normals (100k, as OccNet's
pointcloud.npz; the 16k ``surface_points`` for data made before they existed) for Chamfer, normals,
F-score and edge Chamfer, the 32^3 voxels plus every cell a surface sample falls in (the paper's
voxel IoU, binvox-like surface + fill on both sides, as the prediction is voxelised) and, for
OccNet's volumetric IoU, the shape's stored 100k uniform points in the padded box [-0.55, 0.55]^3
with exact labels (analytic for procedural shapes, the inside test for imported meshes, OccNet's own
for OccNet data). Datasets made before those existed fall back to uniform points whose occupancy is
looked up in the 128^3 grid (cell size 1/128: thin parts lose up to half their IoU); each row says
which (``iou_exact_labels``) and how many GT surface samples it used (``gt_surface_samples``).

:func:`run_evaluation` runs one task per shape through :mod:`ifkd.engine` (in-process, worker
processes, or a Dask cluster), each worker loading the model once; every finished shape's rows go to
``<out>/shapes/<category>/<id>.json`` at once, so a rerun with the same model, data and options skips
the shapes already there and writes the same tables.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import threading
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ifkd.data.format import (
    RENDER_DIR,
    SHAPE_FILE,
    load_image,
    read_eval_surface,
    read_index,
    read_iou_points,
    read_shape,
    read_views,
    shape_dir,
)
from ifkd.data.loader import frames_every_picture, model_input
from ifkd.engine import Failed, check_scheduler, run_tasks
from ifkd.eval.metrics import evaluate_mesh, iou_voxels, voxelize_mesh_occupancy
from ifkd.geometry.camera import NOMINAL_DISTANCE_RATIO, view_transform
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
    ("empty", "empty ↓", "{:.2f}"),
    ("chamfer_l1_x10_nonempty", "Chamfer ×10, non-empty ↓", "{:.3f}"),
    ("fscore_1_nonempty", "F@1%, non-empty ↑", "{:.3f}"),
]
"""Columns of the Table-1 layout: metric key, header, format. ``empty`` is the share of empty meshes:
they are scored as OccNet scores them (IoU 0, Chamfer-L1 sqrt(3), NC and F-score 0), so a mean with
many empties is mostly a count of them; the ``*_nonempty`` columns are the same metrics over the
non-empty meshes only (:data:`NONEMPTY_OF`), so both conventions stand side by side."""

NONEMPTY_SUFFIX = "_nonempty"
NONEMPTY_OF: tuple[str, ...] = tuple(
    k.removesuffix(NONEMPTY_SUFFIX) for k, _, _ in TABLE_COLUMNS if k.endswith(NONEMPTY_SUFFIX)
)
"""Metrics also averaged over the non-empty meshes alone (a category whose meshes are all empty has no
value there: NaN, left out of the class mean)."""

SHAPES_DIR = "shapes"
"""Under the results folder: one json of metric rows per finished shape (what a rerun skips)."""


@dataclass(frozen=True)
class EvalOptions:
    split: str = "test"
    views: str = "first"
    """'first' (OccNet: view 0 only), 'all', or a number of views per shape"""
    resolution: int | None = None
    limit: int | None = None
    """evaluate at most this many shapes (quick looks)"""
    known_distance: bool = False
    """query at the view's true camera distance; False (the default): at the nominal one, as a user's
    image is reconstructed (camera-free: the true distance is information such a user does not have)"""
    seed: int = 0
    dense: bool = False
    """extract on the full grid instead of coarse-to-fine: a part thinner than the coarse level's spacing,
    which no coarse corner falls inside, is kept (the coarse pass never refines it, however sharp the
    field: benchmarks/results/reference_converged.md); (R+1)^3 queries per shape"""


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
    keys = _split_keys(root, opts)
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
            reason = _skip_reason(root, key, exc)
            skipped.append(reason)
            print(f"  skipped: {reason}", file=sys.stderr)
    return rows


def _split_keys(root: Path, opts: EvalOptions) -> list[str]:
    """The split's shape keys, at most ``opts.limit`` of them (InputError when the split is empty)."""
    keys = list(read_index(root)["splits"].get(opts.split, []))
    if not keys:
        raise InputError(f"{root / 'index.json'}: split {opts.split!r} is empty")
    return keys[: opts.limit] if opts.limit else keys


def _skip_reason(root: Path, key: str, exc: InputError) -> str:
    """A damaged shape's one-line reason, naming its folder."""
    return str(exc) if str(shape_dir(root, key)) in str(exc) else f"{shape_dir(root, key)}: {exc}"


def _evaluate_shape(rec: Reconstructor, root: Path, key: str, opts: EvalOptions) -> list[dict]:
    """Metric rows of one shape's scored views (reads, reconstructs and scores; raises on bad input)."""
    cfg = rec.cfg
    rows = []
    folder = shape_dir(root, key)
    res_in = (cfg.data.voxel_resolution,) if rec.model.input_kind == "voxels" else ()
    gt = read_shape(folder / SHAPE_FILE, voxel_resolutions=tuple(sorted({32, 128, *res_in})))
    names, views = read_views(folder / RENDER_DIR)
    eval_surface = read_eval_surface(folder / SHAPE_FILE)  # 100k, when the data has them
    gt_surface, gt_normals = eval_surface if eval_surface else (gt.surface_points, gt.surface_normals)
    stored = read_iou_points(folder / SHAPE_FILE)
    if stored is not None:  # exact labels made with the data (analytic, or the inside test of the mesh)
        iou_pts, iou_occ = stored
    else:  # datasets made before they existed: labels looked up in the 128^3 grid
        rng = np.random.default_rng([opts.seed, zlib.crc32(key.encode())])  # stable across runs
        iou_pts, iou_occ = uniform_points_in_grid(gt.voxels[128], cfg.eval.iou_points, rng)
    vox32 = surface_filled_voxels(gt.voxels[32], gt.surface_points)
    for v in _view_indices(len(views), opts.views):
        view = views[v]
        inp = model_input(rec.model.input_kind, cfg.data, folder, names[v], voxels=gt.voxels)
        if out_frame_is_view := (rec.model.frame == "view" and rec.model.input_kind == "image"):
            # One extraction, on the axis-aligned object-frame grid every method shares (the teacher's
            # and the global codes' own): the metrics are rotation-invariant, and ECD then measures the
            # prediction, not the staircase of a grid turned with the view.
            pose = view if opts.known_distance else replace(view, distance_ratio=NOMINAL_DISTANCE_RATIO)
            if frames_every_picture(cfg.data):  # the render as this model reads pictures: framed
                inp = [load_image(folder / RENDER_DIR / names[v])]
            out = rec.reconstruct_views(inp, [pose], resolution=opts.resolution, dense=opts.dense)
        else:
            distance = view.distance if opts.known_distance else None
            (out,) = rec.reconstruct(inp, resolution=opts.resolution, distance=distance, dense=opts.dense)
        mesh = out.mesh
        if out.frame == "view" and not out_frame_is_view:
            mesh = to_object_frame(mesh, view_rotation_gl(view_transform(view)))
        metrics = evaluate_mesh(
            mesh,
            gt_surface,
            gt_normals,
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
        metrics["iou_exact_labels"] = float(stored is not None)
        metrics["gt_surface_samples"] = float(len(gt_surface))
        rows.append({"shape": key, "category": key.split("/")[0], "view": v, **metrics})
    return rows


def summarise(rows: list[dict]) -> dict:
    """Per-category means (NaN-aware) and the unweighted mean of category means (OccNet's)."""
    cats: dict[str, list[dict]] = {}
    for r in rows:
        cats.setdefault(r["category"], []).append(r)
    keys = [k for k, _, _ in TABLE_COLUMNS]
    per_cat = {c: _category_means(rs, keys) | {"n": len(rs)} for c, rs in sorted(cats.items())}
    mean = {k: _nanmean([v[k] for v in per_cat.values()]) for k in keys}
    return {"per_category": per_cat, "mean": mean, "n": len(rows)}


def _nanmean(values: list) -> float:
    """Mean ignoring NaN (and missing values); NaN, without a warning, when nothing is left."""
    arr = np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def _category_means(rows: list[dict], keys: list[str]) -> dict[str, float]:
    """One category's means: every key over its rows, a ``*_nonempty`` key over the rows whose mesh is
    not empty (rows without an ``empty`` flag count as not empty)."""
    out = {}
    for k in keys:
        if k.endswith(NONEMPTY_SUFFIX):
            base = k.removesuffix(NONEMPTY_SUFFIX)
            out[k] = _nanmean([r.get(base) for r in rows if not float(r.get("empty") or 0.0)])
        else:
            out[k] = _nanmean([r.get(k) for r in rows])
    return out


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
    lines += ["", ECD_NOTE]
    return "\n".join(lines) + "\n"


ECD_NOTE = (
    "ECD: every method's prediction is extracted for this column on the same axis-aligned object-frame "
    "grid (view-frame students re-queried there); it measures how close the predicted sharp edges lie "
    "to the true ones at that grid's resolution, not the shape's own edges (a perfect field keeps the "
    "grid's staircase)."
)
"""Said under every table: what the ECD column does and does not measure."""


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


# ------------------------------------------------------------------------- shapes as (Dask) tasks
_MODELS: dict[tuple, Reconstructor] = {}
_MODELS_LOCK = threading.Lock()


def _reconstructor(run: str, device: str, stamp: list) -> Reconstructor:
    """The run's Reconstructor, loaded once per process (a worker evaluates many shapes); one is kept."""
    key = (run, device, json.dumps(stamp))
    with _MODELS_LOCK:  # a worker with several threads loads it once
        if key not in _MODELS:
            _MODELS.clear()
            _MODELS[key] = Reconstructor.from_run(run, device=device)
        return _MODELS[key]


def _run_stamp(run: Path) -> list:
    """What identifies a run's weights: name, size and mtime of its config and checkpoint files."""
    files = [run / "config.json", *sorted((run / "checkpoints").glob("*.safetensors"))]
    return [[f.name, st.st_size, st.st_mtime_ns] for f in files if f.is_file() for st in [f.stat()]]


def _shape_stamp(root: Path, key: str) -> list[int] | None:
    """Size and mtime of a shape's ground truth (a regenerated shape is evaluated again)."""
    try:
        st = (shape_dir(root, key) / SHAPE_FILE).stat()
    except (OSError, InputError):
        return None
    return [st.st_size, st.st_mtime_ns]


@dataclass(frozen=True)
class _ShapeJob:
    """One shape to evaluate: what a worker needs, plain data (it travels to Dask workers)."""

    run: str
    device: str
    root: str
    key: str
    opts: EvalOptions
    record: str
    """the per-shape json written when done"""
    fingerprint: dict
    """model, weights, data, device and options (not the limit): a record with another is stale"""


def _shape_task(job: _ShapeJob) -> tuple[str, list[dict] | str]:
    """Evaluate one shape (in a Dask worker for workers > 1) -> ("done", rows) or ("skipped", reason);
    the rows are written to the shape's record first, so a rerun skips it."""
    root = Path(job.root)
    rec = _reconstructor(job.run, job.device, job.fingerprint["weights"])
    stamp = _shape_stamp(root, job.key)
    try:
        rows = _evaluate_shape(rec, root, job.key, job.opts)
    except InputError as exc:
        return "skipped", _skip_reason(root, job.key, exc)
    record = {"key": job.key, "fingerprint": job.fingerprint, "shape_file": stamp, "rows": rows}
    atomic_write_json(job.record, record)
    return "done", rows


def _finished_rows(record: Path, fingerprint: dict, stamp: list[int] | None) -> list[dict] | None:
    """The rows of a shape already evaluated with the same inputs, or None (evaluate it)."""
    try:
        saved = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or stamp is None:
        return None
    if saved.get("fingerprint") != fingerprint or saved.get("shape_file") != stamp:
        return None
    rows = saved.get("rows")
    return rows if isinstance(rows, list) and rows else None


def _evaluate_shapes(
    rec: Reconstructor,
    run: Path,
    device: str,
    root: Path,
    out: Path,
    opts: EvalOptions,
    workers: int,
    scheduler: str | None,
    progress: bool | None,
) -> tuple[list[dict], list[str]]:
    """Rows (in split order) and skipped reasons of the split; shapes with a matching record are not
    evaluated again. Any other failure is raised after the other shapes are done (and recorded)."""
    keys = _split_keys(root, opts)
    weights = _run_stamp(run)
    fingerprint = {
        "model": str(run.resolve()),
        "weights": weights,
        "data": str(root.resolve()),
        "device": str(device),
        "options": {k: v for k, v in opts.__dict__.items() if k != "limit"},
    }
    fingerprint = json.loads(json.dumps(fingerprint))  # as read back from a record
    rows_of: dict[str, list[dict]] = {}
    jobs = []
    for key in keys:
        record = out / SHAPES_DIR / f"{key}.json"
        rows = _finished_rows(record, fingerprint, _shape_stamp(root, key))
        if rows is not None:
            rows_of[key] = rows
        else:
            jobs.append(_ShapeJob(str(run), str(device), str(root), key, opts, str(record), fingerprint))
    with _MODELS_LOCK:  # the in-process path evaluates with the model loaded already
        _MODELS.clear()
        _MODELS[(str(run), str(device), json.dumps(weights))] = rec
    try:
        results = run_tasks(
            _shape_task,
            jobs,
            workers,
            scheduler,
            desc=f"evaluate {rec.cfg.method}",
            progress=progress,
            unit="shape",
            torch_threads=1,
            shared=[root, out],
        )
    finally:
        with _MODELS_LOCK:
            _MODELS.clear()
    skipped, failed = [], []
    for job, res in zip(jobs, results):
        if isinstance(res, Failed):
            failed.append((job.key, res))
        elif res[0] == "skipped":
            skipped.append(res[1])
            print(f"  skipped: {res[1]}", file=sys.stderr)
        else:
            rows_of[job.key] = res[1]
    if failed:
        key, first = failed[0]
        if isinstance(first.error, (InputError, OSError)):  # the CLI prints its one line
            raise first.error
        raise RuntimeError(
            f"{len(failed)} shape(s) failed (the others are recorded under {out / SHAPES_DIR}; a rerun "
            f"resumes); first: {key}: {first.reason}"
        ) from first.error
    return [r for key in keys for r in rows_of.get(key, [])], skipped


def run_evaluation(
    model: str | Path,
    data_root: str | Path,
    out_dir: str | Path,
    opts: EvalOptions,
    device="auto",
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool | None = None,
):
    """Evaluate one trained run end to end; returns the summary. Damaged shapes are skipped and listed
    in the summary's ``skipped`` (one reason each); the caller decides whether that is an error.

    ``workers`` > 1: that many processes on this machine; ``scheduler``: the shapes are evaluated on
    that Dask cluster (its workers must see the data and ``out_dir``). Shapes recorded by an earlier
    run with the same inputs are not evaluated again.
    """
    from ifkd.pretrained import resolve_run

    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    check_scheduler(scheduler)  # a bad address fails before anything is written
    check_writable(out_dir)
    rec = Reconstructor.from_run(model, device=device)
    rows, skipped = _evaluate_shapes(
        rec, resolve_run(model), device, Path(data_root), Path(out_dir), opts, workers, scheduler, progress
    )
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
