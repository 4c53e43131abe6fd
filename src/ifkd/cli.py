"""`ifkd` command line: a thin layer over the library (data, train, reconstruct, evaluate, report, demo).

Errors about user input, and files that cannot be written (disk full, read-only folder), print one
line naming the file and the problem and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import re
import sys

from ifkd.commands import bench, data, demo, evaluate, reconstruct, report, train
from ifkd.io import InputError

EXIT_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ifkd",
        description="Single-view 3D reconstruction by implicit field knowledge distillation.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    for module in (data, train, reconstruct, evaluate, report, bench, demo):
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
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
