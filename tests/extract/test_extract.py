"""Tests for ifkd.extract: grid convention, marching cubes, coarse-to-fine vs dense, export round-trips."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from skimage import measure

from ifkd.eval.metrics import iou_occupancy, mesh_contains
from ifkd.extract import MESH_FORMATS, coarse_to_fine, dense_grid, export_mesh, extract_mesh, grid_axis
from ifkd.extract.mise import upsample_linear
from ifkd.io import InputError


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def sphere_field(points: np.ndarray, radius: float = 0.4) -> np.ndarray:
    return _sigmoid(60.0 * (radius - np.linalg.norm(points, axis=1)))


def _box_sdf(points: np.ndarray, centre, half_size) -> np.ndarray:
    q = np.abs(points - np.asarray(centre)) - np.asarray(half_size)
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)


def bar_field(points: np.ndarray) -> np.ndarray:
    """A thin bar 0.06 x 0.8 x 0.06 (about 2 coarse cells thick at 32^3 in the 1.1 box)."""
    return _sigmoid(-80.0 * _box_sdf(points, (0.05, 0.0, -0.03), (0.03, 0.4, 0.03)))


def boxes_field(points: np.ndarray) -> np.ndarray:
    """A union of three boxes (a table-like shape)."""
    sdf = np.minimum.reduce(
        [
            _box_sdf(points, (0.0, 0.2, 0.0), (0.4, 0.04, 0.3)),
            _box_sdf(points, (-0.3, -0.1, 0.0), (0.05, 0.26, 0.05)),
            _box_sdf(points, (0.3, -0.1, 0.1), (0.05, 0.26, 0.05)),
        ]
    )
    return _sigmoid(-80.0 * sdf)


def _grid_points(resolution: int, half: float) -> np.ndarray:
    ax = grid_axis(resolution, half)
    return np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), axis=-1)


# ------------------------------------------------------------- marching cubes


def test_grid_axis_convention():
    ax = grid_axis(4, 0.55)
    assert ax.shape == (5,) and ax[0] == -0.55 and ax[-1] == pytest.approx(0.55)
    assert np.allclose(np.diff(ax), 1.1 / 4)


def test_sphere_mesh_is_watertight_outward_and_accurate():
    values = sphere_field(_grid_points(64, 0.55).reshape(-1, 3)).reshape((65,) * 3)
    mesh = extract_mesh(values, 0.5, 0.55)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0  # outward faces
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 0.4**3, rel=0.01)
    assert mesh.area == pytest.approx(4 * np.pi * 0.4**2, rel=0.01)
    assert np.allclose(np.linalg.norm(mesh.vertices, axis=1), 0.4, atol=2e-3)
    # skimage's marching cubes on the same grid agrees on area and volume
    step = 1.1 / 64
    verts, faces, _, _ = measure.marching_cubes(values, 0.5, spacing=(step, step, step))
    sk = trimesh.Trimesh(verts - 0.55, faces, process=False)
    assert abs(sk.area) == pytest.approx(mesh.area, rel=2e-3)
    assert abs(sk.volume) == pytest.approx(mesh.volume, rel=2e-3)


def test_vertices_map_exactly_to_object_coordinates():
    # a linear field crossing 0 at x = 0.123: every vertex sits on that plane, and padding closes
    # the half-space x < 0.123 on the faces of the box
    pts = _grid_points(10, 0.5)
    mesh = extract_mesh(0.123 - pts[..., 0], threshold=0.0, half=0.5)
    on_plane = np.isclose(mesh.vertices[:, 0], 0.123, atol=1e-9)
    on_box = np.isclose(np.abs(mesh.vertices), 0.5, atol=1e-6).any(axis=1)
    assert on_plane.any() and np.all(on_plane | on_box)
    assert mesh.is_watertight
    assert mesh.bounds == pytest.approx(np.array([[-0.5, -0.5, -0.5], [0.123, 0.5, 0.5]]), abs=1e-6)
    assert mesh.volume == pytest.approx(0.623, rel=1e-6)


def test_cavity_field_keeps_outward_orientation():
    # inside = box minus a sphere: padding closes the outer box, the cavity's faces point inwards
    values = 1.0 - sphere_field(_grid_points(48, 0.55).reshape(-1, 3)).reshape((49,) * 3)
    mesh = extract_mesh(values, 0.5, 0.55)
    assert mesh.volume == pytest.approx(1.1**3 - 4 / 3 * np.pi * 0.4**3, rel=0.01)


def test_empty_and_full_fields():
    empty = extract_mesh(np.zeros((9, 9, 9)), 0.5, 0.55)
    assert len(empty.faces) == 0 and len(empty.vertices) == 0
    full = extract_mesh(np.ones((9, 9, 9)), 0.5, 0.55)
    assert full.is_watertight and full.volume == pytest.approx(1.1**3, rel=1e-5)


def test_bad_grids_are_rejected():
    with pytest.raises(ValueError, match="cubic"):
        extract_mesh(np.zeros((4, 5, 4)))
    bad = np.zeros((5, 5, 5))
    bad[2, 2, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        extract_mesh(bad)


# ------------------------------------------------------------- dense and coarse-to-fine grids


def test_dense_grid_matches_meshgrid_and_respects_batches():
    calls = []

    def fn(p):
        calls.append(len(p))
        assert p.dtype == np.float32 and p.shape[1] == 3
        return p[:, 0] + 2 * p[:, 1] - 3 * p[:, 2]

    values = dense_grid(fn, 16, half=0.5, batch_points=1000)
    pts = _grid_points(16, 0.5)
    assert np.allclose(values, pts[..., 0] + 2 * pts[..., 1] - 3 * pts[..., 2], atol=1e-6)
    assert max(calls) <= 1000 and sum(calls) == 17**3


def test_upsample_is_exact_on_trilinear_fields():
    pts = _grid_points(8, 0.5)
    f = lambda p: 1 + p[..., 0] - 2 * p[..., 1] + 0.5 * p[..., 2] + 3 * p[..., 0] * p[..., 1] * p[..., 2]  # noqa: E731
    up = upsample_linear(f(pts))
    assert up.shape == (17, 17, 17)
    assert np.allclose(up, f(_grid_points(16, 0.5)))


@pytest.mark.parametrize("field", [sphere_field, bar_field, boxes_field], ids=["sphere", "bar", "boxes"])
def test_coarse_to_fine_matches_dense_with_far_fewer_queries(field):
    dense = dense_grid(field, 128)
    fine, n_queries = coarse_to_fine(field, 128, 32)
    iou = iou_occupancy(fine >= 0.5, dense >= 0.5)
    assert iou >= 0.99
    assert dense.size / n_queries >= 8.0
    # the meshes agree too, judged by occupancy at random points
    pts = np.random.default_rng(0).uniform(-0.55, 0.55, size=(20_000, 3))
    a = mesh_contains(extract_mesh(fine), pts)
    b = mesh_contains(extract_mesh(dense), pts)
    assert iou_occupancy(a, b) >= 0.99


def test_coarse_to_fine_queries_each_point_once_and_counts_them():
    seen: list[np.ndarray] = []

    def fn(p):
        seen.append(p.copy())
        return sphere_field(p)

    _, n_queries = coarse_to_fine(fn, 64, 16, batch_points=5000)
    allp = np.concatenate(seen)
    assert len(allp) == n_queries
    assert len(np.unique(allp, axis=0)) == n_queries


def test_coarse_to_fine_edge_cases():
    values, n = coarse_to_fine(sphere_field, 32, 32)
    assert n == 33**3 and np.array_equal(values, dense_grid(sphere_field, 32))
    empty, n_empty = coarse_to_fine(lambda p: np.zeros(len(p)), 64, 16)
    assert n_empty == 17**3 and not (empty >= 0.5).any()
    with pytest.raises(ValueError, match="power of 2"):
        coarse_to_fine(sphere_field, 100, 32)


# ------------------------------------------------------------- export


@pytest.fixture
def box_mesh():
    mesh = trimesh.creation.box((0.3, 0.5, 0.7))
    mesh.apply_translation([0.1, 0.2, 0.3])
    return mesh


@pytest.mark.parametrize("fmt", MESH_FORMATS)
def test_export_round_trip(tmp_path, box_mesh, fmt):
    path = export_mesh(box_mesh, tmp_path / f"shape.{fmt}")
    loaded = trimesh.load(path, force="mesh")
    assert len(loaded.faces) == 12
    assert np.allclose(loaded.bounds, box_mesh.bounds, atol=1e-6)
    assert loaded.volume == pytest.approx(box_mesh.volume, rel=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == [f"shape.{fmt}"]  # no temp file left behind
    empty = export_mesh(extract_mesh(np.zeros((3, 3, 3))), tmp_path / f"empty.{fmt}")
    assert len(trimesh.load(empty, force="mesh").faces) == 0


def test_export_glb_is_y_up(tmp_path, box_mesh):
    # a mesh in the OpenCV view frame (+Y down) is turned over for glTF; other formats are untouched
    glb = trimesh.load(export_mesh(box_mesh, tmp_path / "v.glb", up="-y"), force="mesh")
    turned = box_mesh.vertices * [1.0, -1.0, -1.0]  # 180 deg about X
    assert np.allclose(glb.bounds, [turned.min(axis=0), turned.max(axis=0)], atol=1e-6)
    assert glb.volume == pytest.approx(box_mesh.volume, rel=1e-5)  # a rotation, not a mirror
    zup = trimesh.load(export_mesh(box_mesh, tmp_path / "z.glb", up="+z"), force="mesh")
    assert np.allclose(zup.extents, box_mesh.extents[[0, 2, 1]], atol=1e-6)
    obj = trimesh.load(export_mesh(box_mesh, tmp_path / "v.obj", up="-y"), force="mesh")
    assert np.allclose(obj.bounds, box_mesh.bounds, atol=1e-6)


def test_export_rejects_unknown_format(tmp_path, box_mesh):
    with pytest.raises(InputError, match="unknown mesh format"):
        export_mesh(box_mesh, tmp_path / "shape.xyz")
    assert export_mesh(box_mesh, tmp_path / "noext", file_format="PLY").is_file()
