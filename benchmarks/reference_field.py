"""The ground truth scored as a method: each metric's floor on a benchmark, beside the methods' rows.

The shapes' own 128^3 ground-truth grids (:mod:`ifkd.eval.reference`) go through the same extraction
(the budget's grid and coarse level), the same exact IoU labels and the same surface samples as the
benchmark's methods, on the same test shapes and views. What a perfect field loses there is the grid's,
not a method's; an ECD below the reference's is a smoother staircase, not sharper edges. A second row
extracts it densely on the same grid: the difference is what the coarse level costs.

Usage: python benchmarks/reference_field.py [--budget converged] [--data DIR] [--limit N]
           [--bench FOLDER] [--rescore RUN ...]
--rescore scores the named runs of the benchmark folder densely as well, beside their benchmark
evaluation: the same weights from both extractions. DIR defaults to the benchmark folder's data
(benchmarks/results/<budget>/seen/data, generated if missing, byte-identical to the benchmark's).
Writes benchmarks/results/reference_<budget>.{json,md} (and <bench>/evals-dense/RUN per rescored run).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

from common import RESULTS, machine, machine_line, write_results

from ifkd.bench.budgets import get_budget
from ifkd.bench.protocols import seen_data
from ifkd.bench.stats import HEADERS, fmt_stat, method_order
from ifkd.bench.tables import NONEMPTY_KEYS, ROW_KEYS
from ifkd.eval.evaluate import ECD_NOTE, EvalOptions, evaluate_model, run_evaluation, summarise
from ifkd.eval.reference import REFERENCE_VOXELS, reference_reconstructor

KEYS = tuple(k for k in ROW_KEYS if k not in NONEMPTY_KEYS)
"""The reference table's columns: the benchmark's row metrics in OccNet's convention."""


def method_rows(results: dict) -> list[str]:
    """The benchmark's class means (mean ± std over seeds) in the reference table's columns."""
    table = results.get("table", {})
    rows = []
    for m in method_order(table):
        e = table[m]
        cells = [fmt_stat(e["mean"].get(k), e["std"].get(k), e["n_seeds"]) for k in KEYS]
        rows.append(f"| {m} ({e['n_seeds']} seed{'s' * (e['n_seeds'] > 1)}) | " + " | ".join(cells) + " |")
    return rows


def score(cfg, data: Path, budget, coarse: int, limit: int | None) -> tuple[dict, float]:
    """The reference's summary with the budget's evaluation settings and coarse level ``coarse``."""
    cfg = replace(cfg, eval=replace(cfg.eval, coarse_resolution=coarse))
    start = time.perf_counter()
    opts = EvalOptions(split="test", views=budget.eval_views, limit=limit)
    rows = evaluate_model(reference_reconstructor(cfg), data, opts, progress=True)
    return summarise(rows), time.perf_counter() - start


def rescore(bench: Path, name: str, data: Path, budget, limit: int | None) -> dict:
    """One benchmark run scored densely (its scored checkpoint, camera-free, as the benchmark scores it)
    into ``<bench>/evals-dense/<name>``, beside its benchmark evaluation ``<bench>/evals/<name>``."""
    run = bench / "runs" / name
    if not (run / "config.json").is_file():
        raise SystemExit(f"{run}: no such run (train it with ifkd bench first)")
    saved = json.loads((bench / "evals" / name / "summary.json").read_text())
    opts = EvalOptions(split="test", views=budget.eval_views, limit=limit, dense=True)
    dense = run_evaluation(run, data, bench / "evals-dense" / name, opts, device="cpu", progress=True)
    ev = json.loads((run / "config.json").read_text())["eval"]  # the run's grid: the benchmark's
    return {
        "resolution": ev["resolution"],
        "coarse_resolution": ev["coarse_resolution"],
        "benchmark": {k: saved["mean"].get(k) for k in KEYS},
        "dense": {k: dense["mean"].get(k) for k in KEYS},
        "n": [saved["n"], dense["n"]],
    }


