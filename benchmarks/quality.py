"""The paper's Tables 1-4 under one budget (the `seen` protocol): `python benchmarks/quality.py --budget cpu`.

The same code as `ifkd bench quality`; results land in benchmarks/results/<budget>/seen/ and the tables
in benchmarks/RESULTS.md. Resumable: run it again to continue an interrupted benchmark.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ifkd.commands.bench import add_options, cmd_bench

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_options(parser)
    args = parser.parse_args(argv)
    args.protocol, args.meshes, args.model = "seen", None, None
    args.out = args.out or HERE / "results" / args.budget / "seen"
    args.command_line = "python benchmarks/quality.py " + " ".join(sys.argv[1:] if argv is None else argv)
    return cmd_bench(args)


if __name__ == "__main__":
    sys.exit(main())
