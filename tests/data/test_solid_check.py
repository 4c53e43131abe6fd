"""Degenerate ground truth is flagged where it is made: by the importer (kept out of the splits, listed
with its reason, remembered on a rerun) and by `ifkd data info --check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy import ndimage

from ifkd.data.format import (
    SHAPE_FILE,
    load_image,
    read_index,
    read_shape,
    read_views,
    stored_voxel_resolutions,
    write_shape,
)
from ifkd.data.shapenet import convert
from ifkd.data.shapenet.importer import ImportSettings, format_summary, import_meshes
from ifkd.data.solid_check import solid_problems
from ifkd.geometry.inside import InsideTest

FAST = ImportSettings(n_points=2000, surface_points=2048, voxel_resolutions=(32, 64), iou_points=5000)


def _meshes(folder: Path) -> Path:
    folder.mkdir()
    trimesh.creation.box(extents=(0.6, 0.3, 0.4)).export(folder / "box.obj")
    trimesh.creation.icosphere(subdivisions=2).export(folder / "ball.obj")
    return folder


def _shape(root: Path, key: str):
    path = root / key / SHAPE_FILE
    rec = read_shape(path, voxel_resolutions=stored_voxel_resolutions(path))
    names, views = read_views(root / key / "rendering")
    return rec, views, [load_image(root / key / "rendering" / n) for n in names]


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("good")
    summary = import_meshes(_meshes(out / "src"), out / "ds", views=2, settings=FAST, progress=False)
    assert summary["degenerate"] == [] and len(summary["imported"]) == 2
    return out / "ds"


def test_good_solids_pass_and_record_their_numbers(good):
    for key in read_index(good)["splits"]["test"]:
        rec, views, images = _shape(good, key)
        stats: dict = {}
        assert solid_problems(rec, None, views, images, stats) == []
        assert stats["cover_min"] > 0.95 and stats["leak"] == 0.0
        assert convert.read_check(good, key)["inside_share"] > 0.01


def test_empty_inverted_and_hollow_solids_are_flagged(good):
    rec, views, images = _shape(good, "real/box")
    empty = type(rec)(
        rec.points,
        np.zeros_like(rec.occupancies),
        rec.surface_points,
        rec.surface_normals,
        {r: np.zeros_like(g) for r, g in rec.voxels.items()},
    )
    assert "empty solid" in solid_problems(empty, None, views, images)[0]
    inverted = type(rec)(
        rec.points,
        1 - rec.occupancies,
        rec.surface_points,
        rec.surface_normals,
        {r: ~g for r, g in rec.voxels.items()},
    )
    assert any("leaks" in p for p in solid_problems(inverted, None, views, images))
    hollow = {r: g & ~ndimage.binary_erosion(g) for r, g in rec.voxels.items()}  # a one-cell skin
    half = {r: g.copy() for r, g in rec.voxels.items()}
    for g in half.values():
        g[: g.shape[0] // 2 + 2] = False  # half of the object gone
    part = type(rec)(rec.points, rec.occupancies, rec.surface_points, rec.surface_normals, half)
    assert any("silhouette" in p for p in solid_problems(part, None, views, images))
    skin = type(rec)(rec.points, rec.occupancies, rec.surface_points, rec.surface_normals, hollow)
    assert solid_problems(skin, None, views, images) == []  # a skin still covers the silhouette


def test_importer_keeps_a_degenerate_shape_out_of_the_splits(tmp_path, monkeypatch):
    """The old failure, simulated: an inside test that says 'outside' everywhere."""
    real_call = InsideTest.__call__

    def empty_for_ball(self, points):
        out = real_call(self, points)
        return out & (len(self.clean.faces) == 12)  # the box (12 faces) keeps its solid

    monkeypatch.setattr(InsideTest, "__call__", empty_for_ball)
    src = _meshes(tmp_path / "src")
    summary = import_meshes(src, tmp_path / "ds", views=2, settings=FAST, progress=False)
    assert [d["key"] for d in summary["degenerate"]] == ["real/ball"]
    assert "empty solid" in summary["degenerate"][0]["reason"]
    assert "degenerate real/ball: empty solid" in format_summary(summary)
    index = read_index(tmp_path / "ds")
    assert index["splits"]["test"] == ["real/box"] and "real/ball" in index["degenerate"]
    assert index["inside_test_version"] == 2
    # a rerun finds both done, and still keeps the ball out
    again = import_meshes(src, tmp_path / "ds", views=2, settings=FAST, progress=False)
    assert sorted(again["existing"]) == ["real/ball", "real/box"]
    assert [d["key"] for d in again["degenerate"]] == ["real/ball"]
    assert read_index(tmp_path / "ds")["splits"]["test"] == ["real/box"]


def test_data_info_check_flags_a_degenerate_shape(good, tmp_path, capsys):
    from ifkd.cli import main

    ds = tmp_path / "ds"
    shutil.copytree(good, ds)
    rec, _, _ = _shape(ds, "real/box")
    rec.occupancies[:] = 0
    rec.voxels = {r: np.zeros_like(g) for r, g in rec.voxels.items()}
    write_shape(ds / "real/box" / SHAPE_FILE, rec)  # iou points dropped too: labels from points + voxels
    assert main(["data", "info", str(ds), "--check"]) == 2
    err = capsys.readouterr().err
    assert "real/box/shape.npz: degenerate ground truth: empty solid" in err


def test_data_info_check_asks_to_reimport_an_old_import(good, tmp_path, capsys):
    import json

    from ifkd.cli import main

    ds = tmp_path / "ds"
    shutil.copytree(good, ds)
    index = json.loads((ds / "index.json").read_text())
    del index["inside_test_version"]
    index["degenerate"] = {"real/gone": "empty solid: 0 of 100 labelled points inside"}
    (ds / "index.json").write_text(json.dumps(index))
    assert main(["data", "info", str(ds), "--check"]) == 2
    err = capsys.readouterr().err
    assert "imported with inside test v1" in err and "re-import it with `ifkd data import meshes`" in err
    assert "real/gone: flagged at import, kept out of the splits: empty solid" in err


def test_import_with_broken_meshes_exits_2_and_writes_the_others(tmp_path, capsys):
    """The batch rule: exit 0 only when every item succeeded; 2 when some failed, the others written."""
    from ifkd.cli import main

    src = _meshes(tmp_path / "src")
    (src / "bad.obj").write_text("v 1 2\nf nonsense\n")
    (src / "line.ply").write_text("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nend_header\n")
    out = tmp_path / "ds"
    argv = ["data", "import", "meshes", str(src), "--out", str(out), "--views", "1", "--points", "1000"]
    assert main([*argv, "--voxel-resolutions", "32"]) == 2
    cap = capsys.readouterr()
    assert "2 of 4 models failed or were flagged (listed above)" in cap.err
    assert sorted(read_index(out)["splits"]["test"]) == ["real/ball", "real/box"]
