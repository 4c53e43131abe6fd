"""`ifkd report RUN_OR_BENCH_DIR --out DIR`: HTML + Markdown report of a benchmark or a training run."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write an HTML + Markdown report (tables, curves, picture grids) of a benchmark or a run",
    )
    p.add_argument("source", type=Path, help="benchmark folder (with results.json) or run folder")
    p.add_argument("--out", "--output-dir", required=True, type=Path, help="report folder")
    p.add_argument(
        "--data", type=Path, default=None, help="dataset for the picture grids (default: the benchmark's)"
    )
    p.add_argument("--shapes", type=int, default=6, help="test shapes in the picture grids (default 6)")
    p.add_argument(
        "--resolution", "--mc-resolution", type=int, default=64, help="marching-cubes grid of the meshes (64)"
    )
    p.add_argument(
        "--eval",
        dest="eval_summary",
        type=Path,
        default=None,
        help="an `ifkd evaluate` output folder or summary.json to tabulate (run reports)",
    )
    p.add_argument(
        "--compare", type=Path, nargs="+", default=[], help="more run folders to show beside a run's meshes"
    )
    p.add_argument(
        "--views-curve",
        type=Path,
        default=None,
        metavar="JSON",
        help="benchmarks/results/views_curve.json: add multi-view quality against the number of views",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from ifkd.io import InputError
    from ifkd.report import ReportOptions, build_report

    if args.shapes < 0 or args.resolution < 8:
        raise InputError("--shapes must be >= 0 and --resolution >= 8")
    opts = ReportOptions(
        shapes=args.shapes,
        resolution=args.resolution,
        data=args.data,
        eval_summary=args.eval_summary,
        compare=tuple(args.compare),
        device=args.device,
        views_curve=args.views_curve,
    )
    result = build_report(args.source, args.out, opts)
    print(f"report written: open {result.html}")
    print(f"  Markdown: {result.markdown}; figures: {', '.join(str(f) for f in result.figures) or 'none'}")
    return 0
