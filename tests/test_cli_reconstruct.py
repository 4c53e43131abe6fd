"""`ifkd reconstruct` end to end: a trained run on image folders, a corrupt file in the batch, the
output formats, --pose, and mesh quality with a perfect field (test_evaluate.py's GroundTruthField).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh
from helpers import perfect_reconstructor
from PIL import Image
from scipy.spatial import cKDTree

from ifkd.cli import main
from ifkd.data.format import RENDER_DIR, SHAPE_FILE, read_index, read_shape, read_views, shape_dir
from ifkd.eval.metrics import iou_occupancy, mesh_contains
from ifkd.geometry.camera import view_transform
from ifkd.geometry.voxels import uniform_points_in_grid
from ifkd.reconstruct import Reconstructor, view_rotation_gl

HERE = Path(__file__).resolve().parent


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(tiny_runs) -> dict[str, Path]:
    """The shared tiny teacher + KD student run folders (tests/conftest.py)."""
    return tiny_runs


@pytest.fixture(scope="module")
def perfect(tiny_dataset) -> Reconstructor:
    return perfect_reconstructor("view", tiny_dataset)


@pytest.fixture
def use_perfect(perfect, monkeypatch) -> Reconstructor:
    """`--model ANY` loads the perfect-field reconstructor."""
    monkeypatch.setattr(
        Reconstructor, "from_run", classmethod(lambda cls, run, which="best", device="auto": perfect)
    )
    return perfect


def test_images_and_folders_with_a_corrupt_file(runs, tiny_dataset, tmp_path, capsys):
    key = read_index(tiny_dataset)["splits"]["test"][3]
    folder = shape_dir(tiny_dataset, key) / RENDER_DIR
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(folder / "00.png", inputs / "a.png")
    Image.open(folder / "01.png").convert("L").save(inputs / "b_grey.jpg")  # grey, no alpha, JPEG
    (inputs / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (inputs / "notes.txt").write_text("not an image suffix: ignored")
    out = tmp_path / "out"
    # The shipped weights: the 2-step fixture student's field never crosses 0.5, and an empty mesh
    # is now a failed image, not a result.
    argv = ["reconstruct", str(inputs), str(folder / "02.png"), "--model", "pretrained"]
    argv += ["--out", str(out), "--resolution", "16", "--device", "cpu"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["02", "a", "b_grey"]  # the others still came out
    for name in ("02", "a", "b_grey"):
        assert (out / name / "mesh.obj").is_file()
    assert "3 of 4 images reconstructed" in captured.out
    listed = [line for line in captured.err.splitlines() if "bad.png" in line]
    assert listed and all("not an image file" in line or "truncated" in line for line in listed)
    assert len(listed) == 2  # as it happens ("skipped: ...") and in the final list of failures


def test_a_teacher_run_is_refused_with_one_line(runs, tiny_dataset, tmp_path, capsys):
    image = shape_dir(tiny_dataset, read_index(tiny_dataset)["splits"]["test"][0]) / RENDER_DIR / "00.png"
    argv = ["reconstruct", str(image), "--model", str(runs["teacher"]), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "voxel grids" in err[0] and str(runs["teacher"]) in err[0]


def test_bad_arguments_are_input_errors(runs, tmp_path, capsys):
    base = ["reconstruct", str(tmp_path), "--model", str(runs["student"]), "--out", str(tmp_path / "o")]
    assert main([*base, "--resolution", "4"]) == 2
    assert main(["reconstruct", str(tmp_path / "missing.png"), *base[2:], "--pose", "1", "2", "3", "4"]) == 2
    assert main(base) == 2  # an empty folder: no images
    err = capsys.readouterr().err
    assert "--resolution 4" in err and "--pose" in err and "no images found" in err


@pytest.mark.parametrize("fmt", ["obj", "ply", "glb"])
def test_every_test_image_gives_a_watertight_mesh(use_perfect, tiny_dataset, tmp_path, fmt):
    """Perfect field of each synthetic test shape (closed unions of solids): written meshes open in
    trimesh, are watertight and are the library's mesh."""
    keys = read_index(tiny_dataset)["splits"]["test"]
    if fmt != "obj":
        keys = keys[:3]  # the format round trip; obj covers every category
    images = [shape_dir(tiny_dataset, k) / RENDER_DIR / "00.png" for k in keys]
    out = tmp_path / "out"
    # --no-reframe: the perfect field looks images up by their exact pixels (framing is tested elsewhere)
    argv = [
        "reconstruct",
        *map(str, images),
        "--model",
        "x",
        "--out",
        str(out),
        "--format",
        fmt,
        "--no-reframe",
    ]
    assert main([*argv, "--resolution", "64"]) == 0
    for key, image in zip(keys, images):
        name = key.replace("/", "_") + "_rendering_00"  # stems repeat: names keep the path apart
        loaded = trimesh.load(out / name / f"mesh.{fmt}", force="mesh")
        assert len(loaded.faces) > 100 and loaded.is_watertight, key
        (expected,) = use_perfect.reconstruct([image], resolution=64, reframe=False)
        assert np.allclose(loaded.bounds, expected.mesh.bounds, atol=1e-5)
        assert loaded.volume == pytest.approx(expected.mesh.volume, rel=1e-4)


def test_pose_writes_the_object_frame_mesh_too(use_perfect, tiny_dataset, tmp_path):
    key = next(k for k in read_index(tiny_dataset)["splits"]["test"] if k.startswith("sofa/"))
    folder = shape_dir(tiny_dataset, key)
    _, views = read_views(folder / RENDER_DIR)
    view = views[1]
    out = tmp_path / "out"
    argv = [
        "reconstruct",
        str(folder / RENDER_DIR / "01.png"),
        "--model",
        "x",
        "--out",
        str(out),
        "--no-reframe",
    ]
    argv += ["--resolution", "64", "--pose", str(view.azimuth), str(view.elevation), str(view.distance_ratio)]
    assert main(argv) == 0
    mesh = trimesh.load(out / "01" / "mesh.obj", force="mesh", process=False)
    mesh_object = trimesh.load(out / "01" / "mesh_object.obj", force="mesh", process=False)
    # The frames are consistent: R (object -> view-aligned) takes mesh_object onto mesh.
    R = view_rotation_gl(view_transform(view))
    gap, _ = cKDTree(mesh.vertices).query(mesh_object.vertices @ R.T)
    assert len(mesh_object.vertices) == len(mesh.vertices) and gap.max() < 1e-5
    # ... and mesh_object is the shape in its canonical frame.
    gt = read_shape(folder / SHAPE_FILE, voxel_resolutions=(128,))
    pts, occ = uniform_points_in_grid(gt.voxels[128], 50_000, np.random.default_rng(0))
    assert iou_occupancy(mesh_contains(mesh_object, pts), occ) > 0.9
