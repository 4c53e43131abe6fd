"""Command-line options shared by several commands (one definition each)."""

from __future__ import annotations

import argparse


def add_engine_options(p: argparse.ArgumentParser, shared: str = "--out") -> None:
    """``--workers N`` and ``--scheduler ADDRESS`` of the batch commands that run through
    :func:`ifkd.engine.run_tasks`; ``shared`` names the folders a cluster's workers must see."""
    p.add_argument("--workers", type=int, default=1, help="parallel processes on this machine (default 1)")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="run on the Dask cluster at this address (tcp://host:8786 from `dask scheduler`; "
        f"its workers must see {shared}); default: this machine",
    )
