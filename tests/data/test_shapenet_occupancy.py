"""Ground truth of real meshes: the inside test on closed meshes, voxels coarse to fine, visible surfaces.

The ShapeNet pathologies (soups, open shells, sheets...) are in test_inside_pathologies.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from ifkd.data.shapenet.meshes import load_mesh, normalise
from ifkd.data.shapenet.occupancy import mesh_ground_truth, outer_surface, voxelize_coarse_to_fine
from ifkd.geometry.inside import InsideTest
from ifkd.geometry.voxels import voxelize

MESHES = "/work/shared/realdata/meshes"


@pytest.fixture(scope="module")
def monkey() -> trimesh.Trimesh:
    return normalise(load_mesh(f"{MESHES}/monkey.glb"))[0]


def _box(extent=0.5) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=(extent, extent, extent))


def test_winding_number_of_a_closed_box_is_exact():
    test = InsideTest(_box())
    inside, outside = np.array([[0.0, 0.0, 0.0], [0.2, -0.2, 0.1]]), np.array([[0.4, 0, 0], [0, 0.3, 0.3]])
    np.testing.assert_allclose(test.winding_number(inside), 1.0, atol=1e-6)
    np.testing.assert_allclose(test.winding_number(outside), 0.0, atol=1e-3)
    assert test(inside).all() and not test(outside).any()


def test_box_with_a_missing_face_still_has_an_inside():
    box = _box()
    top = box.face_normals[:, 1] > 0.5
    open_box = trimesh.Trimesh(box.vertices, box.faces[~top], process=False)
    test = InsideTest(open_box)
    w = test.winding_number(np.array([[0.0, 0.0, 0.0], [0.0, -0.2, 0.0], [0.0, 0.6, 0.0]]))
    np.testing.assert_allclose(w[0], 5.0 / 6.0, atol=1e-3)  # the centre sees 5 of 6 faces
    assert w[1] > 0.5 and w[2] < 0.5  # near the bottom: inside; above the hole: outside
    assert not test.enclosed(np.zeros((1, 3))).any()  # rays escape through the hole: w decides


def test_orientation_does_not_matter():
    box = _box()
    q = np.array([[0.0, 0.0, 0.0], [0.1, 0.1, -0.1], [0.4, 0.0, 0.0]])
    flipped = trimesh.Trimesh(box.vertices, box.faces[:, ::-1], process=False)
    faces = box.faces.copy()
    faces[::3] = faces[::3, ::-1]
    mixed = trimesh.Trimesh(box.vertices, faces, process=False)
    for mesh in (box, flipped, mixed):
        test = InsideTest(mesh)
        np.testing.assert_allclose(test.winding_number(q), [1, 1, 0], atol=1e-3)
        assert list(test(q)) == [True, True, False]


def test_labels_match_on_real_meshes(monkey):
    """On a real mesh with holes and self-intersections, the enclosed certificate never contradicts
    a confident winding number, and the labels are deterministic."""
    rng = np.random.default_rng(0)
    q = np.concatenate(
        [rng.uniform(-0.55, 0.55, (3000, 3)), monkey.sample(3000) + rng.normal(0, 0.01, (3000, 3))]
    )
    test = InsideTest(monkey)
    w, enc = test.winding_number(q), test.enclosed(q)
    assert not (enc & (np.abs(w) < 0.1)).any()
    assert np.array_equal(test(q), InsideTest(monkey)(q))
    assert 0.02 < test(q[:3000]).mean() < 0.3


def test_coarse_to_fine_voxels_equal_dense_on_a_mesh(monkey):
    occ = InsideTest(monkey)

    band = np.concatenate([monkey.sample(20_000, seed=0), monkey.vertices])
    grids = voxelize_coarse_to_fine(occ, band, (16, 32))
    assert np.array_equal(grids[16], voxelize(occ, 16))
    assert np.array_equal(grids[32], voxelize(occ, 32))
    assert 0.02 < grids[32].mean() < 0.5


def test_coarse_to_fine_voxels_equal_dense_up_to_128():
    # Analytic shape (a torus and a thin plate) so the dense 128^3 reference is cheap.
    def occ(p):
        ring = (np.hypot(p[:, 0], p[:, 2]) - 0.3) ** 2 + p[:, 1] ** 2 < 0.08**2
        plate = (np.abs(p[:, 1] + 0.3) < 0.012) & (np.abs(p[:, 0]) < 0.4) & (np.abs(p[:, 2]) < 0.2)
        return ring | plate

    rng = np.random.default_rng(0)
    cand = rng.uniform(-0.5, 0.5, (400_000, 3))
    inside = occ(cand)
    # surface samples: candidates with a neighbour of the other label within 2 mm
    band = cand[inside & ~occ(cand + rng.normal(0, 0.002, cand.shape))]
    band = np.concatenate([band, cand[~inside & occ(cand + rng.normal(0, 0.002, cand.shape))]])
    band = np.concatenate([band + rng.normal(0, 0.003, band.shape) for _ in range(20)])
    grids = voxelize_coarse_to_fine(occ, band, (32, 64, 128))
    for res in (32, 64, 128):
        dense = voxelize(occ, res)
        assert (grids[res] != dense).sum() <= 1e-3 * dense.sum(), res


def test_outer_surface_drops_inner_shell():
    outer, inner = _box(0.8), _box(0.3)
    scene = trimesh.util.concatenate([outer, trimesh.Trimesh(inner.vertices, inner.faces[:, ::-1])])
    rng = np.random.default_rng(0)
    pts, normals = outer_surface(InsideTest(scene), 2000, rng)
    assert np.abs(pts).max(axis=1).min() > 0.39  # every sample on the 0.8 box
    assert (np.einsum("ij,ij->i", pts, normals) > 0).all()  # outward


def test_ground_truth_of_a_sphere():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.4)
    sphere = trimesh.Trimesh(sphere.vertices, sphere.faces[:, ::-1])  # inside out on purpose
    rec = mesh_ground_truth(
        sphere, np.random.default_rng(0), n_points=2000, n_surface=1000, voxel_resolutions=(32,), n_iou=5000
    )
    r = np.linalg.norm(rec.points, axis=1)
    far = np.abs(r - 0.4) > 0.01
    assert np.array_equal(rec.occupancies[far].astype(bool), r[far] < 0.4)
    assert (np.einsum("ij,ij->i", rec.surface_points, rec.surface_normals) > 0).all()
    assert rec.voxels[32].sum() == pytest.approx(4 / 3 * np.pi * 0.4**3 * 32**3, rel=0.05)
    pts = rec.extra["iou_points"].astype(np.float64)
    occ = np.unpackbits(rec.extra["iou_occupancies"], count=len(pts)).astype(bool)
    assert pts.shape == (5000, 3) and np.abs(pts).max() <= 0.55
    r = np.linalg.norm(pts, axis=1)
    assert np.array_equal(occ[np.abs(r - 0.4) > 0.01], r[np.abs(r - 0.4) > 0.01] < 0.4)
