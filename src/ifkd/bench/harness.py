"""The benchmark driver: data -> teachers -> students -> evaluations -> results.json + RESULTS.md.

Resumable and cached per (method, seed) (see :mod:`ifkd.bench.runs`); results.json is rewritten after
every finished run so an interrupted benchmark keeps what it did. Layout of ``out_dir``: ``data/``,
``runs/<method>-s<seed>/``, ``evals/<method>-s<seed>/``, ``results.json``, ``RESULTS.md`` (and for
`real`: ``data_real/``, ``sheets/``; for ``--equal-time``: ``runs-time/``, ``evals-time/``).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import platform
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from ifkd.bench.budgets import TEACHERS, Budget, get_budget
from ifkd.bench.protocols import ProtocolData, epoch_overrides, prepare_data, seen_data
from ifkd.bench.runs import (
    METRIC_KEYS,
    RunJob,
    eval_cached,
    eval_fingerprint,
    evaluate_run,
    execute,
    run_name,
    run_record,
    scored_checkpoint,
)
from ifkd.bench.stats import aggregate, method_rank
from ifkd.bench.tables import protocol_markdown
from ifkd.config import Config
from ifkd.io import InputError, atomic_write_json, atomic_write_text, check_writable

Log = Callable[[str], None]
TIME_TOLERANCE = 0.05
"""An equal-time step count within 5% of the equal-steps run reuses that run instead of training again."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine_info() -> dict:
    """The machine a benchmark ran on (the same fields as benchmarks/common.py's ``machine()``)."""
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def teacher_of(method: str) -> str | None:
    """The teacher run a method distils from ('teacher' or 'teacher-simple'), None without KD."""
    from ifkd.methods import get_spec

    return get_spec(method).teacher_method


def plan_jobs(
    budget: Budget,
    methods: Sequence[str],
    seeds: Sequence[int] | None,
    runs_root: Path,
    train_root: Path,
    evals_root: Path,
    eval_root: Path,
    device: str,
    threads: int,
    overrides: tuple[str, ...] = (),
) -> tuple[list[RunJob], list[RunJob]]:
    """(teacher jobs, student jobs): every selected (method, seed), plus the teachers they distil from
    (trained for each seed used, evaluated only when selected themselves); ``overrides`` on top of the
    budget's for every job (the `unseen` protocol's longer schedule)."""
    from ifkd.methods import get_spec
    from ifkd.train.schedule import needs_teacher

    pairs = [(m, s) for m in methods for s in (seeds if seeds else budget.seeds_for(m))]

    def teacher(method: str, seed: int) -> str | None:
        name = teacher_of(method)
        cfg = budget.config(method, seed, overrides)
        return name if name and needs_teacher(cfg.train, get_spec(method)) else None

    needed = {(t, s) for m, s in pairs if (t := teacher(m, s))} | {(m, s) for m, s in pairs if m in TEACHERS}

    def job(method: str, seed: int) -> RunJob:
        name, t = run_name(method, seed), teacher(method, seed)
        evaluate = (method, seed) in pairs
        return RunJob(
            method,
            seed,
            budget.name,
            str(runs_root / name),
            str(train_root),
            eval_dir=str(evals_root / name) if evaluate else None,
            eval_root=str(eval_root) if evaluate else None,
            teacher_run=str(runs_root / run_name(t, seed)) if t else None,
            overrides=tuple(overrides),
            device=device,
            threads=threads,
            eval_views=budget.eval_views,
            eval_limit=budget.eval_limit,
            checkpoint=budget.checkpoint,
        )

    teachers = [job(m, s) for m, s in sorted(needed, key=lambda p: (method_rank(p[0]), p[1]))]
    students = [job(m, s) for m, s in pairs if m not in TEACHERS]
    return teachers, students


def run_jobs(jobs: list[RunJob], n_parallel: int, on_done: Callable[[RunJob, dict], None], log: Log) -> None:
    """Run jobs serially, or ``n_parallel`` at a time in spawned processes; ``on_done`` after each."""
    if n_parallel <= 1 or len(jobs) <= 1:
        for job in jobs:
            log(f"[bench] {run_name(job.method, job.seed)}: train/evaluate ({job.run_dir})")
            on_done(job, execute(job))
        return
    errors = []
    with ProcessPoolExecutor(max_workers=n_parallel, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(execute, job): job for job in jobs}
        log(f"[bench] {len(jobs)} jobs, {n_parallel} at a time")
        for future in as_completed(futures):
            job = futures[future]
            try:
                on_done(job, future.result())
            except Exception as exc:  # keep the other runs going; report all at the end
                errors.append(f"{run_name(job.method, job.seed)}: {type(exc).__name__}: {exc}")
                log(f"[bench] FAILED {errors[-1]}")
    if errors:
        raise RuntimeError("benchmark runs failed:\n  " + "\n  ".join(errors))


