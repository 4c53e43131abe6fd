"""Timing of mesh extraction (dense vs coarse-to-fine) and of the evaluation metrics, on CPU.

Run: ``.venv/bin/python benchmarks/bench_metrics.py [--resolution 128] [--json out.json]``; prints a
Markdown table. Fields and meshes are analytic, so the numbers need no dataset.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import trimesh

from ifkd.eval import metrics as M
from ifkd.extract import coarse_to_fine, dense_grid, extract_mesh
from ifkd.io import atomic_write_json


def sphere_field(points: np.ndarray) -> np.ndarray:
    """Occupancy probability of a sphere of radius 0.4 (a smooth step 1/60 wide)."""
    return 1.0 / (1.0 + np.exp(-60.0 * (0.4 - np.linalg.norm(points, axis=1))))


def _best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(resolution: int, coarse: int, repeats: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    t_dense, dense = _best_of(lambda: dense_grid(sphere_field, resolution), repeats)
    rows.append({"stage": f"dense grid {resolution}^3", "seconds": t_dense, "queries": dense.size})
    t_c2f, (fine, n) = _best_of(lambda: coarse_to_fine(sphere_field, resolution, coarse), repeats)
    rows.append({"stage": f"coarse-to-fine {coarse}->{resolution}", "seconds": t_c2f, "queries": n})
    agree = M.iou_occupancy(fine >= 0.5, dense >= 0.5)
    rows.append(
        {
            "stage": "query saving / grid IoU",
            "seconds": None,
            "queries": dense.size / n,
            "note": f"grid occupancy IoU {agree:.5f}",
        }
    )
    t_mc, mesh = _best_of(lambda: extract_mesh(fine), repeats)
    rows.append({"stage": "marching cubes", "seconds": t_mc, "queries": len(mesh.faces), "note": "faces"})

    # GT = the analytic sphere (a fine icosphere), so the prediction is close to it as in a real
    # evaluation; far-off predictions make the k-d tree searches slower (see the report)
    gt = trimesh.creation.icosphere(5, radius=0.4)
    gp, gn = M.sample_mesh(gt, 100_000, rng=1)
    pts = np.random.default_rng(2).uniform(-0.55, 0.55, size=(100_000, 3))
    occ = np.linalg.norm(pts, axis=1) < 0.4
    pp, pn = M.sample_mesh(mesh, 100_000, rng=3)
    cube = trimesh.creation.box((0.6, 0.6, 0.6))  # edge Chamfer needs edges: two samplings of a cube
    (c1, n1), (c2, n2) = M.sample_mesh(cube, 16_384, rng=4), M.sample_mesh(cube, 16_384, rng=5)
    for name, fn in [
        ("sample_mesh 100k", lambda: M.sample_mesh(mesh, 100_000, rng=0)),
        ("chamfer_l1 100k x 100k", lambda: M.chamfer_l1(pp, gp)),
        ("normal_consistency 100k x 100k", lambda: M.normal_consistency(pp, pn, gp, gn)),
        ("fscore 100k x 100k", lambda: M.fscore(pp, gp, 0.01)),
        ("mesh_contains 100k points", lambda: M.mesh_contains(mesh, pts)),
        (
            "edge_chamfer 16k x 16k",
            lambda: M.edge_chamfer_distance(c1, n1, c2, n2),
        ),
        ("evaluate_mesh (all metrics)", lambda: M.evaluate_mesh(mesh, gp, gn, pts, occ, scale=1.0)),
    ]:
        t, _ = _best_of(fn, repeats)
        rows.append({"stage": name, "seconds": t, "queries": None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--coarse", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    rows = run(args.resolution, args.coarse, args.repeats)
    print(f"| stage | seconds (best of {args.repeats}) | queries / count | note |")
    print("|---|---|---|---|")
    for r in rows:
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.3f}"
        count = "" if r["queries"] is None else f"{r['queries']:,.1f}"
        print(f"| {r['stage']} | {seconds} | {count} | {r.get('note', '')} |")
    if args.json:
        atomic_write_json(args.json, rows)


if __name__ == "__main__":
    main()
