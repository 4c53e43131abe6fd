"""binvox reader/writer: round trip, the file's xzy axis order, header validation, resampling."""

from __future__ import annotations

import numpy as np
import pytest

from ifkd.data.shapenet.binvox import Binvox, binvox_bytes, read_binvox, resample_to_object_grid, write_binvox
from ifkd.io import InputError


def _raw(dim: int, flat: np.ndarray, translate="0 0 0", scale="1") -> bytes:
    """Hand-made binvox bytes from a flat array in the file's own order (one run per cell)."""
    header = f"#binvox 1\ndim {dim} {dim} {dim}\ntranslate {translate}\nscale {scale}\ndata\n".encode()
    return header + np.stack([flat.astype(np.uint8), np.ones(flat.size, np.uint8)], 1).tobytes()


def test_round_trip_with_long_runs(tmp_path):
    rng = np.random.default_rng(0)
    grid = np.zeros((32, 32, 32), dtype=bool)
    grid[4:28, 2:30, 10:20] = True  # runs far longer than 255
    grid |= rng.random(grid.shape) < 0.05
    vox = Binvox(grid, np.array([-0.5, -0.25, 0.1]), 1.25)
    write_binvox(tmp_path / "a.binvox", vox)
    back = read_binvox(tmp_path / "a.binvox")
    assert np.array_equal(back.grid, grid)
    np.testing.assert_allclose(back.translate, vox.translate)
    assert back.scale == 1.25


def test_axis_order_is_x_z_y_in_the_file(tmp_path):
    d = 4
    # flat index = x*d*d + z*d + y: index 1 is (x=0, z=0, y=1); index d is (x=0, z=1, y=0).
    for flat_index, expected in [(1, (0, 1, 0)), (d, (0, 0, 1)), (d * d, (1, 0, 0))]:
        flat = np.zeros(d**3, dtype=np.uint8)
        flat[flat_index] = 1
        (tmp_path / "v.binvox").write_bytes(_raw(d, flat))
        grid = read_binvox(tmp_path / "v.binvox").grid
        assert np.argwhere(grid).tolist() == [list(expected)]
        # and our writer puts it back at the same byte position
        assert binvox_bytes(Binvox(grid, np.zeros(3), 1.0)) == binvox_bytes(
            read_binvox(tmp_path / "v.binvox")
        )


@pytest.mark.parametrize(
    "data, message",
    [
        (b"PLY\n", "not a binvox file"),
        (b"#binvox 2\n", "unsupported binvox version"),
        (b"#binvox 1\ndim 4 4 5\ntranslate 0 0 0\nscale 1\ndata\n\x00\x40", "not a cube"),
        (b"#binvox 1\ndim 4 4 4\ntranslate 0 0\nscale 1\ndata\n\x00\x40", "invalid translate"),
        (b"#binvox 1\ndim 4 4 4\ntranslate 0 0 0\nscale 1\ndata\n\x00\x30", "run lengths cover 48"),
        (b"#binvox 1\ndim 4 4 4\ntranslate 0 0 0\nscale 1\ndata\n\x00\x40\x01", "truncated"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, data, message):
    path = tmp_path / "bad.binvox"
    path.write_bytes(data)
    with pytest.raises(InputError, match=message) as info:
        read_binvox(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_binvox(tmp_path / "none.binvox")


def test_resample_to_object_grid():
    rng = np.random.default_rng(1)
    grid = rng.random((16, 16, 16)) < 0.3
    unit = Binvox(grid, np.array([-0.5, -0.5, -0.5]), 1.0)
    assert np.array_equal(resample_to_object_grid(unit, 16), grid)
    # a grid shifted by half the cube: only the upper half of ours is covered
    shifted = Binvox(np.ones((8, 8, 8), bool), np.array([0.0, -0.5, -0.5]), 1.0)
    out = resample_to_object_grid(shifted, 16)
    assert out[8:].all() and not out[:8].any()
