"""Multi-view fusion with known poses: IoU and Chamfer-L1 against the number of fused views, for each fusion
rule of ``ifkd.reconstruct.FUSION_RULES`` (the measurement that chose ``DEFAULT_FUSION``).

Run: ``.venv/bin/python benchmarks/views_curve.py [--data DIR] [--views 1 2 4 8 24]``
Writes benchmarks/results/views_curve.{json,md,png}; ``--replot`` redraws the figure and table from the
stored JSON.

Data (never trained on; made as in benchmarks/framing_table.py, or found under ``--data``): the 13 test
shapes of ``ifkd data synth --per-category 5 --views 24 --seed 2024`` and the 5 CAPOD meshes of
``framing_table.REAL_KEYS`` rendered with 24 R2N2-style views each.

Per shape and number of views k: the first k views (their azimuths are uniform random, so any k views are a
random spread) and their metadata poses (true distance ratios) go to
``Reconstructor.reconstruct_views(images, poses, resolution, fusion=rule)``; the object-frame mesh is scored
by ``ifkd.eval.metrics.evaluate_mesh`` against the stored 100k surface samples and 100k IoU points.
k = 1 is the single-view reconstruction with its known pose (the same for every rule).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, machine_line, write_results  # noqa: E402
from framing_table import SYNTH, ground_truth, real_data, score, shape_keys, synth_data  # noqa: E402


def measure(rec, root: Path, real: bool, counts: list[int], rules, resolution: int) -> list[dict]:
    from ifkd.data.format import RENDER_DIR, read_views, shape_dir

    rows = []
    for key in shape_keys(root, real):
        folder = shape_dir(root, key)
        gt = ground_truth(folder)
        names, views = read_views(folder / RENDER_DIR)
        files = [folder / RENDER_DIR / n for n in names]
        for k in counts:
            if k > len(views):
                continue
            for rule in rules[:1] if k == 1 else rules:
                t0 = time.perf_counter()
                out = rec.reconstruct_views(files[:k], views[:k], resolution, fusion=rule)
                row = {"set": "real" if real else "synth", "shape": key, "views": k, "fusion": rule}
                row |= score(out.mesh, gt) | {"seconds": time.perf_counter() - t0}
                rows.append(row)
                print(
                    f"  {key} k={k} {rule}: IoU {row['iou']:.3f} CD {row['chamfer_l1_x10']:.3f}", flush=True
                )
    return rows


def summarise(rows: list[dict], counts: list[int], rules) -> dict:
    out: dict = {}
    for subset in ("synth", "real"):
        for k in counts:
            for rule in rules:
                sel = [
                    r
                    for r in rows
                    if r["set"] == subset and r["views"] == k and (r["fusion"] == rule or k == 1)
                ]
                if sel:
                    out.setdefault(subset, {}).setdefault(rule, {})[k] = {
                        "iou": float(np.mean([r["iou"] for r in sel])),
                        "chamfer_l1_x10": float(np.mean([r["chamfer_l1_x10"] for r in sel])),
                        "chamfer_l1_x10_median": float(np.median([r["chamfer_l1_x10"] for r in sel])),
                        "n": len(sel),
                    }
    return out


def markdown(summary: dict, meta: dict, counts: list[int]) -> str:
    lines = [
        "# Multi-view fusion with known poses: quality against the number of views",
        "",
        f"`{meta['command']}`; {machine_line(meta['machine'])}; {meta['seconds']:.0f} s. "
        f"Model `{meta['model']}`, resolution {meta['resolution']}.",
        "",
        f"Synthetic: the 13 test shapes of `{SYNTH}`; real: 5 CAPOD meshes (benchmarks/framing_table.py's), "
        "24 R2N2-style views each. The first k views with their true poses, fused by "
        "`Reconstructor.reconstruct_views`; mean IoU (100k points) and mean (median) Chamfer-L1 x10 "
        "(100k surface samples) of the object-frame mesh.",
        "",
        "![IoU and Chamfer-L1 against the number of views fused](views_curve.png)",
        "",
    ]
    for subset, by_rule in summary.items():
        lines += [
            f"## {subset}",
            "",
            "| fusion | " + " | ".join(f"{k} view{'s' * (k > 1)}" for k in counts) + " |",
        ]
        lines.append("|---|" + "---:|" * len(counts))
        for rule, by_k in by_rule.items():
            iou = " | ".join(f"{by_k[k]['iou']:.3f}" if k in by_k else "" for k in counts)
            cd = " | ".join(
                f"{by_k[k]['chamfer_l1_x10']:.3f} ({by_k[k]['chamfer_l1_x10_median']:.3f})"
                if k in by_k
                else ""
                for k in counts
            )
            lines += [f"| {rule}: IoU | {iou} |", f"| {rule}: Chamfer x10 | {cd} |"]
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(summary: dict) -> Path:
    """results/views_curve.png, the figure views_curve.md shows (and `ifkd report --views-curve`)."""
    from ifkd.report.figures import plot_views_curve

    return plot_views_curve(summary, RESULTS / "views_curve.png")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="folder holding (or to hold) the data sets")
    ap.add_argument("--model", default="pretrained")
    ap.add_argument("--views", type=int, nargs="+", default=[1, 2, 4, 8, 24])
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument(
        "--replot", action="store_true", help="redraw results/views_curve.png from the stored JSON and stop"
    )
    args = ap.parse_args()
    if args.replot:  # the stored measurement, redrawn: its own command, machine and counts
        stored = json.loads((RESULTS / "views_curve.json").read_text())
        counts = sorted(
            {int(k) for by_rule in stored["summary"].values() for by_k in by_rule.values() for k in by_k}
        )
        summary = {
            s: {r: {int(k): v for k, v in by_k.items()} for r, by_k in by_rule.items()}
            for s, by_rule in stored["summary"].items()
        }
        write_results("views_curve", stored, markdown(summary, stored, counts))
        plot(summary)
        return 0
    import torch

    from ifkd.reconstruct import FUSION_RULES, Reconstructor

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rec = Reconstructor.from_run(args.model, device="cpu")
    rules = list(FUSION_RULES)
    with tempfile.TemporaryDirectory(prefix="views-curve-") as tmp:
        base = args.data or Path(tmp)
        rows = measure(rec, synth_data(base), False, args.views, rules, args.resolution)
        rows += measure(rec, real_data(base, max(args.views)), True, args.views, rules, args.resolution)
    meta = {
        "command": ("python benchmarks/views_curve.py " + " ".join(sys.argv[1:])).strip(),
        "model": args.model,
        "resolution": args.resolution,
        "machine": machine(),
        "seconds": time.perf_counter() - t0,
    }
    summary = summarise(rows, args.views, rules)
    md = markdown(summary, meta, args.views)
    write_results("views_curve", {**meta, "summary": summary, "rows": rows}, md)
    plot(summary)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
