"""R2N2 import end to end on a fake ShapeNetRendering + ShapeNetCore tree built from real meshes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from ifkd.data.format import load_image, read_index, read_shape, read_views
from ifkd.data.shapenet import meshes, r2n2
from ifkd.data.shapenet.importer import ImportSettings, import_r2n2, silhouette_agreement
from ifkd.geometry.camera import Viewpoint, view_transform
from ifkd.io import InputError
from ifkd.render.raycast import render

REAL = Path("/work/shared/realdata/meshes")
CHAIR = "03001627"
FAST = ImportSettings(n_points=2000, surface_points=2048, voxel_resolutions=(32,))
VIEWS = [Viewpoint(30.0, 25.0, 0.0, 0.8, 25.0), Viewpoint(200.5, 28.0, 0.0, 0.7, 25.0)]


def write_fake_r2n2(
    root: Path, sources: dict[str, str], v2: tuple[str, ...] = ()
) -> dict[str, trimesh.Trimesh]:
    """ShapeNetRendering/<synset>/<model>/rendering + ShapeNetCore (v1 model.obj, or v2 for ids in v2).

    Meshes are brought to the v1 frame and rendered with our renderer and camera, as R2N2 did with
    Blender; metadata lines use R2N2's bracketed layout for the first model, plain numbers otherwise.
    """
    out = {}
    for i, (model, name) in enumerate(sources.items()):
        mesh = meshes.normalise(meshes.load_mesh(REAL / name))[0]
        out[model] = mesh
        core = root / "ShapeNetCore" / CHAIR / model
        if model in v2:  # store as v2: rotate v1 -> v2 (+90 about Y), shift and scale arbitrarily
            v2mesh = meshes.rotate_y(mesh, -meshes.V2_ROTATION_DEG)
            v2mesh.vertices = v2mesh.vertices * 0.7 + [0.01, -0.02, 0.03]
            (core / "models").mkdir(parents=True)
            v2mesh.export(core / "models" / "model_normalized.obj")
        else:
            core.mkdir(parents=True)
            mesh.export(core / "model.obj")
        rend = root / "ShapeNetRendering" / CHAIR / model / "rendering"
        rend.mkdir(parents=True)
        lines = []
        for k, v in enumerate(VIEWS):
            img = render(mesh, view_transform(v), 137, supersample=2).rgba
            Image.fromarray(img, mode="RGBA").save(rend / f"{k:02d}.png")
            row = [v.azimuth, v.elevation, v.in_plane, v.distance_ratio, v.fov]
            lines.append(str(row) if i == 0 else " ".join(map(str, row)))
        (rend / "renderings.txt").write_text("".join(f"{k:02d}.png\n" for k in range(len(VIEWS))))
        (rend / "rendering_metadata.txt").write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("r2n2")
    write_fake_r2n2(
        root, {"fuze1": "fuze.obj", "monkey2": "monkey.glb", "teapot3": "teapot.stl"}, v2=("teapot3",)
    )
    (root / "ShapeNetRendering" / CHAIR / "nomesh4" / "rendering").mkdir(parents=True)  # broken on purpose
    return root


def test_reader_parses_both_metadata_layouts(tree):
    for model in ("fuze1", "monkey2"):
        views, paths = r2n2.read_model_views(tree / "ShapeNetRendering" / CHAIR / model)
        assert views == VIEWS and [p.name for p in paths] == ["00.png", "01.png"]
    meta = tree / "bad" / "rendering_metadata.txt"
    meta.parent.mkdir()
    meta.write_text("1 2 3\n")
    with pytest.raises(InputError, match="expected 5 numbers"):
        r2n2.read_model_views(meta.parent)


def test_import_r2n2(tree, tmp_path):
    out = tmp_path / "ds"
    summary = import_r2n2(
        tree / "ShapeNetRendering", tree / "ShapeNetCore", out, ["chair"], settings=FAST, progress=False
    )
    assert summary["imported"] == ["chair/fuze1", "chair/monkey2", "chair/teapot3"]
    assert [b["key"] for b in summary["broken"]] == ["chair/nomesh4"]
    assert "rendering_metadata.txt: file not found" in summary["broken"][0]["reason"]
    assert summary["checks"]["chair/teapot3"]["mesh_version"] == 2
    index = read_index(out)
    assert index["categories"] == {"chair": CHAIR} and sum(index["counts"].values()) == 3
    for key in summary["imported"]:
        rec = read_shape(out / key / "shape.npz", (32,))
        names, views = read_views(out / key / "rendering")
        images = [load_image(out / key / "rendering" / n) for n in names]
        src = [
            load_image(tree / "ShapeNetRendering" / CHAIR / key.split("/")[1] / "rendering" / n)
            for n in names
        ]
        assert views == VIEWS and all(np.array_equal(a, b) for a, b in zip(images, src))
        # the renders and our GT agree through our camera, also for the rotated v2 mesh
        assert min(silhouette_agreement(rec.surface_points, views, images)) >= 0.98
        assert len(rec.points) == 2000 and rec.voxels[32].any()
    # resumable: a second run finds everything done and rewrites nothing
    mtime = (out / "chair/fuze1/shape.npz").stat().st_mtime_ns
    again = import_r2n2(tree / "ShapeNetRendering", tree / "ShapeNetCore", out, settings=FAST, progress=False)
    assert again["existing"] == summary["imported"] and not again["imported"]
    assert (out / "chair/fuze1/shape.npz").stat().st_mtime_ns == mtime


def test_occnet_split_lists_are_kept(tree, tmp_path):
    lists = tmp_path / "lists" / CHAIR
    lists.mkdir(parents=True)
    (lists / "test.lst").write_text("fuze1\n")
    (lists / "train.lst").write_text("monkey2\nteapot3\n")
    out = tmp_path / "ds"
    import_r2n2(
        tree / "ShapeNetRendering",
        tree / "ShapeNetCore",
        out,
        limit=2,
        split_source=tmp_path / "lists",
        settings=FAST,
        progress=False,
    )
    assert read_index(out)["splits"] == {"train": ["chair/monkey2"], "val": [], "test": ["chair/fuze1"]}


def test_unknown_category_and_missing_folders(tree, tmp_path):
    with pytest.raises(InputError, match="unknown category"):
        import_r2n2(
            tree / "ShapeNetRendering", tree / "ShapeNetCore", tmp_path / "o", ["sofas"], progress=False
        )
    with pytest.raises(InputError, match="no renderings for synset 04256520"):
        import_r2n2(
            tree / "ShapeNetRendering", tree / "ShapeNetCore", tmp_path / "o", ["sofa"], progress=False
        )
    with pytest.raises(InputError, match="ShapeNetCore folder not found"):
        import_r2n2(tree / "ShapeNetRendering", tmp_path / "none", tmp_path / "o", progress=False)


def test_tiny_model_trains_on_imported_data(tree, tmp_path):
    """Imported R2N2 data goes through the same training commands as synthetic data."""
    from ifkd.cli import main

    out = tmp_path / "ds"
    import_r2n2(
        tree / "ShapeNetRendering", tree / "ShapeNetCore", out, ["chair"], settings=FAST, progress=False
    )
    index = read_index(out)
    index["splits"] = {"train": sorted(sum(index["splits"].values(), [])), "val": [], "test": []}
    (out / "index.json").write_text(__import__("json").dumps(index))
    common = ["--data", str(out), "--preset", "tiny", "--set", "train.val_shapes=0"]
    assert main(["train", "teacher", *common, "--out", str(tmp_path / "t")]) == 0
    assert (
        main(["train", "student", *common, "--teacher", str(tmp_path / "t"), "--out", str(tmp_path / "s")])
        == 0
    )
    assert (tmp_path / "s" / "checkpoints" / "last.safetensors").is_file()
    lines = (tmp_path / "s" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and '"kd_active": true' in lines[-1]
