"""`ifkd data synth`: procedural shapes -> ground truth + R2N2-style renders, in the on-disk format.

Deterministic from one seed (byte-identical reruns, whatever the number of workers), resumable (a
shape whose ``shape.npz`` exists is skipped; it is written last), parallel over shapes as Dask tasks
(:mod:`ifkd.engine`: worker processes on this machine, or a cluster's workers with ``scheduler``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ifkd.data.categories import SPLIT_FRACTIONS
from ifkd.data.format import (
    EVAL_SURFACE_POINTS,
    INDEX_FILE,
    IOU_POINTS,
    RENDER_DIR,
    SHAPE_FILE,
    VOXEL_RESOLUTIONS,
    ShapeRecord,
    eval_surface_arrays,
    iou_arrays,
    write_index,
    write_shape,
    write_views,
)
from ifkd.data.synth.families import CATEGORIES, make_shape
from ifkd.engine import Failed, check_scheduler, run_tasks
from ifkd.geometry.camera import (
    R2N2_AZIMUTH_RANGE,
    R2N2_DISTANCE_RATIO_RANGE,
    R2N2_ELEVATION_RANGE,
    R2N2_FOV_COLUMN,
    draw_viewpoints,
    view_transform,
)
from ifkd.geometry.sampling import PADDED_HALF, sample_point_values, sample_uniform
from ifkd.io import InputError, atomic_write_json, check_writable, read_json
from ifkd.render.raycast import render


@dataclass(frozen=True)
class SynthSettings:
    per_category: int = 10
    views: int = 8
    seed: int = 0
    image_size: int = 137
    categories: tuple[str, ...] = tuple(CATEGORIES)
    n_points: int = 10_000
    n_uniform: int = 128
    surface_points: int = 16_384
    voxel_resolutions: tuple[int, ...] = VOXEL_RESOLUTIONS
    iou_points: int = IOU_POINTS
    """OccNet-style evaluation points (uniform in the padded box, exact analytic labels), written for the
    test split's shapes only (evaluation reads nothing else; 0: none)"""
    eval_surface_points: int = EVAL_SURFACE_POINTS
    """surface samples + normals for the metrics, test split only (0: the metrics use surface_points)"""
    supersample: int | None = None
    """anti-aliasing sub-samples per pixel side (alpha = filtered coverage, like R2N2's Blender renders);
    None: 2 at 137 px, more for smaller images so sub-samples stay <= 1/274 of the width apart"""
    filter_width: float = 1.5
    """pixel filter support in pixels (Blender's default 1.5): sub-pixel parts still leave partial alpha"""
    azimuth_range: tuple[float, float] = R2N2_AZIMUTH_RANGE
    elevation_range: tuple[float, float] = R2N2_ELEVATION_RANGE
    distance_ratio_range: tuple[float, float] = R2N2_DISTANCE_RATIO_RANGE
    fov: float = R2N2_FOV_COLUMN
    extra: dict = field(default_factory=dict)


def shape_seed(seed: int, category: str, index: int) -> int:
    """A stable per-shape seed (independent of the category list and of worker scheduling)."""
    cat_id = int(CATEGORIES[category])
    return int(np.random.SeedSequence([seed, cat_id, index]).generate_state(1)[0])


def plan_splits(s: SynthSettings) -> dict[str, list[str]]:
    """Per category, a seeded 70/10/20 split of the shape ids."""
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for category in s.categories:
        rng = np.random.default_rng([s.seed, int(CATEGORIES[category]), 7])
        order = rng.permutation(s.per_category)
        n_train = int(round(SPLIT_FRACTIONS[0] * s.per_category))
        n_val = int(round(SPLIT_FRACTIONS[1] * s.per_category))
        if s.per_category >= 3:
            n_train, n_val = min(n_train, s.per_category - 2), max(n_val, 1)
        bounds = {
            "train": order[:n_train],
            "val": order[n_train : n_train + n_val],
            "test": order[n_train + n_val :],
        }
        for split, ids in bounds.items():
            splits[split].extend(f"{category}/{i:04d}" for i in sorted(ids))
    return splits


