"""Reconstructor: runs of a teacher and a student, inputs of every kind, output frames, and
coarse-to-fine vs dense extraction on trained and analytic fields.

Trained fields: ``train()`` makes real run folders (2 steps each: ``from_run`` needs nothing more),
then the loaded model is overfitted in memory to one training shape, so its field has a real surface
(a 2-step model's field is nearly constant and would make the coarse-to-fine comparison vacuous).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from torch import nn

from ifkd.config import Config, get_preset
from ifkd.data.format import RENDER_DIR, SHAPE_FILE, load_image, read_index, read_shape, read_views, shape_dir
from ifkd.data.loader import make_dataset
from ifkd.eval.metrics import iou_occupancy, mesh_contains
from ifkd.geometry.camera import Viewpoint, view_transform
from ifkd.io import InputError
from ifkd.methods import method_config
from ifkd.reconstruct import (
    CV_TO_GL,
    Reconstruction,
    Reconstructor,
    as_rgba,
    coarse_level,
    to_object_frame,
    view_rotation_gl,
)
from ifkd.train.run import train

SHAPE = "car"
"""Category of the shape the fixture models are overfitted to (a compact one: its surface is large)."""


pytestmark = pytest.mark.usefixtures("one_thread")


def brief_config(method: str) -> Config:
    """The tiny preset, 2 optimiser steps, no validation: enough to write a loadable run folder."""
    cfg = method_config(method, get_preset("tiny"))
    return replace(cfg, train=replace(cfg.train, max_steps=2, batch_size=4, val_shapes=0))


@pytest.fixture(scope="module")
def runs(tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        train(brief_config("teacher"), tiny_dataset, root / "teacher", device="cpu", progress=False)
        train(
            brief_config("ifkd"),
            tiny_dataset,
            root / "student",
            teacher_run=root / "teacher",
            device="cpu",
            progress=False,
        )
    return {"teacher": root / "teacher", "student": root / "student"}


def overfit(rec: Reconstructor, data_root: Path, steps: int, lr: float) -> dict[str, torch.Tensor]:
    """Train ``rec.model`` in place on one training item of category SHAPE; returns that item (batched)."""
    teacher = rec.model.input_kind == "voxels"
    data_cfg = replace(rec.cfg.data, points_per_shape=2048)
    ds = make_dataset(data_root, "train", data_cfg, with_images=not teacher, with_voxels=teacher)
    index = next(i for i, (key, _) in enumerate(ds.items) if key.startswith(f"{SHAPE}/"))
    model = rec.model.train()
    for m in model.modules():
        # Batch statistics of one sample would not match the running ones used at inference.
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    torch.manual_seed(0)
    for step in range(steps):
        ds.set_epoch(step)  # fresh points each step
        batch = {k: v[None] for k, v in ds[index].items()}
        loss = model.training_losses(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return batch


@pytest.fixture(scope="module")
def fitted(runs, tiny_dataset) -> dict[str, tuple[Reconstructor, dict[str, torch.Tensor]]]:
    """Teacher and student loaded from their runs, each overfitted to one car (see module docstring)."""
    out = {}
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        for name, steps, lr in (("teacher", 12, 1e-2), ("student", 300, 1e-2)):
            rec = Reconstructor.from_run(runs[name], device="cpu")
            out[name] = (rec, overfit(rec, tiny_dataset, steps, lr))
    return out


def first_view(root: Path, category: str = SHAPE) -> tuple[Path, Viewpoint]:
    key = next(k for k in read_index(root)["splits"]["train"] if k.startswith(f"{category}/"))
    folder = shape_dir(root, key) / RENDER_DIR
    names, views = read_views(folder)
    return folder / names[0], views[0]


def agreement_iou(a: trimesh.Trimesh, b: trimesh.Trimesh, seed: int = 0) -> float:
    """Occupancy IoU of two meshes at 20k uniform points in the box plus 10k points within ~1 cell of
    either surface (where extractions can differ)."""
    rng = np.random.default_rng(seed)
    pts = [rng.uniform(-0.55, 0.55, size=(20_000, 3))]
    for m in (a, b):
        if len(m.faces):
            near, _ = trimesh.sample.sample_surface(m, 5000, seed=seed)
            pts.append(near + rng.normal(scale=0.01, size=near.shape))
    p = np.concatenate(pts)
    return iou_occupancy(mesh_contains(a, p), mesh_contains(b, p))


# ------------------------------------------------------------------------------------ loading runs


def test_from_run_loads_teacher_and_student(runs, tiny_dataset):
    teacher = Reconstructor.from_run(runs["teacher"], device="cpu")
    student = Reconstructor.from_run(runs["student"], device="cpu")
    assert (teacher.cfg.method, teacher.model.frame, teacher.model.input_kind) == (
        "teacher",
        "object",
        "voxels",
    )
    assert (student.cfg.method, student.model.frame, student.model.input_kind) == ("ifkd", "view", "image")
    assert not teacher.model.training and not student.model.training

    key = read_index(tiny_dataset)["splits"]["test"][0]
    gt = read_shape(shape_dir(tiny_dataset, key) / SHAPE_FILE, voxel_resolutions=(32,))
    vox = torch.from_numpy(gt.voxels[32].astype(np.float32))[None, None]
    (t,) = teacher.reconstruct(vox, resolution=16)
    image, _ = first_view(tiny_dataset)
    (s,) = student.reconstruct([image], resolution=16)
    for rec, frame in ((t, "object"), (s, "view")):
        assert isinstance(rec, Reconstruction) and isinstance(rec.mesh, trimesh.Trimesh)
        assert rec.frame == frame and rec.mesh_object is None
        assert 0 < rec.n_queries <= 17**3
        assert {"load", "encode", "query+mc"} <= set(rec.timings)


def test_teacher_refuses_images_with_a_clear_error(runs, tiny_dataset):
    teacher = Reconstructor.from_run(runs["teacher"], device="cpu")
    image, _ = first_view(tiny_dataset)
    with pytest.raises(ValueError, match="voxel grids"):
        teacher.reconstruct([image])


def test_from_run_names_a_missing_folder(tmp_path):
    with pytest.raises(InputError, match="not found"):
        Reconstructor.from_run(tmp_path / "nope", device="cpu")


# ------------------------------------------------------------------------------------------ inputs


def test_inputs_paths_and_arrays_of_any_kind_and_size(runs, tiny_dataset):
    rec = Reconstructor.from_run(runs["student"], device="cpu")
    path, _ = first_view(tiny_dataset)
    rgba = load_image(path)
    grey = rgba[..., :3].mean(axis=2).astype(np.uint8)
    big = rgba.repeat(3, axis=0).repeat(3, axis=1)
    odd = rgba[5:52, 3:61]  # non-square, not the training size
    inputs = [path, rgba, rgba[..., :3], grey, grey[..., None], np.dstack([grey, rgba[..., 3]]), big, odd]
    out = rec.reconstruct(inputs, resolution=16)
    assert len(out) == len(inputs)
    assert all(isinstance(o.mesh, trimesh.Trimesh) and o.frame == "view" for o in out)
    # A file and its decoded array are the same input.
    assert np.array_equal(out[0].mesh.vertices, out[1].mesh.vertices)
    s = rec.cfg.data.image_size
    for item in inputs:
        x = rec.prepare(item)
        assert x.shape == (3, s, s) and x.dtype == torch.float32
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # Grey inputs give grey tensors; a transparent pixel shows the training background.
    assert torch.equal(rec.prepare(grey)[0], rec.prepare(grey)[2])
    clear = np.zeros((40, 40, 4), np.uint8)
    assert torch.allclose(rec.prepare(clear), torch.full((3, s, s), rec.cfg.data.background))


def test_as_rgba_conversions():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = as_rgba(grey)
    assert out.shape == (3, 4, 4) and np.array_equal(out[..., 0], grey) and np.all(out[..., 3] == 255)
    la = as_rgba(np.dstack([grey, np.full_like(grey, 7)]))
    assert np.array_equal(la[..., 2], grey) and np.all(la[..., 3] == 7)
    for bad, match in (
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        (np.zeros((4, 4, 5), np.uint8), "shape"),
        (np.zeros((1, 4, 3), np.uint8), "shape"),
        (np.zeros(4, np.uint8), "shape"),
    ):
        with pytest.raises(ValueError, match=match):
            as_rgba(bad)


def test_a_corrupt_file_is_named(runs, tmp_path):
    rec = Reconstructor.from_run(runs["student"], device="cpu")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(InputError, match="broken.png"):
        rec.reconstruct([bad])


# ------------------------------------------------------------------------------------------ frames


def test_view_rotation_gl_axes_are_opengl_camera_axes():
    """Independent of the code: the camera sits on +Z of the output frame, and with no elevation the
    object's up (+Y) stays up; with elevation el (camera above), up tilts towards the viewer by el."""
    for az, el in ((0.0, 0.0), (37.0, 0.0), (210.0, 30.0), (300.0, 25.0)):
        E = view_transform(Viewpoint(az, el, 0.0, 0.8))
        R = view_rotation_gl(E)
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.linalg.det(R) == pytest.approx(1.0)
        camera_obj = -E[:3, :3].T @ E[:3, 3]  # camera centre in the object frame
        assert np.allclose(R @ camera_obj, [0.0, 0.0, 0.8 * 1.75], atol=1e-6)
        up = R @ np.array([0.0, 1.0, 0.0])
        assert up[0] == pytest.approx(0.0, abs=1e-6)
        assert up[1] == pytest.approx(np.cos(np.radians(el)), abs=1e-6)
        assert up[2] == pytest.approx(np.sin(np.radians(el)), abs=1e-6)
    assert np.array_equal(CV_TO_GL, np.diag([1.0, -1.0, -1.0]))


