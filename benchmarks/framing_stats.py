"""The framing the model was trained on, measured once on our R2N2-style renders: where the object sits in
the frame and how much of it it fills. The source of ``ifkd.framing.TRAINING_FOREGROUND_RATIO`` and
``TRAINING_CENTRE_OFFSET`` (medians) and of the ``auto`` framing's ``TRAINING_RATIO_RANGE``,
``TRAINING_OFFSET_X_RANGE`` and ``TRAINING_OFFSET_Y_RANGE`` (5th-95th percentiles).

Run: ``.venv/bin/python benchmarks/framing_stats.py [--per-category 8] [--views 24] [--seed 0]``
(makes the renders with ``ifkd data synth`` in a temporary folder; ``--data DIR`` reads existing ones).
Writes benchmarks/results/framing_stats.{json,md}. ``--ranges`` only prints the percentile ranges of the
rows stored in benchmarks/results/framing_stats.json (no rendering), beside the constants in use.

Per view: the foreground (alpha >= ``ifkd.framing.ALPHA_THRESHOLD``, exactly as ``frame_image`` finds it)
-> its bounding box; the box's longest side as a fraction of the image width; the box centre in
normalised [-1, 1] image coordinates; the projection of the object-frame origin (what the camera looks
at, the centre of the reconstruction's query frame) through the view's E_i and the R2N2 intrinsics; and
the offset box centre - origin projection in units of the box's longest side (scale-free, so it holds at
any framing size).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, machine_line, write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def measure(root: Path) -> list[dict]:
    from ifkd.data.format import RENDER_DIR, load_image, read_index, read_views, shape_dir
    from ifkd.framing import bounding_box, find_object
    from ifkd.geometry.camera import project_to_pixels, view_transform

    index = read_index(root)
    keys = [k for split in ("train", "val", "test") for k in index["splits"].get(split, [])]
    rows = []
    for key in keys:
        folder = shape_dir(root, key) / RENDER_DIR
        names, views = read_views(folder)
        for name, view in zip(names, views):
            rgba = load_image(folder / name)
            h, w = rgba.shape[:2]
            found = find_object(rgba)
            box = bounding_box(found.mask)
            if found.source != "alpha" or box is None:
                raise RuntimeError(f"{folder / name}: no foreground found ({found.source})")
            x0, y0, x1, y1 = box
            side = max(x1 - x0, y1 - y0)
            ((ox, oy),), _ = project_to_pixels(np.zeros((1, 3)), view_transform(view), w, h)
            cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
            rows.append(
                {
                    "shape": key,
                    "category": key.split("/")[0],
                    "view": name,
                    "distance_ratio": view.distance_ratio,
                    "elevation": view.elevation,
                    "ratio": side / w,
                    "bbox_centre_x": 2.0 * cx / w - 1.0,
                    "bbox_centre_y": 2.0 * cy / h - 1.0,
                    "origin_x": 2.0 * float(ox) / w - 1.0,
                    "origin_y": 2.0 * float(oy) / h - 1.0,
                    "offset_x": (cx - float(ox)) / side,
                    "offset_y": (cy - float(oy)) / side,
                }
            )
    return rows


RANGE_COLUMNS = ("ratio", "offset_x", "offset_y")
"""The columns whose 5th-95th percentiles ``auto`` framing keeps (ifkd.framing.TRAINING_*_RANGE)."""
RANGE_PERCENTILES = (5, 95)


def percentile_ranges(rows: list[dict]) -> dict[str, list[float]]:
    """Per column of :data:`RANGE_COLUMNS`: its [5th, 95th] percentiles over the rows."""
    return {
        k: [float(v) for v in np.percentile([r[k] for r in rows], RANGE_PERCENTILES)] for k in RANGE_COLUMNS
    }


def stored_ranges(path: Path = REPO / "benchmarks" / "results" / "framing_stats.json") -> int:
    """``--ranges``: the percentile ranges of the stored rows, beside ifkd.framing's constants."""
    import json

    from ifkd.framing import TRAINING_OFFSET_X_RANGE, TRAINING_OFFSET_Y_RANGE, TRAINING_RATIO_RANGE

    stored = json.loads(path.read_text())
    rows = [dict(zip(stored["row_columns"], row)) for row in stored["rows"]]
    in_use = dict(
        zip(RANGE_COLUMNS, (TRAINING_RATIO_RANGE, TRAINING_OFFSET_X_RANGE, TRAINING_OFFSET_Y_RANGE))
    )
    print(f"{path.name}: {len(rows)} views; {RANGE_PERCENTILES[0]}th-{RANGE_PERCENTILES[1]}th percentiles")
    for column, (lo, hi) in percentile_ranges(rows).items():
        print(f"  {column:9s} [{lo:.4f}, {hi:.4f}]  (ifkd.framing: {list(in_use[column])})")
    return 0


