"""On-disk format: round trips, determinism, validation errors that name the file and the problem."""

import numpy as np
import pytest
import torch
from PIL import Image

from ifkd.config import DataConfig
from ifkd.data import format as F
from ifkd.data.loader import image_to_tensor, make_dataset
from ifkd.geometry.camera import Viewpoint
from ifkd.geometry.voxels import pack_voxels, unpack_voxels
from ifkd.io import InputError


def _record(rng, n=500):
    pts = rng.uniform(-0.55, 0.55, (n, 3)).astype(np.float32)
    occ = (np.linalg.norm(pts, axis=1) < 0.3).astype(np.uint8)
    surf = rng.normal(size=(200, 3)).astype(np.float32)
    surf /= np.linalg.norm(surf, axis=1, keepdims=True)
    centres = (np.stack(np.meshgrid(*[np.arange(32)] * 3, indexing="ij"), -1) + 0.5) / 32 - 0.5
    vox = np.linalg.norm(centres, axis=-1) < 0.3
    return F.ShapeRecord(pts, occ, surf * 0.3, surf, {32: vox})


def _tiny_dataset(root, rng, n_shapes=3, views=2):
    keys = []
    for i in range(n_shapes):
        key = f"chair/{i:04d}"
        rec = _record(rng)
        F.write_shape(root / key / F.SHAPE_FILE, rec)
        imgs = [rng.integers(0, 255, (20, 20, 4), dtype=np.uint8) for _ in range(views)]
        F.write_views(
            root / key / F.RENDER_DIR, [Viewpoint(30.0 * v, 25, 0, 0.8, 25) for v in range(views)], imgs
        )
        keys.append(key)
    F.write_index(root, {"chair": "03001627"}, {"train": keys[:2], "val": keys[2:], "test": []})
    return keys


def test_shape_round_trip_and_determinism(tmp_path):
    rec = _record(np.random.default_rng(0))
    F.write_shape(tmp_path / "a.npz", rec)
    F.write_shape(tmp_path / "b.npz", rec)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = F.read_shape(tmp_path / "a.npz", voxel_resolutions=(32,))
    np.testing.assert_array_equal(back.points, rec.points)
    np.testing.assert_array_equal(back.occupancies, rec.occupancies)
    np.testing.assert_array_equal(back.voxels[32], rec.voxels[32])


def test_voxel_packing_layout_is_x_y_z_c_order():
    grid = np.zeros((32, 32, 32), bool)
    grid[1, 2, 3] = True
    packed = pack_voxels(grid)
    flat = 1 * 32 * 32 + 2 * 32 + 3
    assert np.unpackbits(packed)[flat] == 1 and np.unpackbits(packed).sum() == 1
    with pytest.raises(InputError, match="bytes"):
        unpack_voxels(packed[:-1], 32, "x.npz")


def test_bad_shape_files_are_named(tmp_path):
    rec = _record(np.random.default_rng(0))
    rec.points[3, 1] = np.nan
    F.write_shape(tmp_path / "nan.npz", rec)
    with pytest.raises(InputError, match=r"nan\.npz.*NaN"):
        F.read_shape(tmp_path / "nan.npz")
    good = _record(np.random.default_rng(0))
    F.write_shape(tmp_path / "good.npz", good)
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"trunc\.npz"):
        F.read_shape(tmp_path / "trunc.npz")
    with pytest.raises(InputError, match="voxels_64"):
        F.read_shape(tmp_path / "good.npz", voxel_resolutions=(64,))
    with pytest.raises(InputError, match="file not found"):
        F.read_shape(tmp_path / "missing.npz")
    np.savez(
        tmp_path / "shape.npz",
        points=np.zeros((4, 2), np.float32),
        occupancies=np.zeros(4, np.uint8),
        surface_points=np.zeros((1, 3), np.float32),
        surface_normals=np.zeros((1, 3), np.float32),
    )
    with pytest.raises(InputError, match=r"'points' has shape \(4, 2\)"):
        F.read_shape(tmp_path / "shape.npz")


def test_index_validation(tmp_path):
    with pytest.raises(InputError, match="missing dataset index"):
        F.read_index(tmp_path)
    F.write_index(tmp_path, {"chair": "03001627"}, {"train": ["../../x"]})
    with pytest.raises(InputError, match="not of the form|outside"):
        F.read_index(tmp_path)
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        F.read_index(tmp_path)


def test_views_metadata_errors(tmp_path):
    folder = tmp_path / "rendering"
    folder.mkdir()
    (folder / F.METADATA_FILE).write_text("10 25 0 0.8 25\n20 25 0.8 25\n")
    with pytest.raises(ValueError, match="line 2.*expected 5 numbers"):
        F.read_views(folder)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello, not a png"), "not an image"),
        (lambda p: p.write_bytes(_png_bytes()[:60]), "truncated|unreadable"),
    ],
)
def test_load_image_bad_files(tmp_path, make, match):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(InputError, match=match) as info:
        F.load_image(path)
    assert "bad.png" in str(info.value)


def _png_bytes():
    import io

    buf = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_load_image_modes(tmp_path):
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(tmp_path / "i16.png")
    Image.fromarray(np.full((8, 8), 7, np.uint8), mode="L").convert("P").save(tmp_path / "pal.png")
    Image.new("CMYK", (8, 8), (0, 255, 0, 0)).save(tmp_path / "cmyk.jpg")
    for name in ("i16.png", "pal.png", "cmyk.jpg"):
        arr = F.load_image(tmp_path / name)
        assert arr.shape == (8, 8, 4) and arr.dtype == np.uint8
    assert F.load_image(tmp_path / "i16.png")[0, 0, 0] == round(40000 / 65535 * 255)


