"""`ifkd demo [--out demo-output]`: data -> teacher + student (or the shipped weights) -> meshes ->
metrics -> report, in minutes on a CPU."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole flow in minutes on a CPU: data, training or shipped weights, meshes, metrics, report",
    )
    p.add_argument("--out", "--output-dir", type=Path, default=Path("demo-output"), help="output folder")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--pretrained", dest="mode", action="store_const", const="pretrained",
        help="use the shipped weights (the default when they are installed)",
    )  # fmt: skip
    mode.add_argument(
        "--train", dest="mode", action="store_const", const="train",
        help="train a small teacher and student here (about 5 minutes on 2 cores)",
    )  # fmt: skip
    p.set_defaults(mode="auto")
    p.add_argument(
        "--quick", action="store_true", help="toy sizes (seconds): checks the flow, learns nothing"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes for data generation (default 1: a local Dask cluster costs more than it saves here)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ifkd.demo import run_demo

    run_demo(
        args.out,
        mode=args.mode,
        size="quick" if args.quick else "default",
        workers=max(1, args.workers),
        device=args.device,
    )
    return 0
