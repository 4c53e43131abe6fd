"""Add the share of empty meshes, and the surface metrics over non-empty meshes, to results.json files
written before those columns existed.

Each run's evaluation folder keeps its per_shape.csv, whose `empty` column is 1 for a mesh with no
faces. This recomputes, per run, those columns' per-category values and their mean over categories with
the evaluator's own rule (:func:`ifkd.eval.evaluate.summarise`), re-aggregates the table, and rebuilds
benchmarks/RESULTS.md. Nothing is retrained or re-evaluated: the figures come from the files the runs
wrote.

Usage: python benchmarks/add_empty_share.py [benchmarks/results/**/results.json ...]
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from ifkd.bench.stats import aggregate
from ifkd.bench.tables import write_results_md
from ifkd.eval.evaluate import NONEMPTY_OF, NONEMPTY_SUFFIX, summarise
from ifkd.io import atomic_write_json

ROOT = Path(__file__).resolve().parent


RECOMPUTED = ("empty", *(f"{k}{NONEMPTY_SUFFIX}" for k in NONEMPTY_OF))
"""The columns this script adds; every other column is left as the evaluation wrote it."""


def _number(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def recomputed(per_shape: Path) -> dict:
    """The evaluator's summary of a per_shape.csv (numbers parsed back from the text)."""
    with per_shape.open() as f:
        rows = [
            {k: (v if k in ("shape", "category") else _number(v)) for k, v in r.items()}
            for r in csv.DictReader(f)
        ]
    return summarise(rows)


def update(path: Path) -> int:
    doc = json.loads(path.read_text())
    done = 0
    for key in ("runs", "equal_time_runs"):
        for run in doc.get(key) or []:
            csv_path = path.parent / run.get("eval_dir", "") / "per_shape.csv"
            if not csv_path.is_file():
                continue
            summary = recomputed(csv_path)
            for key in RECOMPUTED:
                run["mean"][key] = summary["mean"][key]
                for cat, values in summary["per_category"].items():
                    run.get("per_category", {}).setdefault(cat, {})[key] = values[key]
            done += 1
    if doc.get("runs"):
        doc["table"] = aggregate(doc["runs"])
    if doc.get("equal_time_runs"):
        doc["equal_time"] = aggregate(doc["equal_time_runs"])
    atomic_write_json(path, doc)
    return done


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted((ROOT / "results").rglob("results.json"))
    for path in paths:
        print(f"{path}: {update(path)} runs")
    print(write_results_md(ROOT))


if __name__ == "__main__":
    main()