def test_image_to_tensor_composites_and_resizes():
    rgba = np.zeros((137, 137, 4), np.uint8)
    rgba[40:90, 40:90] = (255, 0, 0, 255)
    t = image_to_tensor(rgba, 64, background=1.0)
    assert t.shape == (3, 64, 64)
    assert torch.allclose(t[:, 0, 0], torch.ones(3))  # transparent -> white
    assert t[0, 32, 32] == pytest.approx(1.0) and t[1, 32, 32] == pytest.approx(0.0, abs=1e-6)
    # no colour bleeding from the (black) transparent pixels at the edge of the red square
    assert float(t[0].min()) > 0.99


def test_loader_items_and_determinism(tmp_path):
    rng = np.random.default_rng(0)
    _tiny_dataset(tmp_path, rng)
    cfg = DataConfig(image_size=16, points_per_shape=64, voxel_resolution=32)
    ds = make_dataset(tmp_path, "train", cfg, seed=3)
    assert len(ds) == 4 and ds.num_shapes == 2
    item = ds[1]
    assert item["image"].shape == (3, 16, 16) and item["points"].shape == (64, 3)
    assert item["voxels"].shape == (1, 32, 32, 32) and item["E"].shape == (4, 4)
    assert torch.equal(ds[1]["points"], item["points"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["points"], item["points"])
    # occupancies stay paired with their points
    inside = (item["points"].norm(dim=1) < 0.3).float()
    assert torch.equal(inside, item["occ"])
    with pytest.raises(InputError, match="no split"):
        make_dataset(tmp_path, "nope", cfg)


def test_loader_uniform_fraction_labels_from_voxels(tmp_path):
    """OccNet-style uniform points: labelled from the 128^3 grid, paired with their labels."""
    rng = np.random.default_rng(0)
    keys = _tiny_dataset(tmp_path, rng)
    rec = _record(rng)
    centres = (np.stack(np.meshgrid(*[np.arange(128)] * 3, indexing="ij"), -1) + 0.5) / 128 - 0.5
    rec.voxels = {32: rec.voxels[32], 128: np.linalg.norm(centres, axis=-1) < 0.3}
    F.write_shape(tmp_path / keys[0] / F.SHAPE_FILE, rec)
    cfg = DataConfig(image_size=16, points_per_shape=400, voxel_resolution=32, uniform_fraction=0.5)
    item = make_dataset(tmp_path, "train", cfg, seed=0)[0]
    pts, occ = item["points"][200:], item["occ"][200:]
    assert pts.shape == (200, 3) and float(pts.abs().max()) <= 0.55
    inside = pts.norm(dim=1) < 0.3
    assert (inside == (occ > 0.5)).float().mean() > 0.97  # cell-size error only, near the sphere


def test_loader_uniform_labels_fall_back_to_finest_stored_grid(tmp_path):
    """A dataset without 128^3 voxels labels uniform points from its finest grid, or says why it cannot."""
    rng = np.random.default_rng(0)
    keys = _tiny_dataset(tmp_path, rng)
    rec = _record(rng)
    centres = (np.stack(np.meshgrid(*[np.arange(32)] * 3, indexing="ij"), -1) + 0.5) / 32 - 0.5
    rec.voxels = {32: np.linalg.norm(centres, axis=-1) < 0.3}
    F.write_shape(tmp_path / keys[0] / F.SHAPE_FILE, rec)
    cfg = DataConfig(image_size=16, points_per_shape=300, voxel_resolution=32, uniform_fraction=1.0)
    item = make_dataset(tmp_path, "train", cfg, seed=0, with_voxels=False)[0]
    inside = item["points"].norm(dim=1) < 0.3
    assert (inside == (item["occ"] > 0.5)).float().mean() > 0.9
    rec.voxels = {}
    F.write_shape(tmp_path / keys[0] / F.SHAPE_FILE, rec)
    with pytest.raises(InputError, match="no voxels_<R> grid"):
        make_dataset(tmp_path, "train", cfg, seed=0, with_voxels=False)[0]


def test_atomic_writes_get_normal_permissions(tmp_path):
    """Files written through a temp name are not left 0600 (mkstemp's mode): others can read results."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    F.write_shape(tmp_path / "s.npz", _record(np.random.default_rng(0)))
    assert (tmp_path / "s.npz").stat().st_mode & 0o777 == 0o666 & ~mask


def test_validation_sets_score_uniform_points_and_the_stored_pairs_alone(tmp_path):
    """'best' follows uniform points (val_points each); 'surface' never mixes in training's uniform share."""
    from dataclasses import replace

    from ifkd.config import get_preset
    from ifkd.train.run import validation_sets

    keys = _tiny_dataset(tmp_path, np.random.default_rng(0))
    assert keys
    cfg = get_preset("tiny")
    cfg = replace(cfg, data=replace(cfg.data, uniform_fraction=0.5), train=replace(cfg.train, val_points=300))
    volume, extra = validation_sets(tmp_path, cfg, {"with_images": False, "with_voxels": False})
    assert (volume.cfg.uniform_fraction, volume.cfg.points_per_shape) == (1.0, 300)
    assert extra["surface"].cfg.uniform_fraction == 0.0
    assert extra["surface"].cfg.points_per_shape == cfg.data.points_per_shape
