"""OccNet layout: float16 points + packed bits, pointcloud, cameras.npz round trip and import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ifkd.data.format import load_image, read_index, read_shape, read_views
from ifkd.data.shapenet import meshes, occnet
from ifkd.data.shapenet.importer import ImportSettings, import_occnet, silhouette_agreement
from ifkd.data.shapenet.occupancy import outer_surface
from ifkd.geometry.camera import Viewpoint, occnet_cameras, view_transform, viewpoint_from_world_mat
from ifkd.geometry.inside import InsideTest
from ifkd.io import InputError
from ifkd.render.raycast import render

REAL = Path("/work/shared/realdata/meshes")
VIEWS = [Viewpoint(10.0, 26.0, 0.0, 0.75, 25.0), Viewpoint(133.0, 29.5, 0.0, 0.85, 25.0)]


def write_fake_occnet(folder: Path, mesh_file: str, n_points: int = 4000) -> dict:
    """One OccNet model folder from a real mesh in the v1 frame (loc/scale as OccNet computes them)."""
    mesh = meshes.normalise(meshes.load_mesh(REAL / mesh_file))[0]
    rng = np.random.default_rng(0)
    inside = InsideTest(mesh)
    lo, hi = mesh.bounds
    loc, scale = (lo + hi) / 2, float((hi - lo).max())
    pts = (rng.uniform(-0.55, 0.55, (n_points, 3)) * scale + loc).astype(np.float64)
    occ = inside(pts)
    surface, normals = outer_surface(inside, 3000, rng)
    images = [render(mesh, view_transform(v), 137, supersample=2).rgba for v in VIEWS]
    occnet.write_model(folder, pts, occ, surface, normals, VIEWS, images, loc, scale)
    return {"points": pts, "occ": occ, "surface": surface, "images": images, "loc": loc, "scale": scale}


def test_world_mat_round_trip():
    for az in (0.0, 45.5, 181.0, 359.0):
        for el in (-10.0, 25.0, 30.0):
            view = Viewpoint(az, el, 0.0, 0.7, 25.0)
            _, world = occnet_cameras(view)
            back = viewpoint_from_world_mat(world)
            assert back.azimuth == pytest.approx(az, abs=1e-6) and back.elevation == pytest.approx(
                el, abs=1e-6
            )
            assert back.distance_ratio == pytest.approx(0.7)
            np.testing.assert_allclose(view_transform(back)[:3], world, atol=1e-9)


def test_files_round_trip(tmp_path):
    truth = write_fake_occnet(tmp_path, "fuze.obj")
    with np.load(tmp_path / "points.npz") as npz:
        assert npz["points"].dtype == np.float16 and npz["occupancies"].size == (4000 + 7) // 8
    pts, occ, loc, scale = occnet.read_points(tmp_path / "points.npz")
    assert np.abs(pts - truth["points"]).max() < 1e-3 * scale  # float16 in OccNet's normalised frame
    assert np.array_equal(occ.astype(bool), truth["occ"]) and truth["occ"].any()
    surf, normals = occnet.read_pointcloud(tmp_path / "pointcloud.npz")
    np.testing.assert_allclose(surf, truth["surface"], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    views, paths = occnet.read_cameras(tmp_path / occnet.IMG_DIR)
    for got, want in zip(views, VIEWS):
        assert got.as_row() == pytest.approx(want.as_row(), abs=1e-6)
    for path, img in zip(paths, truth["images"]):
        rgba = occnet.load_view_image(path)
        ours, theirs = rgba[..., 3] > 0, img[..., 3] > 127
        assert (ours & theirs).sum() / (ours | theirs).sum() > 0.95  # alpha recovered from white


def test_bad_files(tmp_path):
    np.savez(
        tmp_path / "points.npz",
        points=np.zeros((8, 3), np.float16),
        occupancies=np.zeros(3, np.uint8),
        loc=np.zeros(3),
        scale=1.0,
    )
    with pytest.raises(InputError, match="fits neither packed nor plain 8"):
        occnet.read_points(tmp_path / "points.npz")
    (tmp_path / "img").mkdir()
    off_axis = np.hstack([np.eye(3), [[0.3], [0.0], [2.0]]])  # object centre off the optical axis
    for world, message in [
        (off_axis, "'world_mat_0' is not an R2N2 camera"),
        (np.eye(4)[:3], "at the object's centre"),
    ]:
        np.savez(tmp_path / "img" / "cameras.npz", world_mat_0=world)
        with pytest.raises(InputError, match=message):
            occnet.read_cameras(tmp_path / "img")
    with pytest.raises(InputError, match="pointcloud.npz: file not found"):
        occnet.read_pointcloud(tmp_path / "pointcloud.npz")


def test_import_occnet_keeps_split_and_frame(tmp_path):
    src = tmp_path / "ShapeNet"
    truth = {
        m: write_fake_occnet(src / "02958343" / m, f) for m, f in [("a", "fuze.obj"), ("b", "monkey.glb")]
    }
    (src / "02958343" / "test.lst").write_text("a\n")
    (src / "02958343" / "train.lst").write_text("b\n")
    (src / "02958343" / "c").mkdir()  # a model without files: broken, not fatal
    out = tmp_path / "ds"
    s = ImportSettings(voxel_resolutions=(32,))
    summary = import_occnet(src, out, ["car"], settings=s, progress=False)
    assert summary["imported"] == ["car/a", "car/b"] and [b["key"] for b in summary["broken"]] == ["car/c"]
    assert read_index(out)["splits"] == {"train": ["car/b"], "val": [], "test": ["car/a"]}
    rec = read_shape(out / "car/a/shape.npz", (32,))
    assert np.abs(rec.points - truth["a"]["points"]).max() < 1e-3
    names, views = read_views(out / "car/a/rendering")
    images = [load_image(out / "car/a/rendering" / n) for n in names]
    assert min(silhouette_agreement(rec.surface_points, views, images)) >= 0.98
    # nearest-neighbour voxels agree with the points' labels at the occupied cells' centres
    assert rec.voxels[32].any()
