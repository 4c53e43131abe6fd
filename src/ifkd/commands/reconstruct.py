"""`ifkd reconstruct IMG_OR_DIR ... --model RUN --out DIR`: images -> meshes, over Reconstructor.

Each image is first brought into the framing the model was trained on (:mod:`ifkd.framing`: the object
recentred where its place, rescaled where its size, lies outside the training renders' range; a picture
already framed like them keeps its geometry. ``--reframe-always`` recentres and rescales every image,
``--foreground-ratio`` sets the size (and always rescales), ``--no-reframe`` reads the images as they
are); an image that cannot be framed (a busy background without transparency) gets a one-line warning
naming it. ``--views-fused``: all the images are views of ONE object with known
poses (a ``rendering/`` folder with ``rendering_metadata.txt``, or one ``--pose`` per image), fused into
one object-frame mesh (:meth:`ifkd.reconstruct.Reconstructor.reconstruct_views`).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path

from ifkd.framing import (
    TRAINING_FOREGROUND_RATIO,
    TRAINING_OFFSET_X_RANGE,
    TRAINING_OFFSET_Y_RANGE,
    TRAINING_RATIO_RANGE,
)
from ifkd.io import InputError

FUSION_RULES = ("mean", "min")
""":data:`ifkd.reconstruct.FUSION_RULES`, repeated so that ``--help`` does not import torch"""
DEFAULT_FUSION = "mean"

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
        action="append",
        metavar=("AZ", "EL"),
        help="R2N2 azimuth elevation [distance ratio]: also write the mesh in the object frame; once for "
        "every image, or once per image (in order). The distance ratio is queried only with --no-reframe "
        "or --views-fused (a reframed image has the training framing: the nominal distance)",
    )
    lo, hi = TRAINING_RATIO_RANGE
    (xlo, xhi), (ylo, yhi) = TRAINING_OFFSET_X_RANGE, TRAINING_OFFSET_Y_RANGE
    framing = p.add_mutually_exclusive_group()
    framing.add_argument(
        "--no-reframe",
        dest="reframe",
        action="store_false",
        help="read the images as they are, without recentring or rescaling the object (by default only a "
        f"place or size outside the training renders' range is changed: object {lo:g}-{hi:g} of the frame, "
        f"its box centre {xlo:+g}..{xhi:+g} (x), {ylo:+g}..{yhi:+g} (y) box sides from the image centre; "
        "benchmarks/results/framing.md)",
    )
    framing.add_argument(
        "--reframe-always",
        dest="reframe_mode",
        action="store_const",
        const="always",
        default="auto",
        help="recentre and rescale every image to the median training framing, even one already framed "
        "like the training renders (the policy before 'auto'; costs accuracy on such images)",
    )
    p.add_argument(
        "--foreground-ratio",
        type=float,
        default=None,
        metavar="R",
        help=f"object size when reframing: its bounding box's longest side as a fraction of the frame; "
        f"given, every image is rescaled to it (default: kept when in {lo:g}-{hi:g}, else "
        f"{TRAINING_FOREGROUND_RATIO:g}, the training renders' median)",
    )
    p.add_argument(
        "--views-fused",
        action="store_true",
        help="the images are views of ONE object with known poses (a rendering/ folder with "
        "rendering_metadata.txt, or one --pose per image): fuse them into one object-frame mesh",
    )
    p.add_argument(
        "--fusion",
        choices=FUSION_RULES,
        default=DEFAULT_FUSION,
        help=f"how --views-fused fuses the views (default {DEFAULT_FUSION}; ifkd.reconstruct.FUSION_RULES)",
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
    for pose in args.pose or []:
        check_pose(pose)
    ratio = getattr(args, "foreground_ratio", None)
    if ratio is not None and not 0.0 < ratio <= 1.0:  # also false for nan
        raise InputError(
            f"--foreground-ratio {ratio:g}: must be in (0, 1] (the object's bounding box's longest side "
            "as a fraction of the frame)"
        )


def pose_problem(values: list[float]) -> str | None:
    """What is wrong with an ``AZ EL [DIST_RATIO]`` pose's numbers (None: nothing)."""
    if len(values) not in (2, 3):
        return f"a pose is AZ EL [DIST_RATIO] (2 or 3 numbers), got {len(values)}"
    if not all(math.isfinite(v) for v in values):
        return "the angles and the distance ratio must be finite numbers"
    if len(values) == 3 and not values[2] > 0:
        return "the distance ratio must be > 0 (R2N2's lie in 0.65-0.9)"
    return None


