"""Time the CPU renderer (embree rays vs numpy raster) on 137 px R2N2 views, supersample 1 and 2.

Run: ``.venv/bin/python benchmarks/bench_render.py [--repeats 20] [--size 137]``.
Writes benchmarks/results/render.{json,md}; target: a ~5k-face mesh at 137 px in <= ~10 ms with embree.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import trimesh
from common import machine, write_results

from ifkd.geometry import camera
from ifkd.render import HAS_EMBREE, render

BUNNY = Path("/work/shared/realdata/meshes/bunny.ply")
VIEWS = [camera.Viewpoint(az, el, 0.0, 0.8) for az, el in [(45.3, 25.7), (160.0, 15.0), (290.0, 30.0)]]


def meshes() -> dict[str, trimesh.Trimesh]:
    """Benchmark meshes, each normalised to the object frame (centred, bbox diagonal 1)."""
    out = {"icosphere-5k": trimesh.creation.icosphere(4)}
    if BUNNY.exists():
        out["bunny-16k"] = trimesh.load(BUNNY, force="mesh")
    for mesh in out.values():
        mesh.apply_translation(-mesh.bounds.mean(axis=0))
        mesh.apply_scale(1.0 / np.linalg.norm(mesh.extents))
    return out


def time_views(mesh: trimesh.Trimesh, size: int, backend: str, supersample: int, repeats: int) -> dict:
    """Per-view wall time (ms) over ``repeats`` passes of VIEWS, after one warm-up pass (BVH build)."""
    Es = [camera.view_transform(v) for v in VIEWS]
    t0 = time.perf_counter()
    render(mesh, Es[0], size, supersample=supersample, backend=backend)
    first = time.perf_counter() - t0
    wall, cpu = [], []
    for _ in range(repeats):
        for E in Es:
            t0, c0 = time.perf_counter(), time.process_time()
            render(mesh, E, size, supersample=supersample, backend=backend)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    ms, cpu_ms = np.asarray(wall) * 1000.0, np.asarray(cpu) * 1000.0
    return {
        "first_ms": round(first * 1000.0, 2),
        "median_ms": round(float(np.median(ms)), 2),
        "min_ms": round(float(ms.min()), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        # CPU time of this process: what a view costs when the machine is not shared.
        "cpu_median_ms": round(float(np.median(cpu_ms)), 2),
        "views": len(ms),
    }


def machine_record() -> dict:
    """The shared machine record plus what a render's speed depends on (trimesh, embree, load)."""
    return {
        **machine(),
        "trimesh": trimesh.__version__,
        "embree": HAS_EMBREE,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(rows: list[dict], info: dict, size: int) -> str:
    lines = [
        "# Renderer timing",
        "",
        f"One {size}x{size} R2N2 view per call (ms per view; median / min / 90th percentile over views; "
        "'first' = the setting's first call; for embree at supersample 1 it includes building the BVH).",
        "",
        "| mesh | faces | backend | supersample | median | min | p90 | first | CPU median |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mesh']} | {r['faces']} | {r['backend']} | {r['supersample']} | {r['median_ms']} | "
            f"{r['min_ms']} | {r['p90_ms']} | {r['first_ms']} | {r['cpu_median_ms']} |"
        )
    lines += [
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores (shared with other jobs); Python "
        f"{info['python']}, numpy {info['numpy']}, torch {info['torch']}, trimesh {info['trimesh']}; "
        f"{info['date']}; load average {info['loadavg']} when the run ended. Wall times grow with the "
        "load; 'CPU median' is this process's CPU time per view, close to the wall time on an idle core.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=20, help="passes over the 3 views per setting")
    ap.add_argument("--size", type=int, default=137)
    args = ap.parse_args()
    backends = (["embree"] if HAS_EMBREE else []) + ["raster"]
    rows = []
    for name, mesh in meshes().items():
        for backend in backends:
            for s in (1, 2):
                stats = time_views(mesh, args.size, backend, s, args.repeats)
                rows.append(
                    {"mesh": name, "faces": len(mesh.faces), "backend": backend, "supersample": s, **stats}
                )
                print(rows[-1], flush=True)
    info = machine_record()
    write_results(
        "render", {"size": args.size, "machine": info, "results": rows}, markdown(rows, info, args.size)
    )
    print(markdown(rows, info, args.size))


if __name__ == "__main__":
    main()
