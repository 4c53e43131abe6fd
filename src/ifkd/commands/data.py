"""`ifkd data synth|info|show|import`: make, convert and inspect datasets."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ifkd.commands.options import add_engine_options
from ifkd.io import InputError


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="generate, import and inspect datasets").add_subparsers(
        dest="data_cmd"
    )
    data.required = True
    p = data.add_parser("synth", help="generate the procedural ShapeNet-like dataset")
    p.add_argument(
        "--out", "--output-dir", required=True, type=Path, help="dataset folder (created/completed)"
    )
    p.add_argument("--per-category", type=int, default=10, help="shapes per category (default 10)")
    p.add_argument("--views", type=int, default=8, help="renders per shape (default 8; R2N2 has 24)")
    p.add_argument("--seed", type=int, default=0, help="global seed; same seed -> byte-identical files")
    p.add_argument("--categories", nargs="+", default=None, help="subset of the 13 categories (default all)")
    p.add_argument("--image-size", type=int, default=137, help="render size in pixels (default 137, as R2N2)")
    add_engine_options(p)
    p.set_defaults(func=cmd_data_synth)

    p = data.add_parser("info", help="summarise a dataset")
    p.add_argument("root", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--check",
        action="store_true",
        help="also read every shape file, view list and image; list the bad ones (exit 2 if any)",
    )
    p.set_defaults(func=cmd_data_info)

    p = data.add_parser("show", help="write a PNG sheet of a shape's views and its ground truth")
    p.add_argument("root", type=Path)
    p.add_argument("shape", help="shape key 'category/id'")
    p.add_argument("--out", type=Path, default=None, help="PNG path (default <category>_<id>.png)")
    p.set_defaults(func=cmd_data_show)
    p = data.add_parser(
        "real", help="build the real-shape dataset (CAPOD + CC0 furniture kits) in our format and frame"
    )
    p.add_argument(
        "--out", "--output-dir", required=True, type=Path, help="dataset folder (created/completed)"
    )
    p.add_argument(
        "--realdata",
        type=Path,
        default=None,
        help="the licensed meshes (capod/, furniture_cc0/; default: shared/realdata beside the checkout)",
    )
    p.add_argument("--views", type=int, default=8, help="R2N2-style renders per mesh (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed for points and views (the split is fixed)")
    add_engine_options(p, "--out and --realdata")
    p.set_defaults(func=cmd_data_real)

    from ifkd.commands.data_import import add_import_parser

    add_import_parser(data)


def cmd_data_synth(args: argparse.Namespace) -> int:
    from ifkd.data.synth.families import CATEGORIES
    from ifkd.data.synth.generate import SynthSettings, generate_dataset

    if args.per_category < 1 or args.views < 1 or args.image_size < 8:
        raise InputError("--per-category and --views must be >= 1 and --image-size >= 8")
    s = SynthSettings(
        per_category=args.per_category,
        views=args.views,
        seed=args.seed,
        image_size=args.image_size,
        categories=tuple(args.categories) if args.categories else tuple(CATEGORIES),
    )
    try:
        splits = generate_dataset(args.out, s, workers=args.workers, scheduler=args.scheduler)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    counts = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    print(f"dataset written to {args.out} ({counts} shapes, {args.views} views each)")
    return 0


def dataset_summary(root: Path) -> dict:
    from ifkd.data.format import read_index

    index = read_index(root)
    per_cat: dict[str, dict[str, int]] = {}
    for split, keys in index["splits"].items():
        for key in keys:
            per_cat.setdefault(key.split("/")[0], {s: 0 for s in index["splits"]})[split] += 1
    return {
        "root": str(root),
        "format_version": index["format_version"],
        "source": index.get("source", "?"),
        "categories": index["categories"],
        "counts": {s: len(v) for s, v in index["splits"].items()},
        "per_category": per_cat,
        "views_per_shape": index.get("views_per_shape"),
        "image_size": index.get("image_size"),
    }


def check_dataset(root: Path) -> tuple[int, list[str]]:
    """Read and check every shape of every split (see format.check_shape) -> (shapes checked, one line per
    problem: the dataset's own (an outdated import, shapes flagged at import) first, then each bad shape)."""
    from ifkd.data.format import check_shape, read_index
    from ifkd.data.solid_check import dataset_problems

    index = read_index(root)
    keys = [k for split in index["splits"].values() for k in split]
    failures = dataset_problems(root, index)
    for key in keys:
        try:
            check_shape(root, key)
        except InputError as exc:
            failures.append(str(exc))
    return len(keys), failures


def cmd_data_info(args: argparse.Namespace) -> int:
    info = dataset_summary(args.root)
    failures: list[str] = []
    if args.check:
        info["checked"], failures = check_dataset(args.root)
        info["failures"] = failures
    if args.json:
        print(json.dumps(info, indent=2))
        return 2 if failures else 0
    print(f"{info['root']}: ifkd dataset v{info['format_version']} from {info['source']}")
    print(f"  views per shape: {info['views_per_shape']}, image size: {info['image_size']}")
    print(f"  {'category':<12} {'synset':<9} " + " ".join(f"{s:>6}" for s in info["counts"]))
    for cat, counts in info["per_category"].items():
        syn = info["categories"].get(cat, "?")
        print(f"  {cat:<12} {syn:<9} " + " ".join(f"{counts[s]:>6}" for s in info["counts"]))
    print(f"  {'total':<22} " + " ".join(f"{n:>6}" for n in info["counts"].values()))
    if args.check:
        print(f"  checked {info['checked']} shapes: {len(failures) or 'no'} problems")
    if failures:
        print(f"{len(failures)} problems:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 2
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    from ifkd.data.show import write_shape_sheet

    out = args.out or Path(args.shape.replace("/", "_") + ".png")
    write_shape_sheet(args.root, args.shape, out)
    print(f"wrote {out}")
    return 0


def cmd_data_real(args: argparse.Namespace) -> int:
    from ifkd.data.realsets import DEFAULT_ROOT, build_real_dataset
    from ifkd.data.shapenet.importer import format_summary, import_exit

    summary = build_real_dataset(
        args.out,
        args.realdata or DEFAULT_ROOT,
        workers=args.workers,
        scheduler=args.scheduler,
        views=args.views,
        seed=args.seed,
    )
    print(format_summary(summary))
    for cat, n in summary["counts"].items():
        print(f"  {cat:12s} train {n['train']:3d}  val {n['val']:3d}  test {n['test']:3d}")
    if not summary["imported"] and not summary["existing"]:
        raise InputError(f"no real mesh could be imported into {args.out} (see the reasons above)")
    return import_exit(summary)
