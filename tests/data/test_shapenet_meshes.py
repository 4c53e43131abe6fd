"""Mesh loading (all real formats, errors), normalisation to the v1 frame and the v2 -> v1 rotation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from ifkd.data.shapenet import meshes
from ifkd.io import InputError

REAL = Path("/work/shared/realdata/meshes")


@pytest.mark.parametrize("name", sorted(p.name for p in REAL.iterdir()))
def test_real_meshes_load_and_normalise(name):
    mesh = meshes.load_mesh(REAL / name)
    assert len(mesh.faces) > 100 and np.isfinite(mesh.vertices).all()
    norm, loc, scale = meshes.normalise(mesh)
    lo, hi = norm.bounds
    np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-9)
    assert np.linalg.norm(hi - lo) == pytest.approx(1.0)
    np.testing.assert_allclose(norm.vertices * scale + loc, mesh.vertices, atol=1e-9)


def test_glb_scene_transforms_are_applied():
    scene = trimesh.load(REAL / "Duck.glb")
    np.testing.assert_allclose(meshes.load_mesh(REAL / "Duck.glb").bounds, scene.bounds, atol=1e-6)


def test_obj_without_its_mtl(tmp_path):
    (tmp_path / "m.obj").write_text(
        "mtllib missing.mtl\nusemtl red\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\n"
    )
    assert len(meshes.load_mesh(tmp_path / "m.obj").faces) == 2


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("a.obj", None, "mesh file not found"),
        ("a.fbx", "x", "unsupported mesh type"),
        ("a.obj", "v 0 0 0\nv 1 0 0\n", "no triangles"),
        ("a.obj", "v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n", "degenerate"),
        ("a.ply", "garbage", "unreadable mesh"),
    ],
)
def test_bad_meshes_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        meshes.load_mesh(path)
    assert str(path) in str(info.value)


def test_v2_rotation_maps_front_minus_z_to_plus_x(tmp_path):
    # A "v2" model: front (a nose) towards -Z, centred on its centroid, as ShapeNetCore v2 stores it.
    body = trimesh.creation.box(extents=(0.2, 0.3, 0.4))
    nose = trimesh.creation.box(
        extents=(0.05, 0.05, 0.1), transform=trimesh.transformations.translation_matrix([0, 0, -0.25])
    )
    v2 = trimesh.util.concatenate([body, nose])
    v2.apply_translation(-v2.center_mass)
    (tmp_path / "02691156" / "m1" / "models").mkdir(parents=True)
    v2.export(tmp_path / "02691156" / "m1" / "models" / "model_normalized.obj")
    path, version = meshes.find_shapenet_mesh(tmp_path, "02691156", "m1")
    assert version == 2
    v1 = meshes.load_shapenet_mesh(path, version)
    lo, hi = v1.bounds
    assert hi[0] - lo[0] > 0.4 > hi[2] - lo[2]  # the long axis is now X
    front = v1.vertices[v1.vertices[:, 0] > hi[0] - 1e-6]
    back = v1.vertices[v1.vertices[:, 0] < lo[0] + 1e-6]
    assert np.ptp(front[:, 2]) < 0.1 < np.ptp(back[:, 2])  # the narrow nose went to +X
    assert np.linalg.norm(hi - lo) == pytest.approx(1.0)
    assert meshes.find_shapenet_mesh(tmp_path, "02691156", "missing") is None


def test_find_mesh_files_is_recursive_and_skips_hidden(tmp_path):
    for rel in ["a/b/x.OBJ", "y.stl", ".hidden/z.ply", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert [p.relative_to(tmp_path).as_posix() for p in meshes.find_mesh_files(tmp_path)] == [
        "a/b/x.OBJ",
        "y.stl",
    ]
    with pytest.raises(InputError, match="mesh folder not found"):
        meshes.find_mesh_files(tmp_path / "nope")


def test_obj_with_a_latin1_comment_loads(tmp_path):
    """trimesh decodes non-UTF-8 text through charset_normalizer (a declared dependency)."""
    path = tmp_path / "latin1.obj"
    path.write_bytes(
        b"# caf\xe9 cr\xe9\xe9 par un mod\xe9leur\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n"
        b"f 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
    )
    assert len(meshes.load_mesh(path).faces) == 4
