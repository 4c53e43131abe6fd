"""Convert data users already have into our on-disk format (the library of `ifkd data import
r2n2|occnet|meshes`, whose command line is :mod:`ifkd.commands.data_import`).

Every shape is written like the procedural data (views first, ``shape.npz`` last = complete), so a run
is resumable and atomic per file; a broken model is listed with a one-line reason and never stops
the run. Each import ends with a silhouette check: the share of GT surface points that project (our
camera) onto pixels with alpha > 0, per view; low agreement is listed as a warning.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from ifkd.data.format import INDEX_FILE, SHAPE_FILE, read_index, write_index
from ifkd.data.shapenet import meshes, r2n2, splits
from ifkd.data.shapenet.convert import (
    SILHOUETTE_MIN,
    ImportSettings,
    import_mesh_file,
    import_occnet_model,
    import_r2n2_model,
    read_check,
    silhouette_agreement,
)
from ifkd.data.shapenet.occupancy import INSIDE_TEST_VERSION
from ifkd.engine import Failed, check_scheduler, run_tasks, scheduler_of
from ifkd.io import InputError, batch_exit, check_writable

__all__ = [
    "ImportSettings",
    "import_meshes",
    "import_occnet",
    "import_r2n2",
    "silhouette_agreement",
]


def _job(args: tuple) -> tuple[str, str, str, dict, float]:
    """Run one shape; returns (key, status, source, info, seconds). Never raises."""
    fn, out, key, source, fn_args = args
    if (Path(out) / key / SHAPE_FILE).is_file():
        return key, "existing", source, {}, 0.0
    start = time.perf_counter()
    try:
        info = fn(Path(out), key, *fn_args)
        return key, "imported", source, info, time.perf_counter() - start
    except Exception as exc:  # a broken model must not stop the run
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return (
            key,
            "broken",
            source,
            {"reason": f"{type(exc).__name__}: {reason}"[:300]},
            time.perf_counter() - start,
        )


def run_import_jobs(
    out: Path, jobs: list[tuple], workers: int, desc: str, progress: bool | None
) -> list[tuple]:
    """Run the jobs as Dask tasks (ifkd.engine.run_tasks: in-process, a LocalCluster, or the cluster of
    ``workers.scheduler``); results sorted by key. A job whose worker died is listed as broken too."""
    results = run_tasks(
        _job,
        jobs,
        workers=int(workers),
        scheduler=scheduler_of(workers),
        desc=desc,
        progress=progress,
        unit="model",
        shared=[out],
    )
    return sorted(
        (job[2], "broken", job[3], {"reason": res.reason}, 0.0) if isinstance(res, Failed) else res
        for job, res in zip(jobs, results)
    )


def summarise_import(
    out: Path,
    results: list[tuple],
    split_of: Callable[[str], str],
    categories: dict[str, str],
    s,
    source: str,
    start: float,
    views_per_shape: int | None = None,
    image_size: int | None = None,
    **index_extra,
) -> dict:
    """Write (or merge into) ``out/index.json`` from the per-model results and return the summary.

    ``views_per_shape``/``image_size`` default to the settings' for rendered meshes and R2N2's for
    R2N2/OccNet data; ``index_extra`` fields go into the index too, merged with an earlier index's
    (dicts updated, lists united) so that a partial rerun never loses what an earlier run recorded.
    """
    rendered = source not in ("r2n2", "occnet")
    views_per_shape = views_per_shape or (s.views if rendered else r2n2.R2N2_VIEWS)
    image_size = image_size or (s.image_size if rendered else r2n2.R2N2_SIZE)
    # A shape whose ground truth failed the solid checks is written (to look at) but kept out of the
    # splits, so nothing trains or evaluates on it; an existing shape's verdict is read back.
    checks = {r[0]: (r[3] if r[1] == "imported" else read_check(out, r[0])) for r in results}
    done = [r for r in results if r[1] in ("imported", "existing")]
    degenerate = {r[0]: checks[r[0]]["degenerate"] for r in done if checks[r[0]].get("degenerate")}
    new_splits: dict[str, list[str]] = {k: [] for k in splits.SPLIT_NAMES}
    for key, *_ in done:
        if key not in degenerate:
            new_splits[split_of(key)].append(key)
    if (out / INDEX_FILE).is_file():  # merge with an earlier run (other categories, other sources)
        old = read_index(out)
        categories = {**old["categories"], **categories}
        degenerate = {**old.get("degenerate", {}), **degenerate}
        for split, keys in old["splits"].items():
            new_splits[split] = sorted((set(new_splits.get(split, [])) | set(keys)) - set(degenerate))
        for name, value in index_extra.items():
            if isinstance(value, dict) and isinstance(old.get(name), dict):
                index_extra[name] = dict(sorted({**old[name], **value}.items()))
            elif isinstance(value, list) and isinstance(old.get(name), list):
                index_extra[name] = [*old[name], *(v for v in value if v not in old[name])]
    write_index(
        out,
        dict(sorted(categories.items())),
        {k: sorted(v) for k, v in new_splits.items()},
        source=source,
        importer={k: list(v) if isinstance(v, tuple) else v for k, v in asdict(s).items()},
        views_per_shape=views_per_shape,
        image_size=image_size,
        inside_test_version=INSIDE_TEST_VERSION,
        degenerate=dict(sorted(degenerate.items())),
        **index_extra,
    )
    imported = [r for r in results if r[1] == "imported"]
    warnings = [
        {
            "key": k,
            "reason": f"silhouette agreement {i['silhouette_min']:.3f} < {SILHOUETTE_MIN} in some view",
        }
        for k, _, _, i, _ in imported
        if i.get("silhouette_min", 1.0) < SILHOUETTE_MIN
    ]
    return {
        "out": str(out),
        "source": source,
        "imported": [r[0] for r in imported],
        "existing": [r[0] for r in results if r[1] == "existing"],
        "broken": [
            {"key": k, "source": src, "reason": i["reason"]} for k, st, src, i, _ in results if st == "broken"
        ],
        "warnings": warnings,
        "degenerate": [{"key": k, "reason": degenerate[k]} for k, *_ in done if k in degenerate],
        "counts": {split: len(keys) for split, keys in new_splits.items()},
        "checks": {r[0]: r[3] for r in imported},
        "seconds_per_model": {r[0]: round(r[4], 3) for r in imported},
        "seconds": round(time.perf_counter() - start, 3),
    }


def prepare_output(out: str | Path, workers: int) -> Path:
    """Check --workers and --scheduler (carried by a :class:`Workers` count), then the output folder:
    a bad scheduler address fails before anything is written."""
    out = Path(out)
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    check_scheduler(scheduler_of(workers))
    check_writable(out)
    return out


def _limit(items: list, limit: int | None) -> list:
    return items if limit is None else items[: max(0, int(limit))]


def _split_lookup(split_source, synset: str, ids: list[str], seed: int) -> dict[str, str]:
    """{model: split} for one synset: from an OccNet folder of .lst files, an R2N2 json, or random."""
    if split_source is not None:
        path = Path(split_source)
        if path.is_file():
            entry = splits.read_json_splits(path).get(synset)
            table = splits.split_of(entry) if entry else {}
        else:
            lists = splits.read_occnet_splits(path / synset)
            table = splits.split_of(lists) if lists else {}
        if table:
            return {m: table.get(m, "train") for m in ids}
    rand = splits.random_split(ids, seed=[seed, int(synset)] if synset.isdigit() else seed)
    return splits.split_of(rand)


def import_r2n2(
    renders_dir,
    meshes_dir,
    out,
    categories=None,
    workers: int = 1,
    limit: int | None = None,
    split_source=None,
    voxels_dir=None,
    settings: ImportSettings | None = None,
    progress: bool | None = None,
) -> dict:
    """ShapeNetRendering + ShapeNetCore (v1 or v2) [+ ShapeNetVox32] -> our format. Returns the summary."""
    s, start = settings or ImportSettings(), time.perf_counter()
    out = prepare_output(out, workers)
    if not Path(meshes_dir).is_dir():
        raise InputError(f"{meshes_dir}: ShapeNetCore folder not found")
    synsets = [splits.synset_of(c) for c in categories] if categories else None
    models = _limit(r2n2.list_models(renders_dir, synsets), limit)
    jobs = [
        (
            import_r2n2_model,
            str(out),
            f"{splits.name_of(syn)}/{m}",
            f"{syn}/{m}",
            (Path(renders_dir) / syn / m, Path(meshes_dir), s, voxels_dir),
        )
        for syn, m in models
    ]
    lookup = {}
    for syn in sorted({syn for syn, _ in models}):
        ids = [m for sy, m in models if sy == syn]
        lookup.update(
            {
                f"{splits.name_of(syn)}/{m}": sp
                for m, sp in _split_lookup(split_source, syn, ids, s.seed).items()
            }
        )
    cats = {splits.name_of(syn): syn for syn, _ in models}
    results = run_import_jobs(out, jobs, workers, "import r2n2", progress)
    return summarise_import(out, results, lookup.__getitem__, cats, s, "r2n2", start)


def import_occnet(
    src,
    out,
    categories=None,
    workers: int = 1,
    limit: int | None = None,
    settings: ImportSettings | None = None,
    progress: bool | None = None,
) -> dict:
    """OccNet's ShapeNet folder (``<synset>/<model>/points.npz`` ...) -> our format, keeping its split."""
    s, start = settings or ImportSettings(), time.perf_counter()
    out, src = prepare_output(out, workers), Path(src)
    if not src.is_dir():
        raise InputError(f"{src}: OccNet ShapeNet folder not found")
    wanted = (
        [splits.synset_of(c) for c in categories]
        if categories
        else sorted(p.name for p in src.iterdir() if p.is_dir())
    )
    models = [
        (syn, m.name)
        for syn in wanted
        if (src / syn).is_dir()
        for m in sorted((src / syn).iterdir())
        if m.is_dir()
    ]
    if categories and not models:
        raise InputError(f"{src}: no models for {categories}")
    models = _limit(models, limit)
    jobs = [
        (import_occnet_model, str(out), f"{splits.name_of(syn)}/{m}", f"{syn}/{m}", (src / syn / m, s))
        for syn, m in models
    ]
    lookup = {}
    for syn in sorted({syn for syn, _ in models}):
        ids = [m for sy, m in models if sy == syn]
        lookup.update(
            {f"{splits.name_of(syn)}/{m}": sp for m, sp in _split_lookup(src, syn, ids, s.seed).items()}
        )
    results = run_import_jobs(out, jobs, workers, "import occnet", progress)
    cats = {splits.name_of(syn): syn for syn, _ in models}
    return summarise_import(out, results, lookup.__getitem__, cats, s, "occnet", start)