def rescored_table(rescored: dict) -> list[str]:
    """Each rescored run's class means from both extractions, and dense minus benchmark."""
    if not rescored:
        return []
    rows = []
    for name, r in rescored.items():
        b, d, res, coarse = r["benchmark"], r["dense"], r["resolution"], r["coarse_resolution"]
        if r["n"][0] != r["n"][1]:  # --limit: the two rows score different shapes
            name = f"{name} (not paired: {r['n'][0]} vs {r['n'][1]} shapes)"
        rows.append(
            f"| {name} | {res}³ from {coarse}³ (the benchmark's) | "
            + " | ".join(fmt_stat(b[k], None, 1) for k in KEYS)
            + " |"
        )
        rows.append(f"| {name} | dense {res}³ | " + " | ".join(fmt_stat(d[k], None, 1) for k in KEYS) + " |")
        rows.append(
            f"| {name} | dense − benchmark | " + " | ".join(f"{d[k] - b[k]:+.3f}" for k in KEYS) + " |"
        )
    return [
        "**The same weights from both extractions** (seed runs of the benchmark, scored again densely)",
        "",
        "| run | extraction | " + " | ".join(HEADERS[k] for k in KEYS) + " |",
        "|---|---|" + "---:|" * len(KEYS),
        *rows,
        "",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", default="converged")
    ap.add_argument("--data", type=Path, default=None, help="the budget's seen data (default: its folder)")
    ap.add_argument("--limit", type=int, default=None, help="score at most this many test shapes")
    ap.add_argument(
        "--bench",
        type=Path,
        default=None,
        help="the benchmark folder (runs/, evals/, results.json); default benchmarks/results/<budget>/seen",
    )
    ap.add_argument(
        "--rescore",
        nargs="*",
        default=[],
        metavar="RUN",
        help="runs of <bench>/runs (e.g. ifkd-s2) to score densely too, beside their benchmark evaluation",
    )
    ap.add_argument(
        "--reuse-reference",
        action="store_true",
        help="take the ground truth's rows from an earlier reference_<budget>.json of the same grid "
        "(they are deterministic) and only rescore the runs",
    )
    args = ap.parse_args()
    budget = get_budget(args.budget)
    seen = args.bench or RESULTS / budget.name / "seen"
    data = args.data or seen_data(budget, seen, workers=2).eval_root
    cfg = budget.config("teacher", 0)  # the budget's evaluation settings (grid, samples): every method's
    res, coarse = cfg.eval.resolution, cfg.eval.coarse_resolution
    variants = {
        f"ground truth, the benchmark's extraction ({res}³ from {coarse}³)": coarse,
        f"ground truth, dense {res}³ extraction": res,
    }
    refs = {}
    previous = RESULTS / f"reference_{budget.name}.json"
    if args.reuse_reference and previous.is_file():  # the same settings: the floor is deterministic
        old = json.loads(previous.read_text())
        if old.get("eval", {}).get("resolution") == res and set(old.get("references", {})) == set(variants):
            refs = old["references"]
            print(f"reference rows reused from {previous}", file=sys.stderr)
    for name, level in variants.items():
        if name in refs:
            continue
        summary, seconds = score(cfg, data, budget, level, args.limit)
        refs[name] = {
            "coarse_resolution": level,
            "n": summary["n"],
            "seconds": round(seconds, 1),
            "mean": {k: summary["mean"].get(k) for k in KEYS},
            "per_category": {
                c: {k: v.get(k) for k in (*KEYS, "n")} for c, v in summary["per_category"].items()
            },
        }
    rescored = {name: rescore(seen, name, data, budget, args.limit) for name in args.rescore}
    results_path = seen / "results.json"
    bench = json.loads(results_path.read_text()) if results_path.is_file() else {}
    m = machine()
    command = shlex.join(["python", "benchmarks/reference_field.py", *sys.argv[1:]])
    payload = {
        "budget": budget.name,
        "command": command,
        "machine": m,
        "data": str(data),
        "reference": f"ground-truth {REFERENCE_VOXELS}^3 voxels, trilinear, level 0.5",
        "eval": {
            "resolution": res,
            "iou_points": cfg.eval.iou_points,
            "surface_points": cfg.eval.surface_points,
            "views": budget.eval_views,
        },
        "references": refs,
        "rescored": rescored,
    }
    n = next(iter(refs.values()))["n"]
    seconds = sum(r["seconds"] for r in refs.values())
    head = "| method | " + " | ".join(HEADERS[k] for k in KEYS) + " |"
    ref_rows = [
        f"| **{name}** | " + " | ".join(fmt_stat(r["mean"][k], None, 1) for k in KEYS) + " |"
        for name, r in refs.items()
    ]
    cats = sorted({c for r in refs.values() for c in r["per_category"]})
    per_cat = [
        "| category | " + " | ".join(f"{name}" for name in refs) + " |",
        "|---|" + "---:|" * len(refs),
        *(
            f"| {c} | "
            + " | ".join(fmt_stat(r["per_category"].get(c, {}).get("iou"), None, 1) for r in refs.values())
            + " |"
            for c in cats
        ),
    ]
    md = "\n".join(
        [
            f"# The ground truth scored as a method: the floor of each column (budget `{budget.name}`)",
            "",
            f"Machine: {machine_line(m)}. Command: `{command}` ({seconds:.0f} s). Each test shape's own "
            f"{REFERENCE_VOXELS}³ ground-truth grid, read as a field (trilinear between cell centres, "
            f"level 0.5), extracted on the budget's {res}³ grid, once from its {coarse}³ coarse level as "
            "every method is, once densely, and scored as the methods are "
            f"({cfg.eval.iou_points:,} exact IoU labels, {cfg.eval.surface_points:,} surface samples a "
            f"side, view `{budget.eval_views}`), on the same {n} test shapes. Class means; the methods' "
            f"rows are the benchmark's (`results/{budget.name}/seen/results.json`).",
            "",
            head,
            "|---|" + "---:|" * len(KEYS),
            *ref_rows,
            *method_rows(bench),
            "",
            f"{ECD_NOTE} A method's ECD below the ground truth's is a smoother staircase on that grid, not "
            "sharper edges. The ground truth's IoU and Chamfer-L1 are what the voxels and the grid cost a "
            "perfect field; the gap between its two rows is what the coarse level costs: a part thinner "
            "than the coarse grid's spacing that no coarse corner falls inside is never refined, however "
            "sharp the field.",
            "",
            *rescored_table(rescored),
            "**IoU per category, ground truth**",
            "",
            *per_cat,
        ]
    )
    write_results(f"reference_{budget.name}", payload, md + "\n")
    print(md)


if __name__ == "__main__":
    main()
