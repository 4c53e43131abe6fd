"""`ifkd bench quality|generalise`: the benchmark harness (:mod:`ifkd.bench`) from the command line.

``generalise --protocol realsplit --real-data DIR``: the ``procedural`` arm (the `seen` runs) vs the
``mix`` arm (+ the real train split of DIR), at equal optimiser steps, on DIR's test split and the
synthetic one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_ROOT = Path("benchmarks") / "results"
PROTOCOLS = ("seen", "unseen", "real", "realsplit")
"""ifkd.bench.protocols.PROTOCOLS, spelt out: importing ifkd.bench here would load torch for `ifkd --help`."""


def add_options(p: argparse.ArgumentParser) -> None:
    """The options shared by `ifkd bench quality|generalise` and benchmarks/quality.py."""
    p.add_argument("--budget", default="smoke", help="smoke | cpu | full (default smoke)")
    p.add_argument(
        "--out",
        "--output-dir",
        type=Path,
        default=None,
        help="results folder (default benchmarks/results/<budget>/<protocol>)",
    )
    p.add_argument(
        "--methods", nargs="+", default=None, help="restrict to these methods (default: the budget's)"
    )
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="train these seeds for every method")
    p.add_argument("--jobs", type=int, default=1, help="trainings run in parallel processes (default 1)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] | mps (default auto)")
    p.add_argument(
        "--equal-time",
        action="store_true",
        help="also train each equal-time method for the reference method's (ifkd's) training wall time",
    )
    p.add_argument("--no-results-md", action="store_true", help="do not rebuild benchmarks/RESULTS.md")


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("bench", help="benchmarks: the paper's tables, unseen categories, real meshes")
    bench = group.add_subparsers(dest="bench_cmd")
    bench.required = True
    p = bench.add_parser("quality", help="the paper's Tables 1-4 (the `seen` protocol) under one budget")
    add_options(p)
    p.set_defaults(
        func=cmd_bench, check_args=check_args, protocol="seen", meshes=None, model=None, real_data=None
    )
    p = bench.add_parser(
        "generalise", help="seen / unseen categories / real meshes / real shapes in training, one budget"
    )
    add_options(p)
    p.add_argument("--protocol", required=True, choices=list(PROTOCOLS))
    p.set_defaults(check_args=check_args)
    p.add_argument(
        "--meshes", type=Path, default=None, help="`real`: mesh folder (default ../shared/realdata/meshes)"
    )
    p.add_argument(
        "--real-data",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "`realsplit` (required): a real-shape dataset made by `ifkd data real --out DIR`; its train "
            "split is mixed into training (the `mix` arm), its test split scored (trained vs held-out)"
        ),
    )
    p.add_argument(
        "--model", default=None, help="evaluate this one trained run (or 'pretrained') and train nothing"
    )
    p.set_defaults(func=cmd_bench)


def results_root(out: Path) -> Path | None:
    """The folder holding ``results/`` above ``out`` (where RESULTS.md goes), if ``out`` lies in one."""
    for parent in out.resolve().parents:
        if parent.name == "results":
            return parent.parent
    return None


def _budget(args: argparse.Namespace):
    from ifkd.bench.budgets import get_budget
    from ifkd.io import InputError

    try:
        return get_budget(args.budget)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def output_folder(args: argparse.Namespace) -> Path:
    """The results folder: --out, or benchmarks/results/<budget>/<protocol> (locked while the bench runs)."""
    return args.out or DEFAULT_ROOT / _budget(args).name / args.protocol


def check_args(args: argparse.Namespace) -> None:
    """Options checked before anything is made (a bad --device used to leave a half-made data folder)."""
    from ifkd.device import resolve_device
    from ifkd.io import InputError

    if args.jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {args.jobs}")
    _budget(args)
    resolve_device(args.device)
    if args.protocol == "realsplit":
        from ifkd.bench.protocols import check_real_data

        if args.model is not None:
            raise InputError("--model: the realsplit protocol trains its two arms; it scores no given model")
        check_real_data(getattr(args, "real_data", None))


def cmd_bench(args: argparse.Namespace) -> int:
    """Also the entry point of benchmarks/quality.py, which skips ifkd.cli.main: so the options are checked
    and the results folder locked here too (under the CLI the lock is already held: a no-op)."""
    from ifkd.io import output_lock

    check_args(args)
    with output_lock(output_folder(args)):
        return _run_bench(args)


def _run_bench(args: argparse.Namespace) -> int:
    from ifkd.bench.harness import run_benchmark
    from ifkd.bench.tables import write_results_md
    from ifkd.io import batch_exit

    budget = _budget(args)
    out = output_folder(args)
    results = run_benchmark(
        budget,
        args.protocol,
        out,
        methods=args.methods,
        seeds=args.seeds,
        device=args.device,
        command=getattr(args, "command_line", None) or "ifkd " + " ".join(sys.argv[1:]),
        jobs=args.jobs,
        equal_time_runs=args.equal_time,
        meshes=args.meshes,
        model=args.model,
        real_data=getattr(args, "real_data", None),
    )
    print((out / "RESULTS.md").read_text())
    root = None if args.no_results_md else results_root(out)
    if root is not None:
        print(f"updated {write_results_md(root)}")
    print(f"{len(results['runs'])} evaluated runs in {out / 'results.json'}")
    imported = results.get("dataset", {}).get("import") or {}
    failed = imported.get("n_skipped", 0) + len(imported.get("degenerate", []))
    total = len(imported.get("imported", [])) + imported.get("n_skipped", 0)
    return batch_exit(failed, total, "meshes", out)
