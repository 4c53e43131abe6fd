"""One (method, seed) of a benchmark: train (or resume) its run, evaluate it, read back its record.

Cached by what is on disk: a run whose last checkpoint reached the end of its schedule is not trained
again (a half-finished one resumes), and an evaluation whose ``summary.json`` holds the same
fingerprint (weights, view options, evaluation code) is not redone. Jobs are plain picklable data so
the harness can run them in worker processes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ifkd.eval.evaluate import TABLE_COLUMNS, EvalOptions, evaluate_model, write_results
from ifkd.io import InputError

METRIC_KEYS: tuple[str, ...] = tuple(k for k, _, _ in TABLE_COLUMNS)


def run_name(method: str, seed: int) -> str:
    return f"{method}-s{seed}"


@dataclass(frozen=True)
class RunJob:
    """Train ``method`` with ``seed`` under a budget into ``run_dir`` and score it into ``eval_dir``."""

    method: str
    seed: int
    budget: str
    run_dir: str
    data_root: str
    """training data (unused when the run is already finished)"""
    eval_dir: str | None = None
    """None: train only (a teacher needed by students but not benchmarked itself)"""
    eval_root: str | None = None
    teacher_run: str | None = None
    overrides: tuple[str, ...] = ()
    """extra config overrides on top of the budget's (the equal-time schedule)"""
    device: str = "auto"
    threads: int = 0
    """torch threads in a worker process (0: leave torch's default)"""
    eval_views: str = "first"
    eval_limit: int | None = None
    checkpoint: str = "best"
    more_evals: tuple[tuple[str, str], ...] = ()
    """further (eval_dir, eval_root) pairs scored like ``eval_dir`` (the `realsplit` synthetic test)"""
    stamp_data: bool = False
    """put each test set's :func:`index_stamp` into its evaluations' fingerprints (a dataset that can be
    rebuilt in place, as ``--real-data`` can, is then re-scored instead of read from the cache)"""

    def evaluations(self) -> list[tuple[str, str]]:
        """Every (eval_dir, eval_root) this job scores, ``eval_dir`` first; [] for a train-only job."""
        if self.eval_dir is None or self.eval_root is None:
            return []
        return [(self.eval_dir, self.eval_root), *self.more_evals]


def _finite(value: Any) -> Any:
    """NaN/Inf -> None, recursively (results.json stays strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


CHECKPOINTS: tuple[str, ...] = ("best", "last")


def _candidates(which: str) -> tuple[str, ...]:
    """``which`` first, then the other checkpoint."""
    if which not in CHECKPOINTS:
        raise ValueError(f"checkpoint {which!r}: choose from {list(CHECKPOINTS)}")
    return (which, *(c for c in CHECKPOINTS if c != which))


def scored_checkpoint(run_dir: str | Path, which: str = "best") -> str:
    """The checkpoint of a run folder scored when ``which`` is asked for: ``which`` when it is saved,
    else the other one ('best' of a run trained without validation -> 'last'; 'last' of a folder
    that keeps 'best' only, as the shipped weights do -> 'best'). InputError naming the folder when
    it holds neither."""
    from ifkd.train.checkpoint import RunDir

    run = RunDir(Path(run_dir))
    for name in _candidates(which):
        if run.weights(name).is_file():
            return name
    best, last = (os.path.relpath(run.weights(c), run.root) for c in ("best", "last"))
    raise InputError(f"{run.root}: no trained weights in this model folder (neither {best} nor {last})")


def weights_state(run_dir: str | Path, which: str = "best") -> dict:
    """Train state stored with a run's ``which`` weights (else the other checkpoint's); {} if none."""
    from ifkd.train.checkpoint import RunDir, read_metadata

    run = RunDir(Path(run_dir))
    path = next((p for p in map(run.weights, _candidates(which)) if p.is_file()), None)
    if path is None:
        return {}
    meta = read_metadata(path)
    try:
        state = json.loads(meta.get("state", "{}"))
    except json.JSONDecodeError:
        state = {}
    return {
        "weights": path.name,
        "config_hash": meta.get("config_hash"),
        "global_step": state.get("global_step"),
    }


def run_finished(run_dir: str | Path, cfg) -> bool:
    """True when the run's last checkpoint reached the end of ``cfg``'s schedule (or its max_steps, or
    its validation IoU plateaued under ``train.patience``)."""
    from ifkd.config import load_config
    from ifkd.train.checkpoint import RunDir, config_changes, read_last_state
    from ifkd.train.schedule import plateaued, total_epochs

    run = RunDir(Path(run_dir))
    if not run.weights("last").exists():
        return False
    st = read_last_state(run)
    if st.config_hash != _hash(cfg, run.config):
        return False
    if run.config.exists() and config_changes(load_config(run.config), cfg):
        return False  # a field added since the run was saved, set away from its default here
    if cfg.train.max_steps and st.global_step >= cfg.train.max_steps:
        return True
    return st.epoch >= total_epochs(cfg.train) or plateaued(st.epoch, st.epochs_since_best, cfg.train)


def teacher_stale(run_dir: str | Path, teacher_run: str | Path) -> str | None:
    """Why a KD student's run folder is stale (it recorded a teacher whose weights differ from
    ``teacher_run``'s now: the teacher was trained further or replaced), or None."""
    from ifkd.train.checkpoint import RunDir, teacher_changed, teacher_identity

    run = RunDir(Path(run_dir))
    if not run.teacher.is_file() or not RunDir(Path(teacher_run)).best_weights().is_file():
        return None
    return teacher_changed(run, teacher_identity(teacher_run))


