"""Multi-view fusion with known poses (Reconstructor.reconstruct_views, `ifkd reconstruct --views-fused`):
points queried in the object frame, projected into every view, the views' logits fused into one mesh.

With the shipped weights, fusing 4 views of a car no model trained on beats each of the 4 single views
(IoU); one fused view is exactly the single-view field; the CLI reads a rendering folder's poses or one
``--pose`` per image and writes one object-frame mesh.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from ifkd.cli import main
from ifkd.commands import reconstruct as command
from ifkd.data.format import RENDER_DIR, SHAPE_FILE, read_eval_surface, read_iou_points, read_views
from ifkd.data.synth.generate import SynthSettings, generate_dataset
from ifkd.eval.metrics import evaluate_mesh
from ifkd.geometry.camera import view_transform
from ifkd.reconstruct import (
    DEFAULT_FUSION,
    FUSION_RULES,
    Reconstructor,
    fuse_logits,
    view_rotation_gl,
)

SHAPE = "car/0002"
"""The test split's car of :data:`SETTINGS` (seed 2024: never trained on)."""
SETTINGS = SynthSettings(per_category=3, views=4, seed=2024, image_size=137, categories=("car",))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shape(tmp_path_factory):
    """(rendering folder, image paths, viewpoints, GT (surface, normals, IoU points, labels))."""
    root = tmp_path_factory.mktemp("multiview_data")
    generate_dataset(root, SETTINGS, progress=False)
    folder = root / SHAPE
    names, views = read_views(folder / RENDER_DIR)
    gt = (*read_eval_surface(folder / SHAPE_FILE), *read_iou_points(folder / SHAPE_FILE))
    return folder / RENDER_DIR, [folder / RENDER_DIR / n for n in names], views, gt


@pytest.fixture(scope="module")
def rec() -> Reconstructor:
    return Reconstructor.from_run("pretrained", device="cpu")


def _iou(mesh: trimesh.Trimesh, gt) -> float:
    return evaluate_mesh(mesh, *gt, n_surface=20_000, edge=False, rng=np.random.default_rng(0))["iou"]


def test_fusing_four_views_beats_each_single_view(rec, shape):
    _, files, views, gt = shape
    assert len(views) == 4
    single = [_iou(rec.reconstruct_views([f], [v], 64).mesh, gt) for f, v in zip(files, views)]
    fused = rec.reconstruct_views(files, views, 64)
    assert fused.frame == "object" and fused.views == 4 and fused.mesh_object is fused.mesh
    assert fused.problem() is None
    iou = _iou(fused.mesh, gt)
    assert all(iou > s for s in single), (iou, single)
    assert iou > 0.8 and iou > max(single) + 0.02, (iou, single)


def test_one_fused_view_is_the_single_view_field(rec, shape):
    """Same field, two frames: object points p through reconstruct_views' projection, and the view-frame
    points R p through reconstruct's (the pose's distance in both)."""
    _, files, views, _ = shape
    view = views[1]
    code = rec.encode(rec.prepare(files[1], reframe=False)[None])
    points = np.random.default_rng(0).uniform(-0.5, 0.5, size=(5000, 3))
    fused = rec.fused_field_fn(code, [view])(points)
    R = view_rotation_gl(view_transform(view))  # object -> output (view-aligned, GL axes)
    single = rec.field_fn(code, 0, view.distance)(points @ R.T)
    assert np.allclose(fused, single, atol=1e-5)
    assert 0.02 < float(np.mean(fused > 0.5)) < 0.6  # a real object in the box


def test_fusion_rules():
    logits = torch.tensor([[2.0, -1.0, 3.0], [0.0, 1.0, -4.0]])
    assert torch.equal(fuse_logits(logits, "mean"), torch.tensor([1.0, 0.0, -0.5]))
    assert torch.equal(fuse_logits(logits, "min"), torch.tensor([0.0, -1.0, -4.0]))  # outside if ANY says so
    with pytest.raises(ValueError, match="fusion 'max'"):
        fuse_logits(logits, "max")
    # The CLI's copies (kept so that --help does not import torch) are the library's.
    assert command.FUSION_RULES == FUSION_RULES and command.DEFAULT_FUSION == DEFAULT_FUSION


def test_views_and_poses_must_pair(rec, shape):
    _, files, views, _ = shape
    with pytest.raises(ValueError, match="2 image\\(s\\) but 1 pose\\(s\\)"):
        rec.reconstruct_views(files[:2], views[:1], 16)


def test_cli_fuses_a_rendering_folder_or_posed_images(shape, tmp_path, capsys):
    folder, files, views, gt = shape
    base = ["reconstruct", "--model", "pretrained", "--views-fused", "--resolution", "48", "--device", "cpu"]
    assert main([*base, str(folder), "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "4 views fused (mean)" in out and "object frame" in out and "bounding-box diagonal about 1" in out
    from_folder = trimesh.load(tmp_path / "a" / "fused" / "mesh.obj", force="mesh", process=False)
    assert _iou(from_folder, gt) > 0.75  # the object frame: scored against the GT as it is
    poses = [["--pose", repr(v.azimuth), repr(v.elevation), repr(v.distance_ratio)] for v in views]
    argv = [*base, *map(str, files), "--out", str(tmp_path / "b"), *sum(poses, [])]
    assert main(argv) == 0
    from_poses = trimesh.load(tmp_path / "b" / "fused" / "mesh.obj", force="mesh", process=False)
    assert np.allclose(from_poses.vertices, from_folder.vertices)
    capsys.readouterr()
    assert main([*base, *map(str, files), "--out", str(tmp_path / "c"), *poses[0]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "4 images need one --pose AZ EL [DIST] each" in err[0]