def quartiles(values) -> dict:
    q1, med, q3 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
    return {"q1": float(q1), "median": float(med), "q3": float(q3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="existing R2N2-style renders (default: synth)")
    ap.add_argument("--per-category", type=int, default=8)
    ap.add_argument("--views", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0, help="0: the seed of the shipped weights' training data")
    ap.add_argument(
        "--ranges",
        action="store_true",
        help="only print the 5th-95th percentile ranges of the stored rows (no rendering, nothing written)",
    )
    args = ap.parse_args()
    if args.ranges:
        return stored_ranges()
    with tempfile.TemporaryDirectory(prefix="framing-stats-") as tmp:
        root = args.data
        synth = (
            f"ifkd data synth --out DATA --per-category {args.per_category} --views {args.views} "
            f"--seed {args.seed}"
        )
        if root is None:
            root = Path(tmp) / "data"
            cmd = [sys.executable, "-m", "ifkd", *synth.split()[1:3], "--out", str(root), *synth.split()[5:]]
            subprocess.run(cmd, check=True)
        rows = measure(root)
    keys = ("ratio", "bbox_centre_x", "bbox_centre_y", "origin_x", "origin_y", "offset_x", "offset_y")
    overall = {k: quartiles([r[k] for r in rows]) for k in keys}
    cats = sorted({r["category"] for r in rows})
    per_cat = {
        c: {k: quartiles([r[k] for r in rows if r["category"] == c]) for k in keys}
        | {"n": sum(r["category"] == c for r in rows)}
        for c in cats
    }
    ratio_by_distance = {}
    for lo, hi in ((0.65, 0.7), (0.7, 0.75), (0.75, 0.8), (0.8, 0.85), (0.85, 0.9)):
        sel = [r["ratio"] for r in rows if lo <= r["distance_ratio"] < hi + (hi == 0.9) * 1e-9]
        ratio_by_distance[f"{lo:.2f}-{hi:.2f}"] = quartiles(sel) | {"n": len(sel)}
    m = machine()
    command = "python benchmarks/framing_stats.py " + " ".join(sys.argv[1:])
    payload = {
        "command": command.strip(),
        "renders": synth if args.data is None else str(args.data),
        "n_views": len(rows),
        "n_shapes": len({r["shape"] for r in rows}),
        "foreground": "alpha >= 128 (ifkd.framing.ALPHA_THRESHOLD)",
        "overall": overall,
        "per_category": per_cat,
        "ratio_by_distance_ratio": ratio_by_distance,
        "ranges_5_95": percentile_ranges(rows),
        "machine": m,
        "row_columns": list(rows[0]),
        "rows": [[round(v, 5) if isinstance(v, float) else v for v in r.values()] for r in rows],
    }
    fmt = "{median:.4f} [{q1:.4f}, {q3:.4f}]"
    lines = [
        "# The training framing of our R2N2-style renders",
        "",
        f"`{payload['command']}` over `{payload['renders']}`: {len(rows)} views of {payload['n_shapes']} "
        f"shapes; {machine_line(m)}.",
        "",
        "Median [quartiles]. ratio = the foreground bounding box's longest side / image width; centres in "
        "normalised [-1, 1] image coordinates (+y down); offset = (box centre - projection of the "
        "object-frame origin) / box longest side.",
        "",
        "| | " + " | ".join(keys) + " |",
        "|---|" + "---:|" * len(keys),
        "| **all** | " + " | ".join(fmt.format(**overall[k]) for k in keys) + " |",
    ]
    for c in cats:
        lines.append(
            f"| {c} ({per_cat[c]['n']}) | " + " | ".join(fmt.format(**per_cat[c][k]) for k in keys) + " |"
        )
    lines += [
        "",
        "ratio by the view's distance ratio:",
        "",
        "| distance ratio | n | ratio |",
        "|---|---:|---:|",
    ]
    for band, q in ratio_by_distance.items():
        lines.append(f"| {band} | {q['n']} | {fmt.format(**q)} |")
    lines += ["", "5th-95th percentiles (what `auto` framing keeps as it is):", ""]
    lines += [f"- {k}: [{lo:.4f}, {hi:.4f}]" for k, (lo, hi) in payload["ranges_5_95"].items()]
    write_results("framing_stats", payload, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