def test_pose_gives_consistent_object_and_view_meshes(fitted, tiny_dataset):
    path, view = first_view(tiny_dataset)
    R = view_rotation_gl(view_transform(view))
    # Student (view frame): mesh_object rotated by R is the view mesh.
    rec, _ = fitted["student"]
    (out,) = rec.reconstruct([path], resolution=32, poses=[view])
    assert out.frame == "view" and out.mesh_object is not None and len(out.mesh.faces) > 100
    assert np.allclose(out.mesh_object.vertices @ R.T, out.mesh.vertices, atol=1e-6)
    # The pose's distance is the one queried: the same as passing it explicitly.
    (same,) = rec.reconstruct([path], resolution=32, distance=view.distance)
    assert np.array_equal(same.mesh.vertices, out.mesh.vertices)
    # Teacher (object frame): mesh_object is its canonical mesh, mesh the same turned into the view.
    teacher, batch = fitted["teacher"]
    (plain,) = teacher.reconstruct(batch["voxels"], resolution=32)
    (posed,) = teacher.reconstruct(batch["voxels"], resolution=32, poses=[view])
    assert plain.frame == "object" and posed.frame == "view" and len(plain.mesh.faces) > 100
    assert np.allclose(posed.mesh_object.vertices, plain.mesh.vertices)
    assert np.allclose(plain.mesh.vertices @ R.T, posed.mesh.vertices, atol=1e-6)
    assert np.allclose(to_object_frame(posed.mesh, R).vertices, plain.mesh.vertices, atol=1e-6)


