"""`ifkd data import r2n2|occnet|meshes`: the command line of :mod:`ifkd.data.shapenet.importer`
(registered by :mod:`ifkd.commands.data`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ifkd.commands.options import add_engine_options
from ifkd.data.format import VOXEL_RESOLUTIONS
from ifkd.data.shapenet import meshes, splits
from ifkd.data.shapenet.importer import (
    ImportSettings,
    format_summary,
    import_exit,
    import_meshes,
    import_occnet,
    import_r2n2,
)
from ifkd.engine import Workers
from ifkd.io import InputError


def _settings(args: argparse.Namespace) -> ImportSettings:
    if args.points < 1 or not args.voxel_resolutions or min(args.voxel_resolutions) < 1:
        raise InputError("--points and --voxel-resolutions must be positive")
    return ImportSettings(
        n_points=args.points,
        voxel_resolutions=tuple(args.voxel_resolutions),
        seed=args.seed,
        v2_rotation=getattr(args, "v2_rotation", meshes.V2_ROTATION_DEG),
        category=getattr(args, "category", "real"),
    )


def cmd_import(args: argparse.Namespace) -> int:
    s = _settings(args)
    common = dict(
        workers=Workers(args.workers, getattr(args, "scheduler", None)), limit=args.limit, settings=s
    )
    if args.import_cmd == "r2n2":
        summary = import_r2n2(
            args.renders,
            args.meshes,
            args.out,
            args.categories,
            split_source=args.splits,
            voxels_dir=args.voxels,
            **common,
        )
    elif args.import_cmd == "occnet":
        summary = import_occnet(args.src, args.out, args.categories, **common)
    else:
        summary = import_meshes(
            args.folder, args.out, views=args.views, seed=args.seed, split=args.split, **common
        )
    print(format_summary(summary))
    if not summary["imported"] and not summary["existing"]:
        raise InputError(f"no model could be imported into {args.out} (see the reasons above)")
    return import_exit(summary)


def add_import_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``import r2n2|occnet|meshes`` under the ``data`` command group's subparsers."""
    p = subparsers.add_parser(
        "import", help="convert R2N2 / OccNet ShapeNet data or any meshes into our format"
    )
    sub = p.add_subparsers(dest="import_cmd")
    sub.required = True

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--out", "--output-dir", required=True, type=Path, help="dataset folder (created/completed)"
        )
        add_engine_options(q)
        q.add_argument(
            "--limit", type=int, default=None, help="import at most this many models (default all)"
        )
        q.add_argument(
            "--seed", type=int, default=0, help="seed for point sampling, splits, views (default 0)"
        )
        q.add_argument("--points", type=int, default=10_000, help="query points per shape (default 10000)")
        q.add_argument(
            "--voxel-resolutions",
            type=int,
            nargs="+",
            default=list(VOXEL_RESOLUTIONS),
            help="voxel grids to store (default 32 64 128)",
        )
        q.set_defaults(func=cmd_import)

    q = sub.add_parser("r2n2", help="3D-R2N2 ShapeNetRendering + ShapeNetCore v1/v2 meshes")
    q.add_argument(
        "--renders", required=True, type=Path, help="ShapeNetRendering/ root (<synset>/<model>/rendering)"
    )
    q.add_argument(
        "--meshes", required=True, type=Path, help="ShapeNetCore root (v1 model.obj or v2 models/)"
    )
    q.add_argument("--categories", nargs="+", default=None, help="names or synset ids (default all found)")
    q.add_argument(
        "--splits",
        type=Path,
        default=None,
        help="OccNet folder with <synset>/{train,val,test}.lst, or an R2N2 split json "
        "(default: seeded random 70/10/20)",
    )
    q.add_argument(
        "--voxels", type=Path, default=None, help="ShapeNetVox32 root: keep R2N2's 32^3 binvox grids too"
    )
    q.add_argument(
        "--v2-rotation",
        type=float,
        default=meshes.V2_ROTATION_DEG,
        help=f"degrees about +Y taking ShapeNetCore v2 meshes to v1 (default {meshes.V2_ROTATION_DEG:g})",
    )
    common(q)
    q = sub.add_parser(
        "occnet", help="OccNet's preprocessed ShapeNet (points.npz, pointcloud.npz, img_choy2016)"
    )
    q.add_argument("src", type=Path, help="OccNet ShapeNet root (<synset>/<model>/...)")
    q.add_argument("--categories", nargs="+", default=None, help="names or synset ids (default all found)")
    common(q)
    q = sub.add_parser("meshes", help="any folder of obj/ply/stl/off/glb meshes (searched recursively)")
    q.add_argument("folder", type=Path)
    q.add_argument("--views", type=int, default=8, help="R2N2-style renders per mesh (default 8)")
    q.add_argument("--category", default="real", help="category name for these shapes (default 'real')")
    q.add_argument(
        "--split", default="test", choices=splits.SPLIT_NAMES, help="split they go to (default test)"
    )
    common(q)
    return p