def generate_shape(root: Path, category: str, index: int, s: SynthSettings) -> str:
    """Generate one shape's files (skipped when complete). Returns its key."""
    key = f"{category}/{index:04d}"
    folder = root / key
    if (folder / SHAPE_FILE).is_file():
        return key
    seed = shape_seed(s.seed, category, index)
    rng = np.random.default_rng(seed)
    shape = make_shape(category, seed)
    surface, normals = shape.sample_surface(s.surface_points, rng)
    points, occ = sample_point_values(
        shape.occupancy, surface, rng, n_total=s.n_points, n_uniform=s.n_uniform
    )
    voxels = {res: shape.voxelize(res) for res in s.voxel_resolutions}  # exact, cell centres
    views = draw_viewpoints(rng, s.views, s.azimuth_range, s.elevation_range, s.distance_ratio_range, s.fov)
    mesh = shape.to_mesh()
    ss = s.supersample or max(2, int(np.ceil(274 / s.image_size)))
    images = [
        render(mesh, view_transform(v), s.image_size, supersample=ss, filter_width=s.filter_width).rgba
        for v in views
    ]
    record = ShapeRecord(points, occ, surface, normals, voxels)
    if key in plan_splits(s)["test"]:
        # their own streams, so the other arrays stay what they were before evaluation arrays existed
        if s.iou_points:
            pts = sample_uniform(s.iou_points, np.random.default_rng([seed, 1]), PADDED_HALF).astype(
                np.float16
            )
            record.extra.update(iou_arrays(pts, shape.occupancy(pts.astype(np.float64))))
        if s.eval_surface_points:
            record.extra.update(
                eval_surface_arrays(
                    *shape.sample_surface(s.eval_surface_points, np.random.default_rng([seed, 2]))
                )
            )
    write_views(folder / RENDER_DIR, views, images)
    # shape.npz last: its presence marks the shape complete (resumability).
    write_shape(folder / SHAPE_FILE, record)
    return key


def _job(args: tuple[str, str, int, SynthSettings]) -> str:
    """One shape, as a task (runs in a Dask worker for workers > 1)."""
    root, category, index, s = args
    return generate_shape(Path(root), category, index, s)


def generate_dataset(
    root: str | Path,
    s: SynthSettings,
    workers: int = 1,
    progress: bool | None = None,
    scheduler: str | None = None,
) -> dict[str, list[str]]:
    """Generate (or complete) a dataset under root; writes index.json at the end.

    ``workers`` > 1: that many processes on this machine; ``scheduler``: the tasks run on that Dask
    cluster (its workers must see ``root``). A failing shape does not stop the others; the run then
    raises (its OSError as is, anything else as RuntimeError) without writing index.json, and a rerun
    retries only the missing shapes.
    """
    root = Path(root)
    unknown = [c for c in s.categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown categories {unknown}; choose from {sorted(CATEGORIES)}")
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    check_scheduler(scheduler)  # before anything is written
    check_writable(root)
    check_same_settings(root, s)
    jobs = [(str(root), c, i, s) for c in s.categories for i in range(s.per_category)]
    results = run_tasks(
        _job, jobs, workers, scheduler, desc="synth", progress=progress, unit="shape", shared=[root]
    )
    failed = [(f"{c}/{i:04d}", r) for (_, c, i, _), r in zip(jobs, results) if isinstance(r, Failed)]
    if failed:
        for key, r in failed:
            print(f"  failed {key}: {r.reason}", file=sys.stderr)
        first = failed[0][1].error
        if isinstance(first, OSError):  # disk full, read-only: the CLI's one line names the file
            raise first
        raise RuntimeError(
            f"{len(failed)} of {len(jobs)} shapes failed (the others are written; a rerun retries them); "
            f"first: {failed[0][0]}: {failed[0][1].reason}"
        ) from first
    splits = plan_splits(s)
    write_synth_index(root, s, splits)
    return splits


SETTINGS_FILE = "synth_settings.json"
"""Written before the first shape: what a rerun into the same folder must ask for again."""


def _settings_record(s: SynthSettings) -> dict:
    return json.loads(json.dumps({**asdict(s), "categories": list(s.categories)}))


def check_same_settings(root: Path, s: SynthSettings) -> None:
    """Refuse to mix datasets: a folder made with other settings (views, image size, seed, categories...)
    is never completed with this call's, which would leave shapes of two kinds under one index.json. A
    new folder gets this call's settings recorded (``synth_settings.json``) before any shape."""
    wanted = _settings_record(s)
    path = root / SETTINGS_FILE
    if path.is_file():
        made = read_json(path)
    elif (root / INDEX_FILE).is_file():  # made before the settings file existed
        index = read_json(root / INDEX_FILE)
        made = {k: v for k, v in (index.get("generator") or {}).items() if k in wanted}
        if index.get("source") != "ifkd-synth":
            raise InputError(f"{root}: holds a dataset from {index.get('source')!r}, not `ifkd data synth`")
    else:
        atomic_write_json(path, wanted)
        return
    diff = [k for k in wanted if k in made and made[k] != wanted[k]]
    if diff:
        was = ", ".join(f"{k}={made[k]}" for k in diff)
        now = ", ".join(f"{k}={wanted[k]}" for k in diff)
        raise InputError(
            f"{root}: holds a dataset made with {was}; this call asks {now}: use another --out, or the same "
            "settings to complete it (nothing was written)"
        )


def write_synth_index(root: Path, s: SynthSettings, splits: dict[str, list[str]], **generator_extra) -> None:
    """index.json of a generated dataset: its categories, splits and the settings that made it."""
    settings = {**asdict(s), "categories": list(s.categories), **generator_extra}
    write_index(
        root,
        {c: CATEGORIES[c] for c in s.categories},
        splits,
        source="ifkd-synth",
        generator=settings,
        views_per_shape=s.views,
        image_size=s.image_size,
    )