# ----------------------------------------------------------------------- coarse-to-fine vs dense


@pytest.mark.parametrize("name", ["teacher", "student"])
def test_coarse_to_fine_matches_dense_on_trained_fields(fitted, tiny_dataset, name):
    rec, batch = fitted[name]
    inputs = batch["voxels"] if name == "teacher" else batch["image"]
    distance = None if name == "teacher" else float(batch["E"][0, 2, 3])
    (fine,) = rec.reconstruct(inputs, resolution=64, distance=distance)
    (dense,) = rec.reconstruct(inputs, resolution=64, distance=distance, dense=True)
    # The overfitted field has a real surface: a sizeable, closed shape overlapping the car's GT.
    assert len(dense.mesh.faces) > 1000 and dense.mesh.is_watertight
    volume_share = dense.mesh.volume / 1.1**3
    assert 0.01 < volume_share < 0.5
    points = batch["points"][0].numpy()
    if name == "student":  # its mesh is in the view frame (GL axes): move the GT points there
        points = points @ view_rotation_gl(batch["E"][0].double().numpy()).T
    gt_iou = iou_occupancy(mesh_contains(dense.mesh, points), batch["occ"][0].numpy() > 0.5)
    # Tiny student after 300 steps: ~0.5 (teacher ~0.8); a rough car, but a real, shape-driven surface.
    assert gt_iou > 0.35, f"{name} field too far from the shape it was fitted to (IoU {gt_iou:.2f})"
    # The two extractions agree, with far fewer queries.
    assert agreement_iou(fine.mesh, dense.mesh) >= 0.99
    assert dense.n_queries == 65**3 and fine.n_queries < dense.n_queries / 3


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _box_sdf(p: np.ndarray, centre, half) -> np.ndarray:
    q = np.abs(p - np.asarray(centre)) - np.asarray(half)
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)


