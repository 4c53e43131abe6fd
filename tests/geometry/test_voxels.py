import numpy as np
import pytest

from ifkd.geometry.voxels import (
    cell_centers_1d,
    downsample_voxels,
    pack_voxels,
    unpack_voxels,
    voxel_centers,
    voxelize,
)
from ifkd.io import InputError


def test_cell_centers_cover_the_cube_symmetrically():
    xs = cell_centers_1d(4, half=0.5)
    np.testing.assert_allclose(xs, [-0.375, -0.125, 0.125, 0.375])
    xs = cell_centers_1d(128)
    assert xs.dtype == np.float32
    np.testing.assert_allclose(xs, -xs[::-1])
    np.testing.assert_allclose(np.diff(xs), 1 / 128, rtol=1e-5)


def test_voxel_centers_layout_is_x_y_z_c_order():
    res = 5
    pts = voxel_centers(res, half=0.5)
    xs = cell_centers_1d(res)
    assert pts.shape == (res**3, 3)
    for i, j, k in [(0, 0, 0), (1, 2, 3), (4, 0, 2), (4, 4, 4)]:
        np.testing.assert_array_equal(pts[(i * res + j) * res + k], [xs[i], xs[j], xs[k]])


def test_voxelize_indexes_grid_by_x_y_z():
    res = 8
    grid = voxelize(lambda p: (p[:, 0] > 0) & (p[:, 2] < -0.25), res)
    assert grid.shape == (res, res, res) and grid.dtype == bool
    expected = np.zeros((res, res, res), dtype=bool)
    expected[4:, :, :2] = True
    np.testing.assert_array_equal(grid, expected)


def test_voxelize_chunking_does_not_change_the_result_and_sphere_volume_is_right():
    def ball(p):
        return (p**2).sum(axis=1) <= 0.4**2

    a = voxelize(ball, 32)
    b = voxelize(ball, 32, chunk=1000)
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean() - 4 / 3 * np.pi * 0.4**3) < 0.01


@pytest.mark.parametrize("res", [1, 3, 32, 33])
def test_pack_unpack_round_trip(res):
    grid = np.random.default_rng(res).random((res, res, res)) < 0.3
    packed = pack_voxels(grid)
    assert packed.dtype == np.uint8 and packed.shape == ((res**3 + 7) // 8,)
    np.testing.assert_array_equal(unpack_voxels(packed, res), grid)
    np.testing.assert_array_equal(packed, np.packbits(grid.reshape(-1)))  # the documented format


def test_unpack_rejects_wrong_sizes_and_types():
    packed = pack_voxels(np.ones((4, 4, 4), dtype=bool))
    with pytest.raises(InputError, match="a.npz: 8 bytes, but a 32\\^3 grid needs 4096"):
        unpack_voxels(packed, 32, where="a.npz")
    with pytest.raises(InputError, match="uint8"):
        unpack_voxels(packed.astype(np.int64), 4)
    with pytest.raises(ValueError):
        pack_voxels(np.ones((4, 4, 2), dtype=bool))


def test_downsample_is_max_pool():
    rng = np.random.default_rng(0)
    grid = rng.random((8, 8, 8)) < 0.05
    out = downsample_voxels(grid, 4)
    ref = np.zeros((2, 2, 2), dtype=bool)
    for i in range(2):
        for j in range(2):
            for k in range(2):
                ref[i, j, k] = grid[4 * i : 4 * i + 4, 4 * j : 4 * j + 4, 4 * k : 4 * k + 4].any()
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(downsample_voxels(grid, 1), grid)
    with pytest.raises(ValueError):
        downsample_voxels(grid, 3)
