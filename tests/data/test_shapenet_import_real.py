"""`import meshes` on the real messy meshes: each imports (or is skipped with a reason) and its views
agree with its ground truth through our camera; the CLI sub-commands parse."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from ifkd.commands.data_import import add_import_parser, cmd_import
from ifkd.data.format import load_image, read_index, read_shape, read_views
from ifkd.data.shapenet.importer import ImportSettings, import_meshes
from ifkd.geometry.camera import project_to_pixels, view_transform
from ifkd.io import InputError

REAL = Path("/work/shared/realdata/meshes")
SMALL = ("fuze.obj", "teapot.stl", "monkey.glb")
"""The three lightest real meshes for the default run; the slow test imports all seven at full size."""
FAST = ImportSettings(n_points=1000, surface_points=2048, voxel_resolutions=(32,))


def _import(tmp_path_factory, names, views, settings):
    folder = tmp_path_factory.mktemp("meshes")
    for name in names:
        (folder / name).symlink_to(REAL / name)
    (folder / "sub").mkdir()
    (folder / "sub" / "empty.obj").write_text("# nothing\n")  # broken: skipped with a reason
    out = tmp_path_factory.mktemp("ds")
    return out, import_meshes(folder, out, views=views, seed=0, settings=settings, progress=False)


@pytest.fixture(scope="module", params=[pytest.param("small"), pytest.param("all", marks=pytest.mark.slow)])
def imported(request, tmp_path_factory):
    if request.param == "small":
        return SMALL, *_import(tmp_path_factory, SMALL, 2, FAST)
    names = tuple(sorted(p.name for p in REAL.iterdir()))
    return names, *_import(tmp_path_factory, names, 8, ImportSettings())


def test_every_real_mesh_imports_or_has_a_reason(imported):
    names, out, summary = imported
    assert sorted(summary["imported"]) == sorted(f"real/{Path(n).stem}" for n in names)
    assert summary["broken"] == [
        {
            "key": "real/sub_empty",
            "source": summary["broken"][0]["source"],
            "reason": summary["broken"][0]["reason"],
        }
    ]
    assert "no triangles" in summary["broken"][0]["reason"]
    assert read_index(out)["splits"]["test"] == sorted(summary["imported"])


def test_silhouettes_agree_with_ground_truth(imported):
    _, out, summary = imported
    for key in summary["imported"]:
        rec = read_shape(out / key / "shape.npz", summary_resolutions(out))
        assert np.abs(rec.surface_points).max() <= 0.5 + 1e-6  # normalised: inside the unit cube
        names, views = read_views(out / key / "rendering")
        for name, view in zip(names, views):
            img = load_image(out / key / "rendering" / name)
            pix, _ = project_to_pixels(rec.surface_points.astype(np.float64), view_transform(view), 137)
            col, row = np.floor(pix).astype(int).T
            inside = (col >= 0) & (col < 137) & (row >= 0) & (row < 137)
            hit = np.zeros(len(pix), bool)
            hit[inside] = img[row[inside], col[inside], 3] > 0
            assert hit.mean() >= 0.98, (key, name, hit.mean())


def summary_resolutions(out: Path) -> tuple[int, ...]:
    return tuple(read_index(out)["importer"]["voxel_resolutions"])


def test_cli_parser_and_command(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="ifkd data")
    add_import_parser(parser.add_subparsers(dest="data_cmd"))
    args = parser.parse_args(
        [
            "import",
            "meshes",
            str(REAL),
            "--out",
            str(tmp_path / "o"),
            "--limit",
            "1",
            "--views",
            "1",
            "--points",
            "500",
            "--voxel-resolutions",
            "16",
        ]
    )
    assert args.func(args) == 0 and "imported 1" in capsys.readouterr().out
    args = parser.parse_args(
        [
            "import",
            "r2n2",
            "--renders",
            str(tmp_path),
            "--meshes",
            str(tmp_path),
            "--out",
            str(tmp_path / "o2"),
            "--v2-rotation",
            "90",
            "--categories",
            "chair",
        ]
    )
    assert args.v2_rotation == 90.0 and args.categories == ["chair"]
    with pytest.raises(InputError, match="no renderings for synset 03001627"):
        cmd_import(args)
    with pytest.raises(SystemExit):
        parser.parse_args(["import", "occnet"])
