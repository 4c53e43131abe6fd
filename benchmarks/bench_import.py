"""Time `ifkd data import meshes` per model on the real meshes (full settings: 10k points, 16k surface
samples, voxels 32/64/128, 8 views at 137 px), and the stages of the mesh ground truth.

Usage: python benchmarks/bench_import.py [--folder /work/shared/realdata/meshes] [--views 8]
Writes benchmarks/results/import.{json,md}.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, machine_line, write_results

from ifkd.data.shapenet import meshes
from ifkd.data.shapenet.importer import ImportSettings, import_meshes, mesh_key_id
from ifkd.data.shapenet.occupancy import (
    WindingNumber,
    band_samples,
    orient_mesh,
    outer_surface,
    voxelize_coarse_to_fine,
)
from ifkd.geometry.sampling import sample_point_values


def stage_times(path: Path, s: ImportSettings) -> dict:
    """Seconds per ground-truth stage for one mesh (same calls as mesh_ground_truth)."""
    rng = np.random.default_rng(0)
    t = {}
    start = time.perf_counter()
    mesh = orient_mesh(meshes.normalise(meshes.load_mesh(path))[0])
    wn = WindingNumber.from_mesh(mesh)
    t["load+orient+tree"] = time.perf_counter() - start

    def occ(p):
        return np.abs(wn(p)) >= 0.5

    start = time.perf_counter()
    surface, _ = outer_surface(mesh, wn, s.surface_points, rng)
    t["outer_surface"] = time.perf_counter() - start
    start = time.perf_counter()
    sample_point_values(occ, surface, rng, n_total=s.n_points, n_uniform=s.n_uniform)
    t["points"] = time.perf_counter() - start
    start = time.perf_counter()
    voxelize_coarse_to_fine(occ, band_samples(mesh, max(s.voxel_resolutions), rng), s.voxel_resolutions)
    t["voxels"] = time.perf_counter() - start
    return {k: round(v, 3) for k, v in t.items()} | {"faces": len(mesh.faces)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--folder", type=Path, default=Path("/work/shared/realdata/meshes"))
    ap.add_argument("--views", type=int, default=8)
    args = ap.parse_args()
    s = ImportSettings(views=args.views)
    out = Path(tempfile.mkdtemp(prefix="ifkd-bench-import-"))
    try:
        summary = import_meshes(args.folder, out, views=args.views, settings=s, progress=False)
    finally:
        shutil.rmtree(out)
    stages = {
        f"real/{mesh_key_id(p, args.folder)}": stage_times(p, s) for p in meshes.find_mesh_files(args.folder)
    }
    per_model = summary["seconds_per_model"]
    m = machine()
    result = {
        "machine": m,
        "settings": {
            "n_points": s.n_points,
            "surface_points": s.surface_points,
            "voxel_resolutions": list(s.voxel_resolutions),
            "views": args.views,
            "image_size": s.image_size,
        },
        "seconds_per_model": per_model,
        "mean_seconds_per_model": round(float(np.mean(list(per_model.values()))), 2),
        "stages": stages,
        "silhouette": summary["checks"],
        "broken": summary["broken"],
    }
    rows = []
    for k in sorted(per_model):
        st, sil = stages[k], summary["checks"][k]["silhouette_min"]
        rows.append(
            f"| {k} | {st['faces']} | {per_model[k]:.1f} | {st['outer_surface']:.1f} | {st['points']:.1f} | "
            f"{st['voxels']:.1f} | {sil:.3f} |"
        )
    res = "/".join(map(str, s.voxel_resolutions))
    md = "\n".join(
        [
            "# Import of real meshes (`ifkd data import meshes`)",
            "",
            f"Machine: {machine_line(m)}. One process. Settings: {s.n_points} points, "
            f"{s.surface_points} surface samples, voxels {res}, {args.views} views at {s.image_size} px.",
            "",
            "| model | faces | total s | outer surface s | points s | voxels s | min silhouette agreement |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Mean {result['mean_seconds_per_model']} s per model. Stage times are a separate run of the same"
            " calls; the rest of the total is rendering and writing.",
        ]
    )
    js, mdp = write_results("import", result, md + "\n")
    print(md)
    print(f"wrote {js} and {mdp}")


if __name__ == "__main__":
    main()