def check_pose(values: list[float]) -> None:
    """A ``--pose``'s numbers, checked: an :class:`InputError` naming the option and the values."""
    problem = pose_problem(values)
    if problem is not None:
        raise InputError(f"--pose {' '.join(f'{v:g}' for v in values)}: {problem}")


def parse_pose(text: str, name: str, reframe: bool = False):
    """One pose written as ``--pose`` takes it, ``AZ EL [DIST_RATIO]`` separated by spaces (e.g. a line
    of the web app's pose box) -> Viewpoint (:func:`pose_of`, checked as ``--pose`` is); otherwise an
    :class:`InputError` naming ``name`` (where it was written) and the text."""
    shown = f"{name} {text.strip()!r}"
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise InputError(
            f"{shown}: not a pose (AZ EL [DIST_RATIO]: 2 or 3 numbers, e.g. '45 30 0.8')"
        ) from None
    problem = pose_problem(values)
    if problem is not None:
        raise InputError(f"{shown}: {problem}")
    return pose_of(values, reframe)


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


SCALE_NOTE = (
    "meshes are in the normalised object scale (bounding-box diagonal about 1, as the training shapes), "
    "not in the picture's or real-world units"
)


def resized_note(n: int) -> str:
    """What to tell a user whose pictures' object size lay outside the training range (rescaled to the
    median, so the model reads a median-sized object): the weights that read every framing alike."""
    from ifkd.pretrained import FRAMED_NAME

    return (
        f"note: {n} image(s) rescaled to the training size (the object's size in the picture was outside "
        f"the training range); --model pretrained:{FRAMED_NAME} reads every framing alike "
        "(benchmarks/results/framing_frame.md)"
    )


def pose_of(values: list[float], reframe: bool):
    """A ``--pose AZ EL [DIST]`` -> Viewpoint; the distance ratio is the nominal one for a reframed image
    (its framing is the training one) or when not given."""
    from ifkd.geometry.camera import NOMINAL_DISTANCE_RATIO, Viewpoint

    dist = values[2] if len(values) == 3 and not reframe else NOMINAL_DISTANCE_RATIO
    return Viewpoint(values[0], values[1], 0.0, dist)


def image_poses(args: argparse.Namespace, n_images: int) -> list:
    """One Viewpoint (or None) per image from the ``--pose`` options: none, one for all, or one each."""
    poses = args.pose or []
    if len(poses) > 1 and len(poses) != n_images:
        raise InputError(
            f"--pose given {len(poses)} times for {n_images} images: give it once, or once per image"
        )
    if not poses:
        return [None] * n_images
    made = [pose_of(p, args.reframe) for p in poses]
    return made * n_images if len(made) == 1 else made


def fused_inputs(args: argparse.Namespace) -> tuple[list[Path], list]:
    """The images and poses of ``--views-fused``: the rendering folders' (their ``rendering_metadata.txt``)
    or the image files' with one ``--pose AZ EL [DIST]`` each, in order."""
    from ifkd.data.format import METADATA_FILE, read_views

    files: list[Path] = []
    views: list = []
    loose: list[Path] = []
    for item in args.inputs:
        if item.is_dir() and (item / METADATA_FILE).is_file():
            names, metadata = read_views(item)
            files += [item / name for name in names]
            views += metadata
        else:
            loose += collect_images([item])
    if loose and views:
        raise InputError(
            "--views-fused: give either rendering folders (with their metadata) or images with --pose"
        )
    if loose:
        poses = args.pose or []
        if len(poses) != len(loose):
            raise InputError(
                f"--views-fused: {len(loose)} images need one --pose AZ EL [DIST] each, in order "
                f"(got {len(poses)}), or give a rendering/ folder with its {METADATA_FILE}"
            )
        return loose, [pose_of(p, reframe=False) for p in poses]
    if args.pose:
        raise InputError(
            f"--views-fused: the rendering folders' poses are in their {METADATA_FILE}; drop --pose"
        )
    if not files:
        raise InputError(f"no images found in {', '.join(map(str, args.inputs))}")
    return files, views


