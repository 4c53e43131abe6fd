"""Does framing fix reconstructions of pictures that are not framed like the training renders? Chamfer-L1
x10 (and IoU) of the shipped weights on renders as they come, flattened on white, pasted off-centre on a
canvas twice as large and shrunk to two thirds, with ``ifkd.framing`` off, ``always`` (recentre and
rescale every picture) and ``auto`` (the default: change only a place or size outside the training range).

Run: ``.venv/bin/python benchmarks/framing_table.py [--data DIR]`` (the data sets are made there, or in a
temporary folder, unless there already: :func:`synth_data`, :func:`real_data`; with ``--data`` each
measured render is also kept there, and a rerun after an interruption skips it).
Writes benchmarks/results/framing.{json,md}.

Data (never trained on): the 13 test shapes of ``ifkd data synth --per-category 5 --views 24 --seed 2024``
(the first ``--synth-views`` views of each), and 5 real CAPOD meshes of trained categories rendered with 4
R2N2-style views each (``ifkd.data.realsets.build_real_dataset(only=...)``: the importer of ``ifkd data
import meshes``, plus CAPOD's per-class rotation to +Y up, which ``import meshes`` does not apply -- its
cars would lie on their side).

Protocol: camera-free, as ``ifkd reconstruct`` without a pose: every image is queried at the nominal camera
distance, the view-frame mesh turned into the object frame with the view's known rotation (as
``ifkd evaluate`` does) and scored by ``ifkd.eval.metrics.evaluate_mesh`` against the shape's stored 100k
evaluation surface samples and IoU points (50k points sampled on the mesh); resolution 64 (the config's).
The reference column is ``ifkd evaluate --true-distance``'s protocol (the render and its known pose, read
as the model reads pictures of known pose: as they are, or framed for a model trained on framed ones).
A picture whose model input (the framed, resized tensor) is the same under two settings -- ``auto``
keeping a render's geometry gives the ``off`` tensor, ``auto`` recentring and rescaling the ``always`` one
-- is reconstructed once and scored for both.

Conditions (all from the same RGBA render, W x W):

* ``as rendered``; ``flat white``: composited on white, RGB without alpha;
* ``off-centre 2x``: pasted at (0.85 W, 0.10 W) on a transparent 2W x 2W canvas (and flattened on white);
* ``shrunk 2/3``: resized to 2/3 (premultiplied alpha) and centred on a transparent W x W canvas (and flat).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, machine_line, write_results  # noqa: E402

SYNTH = "ifkd data synth --out DATA --per-category 5 --views 24 --seed 2024"
REAL_KEYS = (
    "airplane/capod_m37",
    "car/capod_m169",
    "chair/capod_m25",
    "display/capod_m73",
    "rifle/capod_m157",
)
"""One CAPOD mesh per trained category that CAPOD has (gun -> rifle, desktop_computer -> display)."""
CONDITIONS = (
    "as_rendered",
    "flat_white",
    "off_centre_2x",
    "off_centre_2x_white",
    "shrunk_2_3",
    "shrunk_2_3_white",
)
SETTINGS = ("off", "always", "auto")
"""framing off (``reframe=False``), ``reframe_mode="always"``, ``reframe_mode="auto"`` (the default)"""
SURFACE_SAMPLES = 50_000


# ------------------------------------------------------------------------------------------- images
def premultiplied_resize(rgba: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """RGBA uint8 -> (width, height) = size, resampled with premultiplied alpha."""
    a = rgba.astype(np.float32) / 255.0
    alpha = a[..., 3:4]
    pm = np.concatenate([a[..., :3] * alpha, alpha], axis=-1)
    chans = [
        np.asarray(Image.fromarray(pm[..., c]).resize(size, Image.BILINEAR, reducing_gap=None))
        for c in range(4)
    ]
    out = np.stack(chans, axis=-1)
    al = np.clip(out[..., 3:4], 0.0, 1.0)
    rgb = np.where(al > 1e-6, out[..., :3] / np.maximum(al, 1e-6), 0.0)
    return np.rint(np.concatenate([np.clip(rgb, 0.0, 1.0), al], axis=-1) * 255.0).astype(np.uint8)


def flatten_on_white(rgba: np.ndarray) -> np.ndarray:
    """RGBA uint8 -> RGB uint8 composited on white (no alpha left)."""
    a = rgba.astype(np.float32) / 255.0
    return np.rint((a[..., :3] * a[..., 3:] + 1.0 - a[..., 3:]) * 255.0).astype(np.uint8)


def off_centre(rgba: np.ndarray) -> np.ndarray:
    """The render pasted at (0.85 W, 0.10 H) on a transparent canvas twice as large."""
    h, w = rgba.shape[:2]
    canvas = np.zeros((2 * h, 2 * w, 4), np.uint8)
    x, y = int(0.85 * w), int(0.10 * h)
    canvas[y : y + h, x : x + w] = rgba
    return canvas


def shrunk(rgba: np.ndarray, factor: float = 2.0 / 3.0) -> np.ndarray:
    """The render shrunk by ``factor`` about its centre, on a transparent canvas of its own size."""
    h, w = rgba.shape[:2]
    small = premultiplied_resize(rgba, (round(w * factor), round(h * factor)))
    canvas = np.zeros_like(rgba)
    y0, x0 = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    canvas[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    return canvas


def conditions(rgba: np.ndarray) -> dict[str, np.ndarray]:
    off, small = off_centre(rgba), shrunk(rgba)
    return {
        "as_rendered": rgba,
        "flat_white": flatten_on_white(rgba),
        "off_centre_2x": off,
        "off_centre_2x_white": flatten_on_white(off),
        "shrunk_2_3": small,
        "shrunk_2_3_white": flatten_on_white(small),
    }


# --------------------------------------------------------------------------------------------- data
def synth_data(folder: Path) -> Path:
    """The synthetic test set (:data:`SYNTH`), made under ``folder`` unless it is there already."""
    root = folder / "synth"
    if not (root / "index.json").is_file():
        argv = SYNTH.replace("DATA", str(root)).split()[1:]
        subprocess.run([sys.executable, "-m", "ifkd", *argv], check=True)
    return root


def real_data(folder: Path, views: int) -> Path:
    """The real meshes of :data:`REAL_KEYS` with ``views`` R2N2-style renders each, under ``folder``."""
    from ifkd.data.realsets import DEFAULT_ROOT, build_real_dataset

    root = folder / f"real{views}"
    if not (root / "index.json").is_file():
        realdata = DEFAULT_ROOT if DEFAULT_ROOT.is_dir() else Path("/work/shared/realdata")
        build_real_dataset(root, realdata, views=views, only=list(REAL_KEYS), progress=False)
    return root


def shape_keys(root: Path, real: bool) -> list[str]:
    from ifkd.data.format import read_index

    splits = read_index(root)["splits"]
    if real:
        return sorted(k for keys in splits.values() for k in keys)
    return list(splits["test"])


def ground_truth(folder: Path):
    """(surface points, normals, IoU points, IoU labels) stored with a shape."""
    from ifkd.data.format import SHAPE_FILE, read_eval_surface, read_iou_points

    surface = read_eval_surface(folder / SHAPE_FILE)
    iou = read_iou_points(folder / SHAPE_FILE)
    if surface is None or iou is None:
        raise RuntimeError(f"{folder}: no stored evaluation surface / IoU points")
    return (*surface, *iou)


def score(mesh, gt, samples: int = SURFACE_SAMPLES) -> dict[str, float]:
    from ifkd.eval.metrics import evaluate_mesh

    m = evaluate_mesh(mesh, *gt, n_surface=samples, edge=False, rng=np.random.default_rng(0))
    return {"chamfer_l1_x10": m["chamfer_l1_x10"], "iou": m["iou"], "empty": m["empty"]}


def object_box(rgba: np.ndarray) -> tuple[float, float, float] | None:
    """The object's box in an image (found as ``ifkd.framing`` finds it) as (centre x, centre y, longest
    side) in the normalised [-1, 1] coordinates of the projection, or None when no object is found."""
    from ifkd.framing import bounding_box, find_object

    found = find_object(rgba)
    box = bounding_box(found.mask)
    if box is None:
        return None
    h, w = found.mask.shape
    left, top, right, bottom = box
    side = 2.0 * max((right - left) / w, (bottom - top) / h)
    return (left + right) / w - 1.0, (top + bottom) / h - 1.0, side


def picture_affine(render: np.ndarray, shown: np.ndarray) -> tuple[float, float, float]:
    """(s, tx, ty): the 2-D similarity u -> s u + t taking the object's box in the render to its box in
    the picture the model was shown (the condition, then the framing), normalised coordinates."""
    a, b = object_box(render), object_box(shown)
    if a is None or b is None:
        return 1.0, 0.0, 0.0
    s = b[2] / a[2]
    return s, b[0] - s * a[0], b[1] - s * a[1]


def undo_picture_affine(mesh, affine: tuple[float, float, float]):
    """A view-frame mesh (OpenGL axes: x right, y up, object centre at the origin) of a picture whose
    object was moved by ``affine`` in the image -> the mesh of the render's own framing: a picture
    scaled by s about its centre and shifted by t shows, at the nominal camera distance D and focal f
    (weak perspective), the object scaled by s about its centre and moved by (t_x, -t_y) D / f. Used to
    score the shape whatever the picture's scale -- which a single picture cannot tell (a smaller object
    or a farther one) -- beside the absolute-scale score."""
    from ifkd.geometry.camera import CAM_MAX_DIST, NOMINAL_DISTANCE_RATIO, NORMALISED_FOCAL

    s, tx, ty = affine
    out = mesh.copy()
    if len(out.vertices):
        lateral = NOMINAL_DISTANCE_RATIO * CAM_MAX_DIST / NORMALISED_FOCAL
        v = np.asarray(out.vertices, dtype=np.float64)
        v = (v - np.array([tx * lateral, -ty * lateral, 0.0])) / s
        out.vertices = v
    return out


# ---------------------------------------------------------------------------------------------- run
def cached_rows(path: Path | None) -> dict[tuple, dict]:
    """Rows already measured (``--data``'s rows file: a rerun after an interruption skips them)."""
    import json

    if path is None or not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    complete = [r for r in rows if all(f"{c}/{f}" in r for c in CONDITIONS for f in SETTINGS)]
    return {(r["set"], r["shape"], r["view"]): r for r in complete}


def keep_row(path: Path | None, row: dict) -> None:
    import json

    if path is not None:
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def measure(
    rec, root: Path, real: bool, n_views: int, resolution: int, cache: Path | None = None
) -> list[dict]:
    import hashlib

    from ifkd.data.format import RENDER_DIR, load_image, read_views, shape_dir
    from ifkd.data.loader import image_to_tensor
    from ifkd.framing import frame_image
    from ifkd.geometry.camera import view_transform
    from ifkd.reconstruct import to_object_frame, view_rotation_gl

    rows = []
    done = cached_rows(cache)
    subset = "real" if real else "synth"
    for key in shape_keys(root, real):
        folder = shape_dir(root, key)
        gt = ground_truth(folder)
        names, views = read_views(folder / RENDER_DIR)
        for v in range(min(n_views, len(views))):
            if (subset, key, v) in done:
                rows.append(done[(subset, key, v)])
                continue
            rgba = load_image(folder / RENDER_DIR / names[v])
            R = view_rotation_gl(view_transform(views[v]))

            scored: dict[str, dict] = {}  # model input's digest -> its score (one reconstruction each)

            def run(tensor, shown=None, distance=None, R=R, gt=gt, scored=scored, rgba=rgba):
                digest = hashlib.sha1(tensor.numpy().tobytes()).hexdigest() + f"/{distance}"
                if digest not in scored:
                    (out,) = rec.reconstruct(tensor[None], resolution=resolution, distance=distance)
                    scored[digest] = score(to_object_frame(out.mesh, R), gt)
                    if shown is not None:  # the shape, with the picture's move of the object undone
                        affine = picture_affine(rgba, shown)
                        undone = score(to_object_frame(undo_picture_affine(out.mesh, affine), R), gt)
                        scored[digest] |= {"shape": undone, "affine": list(affine)}
                return scored[digest]

            row = {"set": subset, "shape": key, "view": v}
            # `ifkd evaluate --true-distance`: the render of known pose (framed for a model trained so)
            known = rec.reconstruct_views([rgba], [views[v]], resolution=resolution)
            row["reference"] = score(known.mesh, gt)
            for name, image in conditions(rgba).items():
                row[f"{name}/off"] = run(rec.prepare(image, reframe=False), image)
                for mode in ("always", "auto"):
                    # as Reconstructor.prepare_framed frames (its 'auto' is 'always' for a model trained
                    # on framed pictures), keeping the framed picture to measure its object's move
                    framed, info = frame_image(image, mode=rec.framing_mode if mode == "auto" else mode)
                    tensor = image_to_tensor(framed, rec.cfg.data.image_size, rec.cfg.data.background)
                    row[f"{name}/{mode}"] = run(tensor, framed)
                    row[f"{name}/framing_{mode}"] = info.as_dict()
            rows.append(row)
            keep_row(cache, row)
            print(
                f"  {key} view {v} (off/always/auto): "
                + " ".join(
                    f"{c} " + "/".join(f"{row[f'{c}/{f}']['chamfer_l1_x10']:.3f}" for f in SETTINGS)
                    for c in CONDITIONS
                ),
                flush=True,
            )
    return rows


def summarise(rows: list[dict]) -> dict:
    out = {}
    for subset in ("synth", "real"):
        sel = [r for r in rows if r["set"] == subset]
        if not sel:
            continue
        cols = ["reference"] + [f"{c}/{f}" for c in CONDITIONS for f in SETTINGS]
        out[subset] = (
            {
                col: {
                    metric: {
                        "mean": float(np.mean([r[col][metric] for r in sel])),
                        "median": float(np.median([r[col][metric] for r in sel])),
                    }
                    for metric in ("chamfer_l1_x10", "iou")
                }
                | {
                    f"shape_{metric}": {
                        "mean": float(np.mean([r[col]["shape"][metric] for r in sel])),
                        "median": float(np.median([r[col]["shape"][metric] for r in sel])),
                    }
                    for metric in ("chamfer_l1_x10", "iou")
                    if all("shape" in r[col] for r in sel)
                }
                for col in cols
            }
            | {
                f"{c}/auto_kept": {
                    what: int(sum(bool(r[f"{c}/framing_auto"][f"kept_{what}"]) for r in sel))
                    for what in ("centre", "size")
                }
                for c in CONDITIONS
            }
            | {"n": len(sel), "shapes": len({r["shape"] for r in sel})}
        )
    return out


def markdown(summary: dict, meta: dict) -> str:
    names = {
        "as_rendered": "as rendered",
        "flat_white": "flattened on white",
        "off_centre_2x": "off-centre, 2x canvas",
        "off_centre_2x_white": "off-centre, 2x canvas, flat white",
        "shrunk_2_3": "shrunk to 2/3",
        "shrunk_2_3_white": "shrunk to 2/3, flat white",
    }
    lines = [
        "# Framing: reconstructions of pictures framed unlike the training renders"
        + ("" if meta["model"] == "pretrained" else f" ({meta['model']})"),
        "",
        f"`{meta['command']}`; {machine_line(meta['machine'])}; {meta['seconds']:.0f} s. Model: "
        f"`{meta['model']}`, resolution {meta['resolution']}.",
        "",
        *([meta["note"], ""] if meta.get("note") else []),
        f"Synthetic: the test shapes of `{SYNTH}` (never trained on), views 0-{meta['synth_views'] - 1}. "
        f"Real: CAPOD meshes {', '.join(REAL_KEYS)}, {meta['real_views']} R2N2-style views each "
        "(`ifkd.data.realsets.build_real_dataset(only=...)`: `import meshes` plus CAPOD's rotation to "
        "+Y up).",
        "",
        "Camera-free protocol (nominal distance, as `ifkd reconstruct`); the mesh is turned into the object "
        "frame with the view's rotation and scored against the stored 100k surface samples (Chamfer-L1 x10, "
        "lower is better) and 100k IoU points. Reference: `ifkd evaluate --true-distance` (the render "
        "and its known pose, TRUE distance; framed only for a model trained on framed pictures). Mean "
        "(median) over the renders.",
        "",
        "Framing: **off** (`--no-reframe`), **always** (`--reframe-always`: every picture recentred and "
        "rescaled to the median training framing), **auto** (the default: the image centre kept when the "
        "object's box centre lies within the training renders' 5th-95th percentile offset from it, the "
        "size kept when the box's share of the frame lies within those percentiles of the training renders'; "
        "the rest recentred / rescaled to the median). "
        "'auto kept' counts the renders whose centre / size auto kept.",
        "",
        *(
            [
                "This model was trained on pictures in the inference framing (`data.aug_frame` = 1): its "
                "`auto` frames every picture, R2N2 renders included (= `always`).",
                "",
            ]
            if meta.get("framing_mode") == "always"
            else []
        ),
    ]
    for subset, s in summary.items():
        ref = s["reference"]
        lines += [
            f"## {subset}: {s['n']} renders of {s['shapes']} shapes",
            "",
            f"Reference (known pose, true distance): Chamfer-L1 x10 {ref['chamfer_l1_x10']['mean']:.3f} "
            f"({ref['chamfer_l1_x10']['median']:.3f}), IoU {ref['iou']['mean']:.3f}.",
            "",
            "| input | Chamfer x10, off | Chamfer x10, always | Chamfer x10, auto | IoU off | IoU always | "
            "IoU auto | auto kept centre / size |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in CONDITIONS:
            cd = [s[f"{c}/{f}"]["chamfer_l1_x10"] for f in SETTINGS]
            iou = [s[f"{c}/{f}"]["iou"]["mean"] for f in SETTINGS]
            kept = s[f"{c}/auto_kept"]
            lines.append(
                f"| {names[c]} | "
                + " | ".join(f"{m['mean']:.3f} ({m['median']:.3f})" for m in cd)
                + " | "
                + " | ".join(f"{v:.3f}" for v in iou)
                + f" | {kept['centre']} / {kept['size']} of {s['n']} |"
            )
        lines.append("")
        if "shape_chamfer_l1_x10" in s[f"{CONDITIONS[0]}/off"]:
            as_is = s["as_rendered/off"]["shape_chamfer_l1_x10"]["mean"]
            lines += [
                f"**{subset}, the shape whatever the picture's scale**: the same reconstructions with the "
                "object's move in the picture undone (`undo_picture_affine`: its box in the render vs in the "
                "picture the model was shown; weak perspective at the nominal distance) before scoring, as a "
                "single picture cannot tell a smaller object from a farther one. Chamfer-L1 x10 mean "
                f"(median); in brackets the ratio to the as-rendered, unframed {as_is:.3f}.",
                "",
                "| input | off | always | auto | IoU off | IoU always | IoU auto |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            for c in CONDITIONS:
                cd = [s[f"{c}/{f}"]["shape_chamfer_l1_x10"] for f in SETTINGS]
                iou = [s[f"{c}/{f}"]["shape_iou"]["mean"] for f in SETTINGS]
                lines.append(
                    f"| {names[c]} | "
                    + " | ".join(f"{m['mean']:.3f} ({m['median']:.3f}) [{m['mean'] / as_is:.2f}]" for m in cd)
                    + " | "
                    + " | ".join(f"{v:.3f}" for v in iou)
                    + " |"
                )
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="folder holding (or to hold) the data sets")
    ap.add_argument("--model", default="pretrained")
    ap.add_argument("--synth-views", type=int, default=2)
    ap.add_argument("--real-views", type=int, default=4)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--name", default="framing", help="results file stem (benchmarks/results/NAME.{json,md})")
    ap.add_argument(
        "--note", default="", help="a line under the heading (e.g. how rows cached by earlier runs were made)"
    )
    args = ap.parse_args()
    import torch

    from ifkd.reconstruct import Reconstructor

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rec = Reconstructor.from_run(args.model, device="cpu")
    with tempfile.TemporaryDirectory(prefix="framing-table-") as tmp:
        base = args.data or Path(tmp)
        cache = (
            None
            if args.data is None
            else base / f"framing_rows_{args.model.replace('/', '_')}_{args.resolution}_modes.jsonl"
        )
        rows = measure(rec, synth_data(base), False, args.synth_views, args.resolution, cache)
        rows += measure(rec, real_data(base, args.real_views), True, args.real_views, args.resolution, cache)
    meta = {
        "command": ("python benchmarks/framing_table.py " + shlex.join(sys.argv[1:])).strip(),
        "model": args.model,
        "framing_mode": rec.framing_mode,
        "resolution": args.resolution,
        "synth_views": args.synth_views,
        "real_views": args.real_views,
        "machine": machine(),
        "seconds": time.perf_counter() - t0,
        "note": args.note,
    }
    summary = summarise(rows)
    md = markdown(summary, meta)
    write_results(args.name, {**meta, "summary": summary, "rows": rows}, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
