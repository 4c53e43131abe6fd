"""The inside test on ShapeNet's pathologies: each fixture must give the solid a person would draw.

Scored as IoU against the analytic solid at uniform points farther than ``AWAY`` from every face (the
labels of points on a surface are a matter of convention).
"""

from __future__ import annotations

import igl
import numpy as np
import pytest
import trimesh

from ifkd.data.synth.families import make_shape
from ifkd.geometry.inside import SHEET_HALF_THICKNESS, InsideTest, clean_soup
from ifkd.geometry.soup import shapenet_soup

AWAY = 0.01
N = 40_000


def _box(lo, hi) -> trimesh.Trimesh:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return trimesh.creation.box(
        extents=hi - lo, transform=trimesh.transformations.translation_matrix((lo + hi) / 2)
    )


def _in_boxes(p: np.ndarray, boxes) -> np.ndarray:
    out = np.zeros(len(p), dtype=bool)
    for lo, hi in boxes:
        out |= np.all((p > lo) & (p < hi), axis=1)
    return out


def _concat(*meshes: trimesh.Trimesh) -> trimesh.Trimesh:
    return trimesh.util.concatenate(list(meshes))


def _score(mesh: trimesh.Trimesh, truth_fn, reference: trimesh.Trimesh | None = None) -> float:
    """IoU of InsideTest(mesh) vs truth_fn at uniform points away from the reference surface."""
    rng = np.random.default_rng(0)
    p = rng.uniform(-0.55, 0.55, (N, 3))
    ref = clean_soup(reference if reference is not None else mesh)
    d2 = igl.point_mesh_squared_distance(p, np.asarray(ref.vertices), np.asarray(ref.faces, dtype=np.int64))[
        0
    ]
    p = p[d2 > AWAY**2]
    got, want = InsideTest(mesh)(p), truth_fn(p)
    assert want.any()
    return float((got & want).sum() / (got | want).sum())


BOX = ((-0.3, -0.2, -0.25), (0.3, 0.2, 0.25))


def test_every_face_duplicated_reversed():
    box = _box(*BOX)
    soup = trimesh.Trimesh(box.vertices, np.concatenate([box.faces, box.faces[:, ::-1]]), process=False)
    assert _score(soup, lambda p: _in_boxes(p, [BOX])) >= 0.95


def test_open_box_is_closed_over():
    box = _box(*BOX)
    top = np.flatnonzero(box.face_normals[:, 1] > 0.9)
    assert len(top) == 2
    open_box = trimesh.Trimesh(box.vertices, np.delete(box.faces, top, axis=0), process=False)
    assert not open_box.is_watertight
    assert _score(open_box, lambda p: _in_boxes(p, [BOX]), reference=box) >= 0.95


def test_interpenetrating_parts_are_their_union():
    a, b = ((-0.3, -0.1, -0.1), (0.2, 0.1, 0.1)), ((-0.1, -0.3, -0.15), (0.1, 0.3, 0.15))
    assert _score(_concat(_box(*a), _box(*b)), lambda p: _in_boxes(p, [a, b])) >= 0.95


def test_internal_faces_and_inner_shells_stay_solid():
    box = _box(*BOX)
    # a double-sided dividing wall through the middle, and an inner closed part wound inside-out
    wall = np.array([[0.0, -0.2, -0.25], [0.0, 0.2, -0.25], [0.0, 0.2, 0.25], [0.0, -0.2, 0.25]])
    quad = np.array([[0, 1, 2], [0, 2, 3]])
    wall_mesh = trimesh.Trimesh(wall, np.concatenate([quad, quad[:, ::-1]]), process=False)
    inner = _box((-0.2, -0.1, -0.1), (-0.05, 0.1, 0.1))
    inner.invert()
    mesh = _concat(box, wall_mesh, inner)
    assert _score(mesh, lambda p: _in_boxes(p, [BOX])) >= 0.95


def _table():
    legs = [((x - 0.03, -0.4, z - 0.03), (x + 0.03, 0.1, z + 0.03)) for x in (-0.3, 0.3) for z in (-0.2, 0.2)]
    top = np.array([[-0.35, 0.1, -0.25], [0.35, 0.1, -0.25], [0.35, 0.1, 0.25], [-0.35, 0.1, 0.25]])
    quad = np.array([[0, 1, 2], [0, 2, 3]])
    sheet = trimesh.Trimesh(top, np.concatenate([quad, quad[:, ::-1]]), process=False)
    return _concat(sheet, *[_box(*leg) for leg in legs]), legs


def test_table_top_one_face_thick():
    table, legs = _table()
    assert _score(table, lambda p: _in_boxes(p, legs)) >= 0.95
    # the sheet is not lost: it is one 128^3 voxel thick in the labels
    test = InsideTest(table)
    near = np.array(
        [[0.0, 0.1 + 0.5 * SHEET_HALF_THICKNESS, 0.0], [0.1, 0.1 - 0.5 * SHEET_HALF_THICKNESS, 0.1]]
    )
    far = np.array([[0.0, 0.1 + 3 * SHEET_HALF_THICKNESS, 0.0], [0.0, 0.0, 0.0]])
    assert test(near).all() and not test(far).any()
    assert "sheet" in set(test.report.role)


def test_duplicate_vertices_not_merged():
    box = _box(*BOX)
    soup = trimesh.Trimesh(
        box.triangles.reshape(-1, 3), np.arange(len(box.faces) * 3).reshape(-1, 3), process=False
    )
    assert _score(soup, lambda p: _in_boxes(p, [BOX])) >= 0.95


def test_inconsistent_winding_per_part():
    a, b = ((-0.4, -0.1, -0.1), (-0.1, 0.1, 0.1)), ((0.1, -0.2, -0.2), (0.4, 0.2, 0.2))
    inverted = _box(*a)
    inverted.invert()
    scrambled = _box(*b)
    faces = np.asarray(scrambled.faces).copy()
    faces[::3] = faces[::3, ::-1]  # a third of its faces wound the other way
    scrambled = trimesh.Trimesh(scrambled.vertices, faces, process=False)
    assert _score(_concat(inverted, scrambled), lambda p: _in_boxes(p, [a, b])) >= 0.95


def test_closed_meshes_unchanged():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.4)
    assert _score(sphere, lambda p: np.linalg.norm(p, axis=1) < 0.4) >= 0.99


@pytest.mark.parametrize("category", ["chair", "airplane", "lamp"])
def test_procedural_shape_as_a_shapenet_soup(category):
    """All pathologies at once on a procedural shape (interpenetrating parts, thin legs)."""
    shape = make_shape(category, 11).normalised()
    mesh = shape.to_mesh()
    soup = shapenet_soup(mesh, np.random.default_rng(1))
    assert len(soup.faces) == 2 * len(mesh.faces)
    assert _score(soup, shape.occupancy, reference=mesh) >= 0.95