def mesh_key_id(path: Path, folder: Path) -> str:
    """A folder-safe shape id from a mesh's path relative to the import folder."""
    rel = path.relative_to(folder).with_suffix("")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in "_".join(rel.parts)).strip(".") or "mesh"


def import_meshes(
    folder,
    out,
    views: int = 8,
    seed: int = 0,
    workers: int = 1,
    limit: int | None = None,
    split: str = "test",
    settings: ImportSettings | None = None,
    progress: bool | None = None,
) -> dict:
    """Any folder of meshes (searched recursively) -> our format: normalised, rendered, sampled."""
    s = replace(settings or ImportSettings(), views=views, seed=seed)
    start, out, folder = time.perf_counter(), prepare_output(out, workers), Path(folder)
    if split not in splits.SPLIT_NAMES or views < 1:
        raise InputError(f"--split must be one of {splits.SPLIT_NAMES} and --views >= 1")
    files = _limit(meshes.find_mesh_files(folder), limit)
    if not files:
        raise InputError(f"{folder}: no mesh files ({', '.join(meshes.MESH_SUFFIXES)})")
    keys: dict[str, Path] = {}
    for f in files:
        base = key = f"{s.category}/{mesh_key_id(f, folder)}"
        n = 1
        while key in keys:  # bunny.obj and bunny.ply both exist
            n += 1
            key = f"{base}_{n}"
        keys[key] = f
    jobs = [(import_mesh_file, str(out), key, str(f), (f, s)) for key, f in keys.items()]
    results = run_import_jobs(out, jobs, workers, "import meshes", progress)
    return summarise_import(out, results, lambda key: split, {s.category: s.category}, s, "meshes", start)


def format_summary(summary: dict) -> str:
    """Human-readable end-of-run report: counts, then one line per broken model and warning."""
    lines = [
        f"{summary['out']}: imported {len(summary['imported'])}, already done {len(summary['existing'])}, "
        f"broken {len(summary['broken'])}, degenerate {len(summary['degenerate'])} (kept out of the splits) "
        f"({summary['seconds']:.1f} s)"
    ]
    lines += [f"  broken  {b['key']}: {b['reason']}" for b in summary["broken"]]
    lines += [f"  degenerate {d['key']}: {d['reason']}" for d in summary["degenerate"]]
    lines += [f"  warning {w['key']}: {w['reason']}" for w in summary["warnings"]]
    return "\n".join(lines)


def import_exit(summary: dict) -> int:
    """Exit status of an import: 2 when any model was broken or flagged degenerate (batch rule)."""
    failed = len(summary["broken"]) + len(summary["degenerate"])
    total = len(summary["imported"]) + len(summary["existing"]) + len(summary["broken"])
    return batch_exit(failed, total, "models", summary["out"])