def per_shape(eval_dir: str | Path) -> dict[str, dict[str, float | None]]:
    """{shape key: metric means over its scored views} from an evaluation's per_shape.csv."""
    path = Path(eval_dir) / "per_shape.csv"
    rows: dict[str, list[dict]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            rows.setdefault(row["shape"], []).append(row)
    out = {}
    for key, rs in rows.items():
        vals = {}
        for k in METRIC_KEYS:
            xs = [float(r[k]) for r in rs if r.get(k) not in (None, "")]
            xs = [x for x in xs if math.isfinite(x)]
            vals[k] = sum(xs) / len(xs) if xs else None
        out[key] = vals
    return out


RESULT_KEYS = ("synth", "preset", "overrides", "eval_views", "eval_limit", "checkpoint", "real_views")
"""Budget fields that decide a benchmark's numbers: earlier entries are kept only where these match."""


class Results:
    """The results.json being built: entries per (method, seed), rewritten after each change.

    Incremental: the entries of an earlier results.json in ``out`` of the same budget recipe, protocol
    and dataset are kept (while their evaluation is on disk) unless this invocation redoes them, so
    ``--methods``/``--seeds`` add runs to a benchmark instead of replacing it; each invocation's command
    and machine are listed under ``earlier``."""

    def __init__(self, out: Path, budget: Budget, data: ProtocolData, command: str, jobs: int) -> None:
        self.out, self.data = out, data
        self.doc = {
            "budget": budget.name,
            "protocol": data.protocol,
            "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_info(),
            "command": command,
            "jobs": jobs,
            "budget_settings": budget.to_dict(),
            "dataset": data.to_dict(out),
            "runs": [],
            "table": {},
        }
        self._keep_earlier()

    def _keep_earlier(self) -> None:
        path = self.out / "results.json"
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        now = json.loads(json.dumps(self.doc))  # tuples -> lists, as stored
        same = (
            old.get("budget") == now["budget"]
            and old.get("protocol") == now["protocol"]
            and old.get("dataset", {}).get("settings") == now["dataset"]["settings"]
            and all(
                old.get("budget_settings", {}).get(k) == now["budget_settings"].get(k) for k in RESULT_KEYS
            )
        )
        if not same:
            return
        for key in ("runs", "equal_time_runs"):
            kept = [
                r for r in old.get(key, []) if (self.out / r.get("eval_dir", "-") / "summary.json").is_file()
            ]
            if kept:
                self.doc[key] = kept
        sheets = old.get("sheets") or []
        if sheets and all((self.out / p).is_file() for p in sheets):
            self.doc["sheets"] = sheets
        earlier = old.get("earlier", []) + [
            {k: old.get(k) for k in ("command", "created", "machine", "jobs")}
        ]
        self.doc["earlier"] = earlier

    def add(self, method: str, seed: int, run_dir, eval_dir, key: str = "runs", **extra) -> dict:
        entry = run_record(method, seed, run_dir, eval_dir, self.out)
        if self.data.protocol == "real":
            entry["per_shape"] = per_shape(eval_dir)
        entry.update(extra)
        runs = [r for r in self.doc.get(key, []) if (r["method"], r["seed"]) != (method, seed)]
        runs.append(entry)
        self.doc[key] = sorted(runs, key=lambda r: (method_rank(r["method"]), r["seed"]))
        self.save()
        return entry

    def save(self) -> None:
        self.doc["table"] = aggregate(self.doc["runs"])
        if self.doc.get("equal_time_runs"):
            self.doc["equal_time"] = aggregate(self.doc["equal_time_runs"])
        atomic_write_json(self.out / "results.json", self.doc)
        atomic_write_text(self.out / "RESULTS.md", protocol_markdown(self.doc))


def stretched_schedule(cfg, steps: int, target: int) -> tuple[str, ...]:
    """Overrides training ``target`` steps with the E1:E2 (recon : recon+KD) ratio of ``cfg`` kept."""
    e1, e2 = cfg.train.epochs_recon, cfg.train.epochs_kd
    per_epoch = max(1, round(steps / (e1 + e2)))
    n = max(1, math.ceil(target / per_epoch))
    new_e1 = min(n, round(n * e1 / (e1 + e2)))
    new_e2 = n - new_e1
    if e2 > 0 and new_e2 == 0 and n > 1:  # keep a KD phase when the original schedule has one
        new_e1, new_e2 = n - 1, 1
    return (f"train.epochs_recon={new_e1}", f"train.epochs_kd={new_e2}", f"train.max_steps={target}")


def equal_time(
    budget: Budget, results: Results, students: list[RunJob], runs_root: Path, out: Path, jobs: int, log: Log
) -> None:
    """Each equal-time method trained for the reference method's training wall time (same seed).

    Steps are fixed from the equal-steps run's measured seconds per step, so the comparison is
    reproducible from results.json; runs within :data:`TIME_TOLERANCE` of their equal-steps length
    reuse that run."""
    entries = {(r["method"], r["seed"]): r for r in results.doc["runs"]}
    new_jobs, reused = [], []
    for job in students:
        if job.method not in budget.equal_time_methods or job.seed not in budget.equal_time_seeds:
            continue
        base, ref = entries.get((job.method, job.seed)), entries.get((budget.reference, job.seed))
        if (
            not base
            or not ref
            or not base.get("steps")
            or not base.get("train_seconds")
            or not ref.get("train_seconds")
        ):
            log(f"[bench] equal time: skipped {run_name(job.method, job.seed)} (no timing for it or ref)")
            continue
        target = max(1, round(ref["train_seconds"] * base["steps"] / base["train_seconds"]))
        info = {"target_seconds": ref["train_seconds"], "target_steps": target}
        if job.method == budget.reference or abs(target - base["steps"]) <= TIME_TOLERANCE * base["steps"]:
            reused.append((job, info))
            continue
        cfg = budget.config(job.method, job.seed, job.overrides)
        name = run_name(job.method, job.seed)
        eq = replace(
            job,
            run_dir=str(runs_root.parent / "runs-time" / name),
            eval_dir=str(out / "evals-time" / name),
            overrides=(*job.overrides, *stretched_schedule(cfg, base["steps"], target)),
        )
        new_jobs.append((eq, info))
    for job, info in reused:
        results.add(job.method, job.seed, job.run_dir, job.eval_dir, "equal_time_runs", reused=True, **info)
    infos = {(j.method, j.seed): i for j, i in new_jobs}

    def done(job: RunJob, _status: dict) -> None:
        info = infos[(job.method, job.seed)]
        results.add(job.method, job.seed, job.run_dir, job.eval_dir, "equal_time_runs", reused=False, **info)

    run_jobs([j for j, _ in new_jobs], jobs, done, log)


def given_model(model: str, budget: Budget) -> tuple[Path, Config, str]:
    """--model checked before any work: (run folder, its config, the checkpoint scored).

    The budget's checkpoint when the folder has it, else the other one: the shipped weights keep
    'best' only, and a budget scoring 'last' (equal steps between trained runs) scores their 'best'.
    One-line InputError (naming the folder) when it is missing, has no readable config or no weights."""
    from ifkd.config import load_config
    from ifkd.pretrained import resolve_run

    run = resolve_run(model)
    try:
        cfg = load_config(run)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise InputError(f"{run}: cannot read the model's config ({exc})") from None
    return run, cfg, scored_checkpoint(run, budget.checkpoint)


def _given_model(
    model: str,
    checked: tuple[Path, Config, str],
    data: ProtocolData,
    out: Path,
    budget: Budget,
    device: str,
    results: Results,
) -> list:
    """--model: evaluate one trained model (a run folder or 'pretrained[:name]') and nothing else."""
    run, cfg, which = checked
    name = "model-" + "".join(
        c if c.isalnum() or c in "-_." else "-"
        for c in (str(model) if str(model).startswith("pretrained") else run.name)
    )
    eval_dir = out / "evals" / name
    evaluated = False
    fingerprint = eval_fingerprint(run, which, budget.eval_views, budget.eval_limit)
    if not eval_cached(eval_dir, fingerprint):
        title = f"{model} ({which}) (test)"
        evaluate_run(
            run,
            eval_dir,
            data.eval_root,
            budget.eval_views,
            budget.eval_limit,
            device,
            title,
            which,
        )
        evaluated = True
    results.add(cfg.method, cfg.train.seed, run, eval_dir, model=str(model), checkpoint=which)
    return [(cfg.method, cfg.train.seed, str(run), evaluated)]


def run_benchmark(
    budget: str | Budget,
    protocol: str,
    out_dir: str | Path,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    device: str = "auto",
    progress: Log | None = None,
    command: str = "",
    *,
    jobs: int = 1,
    equal_time_runs: bool = False,
    meshes: str | Path | None = None,
    model: str | None = None,
    seen_dir: str | Path | None = None,
    workers: int | None = None,
) -> dict:
    """Run (or continue) one benchmark protocol under one budget; returns the results.json dict.

    ``methods``/``seeds`` restrict the budget's; ``jobs`` runs that many trainings in parallel processes
    (torch threads = cores // jobs each); ``model`` evaluates one trained model and trains nothing;
    `real` reuses (or first trains) the `seen` runs in ``seen_dir`` (default: ``out_dir/../seen``).
    """
    from ifkd.methods import get_spec

    budget = get_budget(budget) if isinstance(budget, str) else budget
    log = progress or _stderr
    out = Path(out_dir)
    selected = list(methods) if methods else list(budget.methods)
    for m in selected:
        try:
            get_spec(m)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    # Inputs checked before anything is made (out included): a bad --model fails in a second.
    checked = given_model(model, budget) if model is not None else None
    check_writable(out)
    cores = os.cpu_count() or 1
    workers = workers or cores
    data = prepare_data(protocol, budget, out, meshes=meshes, workers=workers, log=log)
    results = Results(out, budget, data, command, jobs)
    if model is not None:
        made = _given_model(model, checked, data, out, budget, device, results)
    else:
        if protocol == "real":
            seen = Path(seen_dir) if seen_dir else out.parent / "seen"
            log(f"[bench] real: scoring the seen-protocol runs of {seen / 'runs'} (trained there if missing)")
            train, runs_root = seen_data(budget, seen, workers).train_root, seen / "runs"
        else:
            train, runs_root = data.train_root, out / "runs"
        threads = max(1, cores // jobs) if jobs > 1 else 0
        scale = data.extra.get("epoch_scale", 1)
        if scale > 1:
            log(f"[bench] {protocol}: {scale}x the budget's epochs (equal optimiser steps with `seen`)")
        teachers, students = plan_jobs(
            budget,
            selected,
            seeds,
            runs_root,
            train,
            out / "evals",
            data.eval_root,
            device,
            threads,
            epoch_overrides(budget, scale),
        )
        made = []

        def done(job: RunJob, status: dict) -> None:
            if job.eval_dir is not None:
                results.add(job.method, job.seed, job.run_dir, job.eval_dir)
                made.append((job.method, job.seed, job.run_dir, status["evaluated"]))
            log(
                f"[bench] {run_name(job.method, job.seed)}: "
                f"trained {status['trained']}, evaluated {status['evaluated']}"
            )

        run_jobs(teachers, jobs, done, log)
        run_jobs(students, jobs, done, log)
        if equal_time_runs and protocol != "real":
            equal_time(budget, results, students, runs_root, out, jobs, log)
    if protocol == "real":
        from ifkd.bench.sheets import write_sheets

        first = {}  # each method's lowest seed (parallel jobs finish in any order)
        for method, _seed, run, evaluated in sorted(made, key=lambda m: (method_rank(m[0]), m[1])):
            first.setdefault(method, (run, evaluated))
        runs = [(m, r) for m, (r, _) in sorted(first.items(), key=lambda kv: method_rank(kv[0]))]
        force = any(ev for _, ev in first.values())
        every = {r["method"] for r in results.doc["runs"]}
        if every - set(first) and results.doc.get("sheets"):
            # runs kept from an earlier command: its sheets show every method, these would not
            log(f"[bench] real: sheets kept (this command ran {len(first)} of {len(every)} methods)")
        else:
            results.doc["sheets"] = write_sheets(
                out, data, runs, device, budget.synth.image_size, force, log, budget.checkpoint
            )
    results.save()
    log(f"[bench] wrote {out / 'results.json'} and {out / 'RESULTS.md'}")
    return results.doc