def load_model(args: argparse.Namespace):
    from ifkd.reconstruct import Reconstructor

    rec = Reconstructor.from_run(args.model, device=args.device)
    if rec.model.input_kind != "image":
        raise InputError(
            f"{args.model}: method {rec.cfg.method!r} reconstructs from voxel grids, not images; "
            "use a single-view method's run (ifkd, its variants, global, camera)"
        )
    print(f"model {rec.cfg.method} ({rec.cfg.preset}) on {rec.device}")
    return rec


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """Every image is tried; exit 0 only when each gave a mesh, 2 when some failed (the others written).
    The output folder is locked, writable and the options checked before this runs (see ifkd.cli)."""
    check_args(args)  # also for callers that skip ifkd.cli.main
    if args.views_fused:
        return cmd_fused(args)
    from ifkd.extract.export import export_mesh
    from ifkd.reconstruct import FramingWarning

    files = collect_images(args.inputs)
    poses = image_poses(args, len(files))
    if args.reframe and any(len(p) == 3 for p in args.pose or []):
        print(
            "ifkd: note: --pose's distance ratio is not queried for reframed images (their framing is the "
            "training one: the nominal distance); add --no-reframe to query it",
            file=sys.stderr,
        )
    rec = load_model(args)
    failures = []
    resized = 0  # pictures whose object size auto changed, for a model that reads size from the picture
    for path, name, pose in zip(files, output_names(files), poses):
        try:
            with warnings.catch_warnings():  # said below, once, on one line
                warnings.simplefilter("ignore", FramingWarning)
                (out,) = rec.reconstruct(
                    [path],
                    resolution=args.resolution,
                    threshold=args.threshold,
                    poses=[pose] if pose else None,
                    dense=args.dense,
                    reframe=args.reframe,
                    foreground_ratio=args.foreground_ratio,
                    reframe_mode=args.reframe_mode,
                )
        except (InputError, ValueError) as exc:
            failures.append(f"{path}: {exc}" if str(path) not in str(exc) else str(exc))
            print(f"  skipped: {failures[-1]}", file=sys.stderr)
            continue
        framing = out.framing
        if framing is not None and framing.warnings:
            print(f"ifkd: warning: {path}: {framing.warning}", file=sys.stderr)
        problem = out.problem()
        if problem is not None:  # an empty or NaN mesh is a failure, not a result
            failures.append(f"{path}: {problem}: nothing written")
            print(f"ifkd: warning: {failures[-1]}", file=sys.stderr)
            continue
        folder = args.out / name
        try:
            mesh_path = export_mesh(out.mesh, folder / f"mesh.{args.fmt}", up="+y")
            if out.mesh_object is not None:
                export_mesh(out.mesh_object, folder / f"mesh_object.{args.fmt}", up="+y")
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            # something of another kind sits where this image's output goes: this image fails, the batch
            # goes on (a full disk still stops it, with its own one-line message)
            failures.append(f"{folder}: not a folder (a file is in the way of {path.name}'s output)")
            print(f"  skipped: {failures[-1]}", file=sys.stderr)
            continue
        auto_resized = framing is not None and framing.reframed and not framing.kept_size
        if auto_resized and args.foreground_ratio is None:  # an asked-for size is the user's choice
            resized += 1
        timing = " · ".join(f"{k} {v:.2f}s" for k, v in out.timings.items())
        framed = "" if framing is None else f"{framing.action}, "
        print(
            f"  {path.name} -> {mesh_path} ({len(out.mesh.faces)} faces, {out.frame} frame, {framed}"
            f"{out.n_queries} queries; {timing})"
        )
    done = len(files) - len(failures)
    print(f"{done} of {len(files)} images reconstructed into {args.out}")
    if done:
        print(SCALE_NOTE)
    if resized and rec.framing_mode == "auto":  # a model that frames every picture reads them all alike
        print(resized_note(resized))
    if failures:
        print(f"{len(failures)} failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 2
    return 0


def cmd_fused(args: argparse.Namespace) -> int:
    """``--views-fused``: all the images -> one object-frame mesh, ``OUT/fused/mesh.FMT``."""
    from ifkd.extract.export import export_mesh

    files, views = fused_inputs(args)
    if args.foreground_ratio is not None or not args.reframe or args.reframe_mode != "auto":
        print(
            "ifkd: note: --views-fused reads the views as they are (their poses fix the framing)",
            file=sys.stderr,
        )
    rec = load_model(args)
    try:
        out = rec.reconstruct_views(
            files, views, args.resolution, threshold=args.threshold, fusion=args.fusion, dense=args.dense
        )
    except (InputError, ValueError) as exc:
        print(f"ifkd: error: {exc}", file=sys.stderr)
        return 2
    problem = out.problem()
    if problem is not None:
        print(f"ifkd: warning: the {len(files)} fused views: {problem}: nothing written", file=sys.stderr)
        return 2
    mesh_path = export_mesh(out.mesh, args.out / "fused" / f"mesh.{args.fmt}", up="+y")
    timing = " · ".join(f"{k} {v:.2f}s" for k, v in out.timings.items())
    print(
        f"  {len(files)} views fused ({args.fusion}) -> {mesh_path} ({len(out.mesh.faces)} faces, object "
        f"frame, {out.n_queries} queries; {timing})"
    )
    print(SCALE_NOTE)
    return 0
