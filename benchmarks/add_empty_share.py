"""Add the share of empty meshes to results.json files written before the `empty` column existed.

Each run's evaluation folder keeps its per_shape.csv, whose `empty` column is 1 for a mesh with no
faces. This recomputes, per run, the per-category share and its mean over categories (the same class
mean as every other column), re-aggregates the table, and rebuilds benchmarks/RESULTS.md. Nothing is
retrained or re-evaluated: the figures come from the files the runs wrote.

Usage: python benchmarks/add_empty_share.py [benchmarks/results/**/results.json ...]
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from ifkd.bench.stats import aggregate
from ifkd.bench.tables import write_results_md
from ifkd.io import atomic_write_json

ROOT = Path(__file__).resolve().parent


def empty_shares(per_shape: Path) -> tuple[float, dict[str, float]]:
    cats: dict[str, list[float]] = {}
    with per_shape.open() as f:
        for row in csv.DictReader(f):
            cats.setdefault(row["category"], []).append(float(row["empty"]))
    per_cat = {c: float(np.mean(v)) for c, v in sorted(cats.items())}
    return float(np.mean(list(per_cat.values()))), per_cat


def update(path: Path) -> int:
    doc = json.loads(path.read_text())
    done = 0
    for key in ("runs", "equal_time_runs"):
        for run in doc.get(key) or []:
            csv_path = path.parent / run.get("eval_dir", "") / "per_shape.csv"
            if not csv_path.is_file():
                continue
            mean, per_cat = empty_shares(csv_path)
            run["mean"]["empty"] = mean
            for cat, share in per_cat.items():
                run.get("per_category", {}).setdefault(cat, {})["empty"] = share
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
