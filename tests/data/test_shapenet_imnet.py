"""IM-NET hdf5 reader: the v1 <-> v2 flip/transpose is undone, points follow, bad files are named."""

from __future__ import annotations

import numpy as np
import pytest

from ifkd.data.shapenet import imnet
from ifkd.io import InputError

h5py = pytest.importorskip("h5py")


def _imnet_of_v1(v1: np.ndarray) -> np.ndarray:
    """IM-NET's own conversion (its data scripts): flip(transpose(v1, (2, 1, 0)), 2)."""
    return np.flip(np.transpose(v1, (2, 1, 0)), 2)


def test_grid_and_points_come_back_to_v1(tmp_path):
    v1 = np.zeros((64, 64, 64), dtype=bool)
    v1[10:50, 5:30, 20:40] = True  # asymmetric box: x 40, y 25, z 20 cells
    v1[45:50, 30:60, 20:25] = True  # a post at high x, low z
    im = _imnet_of_v1(v1)
    # a point at the post's top in v1 cell units, written the way IM-NET stores it (256-grid indices)
    p_v1 = np.array([[47.5, 59.0, 22.5]]) / 64 - 0.5
    p_im = np.stack([p_v1[:, 2], p_v1[:, 1], -p_v1[:, 0]], 1)
    idx = np.round((p_im + 0.5) * 256 - 0.5).astype(np.uint8)
    path = tmp_path / "03001627_vox256.hdf5"
    with h5py.File(path, "w") as f:
        f["voxels"] = im[None, ..., None].astype(np.uint8)
        for lv in imnet.LEVELS:
            f[f"points_{lv}"] = np.repeat(idx[None], 2, axis=1)
            f[f"values_{lv}"] = np.ones((1, 2, 1), np.uint8)
        f["pixels"] = np.full((1, 24, 137, 137), 255, np.uint8)
    shape = imnet.read_shape(path, 0)
    assert np.array_equal(shape.voxels, v1)
    # back in v1 orientation and renormalised with the occupied box
    expected = (p_v1 - shape.loc) / shape.scale
    np.testing.assert_allclose(shape.points[0], expected[0], atol=1.0 / 256 / shape.scale)
    assert shape.pixels.shape == (24, 137, 137) and shape.occupancies.tolist() == [1] * 6
    with pytest.raises(InputError, match="out of range"):
        imnet.read_shape(path, 1)


def test_bad_file(tmp_path):
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        f["voxels"] = np.zeros((1, 64, 64, 64, 1), np.uint8)
    with pytest.raises(InputError, match="missing datasets"):
        imnet.read_shape(path, 0)
    (tmp_path / "y.hdf5").write_text("not hdf5")
    with pytest.raises(InputError, match="not a readable hdf5"):
        imnet.read_shape(tmp_path / "y.hdf5", 0)
