"""The evaluator end to end: frame bookkeeping proven with perfect fields, the Table-1 files, and
`ifkd evaluate` on a teacher run and a student run.

A "perfect" method here decodes the ground-truth occupancy of the shape whose image it is shown:
for a view-frame method, the shape turned by the image's R_i (points arrive as R_i p); for an
object-frame one, the canonical shape. If the reconstructor and the evaluator get the frames right
(view-aligned output, OpenGL axes, CV_TO_GL, to_object_frame, the query distance), its meshes score
IoU ~1 against the GT; a view method that ignores R_i scores far lower.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import perfect_reconstructor, subset_test_split

from ifkd.cli import main
from ifkd.data.format import RENDER_DIR, load_image, read_index, read_views, shape_dir
from ifkd.eval.evaluate import (
    TABLE_COLUMNS,
    EvalOptions,
    evaluate_model,
    markdown_table,
    summarise,
    write_results,
)
from ifkd.geometry.camera import CAM_MAX_DIST, intrinsics

BULKY = ("car", "loudspeaker", "sofa", "telephone")
"""Categories of the perfect-field tests: shapes whose parts are many GT voxels thick. On thin ones
(airplane wings, table tops, 1-2 voxels) even a perfect field's mesh scores IoU 0.85-0.95 against the
128^3 voxel GT, so an IoU > 0.95 bar would test the voxelisation, not the frames."""


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bulky_dataset(tiny_dataset, tmp_path_factory) -> Path:
    """A copy of tiny_dataset whose test split is one shape of each BULKY category."""
    return subset_test_split(tiny_dataset, tmp_path_factory.mktemp("bulky"), BULKY)


def test_view_frame_bookkeeping_end_to_end(bulky_dataset):
    rec = perfect_reconstructor("view", bulky_dataset)
    rows = evaluate_model(rec, bulky_dataset, EvalOptions(resolution=128, known_distance=True))
    assert [r["category"] for r in rows] == list(BULKY)
    # The field is the 128^3 voxel grid while the IoU labels are the exact (analytic) ones stored with
    # the data: a 1/128 cell costs these bulky shapes 3-5 % of IoU.
    assert all(r["iou_exact_labels"] == 1.0 for r in rows)
    assert min(r["iou"] for r in rows) > 0.93, [(r["shape"], round(r["iou"], 3)) for r in rows]
    assert min(r["iou_voxels_32"] for r in rows) > 0.83  # measured 0.846-: on the object-frame grid
    # Every query used the view's true camera distance (known_distance, by request) ...
    keys = read_index(bulky_dataset)["splits"]["test"]
    true = [read_views(shape_dir(bulky_dataset, k) / RENDER_DIR)[1][0].distance for k in keys]
    seen = list(dict.fromkeys(rec.model.distances))  # one per shape, in evaluation order
    assert np.allclose(seen, true, atol=1e-6)
    # ... or the nominal one when camera-free: the default.
    rec.model.distances.clear()
    evaluate_model(rec, bulky_dataset, EvalOptions(resolution=16, limit=1))
    assert np.allclose(rec.model.distances, rec.cfg.eval.distance_ratio * CAM_MAX_DIST)


def test_object_frame_bookkeeping_end_to_end(bulky_dataset):
    rec = perfect_reconstructor("object", bulky_dataset)
    rows = evaluate_model(rec, bulky_dataset, EvalOptions(resolution=128))
    ious = [r["iou"] for r in rows]
    # Axis-aligned walls beat against the 1.1/128 extraction grid here (not in the rotated view
    # frame): measured 0.950-0.974, so the bar is on the mean.
    assert np.mean(ious) > 0.95 and min(ious) > 0.94, ious
    assert rec.model.distances == []  # object-frame methods get no camera distance


def test_a_frame_error_is_caught(bulky_dataset):
    """Negative control: a view method that ignores R_i scores far below the perfect one."""
    rec = perfect_reconstructor("view", bulky_dataset, rotate=False)
    rows = evaluate_model(rec, bulky_dataset, EvalOptions(resolution=32))
    assert np.mean([r["iou"] for r in rows]) < 0.5, [r["iou"] for r in rows]  # measured 0.18-0.33


def test_view_meshes_project_onto_the_image_silhouette(bulky_dataset):
    """The output frame really is the camera's (OpenGL axes: +X right, +Y up, +Z to the viewer): project
    the view-frame mesh with a pinhole camera at (0, 0, d) written here from the R2N2 intrinsics alone."""
    rec = perfect_reconstructor("view", bulky_dataset)
    for key in read_index(bulky_dataset)["splits"]["test"]:
        folder = shape_dir(bulky_dataset, key) / RENDER_DIR
        names, views = read_views(folder)
        alpha = load_image(folder / names[1])[..., 3] > 0
        (out,) = rec.reconstruct(
            [folder / names[1]], resolution=64, distance=views[1].distance, reframe=False
        )  # the image as rendered: the camera is the render's
        x, y, z = out.mesh.vertices.T
        K = intrinsics(alpha.shape[1], alpha.shape[0])
        depth = views[1].distance - z  # the camera looks down -Z from +d
        u = K[0, 2] + K[0, 0] * x / depth
        v = K[1, 2] - K[1, 1] * y / depth  # +Y up, image rows go down
        col = np.clip(np.floor(u).astype(int), 0, alpha.shape[1] - 1)
        row = np.clip(np.floor(v).astype(int), 0, alpha.shape[0] - 1)
        on = alpha[row, col].mean()
        assert on > 0.99, f"{key}: only {on:.1%} of the vertices project onto the object"
        # ... and the projection covers the silhouette, not a part of it.
        hit = np.zeros_like(alpha)
        hit[row, col] = True
        assert (hit & alpha).sum() / alpha.sum() > 0.85  # measured 0.92-0.95 (mirrored: 0.66-0.93)


# ---------------------------------------------------------------------------- the Table-1 files


def _row(shape: str, **metrics: float) -> dict:
    base = {k: 0.5 for k, _, _ in TABLE_COLUMNS} | {"empty": 0.0}  # a mesh is empty or not
    return {"shape": shape, "category": shape.split("/")[0], "view": 0, **base, **metrics}


def test_summary_is_the_unweighted_mean_of_class_means():
    rows = [
        _row("a/0", iou=0.2),
        _row("a/1", iou=0.4, edge_chamfer_x1000=float("nan")),
        _row("b/0", iou=0.9),
    ]
    s = summarise(rows)
    assert s["per_category"]["a"]["iou"] == pytest.approx(0.3)
    assert s["per_category"]["a"]["n"] == 2 and s["n"] == 3
    assert s["mean"]["iou"] == pytest.approx(0.6)  # not the per-row mean 0.5
    assert s["per_category"]["a"]["edge_chamfer_x1000"] == pytest.approx(0.5)  # NaN skipped


def test_write_results_table1_layout(tmp_path):
    rows = [_row("chair/0", iou=0.61), _row("chair/1", iou=0.59), _row("table/0", iou=0.7, fscore_1=0.25)]
    summary = write_results(rows, tmp_path, "tiny test", {"method": "x"})
    with open(tmp_path / "per_shape.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["shape"] for r in table] == ["chair/0", "chair/1", "table/0"]
    assert float(table[0]["iou"]) == pytest.approx(0.61)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["method"] == "x" and saved["mean"] == pytest.approx(summary["mean"])
    md = (tmp_path / "table.md").read_text().splitlines()
    header = "| category | n | " + " | ".join(h for _, h, _ in TABLE_COLUMNS) + " |"
    assert md[0] == "### tiny test" and md[2] == header
    assert md[4].startswith("| chair | 2 | 0.600 |") and md[5].startswith("| table | 1 | 0.700 |")
    assert md[6].startswith("| **mean (of classes)** | 3 | 0.650 |")
    assert all(line.count("|") == len(TABLE_COLUMNS) + 3 for line in md[2:7])
    assert markdown_table(summary).splitlines()[0] == header


# --------------------------------------------------------------------------------- ifkd evaluate


@pytest.fixture(scope="module")
def runs(tiny_runs) -> dict[str, Path]:
    """The shared tiny teacher + KD student run folders (tests/conftest.py)."""
    return tiny_runs


@pytest.mark.parametrize("name", ["teacher", "student"])
def test_cli_evaluate_on_runs(runs, tiny_dataset, tmp_path, capsys, name):
    out = tmp_path / "results"
    argv = ["evaluate", "--model", str(runs[name]), "--data", str(tiny_dataset), "--out", str(out)]
    argv += ["--resolution", "16", "--limit", "2", "--views", "all", "--device", "cpu"]
    assert main(argv) == 0
    with open(out / "per_shape.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keys = read_index(tiny_dataset)["splits"]["test"][:2]
    assert [(r["shape"], r["view"]) for r in rows] == [(k, str(v)) for k in keys for v in range(3)]
    assert all(0.0 <= float(r["iou"]) <= 1.0 and float(r["queries"]) > 0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == ("teacher" if name == "teacher" else "ifkd") and summary["n"] == 6
    assert summary["options"]["views"] == "all" and summary["options"]["limit"] == 2
    assert set(summary["per_category"]) == {k.split("/")[0] for k in keys}
    printed = capsys.readouterr().out
    assert "| **mean (of classes)** | 6 |" in printed and "per_shape.csv" in printed


def test_cli_evaluate_dense_queries_the_full_grid(runs, tiny_dataset, tmp_path):
    """--dense: every (R+1)^3 corner is queried (no coarse level), and the summary records it."""
    out = tmp_path / "dense"
    argv = ["evaluate", "--model", str(runs["student"]), "--data", str(tiny_dataset), "--out", str(out)]
    assert main([*argv, "--resolution", "16", "--limit", "1", "--dense", "--device", "cpu"]) == 0
    with open(out / "per_shape.csv", newline="") as fh:
        assert [float(r["queries"]) for r in csv.DictReader(fh)] == [17.0**3]
    assert json.loads((out / "summary.json").read_text())["options"]["dense"] is True


def test_cli_evaluate_rejects_a_bad_views_value(runs, tiny_dataset, tmp_path, capsys):
    argv = ["evaluate", "--model", str(runs["student"]), "--data", str(tiny_dataset)]
    argv += ["--out", str(tmp_path / "r"), "--views", "some", "--device", "cpu"]
    assert main(argv) == 2
    assert "--views 'some'" in capsys.readouterr().err


def test_edge_chamfer_is_taken_on_one_grid_for_every_frame(bulky_dataset):
    """The same perfect field, a view-frame method or an object-frame one, gets the same ECD: evaluation
    extracts both on the axis-aligned object-frame grid (before, the view-frame one was extracted on a
    grid turned with the view, and its staircase scored 13-120 instead of 120-277 x1000)."""
    opts = EvalOptions(resolution=64, known_distance=True)
    view_rows = evaluate_model(perfect_reconstructor("view", bulky_dataset), bulky_dataset, opts)
    object_rows = evaluate_model(perfect_reconstructor("object", bulky_dataset), bulky_dataset, opts)
    # measured (x1000, view vs object): car 245 vs 277, loudspeaker 197 vs 197, sofa 277 vs 277,
    # telephone 120 vs 124 (the meshes differ by a few vertices at voxel boundaries, and ECD's edge
    # samples follow); from the view's own rotated grid the same field scored 13, 59, 120 and 28
    for v, o in zip(view_rows, object_rows):
        assert v["shape"] == o["shape"]
        assert v["edge_chamfer"] == pytest.approx(o["edge_chamfer"], rel=0.15), v["shape"]


def test_surface_metrics_over_non_empty_meshes_stand_beside_occnets():
    """OccNet's convention scores an empty mesh Chamfer sqrt(3) and F 0; the *_nonempty columns average
    the same metrics over the non-empty meshes only, and a class with only empty meshes has none."""
    sqrt3x10 = 10 * 3**0.5
    rows = [
        {"category": "chair", "empty": 0.0, "chamfer_l1_x10": 0.2, "fscore_1": 0.6},
        {"category": "chair", "empty": 1.0, "chamfer_l1_x10": sqrt3x10, "fscore_1": 0.0},
        {"category": "lamp", "empty": 1.0, "chamfer_l1_x10": sqrt3x10, "fscore_1": 0.0},
        {"category": "sofa", "empty": 0.0, "chamfer_l1_x10": 0.4, "fscore_1": 0.2},
    ]
    s = summarise(rows)
    chair, lamp = s["per_category"]["chair"], s["per_category"]["lamp"]
    assert chair["chamfer_l1_x10"] == pytest.approx((0.2 + sqrt3x10) / 2)
    assert chair["chamfer_l1_x10_nonempty"] == pytest.approx(0.2)
    assert chair["fscore_1_nonempty"] == pytest.approx(0.6)
    assert math.isnan(lamp["chamfer_l1_x10_nonempty"]) and lamp["empty"] == 1.0
    assert s["mean"]["chamfer_l1_x10_nonempty"] == pytest.approx(0.3)  # chair and sofa; lamp has none
    assert s["mean"]["fscore_1_nonempty"] == pytest.approx(0.4)
    assert s["mean"]["empty"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert "non-empty" in markdown_table(s)
