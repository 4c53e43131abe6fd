"""`ifkd reconstruct IMG_OR_DIR ... --model RUN --out DIR`: images -> meshes, over Reconstructor."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from ifkd.io import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruct", help="turn images into meshes with a trained model")
    p.add_argument("inputs", nargs="+", type=Path, help="image files or folders of images")
    p.add_argument("--model", required=True, help="run folder, or 'pretrained' for the shipped weights")
    p.add_argument("--out", "--output-dir", required=True, type=Path, help="output folder")
    p.add_argument("--resolution", "--mc-resolution", type=int, default=128, help="marching-cubes grid (128)")
    p.add_argument("--format", dest="fmt", default="obj", choices=["obj", "ply", "glb", "stl", "off"])
    p.add_argument("--threshold", type=float, default=0.5, help="occupancy level of the surface (0.5)")
    p.add_argument(
        "--pose",
        type=float,
        nargs="+",
        metavar=("AZ", "EL"),
        help="R2N2 azimuth elevation [distance ratio]: also write the mesh in the object frame",
    )
    p.add_argument(
        "--dense", action="store_true", help="evaluate the dense grid (reference) instead of coarse-to-fine"
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] | mps")
    p.set_defaults(func=cmd_reconstruct, check_args=check_args)


MIN_RESOLUTION, MAX_RESOLUTION = 16, 1024


def check_args(args: argparse.Namespace) -> None:
    """The numeric options, checked as soon as they are parsed (before the model loads or anything is
    written): one :class:`InputError` line naming the option."""
    if not MIN_RESOLUTION <= args.resolution <= MAX_RESOLUTION:
        raise InputError(
            f"--resolution {args.resolution}: must be between {MIN_RESOLUTION} and {MAX_RESOLUTION}"
        )
    if not 0.0 < args.threshold < 1.0:  # also false for nan
        raise InputError(
            f"--threshold {args.threshold:g}: must be an occupancy probability strictly between 0 and 1"
        )
    if args.pose:
        if len(args.pose) not in (2, 3):
            raise InputError(f"--pose takes AZ EL [DIST_RATIO] (2 or 3 numbers), got {len(args.pose)}")
        given = " ".join(f"{v:g}" for v in args.pose)
        if not all(math.isfinite(v) for v in args.pose):
            raise InputError(f"--pose {given}: the angles and the distance ratio must be finite numbers")
        if len(args.pose) == 3 and not args.pose[2] > 0:
            raise InputError(f"--pose {given}: the distance ratio must be > 0 (R2N2's lie in 0.65-0.9)")


def collect_images(inputs: list[Path]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            files.extend(sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            files.append(item)
    if not files:
        raise InputError(f"no images found in {', '.join(map(str, inputs))}")
    return files


def output_names(files: list[Path]) -> list[str]:
    """One output folder name per image: its stem, or -- where stems repeat (``a/00.png``, ``b/00.png``)
    -- its path below the images' common folder joined with '_', so no result overwrites another."""
    stems = [p.stem for p in files]
    if len(set(stems)) == len(stems):
        return stems
    resolved = [p.resolve() for p in files]
    common = Path(os.path.commonpath([str(p.parent) for p in resolved]))
    names = ["_".join(p.relative_to(common).with_suffix("").parts) for p in resolved]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):  # the same file given twice
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            names[i] = f"{name}-{seen[name]}"
    return names


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """Every image is tried; exit 0 only when each gave a mesh, 2 when some failed (the others written).
    The output folder is locked, writable and the options checked before this runs (see ifkd.cli)."""
    from ifkd.extract.export import export_mesh
    from ifkd.geometry.camera import Viewpoint
    from ifkd.reconstruct import Reconstructor

    check_args(args)  # also for callers that skip ifkd.cli.main
    pose = None
    if args.pose:
        pose = Viewpoint(args.pose[0], args.pose[1], 0.0, args.pose[2] if len(args.pose) == 3 else 0.775)
    rec = Reconstructor.from_run(args.model, device=args.device)
    if rec.model.input_kind != "image":
        raise InputError(
            f"{args.model}: method {rec.cfg.method!r} reconstructs from voxel grids, not images; "
            "use a single-view method's run (ifkd, its variants, global, camera)"
        )
    print(f"model {rec.cfg.method} ({rec.cfg.preset}) on {rec.device}")
    failures = []
    files = collect_images(args.inputs)
    for path, name in zip(files, output_names(files)):
        try:
            (out,) = rec.reconstruct(
                [path],
                resolution=args.resolution,
                threshold=args.threshold,
                poses=[pose] if pose else None,
                dense=args.dense,
            )
        except (InputError, ValueError) as exc:
            failures.append(f"{path}: {exc}" if str(path) not in str(exc) else str(exc))
            print(f"  skipped: {failures[-1]}", file=sys.stderr)
            continue
        problem = out.problem()
        if problem is not None:  # an empty or NaN mesh is a failure, not a result
            failures.append(f"{path}: {problem}: nothing written")
            print(f"ifkd: warning: {failures[-1]}", file=sys.stderr)
            continue
        folder = args.out / name
        mesh_path = export_mesh(out.mesh, folder / f"mesh.{args.fmt}", up="+y")
        if out.mesh_object is not None:
            export_mesh(out.mesh_object, folder / f"mesh_object.{args.fmt}", up="+y")
        timing = " · ".join(f"{k} {v:.2f}s" for k, v in out.timings.items())
        print(
            f"  {path.name} -> {mesh_path} ({len(out.mesh.faces)} faces, {out.frame} frame, "
            f"{out.n_queries} queries; {timing})"
        )
    done = len(files) - len(failures)
    print(f"{done} of {len(files)} images reconstructed into {args.out}")
    if failures:
        print(f"{len(failures)} failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 2
    return 0
