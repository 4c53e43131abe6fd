"""The benchmark driver: data -> teachers -> students -> evaluations -> results.json + RESULTS.md.

Resumable and cached per (method, seed) (see :mod:`ifkd.bench.runs`); results.json is rewritten after
every finished run so an interrupted benchmark keeps what it did. Layout of ``out_dir``: ``data/``,
``runs/<method>-s<seed>/``, ``evals/<method>-s<seed>/``, ``results.json``, ``RESULTS.md`` (and for
`real`: ``data_real/``, ``sheets/``; for ``--equal-time``: ``runs-time/``, ``evals-time/``; for
`realsplit`: ``runs/mix/``, ``evals/<arm>/{real,synthetic}/`` with the ``procedural`` arm's runs and the
data in the `seen` folder).
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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from ifkd.bench.budgets import TEACHERS, Budget, get_budget
from ifkd.bench.protocols import (
    ARMS,
    REAL_TARGETS,
    REAL_WEIGHT,
    REALSPLIT_METHODS,
    ProtocolData,
    epoch_overrides,
    mix_overrides,
    prepare_data,
    seen_data,
)
from ifkd.bench.runs import (
    METRIC_KEYS,
    RunJob,
    _finite,
    eval_cached,
    eval_fingerprint,
    evaluate_run,
    execute,
    run_name,
    run_record,
    scored_checkpoint,
)
from ifkd.bench.stats import aggregate, mean_std, method_rank
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
    *,
    overrides_for: Callable[[str], tuple[str, ...]] | None = None,
    more_evals: Sequence[tuple[Path, Path]] = (),
    stamp_data: bool = False,
) -> tuple[list[RunJob], list[RunJob]]:
    """(teacher jobs, student jobs): every selected (method, seed), plus the teachers they distil from
    (trained for each seed used, evaluated only when selected themselves); ``overrides`` on top of the
    budget's for every job (the `unseen` protocol's longer schedule), then ``overrides_for(method)``
    (`realsplit`'s per-method equal-steps schedule). ``more_evals``: further (evals folder, test data)
    pairs every evaluated job is also scored on; ``stamp_data``: see :class:`RunJob`."""
    from ifkd.methods import get_spec
    from ifkd.train.schedule import needs_teacher

    pairs = [(m, s) for m in methods for s in (seeds if seeds else budget.seeds_for(m))]

    def job_overrides(method: str) -> tuple[str, ...]:
        return (*overrides, *(overrides_for(method) if overrides_for else ()))

    def teacher(method: str, seed: int) -> str | None:
        name = teacher_of(method)
        cfg = budget.config(method, seed, job_overrides(method))
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
            overrides=job_overrides(method),
            device=device,
            threads=threads,
            eval_views=budget.eval_views,
            eval_limit=budget.eval_limit,
            checkpoint=budget.checkpoint,
            more_evals=tuple((str(d / name), str(r)) for d, r in more_evals) if evaluate else (),
            stamp_data=stamp_data,
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


def _run_key(r: Mapping) -> tuple:
    """Identity of a results.json run entry: (method, seed), and its arm under `realsplit`."""
    return (r["method"], r["seed"], r.get("arm"))


def _sort_key(r: Mapping) -> tuple:
    arm = r.get("arm")
    return (ARMS.index(arm) if arm in ARMS else -1, method_rank(r["method"]), r["seed"])


def _eval_dirs(r: Mapping) -> list[str]:
    """Every evaluation folder a run entry was read from (relative to the benchmark folder)."""
    more = [t["eval_dir"] for t in (r.get("targets") or {}).values() if t and t.get("eval_dir")]
    return [r.get("eval_dir", "-"), *more]


class Results:
    """The results.json being built: entries per (method, seed), rewritten after each change.

    Incremental: the entries of an earlier results.json in ``out`` of the same budget recipe, protocol
    and dataset are kept (while their evaluation is on disk) unless this invocation redoes them, so
    ``--methods``/``--seeds`` add runs to a benchmark instead of replacing it; each invocation's command
    and machine are listed under ``earlier``. Under `realsplit` an entry is per (arm, method, seed) and
    ``realsplit`` holds the arms, their schedules and the tables per test set (:meth:`add_realsplit`)."""

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
        if data.protocol == "realsplit":
            self.doc["realsplit"] = realsplit_arms(data, out)
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
                r
                for r in old.get(key, [])
                if all((self.out / d / "summary.json").is_file() for d in _eval_dirs(r))
            ]
            if kept:
                self.doc[key] = kept
        sheets = old.get("sheets") or []
        if sheets and all((self.out / p).is_file() for p in sheets):
            self.doc["sheets"] = sheets
        if "realsplit" in self.doc:  # the schedules of methods this invocation does not run
            self.doc["realsplit"]["schedules"] = dict((old.get("realsplit") or {}).get("schedules") or {})
        earlier = old.get("earlier", []) + [
            {k: old.get(k) for k in ("command", "created", "machine", "jobs")}
        ]
        self.doc["earlier"] = earlier

    def add(self, method: str, seed: int, run_dir, eval_dir, key: str = "runs", **extra) -> dict:
        entry = run_record(method, seed, run_dir, eval_dir, self.out)
        if self.data.protocol == "real":
            entry["per_shape"] = per_shape(eval_dir)
        entry.update(extra)
        return self._put(entry, key)

    def add_realsplit(self, job: RunJob, arm: str) -> dict:
        """A `realsplit` student: its record on the whole real test split, plus ``targets``: the class
        means on the real test shapes of trained classes / held-out classes and on the synthetic split."""
        entry = run_record(job.method, job.seed, job.run_dir, job.eval_dir, self.out)
        targets = split_real(job.eval_dir, self.data.extra["held_out"])
        ((synthetic, _),) = job.more_evals
        summary = json.loads((Path(synthetic) / "summary.json").read_text())
        targets["synthetic"] = {
            "eval_dir": os.path.relpath(synthetic, self.out),
            "mean": {k: summary["mean"].get(k) for k in METRIC_KEYS},
            "per_category": {
                c: {**{k: v.get(k) for k in METRIC_KEYS}, "n": v.get("n")}
                for c, v in summary["per_category"].items()
            },
            "n": summary.get("n"),
        }
        entry.update(arm=arm, overrides=list(job.overrides), targets=_finite(targets))
        return self._put(entry, "runs")

    def add_schedules(self, schedules: Mapping[str, dict]) -> None:
        """`realsplit`: each method's planned steps per arm (see :func:`realsplit_schedule`)."""
        self.doc["realsplit"]["schedules"].update({m: s["record"] for m, s in schedules.items()})

    def _put(self, entry: dict, key: str) -> dict:
        runs = [r for r in self.doc.get(key, []) if _run_key(r) != _run_key(entry)]
        runs.append(entry)
        self.doc[key] = sorted(runs, key=_sort_key)
        self.save()
        return entry

    def save(self) -> None:
        if self.data.protocol == "realsplit":
            runs = self.doc["runs"]
            # Readers of any results.json (`ifkd report`) get one row per method and arm, whole real test.
            self.doc["table"] = aggregate([{**r, "method": f"{r['method']} ({r['arm']})"} for r in runs])
            self.doc["realsplit"]["targets"] = realsplit_tables(runs)
            self.doc["realsplit"]["paired"] = paired_differences(runs)
        else:
            self.doc["table"] = aggregate(self.doc["runs"])
        if self.doc.get("equal_time_runs"):
            self.doc["equal_time"] = aggregate(self.doc["equal_time_runs"])
        atomic_write_json(self.out / "results.json", self.doc)
        atomic_write_text(self.out / "RESULTS.md", protocol_markdown(self.doc, base=self.out))


# ------------------------------------------------------------------------------------------ realsplit
def _metric_rows(path: Path) -> list[dict]:
    """per_shape.csv rows with the metric columns as floats (NaN where empty), as ``summarise`` reads."""
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            vals = {}
            for k in METRIC_KEYS:
                try:
                    vals[k] = float(row.get(k) or "nan")
                except ValueError:
                    vals[k] = float("nan")
            rows.append({"shape": row["shape"], "category": row["category"], **vals})
    return rows


def split_real(eval_dir: str | Path, held_out: Sequence[str]) -> dict[str, dict | None]:
    """The real test rows of an evaluation split by category: ``real_seen`` (classes trained on) and
    ``real_unseen`` (``held_out`` classes); each the class mean (the other tables' mean: unweighted over
    the classes), per-class means, rows ``n`` and ``shapes`` (None when the split has no such shape)."""
    from ifkd.eval.evaluate import summarise

    rows, out = _metric_rows(Path(eval_dir) / "per_shape.csv"), {}
    for target, unseen in (("real_seen", False), ("real_unseen", True)):
        part = [r for r in rows if (r["category"] in held_out) == unseen]
        if not part:
            out[target] = None
            continue
        s = summarise(part)
        out[target] = {
            "mean": {k: s["mean"].get(k) for k in METRIC_KEYS},
            "per_category": {
                c: {**{k: v.get(k) for k in METRIC_KEYS}, "n": v["n"]} for c, v in s["per_category"].items()
            },
            "n": s["n"],
            "shapes": len({r["shape"] for r in part}),
        }
    return out


def realsplit_tables(runs: list[dict]) -> dict:
    """{test set: {arm: the per-method table of :func:`aggregate`}} from `realsplit` run entries."""
    out: dict = {}
    for target in REAL_TARGETS:
        for arm in ARMS:
            rs = [
                {"method": r["method"], "seed": r["seed"], **r["targets"][target]}
                for r in runs
                if r.get("arm") == arm and (r.get("targets") or {}).get(target)
            ]
            if rs:
                out.setdefault(target, {})[arm] = aggregate(rs)
    return out


def paired_differences(runs: list[dict], a: str = "mix", b: str = "procedural") -> dict:
    """{test set: {method: per_seed [{seed, metric: a - b}], mean, std, n}}: ``a`` minus ``b`` of the same
    method and seed (the paired comparison; seeds with only one arm are left out)."""
    by = {_run_key(r): r for r in runs if r.get("targets")}
    out: dict = {}
    for target in REAL_TARGETS:
        for method in sorted({r["method"] for r in runs}, key=method_rank):
            per_seed = []
            for seed in sorted({k[1] for k in by if k[0] == method}):
                ra, rb = by.get((method, seed, a)), by.get((method, seed, b))
                ta = (ra or {}).get("targets", {}).get(target)
                tb = (rb or {}).get("targets", {}).get(target)
                if not ta or not tb:
                    continue
                diff = {}
                for k in METRIC_KEYS:
                    x, y = ta["mean"].get(k), tb["mean"].get(k)
                    diff[k] = None if x is None or y is None else x - y
                per_seed.append({"seed": seed, **diff})
            if per_seed:
                stats = {k: mean_std(d[k] for d in per_seed) for k in METRIC_KEYS}
                out.setdefault(target, {})[method] = {
                    "per_seed": per_seed,
                    "mean": {k: v[0] for k, v in stats.items()},
                    "std": {k: v[1] for k, v in stats.items()},
                    "n": len(per_seed),
                }
    return out


def steps_per_epoch(cfg: Config, data_root: str | Path) -> tuple[int, int]:
    """(items, optimiser steps) of one training epoch of ``cfg`` on ``data_root`` (and its extra roots),
    as the trainer counts them on one process: ceil(items / batch). Items are (shape, view) pairs, one
    per shape for a voxel teacher; a mix draws round(w x n) items per source (:mod:`ifkd.data.mix`)."""
    from ifkd.data.mix import make_training_set
    from ifkd.methods import get_spec

    images = get_spec(cfg.method).input != "voxels"
    dataset = make_training_set(data_root, cfg.data, cfg.train.seed, with_images=images, with_voxels=False)
    return len(dataset), math.ceil(len(dataset) / cfg.train.batch_size)


def planned_total(cfg: Config, per_epoch: int) -> int:
    """Optimiser steps a run of ``cfg`` takes: its epochs times ``per_epoch``, stopped at max_steps."""
    from ifkd.train.schedule import total_epochs

    total = total_epochs(cfg.train) * per_epoch
    return min(total, cfg.train.max_steps) if cfg.train.max_steps else total


def realsplit_schedule(budget: Budget, method: str, train_root: Path, real_root: Path) -> dict:
    """Both arms' schedules of ``method``: ``procedural`` is the budget's; ``mix`` (a longer epoch) gets
    the epochs that reach the procedural arm's optimiser steps (E1:E2 kept) and stops there
    (``train.max_steps``). ``overrides``: the mix arm's; ``record``: per arm items and steps per epoch,
    epochs and total steps (results.json). An epoch's length does not depend on the seed."""
    base = mix_overrides(real_root)
    proc_cfg, mix_cfg = budget.config(method, 0), budget.config(method, 0, base)
    proc_items, proc_per_epoch = steps_per_epoch(proc_cfg, train_root)
    mix_items, mix_per_epoch = steps_per_epoch(mix_cfg, train_root)
    target = planned_total(proc_cfg, proc_per_epoch)
    epochs = mix_cfg.train.epochs_recon + mix_cfg.train.epochs_kd
    stretch = stretched_schedule(mix_cfg, mix_per_epoch * epochs, target)
    overrides = (*base, *stretch)
    final = budget.config(method, 0, overrides)
    record = {}
    for arm, cfg, items, per_epoch in (
        ("procedural", proc_cfg, proc_items, proc_per_epoch),
        ("mix", final, mix_items, mix_per_epoch),
    ):
        record[arm] = {
            "items_per_epoch": items,
            "steps_per_epoch": per_epoch,
            "epochs_recon": cfg.train.epochs_recon,
            "epochs_kd": cfg.train.epochs_kd,
            "max_steps": cfg.train.max_steps,
            "steps": planned_total(cfg, per_epoch),
        }
    return {"overrides": overrides, "record": record}


def realsplit_arms(data: ProtocolData, out: Path) -> dict:
    """The ``realsplit`` entry of results.json before any run: what each arm trains on, the weight."""
    real = data.eval_root

    def rel(path: Path) -> str:
        return os.path.relpath(path, out)

    return {
        "weight": REAL_WEIGHT,
        "held_out_categories": data.extra["held_out"],
        "arms": {
            "procedural": {
                "train": [rel(data.train_root)],
                "weights": [1.0],
                "runs": rel(out / "runs" / "procedural"),
            },
            "mix": {
                "train": [rel(data.train_root), str(real.resolve())],  # the user's folder, as given
                "weights": [1.0, REAL_WEIGHT],
                "runs": rel(out / "runs" / "mix"),
            },
        },
        "tests": {
            "real_seen": f"{real.resolve()} test split, classes trained on",
            "real_unseen": f"{real.resolve()} test split, held-out classes (never trained on)",
            "synthetic": f"{rel(data.extra['synthetic_root'])} test split",
        },
        "schedules": {},
        "targets": {},
        "paired": {},
    }


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


MIX_DATA_FILE = "real_data.json"
"""In the mix arm's runs folder: which real dataset (path and :func:`index_stamp`) its runs trained on."""


def _check_mix_data(runs_root: Path, data: ProtocolData) -> None:
    """Refuse to continue mix runs trained on another real dataset (a run's config names the folder,
    not its content, so a dataset rebuilt in place would otherwise pass as finished); record it."""
    want = {k: data.settings[k] for k in ("real_data", "real_index")}
    path = runs_root / MIX_DATA_FILE
    if path.is_file():
        try:
            have = json.loads(path.read_text())
        except ValueError:
            have = None
        if have != want:
            raise InputError(
                f"{runs_root}: these mix runs trained on another real dataset ({have}); "
                "remove the folder or choose another --out"
            )
        return
    atomic_write_json(path, want)


def _realsplit(
    budget: Budget,
    methods: list[str],
    seeds: Sequence[int] | None,
    data: ProtocolData,
    out: Path,
    device: str,
    threads: int,
    jobs: int,
    results: Results,
    log: Log,
) -> None:
    """Both arms of `realsplit`: teachers, then students, each student scored on the real test split and
    on the synthetic one. Both arms train into this protocol's own folder (``runs/procedural``,
    ``runs/mix``): the `seen` folder's runs may have been made by another recipe or code version."""
    schedules: dict[str, dict] = {}

    def schedule(method: str) -> dict:
        if method not in schedules:
            schedules[method] = realsplit_schedule(budget, method, data.train_root, data.eval_root)
        return schedules[method]

    roots = {"procedural": out / "runs" / "procedural", "mix": out / "runs" / "mix"}
    _check_mix_data(roots["mix"], data)
    arm_of, teachers, students = {}, [], []
    for arm in ARMS:
        t, st = plan_jobs(
            budget,
            methods,
            seeds,
            roots[arm],
            data.train_root,
            out / "evals" / arm / "real",
            data.eval_root,
            device,
            threads,
            overrides_for=lambda m, arm=arm: schedule(m)["overrides"] if arm == "mix" else (),
            more_evals=[(out / "evals" / arm / "synthetic", data.extra["synthetic_root"])],
            stamp_data=True,
        )
        teachers += t
        students += st
        arm_of.update({j.run_dir: arm for j in (*t, *st)})
    for job in (*teachers, *students):
        schedule(job.method)  # recorded for teachers too: their arms are at equal steps as well
    results.add_schedules(schedules)
    for method, sch in schedules.items():
        p, m = sch["record"]["procedural"], sch["record"]["mix"]
        log(
            f"[bench] realsplit {method}: procedural {p['steps']} steps ({p['steps_per_epoch']}/epoch), "
            f"mix {m['steps']} steps ({m['steps_per_epoch']}/epoch, "
            f"{m['epochs_recon']}+{m['epochs_kd']} epochs)"
        )

    def done(job: RunJob, status: dict) -> None:
        arm = arm_of[job.run_dir]
        if job.eval_dir is not None:
            results.add_realsplit(job, arm)
        log(
            f"[bench] {arm} {run_name(job.method, job.seed)}: "
            f"trained {status['trained']}, evaluated {status['evaluated']}"
        )

    run_jobs(teachers, jobs, done, log)
    run_jobs(students, jobs, done, log)


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
    real_data: str | Path | None = None,
) -> dict:
    """Run (or continue) one benchmark protocol under one budget; returns the results.json dict.

    ``methods``/``seeds`` restrict the budget's; ``jobs`` runs that many trainings in parallel processes
    (torch threads = cores // jobs each); ``model`` evaluates one trained model and trains nothing;
    `real` reuses (or first trains) the `seen` runs in ``seen_dir`` (default: ``out_dir/../seen``);
    `realsplit` trains its ``procedural`` arm on the `seen` data of ``seen_dir`` and its ``mix`` arm on
    that plus the train split of ``real_data`` (an ``ifkd data real`` folder, read only), both into
    ``out_dir/runs``.
    """
    from ifkd.bench.protocols import check_real_data
    from ifkd.methods import get_spec

    budget = get_budget(budget) if isinstance(budget, str) else budget
    log = progress or _stderr
    out = Path(out_dir)
    selected = list(methods) if methods else list(budget.methods)
    if protocol == "realsplit":
        selected = list(methods) if methods else list(REALSPLIT_METHODS)
        if model is not None:
            raise InputError("--model: the realsplit protocol trains its two arms; it scores no given model")
        check_real_data(real_data)
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
    data = prepare_data(
        protocol,
        budget,
        out,
        meshes=meshes,
        real_dataset=real_data,
        seen_dir=seen_dir,
        workers=workers,
        log=log,
    )
    results = Results(out, budget, data, command, jobs)
    if model is not None:
        made = _given_model(model, checked, data, out, budget, device, results)
    elif protocol == "realsplit":
        threads = max(1, cores // jobs) if jobs > 1 else 0
        if equal_time_runs:
            log("[bench] realsplit: --equal-time ignored (the arms are compared at equal optimiser steps)")
        _realsplit(budget, selected, seeds, data, out, device, threads, jobs, results, log)
        made = []
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
