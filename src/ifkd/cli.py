"""`ifkd` command line: a thin layer over the library (data, train, reconstruct, evaluate, report, demo).

Errors about user input, and files that cannot be written (disk full, read-only folder), print one
line naming the file and the problem and exit with status 2; ``--debug`` shows the traceback instead.

Before a command runs, :func:`main` checks in one place what every command shares: the command's own
option checks (``check_args``), ``--device`` (:func:`ifkd.device.resolve_device`), and the lock of the
folder it writes (:func:`ifkd.io.output_lock`: one writer per output folder) -- all before any output.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
from contextlib import nullcontext
from pathlib import Path

from ifkd.commands import bench, data, demo, evaluate, reconstruct, report, serve, train
from ifkd.io import InputError, output_lock

EXIT_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ifkd",
        description="Single-view 3D reconstruction by implicit field knowledge distillation.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    for module in (data, train, reconstruct, evaluate, report, bench, demo, serve):
        module.register(sub)
    return parser


DISK_HINTS = {
    errno.ENOSPC: "disk full: free space and rerun; training continues with --resume",
    errno.EDQUOT: "disk quota exceeded: free space and rerun; training continues with --resume",
    errno.EROFS: "read-only file system: choose another --out",
    errno.EACCES: "no permission: choose another --out",
    errno.EPERM: "no permission: choose another --out",
    errno.ENOTDIR: "a path component is a file, not a folder",
}


def one_line(exc: BaseException) -> str:
    """The user-facing line of an error: the message, or for an OSError 'file: problem (hint)'.

    DataLoader workers re-raise an error with the worker's traceback in its message; only the
    original message (the traceback's last line) is kept.
    """
    if isinstance(exc, OSError) and exc.strerror:
        hint = DISK_HINTS.get(exc.errno or 0)
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}" + (f" ({hint})" if hint else "")
    text = str(exc)
    if "\nOriginal Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = re.sub(r"^[\w.]+(Error|Exception): ", "", last.strip())
    return " ".join(text.split("\n"))


def output_folder(args: argparse.Namespace) -> Path | None:
    """The folder this command writes -- locked while it runs, one writer at a time -- or None (readers).

    Under torchrun only rank 0 writes (see ifkd.train.distributed), so only rank 0 takes the lock; the
    other ranks of the same job return None here.
    """
    try:
        rank = int(os.environ.get("RANK") or 0)
    except ValueError:
        rank = 0  # reported by init_distributed, with the variable's name
    if rank != 0:
        return None
    if args.command == "data":
        return args.out if args.data_cmd in ("synth", "import") else None  # `data show --out` is a PNG
    if args.command == "bench":
        return bench.output_folder(args)
    if args.command in ("train", "evaluate", "reconstruct", "report", "demo"):
        return args.out
    return None


def passive_openmp_waits() -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy: OpenMP threads that finish early sleep
    instead of spinning. On a busy shared 2-core machine (load 5-7) that made image -> mesh 1.5x and
    training 2.5x faster than OpenMP's default, with 1.5-2.6x less CPU time; with the load falling to 3 the
    two were within the noise (benchmarks/results/omp_wait_policy.md). OpenMP reads the variable once,
    when torch loads, so this runs first; it does nothing if torch is already imported."""
    if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


MALLOC_KEEP = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "1073741824"}
"""glibc malloc settings handed to the processes ifkd starts (benchmark workers, Dask workers): blocks up
to 32 MiB come from the heap and freed memory is kept, instead of every large tensor being mmapped,
page-faulted in and unmapped each step. Measured on this 2-core VM (`converged` budget, two spawned
training workers, 2026-12-01): 100 % system time, ~146k page faults/s and ~25 samples/s per worker
without; 100 % user time, no faults and ~50 samples/s with. glibc reads them when a process starts, so
they cannot help the process that sets them; export them yourself for a plain `ifkd train`."""


def keep_malloc_heap_for_children() -> None:
    """Set :data:`MALLOC_KEEP` in the environment children inherit, unless the user set them."""
    for key, value in MALLOC_KEEP.items():
        os.environ.setdefault(key, value)


def main(argv: list[str] | None = None) -> int:
    passive_openmp_waits()  # first: building the parser imports torch
    keep_malloc_heap_for_children()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_args = getattr(args, "check_args", None)
        if check_args is not None:
            check_args(args)
        if getattr(args, "device", None) is not None:
            from ifkd.device import resolve_device

            resolve_device(args.device)
        folder = output_folder(args)
        with output_lock(folder) if folder is not None else nullcontext():
            return int(args.func(args) or 0)
    except (InputError, OSError) as exc:
        # Bad input, and files that cannot be written (disk full, read-only): one line, exit 2.
        if args.debug:
            raise
        print(f"ifkd: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("ifkd: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        from ifkd.train.loop import NonFiniteLossError

        if isinstance(exc, NonFiniteLossError) and not args.debug:
            print(f"ifkd: error: {one_line(exc)}", file=sys.stderr)
            return EXIT_INPUT
        raise


if __name__ == "__main__":
    sys.exit(main())