def set_aside(run_dir: str | Path) -> Path:
    """Rename a stale run folder to ``<name>.stale-N`` (the first free N) and return the new path:
    nothing written is lost, and the benchmark trains the run again in the old place."""
    run_dir = Path(run_dir)
    n = 1
    while (aside := run_dir.with_name(f"{run_dir.name}.stale-{n}")).exists():
        n += 1
    run_dir.rename(aside)
    return aside


def _hash(cfg, saved_config: Path | None = None) -> str:
    """``cfg``'s identity hash, over the keys of the run's saved config.json when given."""
    from ifkd.train.checkpoint import config_hash, saved_config_keys

    return config_hash(cfg, saved_config_keys(saved_config) if saved_config else None)


EVAL_CODE = (
    "eval/evaluate.py",
    "eval/metrics.py",
    "extract/mise.py",
    "extract/marching_cubes.py",
    "reconstruct.py",
)
"""Sources whose content decides an evaluation's numbers: a change to any of them re-runs evaluations."""


def eval_code_version() -> str:
    """sha256 (12 hex digits) of the :data:`EVAL_CODE` sources."""
    import ifkd

    root, digest = Path(ifkd.__file__).parent, hashlib.sha256()
    for rel in EVAL_CODE:
        path = root / rel
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()[:12]


def eval_fingerprint(
    run_dir: str | Path, which: str, views: str, limit: int | None, data: str | None = None
) -> dict:
    """What an evaluation depends on besides the data: the weights, the view/limit options, the code;
    and ``data`` (an :func:`index_stamp`) when given."""
    out = {
        "weights": weights_state(run_dir, which),
        "views": views,
        "limit": limit,
        "code": eval_code_version(),
    }
    if data is not None:
        out["data"] = data
    return out


