"""Time `ifkd data synth`: shapes x views at 137 px on this machine (issue target: 1000 x 8 in <= 5 min).

Usage: python benchmarks/bench_data.py [--per-category 77] [--views 8] [--workers 2]
Writes benchmarks/results/data_synth.{json,md}. 13 categories x 77 = 1001 shapes by default.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from common import machine, machine_line, write_results

from ifkd.data.synth.generate import SynthSettings, generate_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--per-category", type=int, default=77)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--image-size", type=int, default=137)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="write the dataset here and keep it")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="ifkd-bench-data-"))
    s = SynthSettings(per_category=args.per_category, views=args.views, image_size=args.image_size)
    t0 = time.perf_counter()
    splits = generate_dataset(root, s, workers=args.workers, progress=False)
    seconds = time.perf_counter() - t0
    n = sum(len(v) for v in splits.values())
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    if args.keep is None:
        shutil.rmtree(root)
    m = machine()
    result = {
        "shapes": n,
        "views": args.views,
        "image_size": args.image_size,
        "workers": args.workers,
        "seconds": round(seconds, 2),
        "shapes_per_second": round(n / seconds, 3),
        "views_per_second": round(n * args.views / seconds, 2),
        "bytes": size,
        "machine": m,
    }
    md = (
        "# Synthetic data generation\n\n"
        f"Command: `python benchmarks/bench_data.py --per-category {args.per_category} --views {args.views} "
        f"--workers {args.workers}`  \nMachine: {machine_line(m)}\n\n"
        "| shapes | views | px | workers | seconds | shapes/s | views/s | MB on disk |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {n} | {args.views} | {args.image_size} | {args.workers} | {seconds:.1f} | {n / seconds:.2f} | "
        f"{n * args.views / seconds:.1f} | {size / 1e6:.0f} |\n"
    )
    write_results("data_synth", result, md)
    print(md)


if __name__ == "__main__":
    main()
