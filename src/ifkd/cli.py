"""`ifkd` command line: a thin layer over the library (data, train, reconstruct, evaluate, report, demo).

Errors about user input print one line naming the file and the problem and exit with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys

from ifkd.commands import data, evaluate, reconstruct, train
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
    for module in (data, train, reconstruct, evaluate):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (InputError, FileNotFoundError) as exc:
        if args.debug:
            raise
        print(f"ifkd: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("ifkd: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        from ifkd.train.loop import NonFiniteLossError

        if isinstance(exc, NonFiniteLossError) and not args.debug:
            print(f"ifkd: error: {exc}", file=sys.stderr)
            return EXIT_INPUT
        raise


if __name__ == "__main__":
    sys.exit(main())
