import numpy as np
import pytest
import trimesh

from ifkd.geometry.sampling import (
    NEAR_SURFACE_SIGMAS,
    PADDED_HALF,
    sample_mesh_surface,
    sample_point_values,
    sample_uniform,
)

R = 0.3  # test sphere radius


def sphere_occupancy(p: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p, axis=1) <= R


def sphere_surface(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return R * v / np.linalg.norm(v, axis=1, keepdims=True)


def test_sample_uniform_fills_the_padded_cube():
    pts = sample_uniform(20000, np.random.default_rng(0))
    assert pts.shape == (20000, 3)
    assert np.abs(pts).max() <= PADDED_HALF
    assert np.abs(pts).max() > 0.54
    assert np.all(np.abs(pts.mean(axis=0)) < 0.01)


def test_point_values_layout_dtypes_and_labels():
    pts, occ = sample_point_values(sphere_occupancy, sphere_surface(5000), np.random.default_rng(1))
    assert pts.shape == (10000, 3) and pts.dtype == np.float32
    assert occ.shape == (10000,) and occ.dtype == np.uint8
    assert np.abs(pts).max() <= PADDED_HALF
    # labels are the occupancy of the stored (float32) points exactly
    np.testing.assert_array_equal(occ, sphere_occupancy(pts.astype(np.float64)))
    # the first 128 are uniform in the cube, the rest hug the surface
    dist = np.abs(np.linalg.norm(pts, axis=1) - R)
    assert dist[:128].mean() > 0.15 and dist[128:].mean() < 0.03


def test_near_surface_points_mix_inside_and_outside_at_the_stated_scales():
    surface = sphere_surface(20000)
    pts, occ = sample_point_values(
        sphere_occupancy, surface, np.random.default_rng(2), n_total=40000, n_uniform=0
    )
    inside = occ.mean()
    assert 0.4 < inside < 0.6, inside  # symmetric noise around the surface
    offset = np.linalg.norm(pts, axis=1) - R
    half = len(pts) // 2
    # radial offset of isotropic noise has the std of one axis: sigma_1 then sigma_2 by layout
    assert abs(offset[:half].std() - NEAR_SURFACE_SIGMAS[0]) < 0.002
    assert abs(offset[half:].std() - NEAR_SURFACE_SIGMAS[1]) < 0.004


def test_point_values_are_deterministic_and_clipped():
    surface = np.array([[0.549, 0.0, 0.0]])
    a = sample_point_values(lambda p: p[:, 0] > 0.5, surface, np.random.default_rng(3), 500, 0)
    b = sample_point_values(lambda p: p[:, 0] > 0.5, surface, np.random.default_rng(3), 500, 0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].max() <= np.float32(PADDED_HALF)
    assert (a[0][:, 0] == np.float32(PADDED_HALF)).any()  # noise pushed some past the cube: clipped


def test_point_values_reject_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n_uniform"):
        sample_point_values(sphere_occupancy, sphere_surface(10), rng, n_total=10, n_uniform=20)
    with pytest.raises(ValueError, match="surface_points"):
        sample_point_values(sphere_occupancy, np.zeros((0, 3)), rng, n_total=10, n_uniform=2)
    with pytest.raises(ValueError, match="occupancy_fn"):
        sample_point_values(lambda p: np.ones(3, bool), sphere_surface(10), rng, n_total=10, n_uniform=2)


def test_mesh_surface_samples_are_area_uniform_with_face_normals():
    mesh = trimesh.creation.box(extents=(1.0, 2.0, 4.0))
    pts, nrm = sample_mesh_surface(mesh, 70000, np.random.default_rng(4))
    assert pts.shape == nrm.shape == (70000, 3)
    half = np.array([0.5, 1.0, 2.0])
    # every point on a face, with that face's outward normal
    on = np.isclose(np.abs(pts), half, atol=1e-9)
    assert np.all(on.any(axis=1))
    axis = np.argmax(np.abs(nrm), axis=1)
    assert np.all(on[np.arange(len(pts)), axis])
    np.testing.assert_allclose(nrm[np.arange(len(pts)), axis], np.sign(pts[np.arange(len(pts)), axis]))
    # fraction per axis proportional to area: x faces 2*8, y faces 2*4, z faces 2*2 of 28
    frac = np.bincount(axis, minlength=3) / len(pts)
    np.testing.assert_allclose(frac, [16 / 28, 8 / 28, 4 / 28], atol=0.01)


def test_mesh_surface_sampling_is_deterministic_and_rejects_empty_meshes():
    mesh = trimesh.creation.icosphere()
    a = sample_mesh_surface(mesh, 100, np.random.default_rng(5))
    b = sample_mesh_surface(mesh, 100, np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    empty = trimesh.Trimesh(vertices=np.zeros((3, 3)), faces=[[0, 1, 2]], process=False)
    with pytest.raises(ValueError, match="zero area"):
        sample_mesh_surface(empty, 10, np.random.default_rng(0))