ANALYTIC = {
    "sphere": lambda p: _sigmoid(60.0 * (0.35 - np.linalg.norm(p - [0.05, -0.02, 0.03], axis=1))),
    "torus": lambda p: _sigmoid(
        80.0 * (0.08 - np.hypot(np.hypot(p[:, 0], p[:, 2]) - 0.3, p[:, 1]))  # ring about Y
    ),
    "table": lambda p: _sigmoid(
        -80.0
        * np.minimum.reduce(
            [
                _box_sdf(p, (0.0, 0.2, 0.0), (0.42, 0.03, 0.3)),
                *(
                    _box_sdf(p, (x, -0.12, z), (0.03, 0.3, 0.03))
                    for x in (-0.35, 0.35)
                    for z in (-0.25, 0.25)
                ),
            ]
        )
    ),
}


ANALYTIC_CASES = [
    ("sphere", 64, 8),
    ("torus", 64, 8),
    ("torus", 100, 16),  # 100 = 25 * 2**2: a non-power-of-two resolution
    ("table", 64, 32),
    ("table", 96, 32),  # 96 = 24 * 2**2
]
"""(field, resolution, first coarse level): the table's 0.06-thick top and legs need coarse cells no
wider than them (1.1 / 32 = 0.034); a 1.1 / 8 grid misses them entirely -- MISE's known limit."""


@pytest.mark.parametrize(("field", "resolution", "coarse"), ANALYTIC_CASES)
def test_coarse_to_fine_matches_dense_on_analytic_fields(runs, field, resolution, coarse):
    rec = Reconstructor.from_run(runs["student"], device="cpu")  # only its eval settings are used
    rec.cfg = replace(rec.cfg, eval=replace(rec.cfg.eval, coarse_resolution=coarse))
    fn = ANALYTIC[field]
    fine, n_fine = rec.extract(fn, resolution)
    dense, n_dense = rec.extract(fn, resolution, dense=True)
    assert n_dense == (resolution + 1) ** 3 and n_fine < n_dense / 3
    assert fine.is_watertight and len(fine.faces) > 500
    assert agreement_iou(fine, dense) >= 0.99


def test_coarse_level_handles_any_resolution():
    assert coarse_level(128, 16) == 16 and coarse_level(64, 16) == 16 and coarse_level(32, 8) == 8
    assert coarse_level(96, 16) == 12 and coarse_level(100, 16) == 25
    assert coarse_level(97, 16) == 97  # odd: one dense level
    assert coarse_level(8, 16) == 8
    for res in range(8, 140):
        c = coarse_level(res, 16)
        assert res % c == 0 and np.log2(res // c).is_integer()