def index_stamp(root: str | Path) -> str:
    """sha256 (12 hex digits) of a dataset's categories, splits and held-out classes (its index.json's
    definition, not its timings): it changes when the dataset is rebuilt with other shapes."""
    from ifkd.data.format import read_index

    index = read_index(root)
    key = {k: index.get(k) for k in ("categories", "splits", "held_out_categories")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def eval_cached(eval_dir: str | Path, fingerprint: dict) -> bool:
    """True when ``eval_dir/summary.json`` exists and was made with the same ``fingerprint``."""
    path = Path(eval_dir) / "summary.json"
    if not path.is_file():
        return False
    try:
        meta = json.loads(path.read_text()).get("fingerprint")
    except (json.JSONDecodeError, AttributeError):
        return False
    return meta == fingerprint


def evaluate_run(
    run_dir: str | Path,
    eval_dir: str | Path,
    eval_root: str | Path,
    views: str,
    limit: int | None,
    device: str,
    title: str,
    which: str = "best",
    data_stamp: str | None = None,
) -> dict:
    """Score a run's ``which`` weights on the test split of ``eval_root``; write_results into ``eval_dir``
    (``data_stamp``: the test set's :func:`index_stamp`, kept in the fingerprint)."""
    from ifkd.pretrained import resolve_run
    from ifkd.reconstruct import Reconstructor

    run = resolve_run(run_dir)
    which = scored_checkpoint(run, which)
    start = time.perf_counter()
    rec = Reconstructor.from_run(run, which=which, device=device)
    rows = evaluate_model(rec, eval_root, EvalOptions(split="test", views=views, limit=limit), progress=False)
    meta = {
        "model": str(run_dir),
        "method": rec.cfg.method,
        "data": str(eval_root),
        "checkpoint": which,
        "weights_state": weights_state(run, which),
        "fingerprint": eval_fingerprint(run, which, views, limit, data_stamp),
        "eval_seconds": round(time.perf_counter() - start, 3),
    }
    return write_results(rows, eval_dir, title, meta)


def execute(job: RunJob) -> dict:
    """Train (or resume) and evaluate one job; returns what was done (``trained``, ``evaluated``)."""
    import torch

    from ifkd.bench.budgets import get_budget
    from ifkd.train.run import train

    if job.threads:
        torch.set_num_threads(job.threads)
    cfg = get_budget(job.budget).config(job.method, job.seed, job.overrides)
    trained = evaluated = False
    why = teacher_stale(job.run_dir, job.teacher_run) if job.teacher_run else None
    if why:
        aside = set_aside(job.run_dir)
        print(f"[bench] {why.split(': start a new')[0]}: moved to {aside}, training it again", flush=True)
    if not run_finished(job.run_dir, cfg):
        # resume=True also starts a run that has no checkpoint yet; a run of another config is an error.
        train(cfg, job.data_root, job.run_dir, teacher_run=job.teacher_run, resume=True, device=job.device)
        trained = True
    for eval_dir, eval_root in job.evaluations():
        stamp = index_stamp(eval_root) if job.stamp_data else None
        fingerprint = eval_fingerprint(job.run_dir, job.checkpoint, job.eval_views, job.eval_limit, stamp)
        if not eval_cached(eval_dir, fingerprint):
            title = f"{run_name(job.method, job.seed)} ({job.checkpoint}) on {Path(eval_root).name} (test)"
            evaluate_run(
                job.run_dir,
                eval_dir,
                eval_root,
                job.eval_views,
                job.eval_limit,
                job.device,
                title,
                job.checkpoint,
                stamp,
            )
            evaluated = True
    return {"method": job.method, "seed": job.seed, "trained": trained, "evaluated": evaluated}


def train_seconds(run_dir: str | Path) -> float | None:
    """Training wall time of a run: its epochs' seconds (validation excluded) + a partial last epoch."""
    from ifkd.train.checkpoint import RunDir, read_last_state, read_metrics

    run = RunDir(Path(run_dir))
    records = read_metrics(run)
    partial = read_last_state(run).epoch_seconds if run.weights("last").exists() else 0.0
    if not records and not partial:
        return None
    return round(sum(float(r.get("seconds", 0.0)) for r in records) + float(partial), 3)


def run_record(
    method: str, seed: int, run_dir: str | Path, eval_dir: str | Path, out_dir: str | Path
) -> dict:
    """The results.json entry of one evaluated run (paths relative to the benchmark folder)."""
    from ifkd.train.checkpoint import RunDir, read_metrics

    run_dir, eval_dir = Path(run_dir), Path(eval_dir)
    summary_path = eval_dir / "summary.json"
    if not summary_path.is_file():
        raise InputError(f"{summary_path}: evaluation missing")
    summary = json.loads(summary_path.read_text())
    records = read_metrics(RunDir(run_dir)) if run_dir.is_dir() else []
    curve = [
        {
            "epoch": r["epoch"],
            "val_iou": r.get("val_iou"),
            "kd_active": bool(r.get("kd_active")),
            "train_loss": r.get("train_loss"),
        }
        for r in records
    ]
    state = summary.get("weights_state", {})
    last = weights_state(run_dir, "last") if run_dir.is_dir() else {}
    entry = {
        "method": method,
        "seed": seed,
        "run_dir": os.path.relpath(run_dir, out_dir),
        "eval_dir": os.path.relpath(eval_dir, out_dir),
        "train_seconds": train_seconds(run_dir) if run_dir.is_dir() else None,
        "steps": last.get("global_step", state.get("global_step")),
        "eval_step": state.get("global_step"),
        "eval_seconds": summary.get("eval_seconds"),
        "curve": curve,
        "mean": {k: summary["mean"].get(k) for k in METRIC_KEYS},
        "per_category": {
            c: {**{k: v.get(k) for k in METRIC_KEYS}, "n": v.get("n")}
            for c, v in summary["per_category"].items()
        },
    }
    return _finite(entry)
