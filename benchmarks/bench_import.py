"""Import ground truth: the inside test of today against the one it replaced, same meshes, one core.

Two sets of meshes:
- ``soups``: procedural shapes (one per category) made into ShapeNet-style polygon soups
  (:func:`ifkd.geometry.soup.shapenet_soup`: faces doubled back to back, vertices unmerged, parts wound
  at random) and subdivided to ShapeNet size (about 30k faces). Their solid is known analytically, so
  accuracy is the IoU of the 100k evaluation labels (and of the 32^3 voxels) against the truth.
- ``real``: the meshes of a folder (default shared/realdata/meshes): no truth; the inside share and
  the solid checks are reported.

Per model, timed: everything an import computes (10k labelled points, 16k surface samples, voxels
32/64/128, 100k evaluation labels) plus 8 renders at 137 px. The previous implementation (winding
numbers of the raw mesh, numpy Barnes-Hut) is loaded from git (``--old-rev``) and given the same work;
it never made evaluation labels, so its 100k labels are timed with its own inside test.
Pin to one core for the per-core figures: ``taskset -c 0 python benchmarks/bench_import.py``.

Writes benchmarks/results/import.{json,md} (and import.partial.json while it runs: a rerun of the same
command goes on from there).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh
from common import RESULTS, machine, machine_line, write_results

from ifkd.data.format import IOU_OCC_KEY, IOU_POINTS_KEY
from ifkd.data.shapenet import meshes
from ifkd.data.shapenet.occupancy import mesh_ground_truth
from ifkd.data.synth.families import CATEGORIES, make_shape
from ifkd.geometry.camera import draw_viewpoints, view_transform
from ifkd.geometry.inside import InsideTest
from ifkd.geometry.sampling import PADDED_HALF
from ifkd.geometry.soup import shapenet_soup
from ifkd.io import atomic_write_json
from ifkd.render.raycast import render

ROOT = Path(__file__).resolve().parents[1]
OLD_PATH = "src/ifkd/data/shapenet/occupancy.py"


def load_old(rev: str):
    """The replaced occupancy module, from git, as a module of its own."""
    src = subprocess.run(
        ["git", "show", f"{rev}:{OLD_PATH}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "occupancy_old.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("occupancy_old", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def renders(mesh: trimesh.Trimesh, n: int) -> None:
    for v in draw_viewpoints(np.random.default_rng(1), n):
        render(mesh, view_transform(v), 137, supersample=2, filter_width=1.5)


def run_new(mesh: trimesh.Trimesh, views: int) -> tuple[float, np.ndarray, np.ndarray, dict]:
    start = time.perf_counter()
    rec = mesh_ground_truth(mesh, np.random.default_rng(0))
    renders(mesh, views)
    sec = time.perf_counter() - start
    pts = rec.extra[IOU_POINTS_KEY].astype(np.float64)
    occ = np.unpackbits(rec.extra[IOU_OCC_KEY], count=len(pts)).astype(bool)
    return sec, pts, occ, rec.voxels


def run_old(old, mesh: trimesh.Trimesh, views: int) -> tuple[float, np.ndarray, np.ndarray, dict]:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    rec = old.mesh_ground_truth(mesh, rng)
    occ_fn = old.occupancy_function(old.orient_mesh(mesh))
    pts = rng.uniform(-PADDED_HALF, PADDED_HALF, (100_000, 3)).astype(np.float16).astype(np.float64)
    occ = occ_fn(pts)
    renders(mesh, views)
    return time.perf_counter() - start, pts, occ, rec.voxels


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def soup_of(category: str, faces: int, seed: int) -> tuple[trimesh.Trimesh, object]:
    """A procedural shape's mesh refined to ``faces`` faces once doubled (the largest faces are split in
    four, leaving T-junctions as ShapeNet's meshes have them), as a ShapeNet-style soup; and the shape."""
    shape = make_shape(category, seed).normalised()
    mesh = shape.to_mesh()
    while 2 * len(mesh.faces) < faces:
        k = min(len(mesh.faces), int(np.ceil((faces / 2 - len(mesh.faces)) / 3)))
        mesh = mesh.subdivide(face_index=np.argsort(-mesh.area_faces)[:k])
    return shapenet_soup(mesh, np.random.default_rng(seed)), shape


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=Path("/work/shared/realdata/meshes"))
    ap.add_argument("--categories", nargs="+", default=list(CATEGORIES))
    ap.add_argument(
        "--old-categories",
        nargs="*",
        default=["chair", "table", "airplane", "car", "lamp"],
        help="soups also run through the old implementation (it takes minutes each)",
    )
    ap.add_argument("--faces", type=int, default=30_000)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--old-rev", default="a64c2a4")
    ap.add_argument("--name", default="import")
    args = ap.parse_args()
    old = load_old(args.old_rev)
    m = machine()
    # Each finished model is saved at once; a rerun of the same command skips the models already there.
    partial = RESULTS / f"{args.name}.partial.json"
    result = json.loads(partial.read_text()) if partial.is_file() else {"soups": {}, "real": {}}
    rows = []
    for cat in args.categories:
        if cat in result["soups"]:
            continue
        soup, shape = soup_of(cat, args.faces, seed=3)
        entry = {"faces": len(soup.faces)}
        runs = {"new": run_new(soup, args.views)}
        if cat in args.old_categories:
            runs["old"] = run_old(old, soup, args.views)
        for name, (sec, pts, occ, vox) in runs.items():
            entry[name] = {
                "seconds": round(sec, 2),
                "iou_100k": round(iou(occ, shape.occupancy(pts)), 4),
                "iou_vox32": round(iou(vox[32], shape.voxelize(32)), 4),
                "inside_share": round(float(occ.mean()), 5),
            }
        result["soups"][cat] = entry
        print(cat, entry, flush=True)
        atomic_write_json(partial, result)
    for path in meshes.find_mesh_files(args.folder):
        if path.name in result["real"]:
            continue
        mesh = meshes.normalise(meshes.load_mesh(path))[0]
        entry = {"faces": len(mesh.faces)}
        for name, fn in (
            ("new", lambda m: run_new(m, args.views)),
            ("old", lambda m: run_old(old, m, args.views)),
        ):
            sec, pts, occ, vox = fn(mesh)
            entry[name] = {"seconds": round(sec, 2), "inside_share": round(float(occ.mean()), 5)}
        # label agreement of the two inside tests on one set of points (the old run's)
        entry["agreement"] = round(float((InsideTest(mesh)(pts) == occ).mean()), 4)
        result["real"][path.name] = entry
        print(path.name, entry, flush=True)
        atomic_write_json(partial, result)
    result["machine"] = m
    result["command"] = "taskset -c 0 python " + " ".join(["benchmarks/bench_import.py", *sys.argv[1:]])

    def mean(key: str, which: str, set_: str = "soups") -> float:
        vals = [e[which][key] for e in result[set_].values() if which in e]
        return float(np.mean(vals)) if vals else float("nan")

    paired = [c for c, e in result["soups"].items() if "old" in e]
    ratio = np.mean([result["soups"][c]["old"]["seconds"] for c in paired]) / np.mean(
        [result["soups"][c]["new"]["seconds"] for c in paired]
    )
    for cat, e in result["soups"].items():
        o = e.get("old")
        rows.append(
            f"| {cat} | {e['faces']} | {e['new']['seconds']:.2f} | "
            + (f"{o['seconds']:.1f}" if o else "–")
            + f" | {e['new']['iou_100k']:.4f} | "
            + (f"{o['iou_100k']:.4f}" if o else "–")
            + f" | {e['new']['iou_vox32']:.4f} | "
            + (f"{o['iou_vox32']:.4f}" if o else "–")
            + " |"
        )
    real_rows = [
        f"| {k} | {e['faces']} | {e['new']['seconds']:.2f} | {e['old']['seconds']:.1f} | "
        f"{e['new']['inside_share']:.4f} | {e['old']['inside_share']:.4f} | {e['agreement']:.4f} |"
        for k, e in result["real"].items()
    ]
    result["summary"] = {
        "soups_mean_seconds_new": round(mean("seconds", "new"), 2),
        "paired_speedup": round(float(ratio), 1),
        "soups_mean_iou_new": round(mean("iou_100k", "new"), 4),
        "soups_mean_iou_old": round(mean("iou_100k", "old"), 4),
        "real_mean_seconds_new": round(mean("seconds", "new", "real"), 2),
        "real_mean_seconds_old": round(mean("seconds", "old", "real"), 2),
    }
    s = result["summary"]
    md = "\n".join(
        [
            "# Import ground truth: new inside test vs the one it replaced",
            "",
            f"Machine: {machine_line(m)}; one core (`taskset -c 0`), float64 geometry.",
            f"Command: `{result['command']}`",
            "",
            "Per model: 10k labelled points, 16k surface samples, voxels 32/64/128, 100k evaluation labels, "
            f"{args.views} renders at 137 px. Old = `{args.old_rev}` (`{OLD_PATH}`).",
            "",
            "## ShapeNet-style soups with analytic truth",
            "",
            "| category | faces | new s | old s | new IoU 100k | old IoU 100k | new IoU 32³ | old IoU 32³ |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Mean new: {s['soups_mean_seconds_new']} s per model, IoU {s['soups_mean_iou_new']} "
            f"(old: IoU {s['soups_mean_iou_old']}). On the {len(paired)} models run by both, the new code is "
            f"{s['paired_speedup']}x faster.",
            "",
            "## Real meshes (no truth: inside share of the 100k points, and label agreement)",
            "",
            "| mesh | faces | new s | old s | new inside | old inside | agreement |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *real_rows,
            "",
            f"Mean {s['real_mean_seconds_new']} s (new) vs {s['real_mean_seconds_old']} s (old) per model.",
        ]
    )
    write_results(args.name, result, md + "\n")
    partial.unlink()
    print(md)


if __name__ == "__main__":
    main()
