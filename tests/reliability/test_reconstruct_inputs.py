"""`ifkd reconstruct` never reports an empty or NaN mesh as a result: bad numbers are refused as they are
parsed, and an image whose mesh comes out empty or non-finite is a counted failure (exit 2)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh
from corpus import assert_one_line_error, run_cli
from PIL import Image

from ifkd.geometry.camera import Viewpoint
from ifkd.reconstruct import Reconstruction, Reconstructor

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
THRESHOLD = r"must be an occupancy probability strictly between 0 and 1$"
POSE_FINITE = r"the angles and the distance ratio must be finite numbers$"
POSE_DISTANCE = r"the distance ratio must be > 0"
RESOLUTION = r"must be between 16 and 1024$"

BAD_OPTIONS = {
    "threshold nan": (["--threshold", "nan"], THRESHOLD),
    "threshold inf": (["--threshold", "inf"], THRESHOLD),
    "threshold 1.5": (["--threshold", "1.5"], THRESHOLD),
    "threshold 1": (["--threshold", "1"], THRESHOLD),
    "threshold 0": (["--threshold", "0"], THRESHOLD),
    "threshold -0.2": (["--threshold", "-0.2"], THRESHOLD),
    "pose 30 nan": (["--pose", "30", "nan"], POSE_FINITE),
    "pose inf 20": (["--pose", "inf", "20"], POSE_FINITE),
    "pose 30 20 nan": (["--pose", "30", "20", "nan"], POSE_FINITE),
    "pose distance 0": (["--pose", "30", "20", "0"], POSE_DISTANCE),
    "pose distance -1": (["--pose", "30", "20", "-1"], POSE_DISTANCE),
    "pose one number": (["--pose", "30"], r"AZ EL \[DIST_RATIO\] \(2 or 3 numbers\), got 1$"),
    "pose four numbers": (["--pose", "30", "20", "0.8", "1"], r"\(2 or 3 numbers\), got 4$"),
    "resolution 8": (["--resolution", "8"], RESOLUTION),
    "resolution 0": (["--resolution", "0"], RESOLUTION),
    "resolution -16": (["--resolution", "-16"], RESOLUTION),
    "resolution 5000": (["--resolution", "5000"], RESOLUTION),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(folder / "clear.png")  # fully transparent
    Image.new("RGB", (64, 64), (255, 255, 255)).save(folder / "white.png")  # all white, opaque
    shutil.copy(EXAMPLES / "chair.png", folder / "chair.png")
    return {p.stem: p for p in folder.iterdir()}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_numbers_are_refused_as_parsed(case, images, tmp_path):
    option, pattern = BAD_OPTIONS[case]
    out = tmp_path / "out"
    res = run_cli(["reconstruct", images["chair"], "--model", "pretrained", "--out", out, *option])
    line = assert_one_line_error(res, option[0], pattern)
    assert line.startswith(f"ifkd: error: {option[0]}")
    assert not out.exists() and res.out == ""  # refused before the model loads or a folder is made


def test_blank_images_are_counted_failures_and_the_rest_is_written(images, tmp_path):
    out = tmp_path / "out"
    argv = ["reconstruct", images["clear"], images["white"], images["chair"], "--model", "pretrained"]
    res = run_cli([*argv, "--out", out, "--resolution", "32", "--device", "cpu"])
    assert res.rc == 2 and "Traceback" not in res.err
    assert "1 of 3 images reconstructed" in res.out
    for name in ("clear", "white"):
        message = f"{images[name]}: empty mesh (no surface crossed the threshold 0.5): nothing written"
        assert f"ifkd: warning: {message}" in res.err.splitlines()  # loud, as it happens
        assert f"  {message}" in res.err.split("2 failed:\n", 1)[1].splitlines()  # and in the summary
    assert sorted(p.name for p in out.iterdir()) == ["chair"]
    assert len(trimesh.load(out / "chair" / "mesh.obj", force="mesh").faces) > 0
    # every image fine: exit 0
    assert run_cli([*argv[:1], images["chair"], *argv[4:], "--out", out, "--resolution", "32"]).rc == 0


def test_a_high_threshold_that_leaves_no_surface_names_it(images, tmp_path):
    out = tmp_path / "out"
    argv = ["reconstruct", images["chair"], "--model", "pretrained", "--out", out, "--resolution", "16"]
    res = run_cli([*argv, "--threshold", "0.999999"])
    assert res.rc == 2 and "0 of 1 images reconstructed" in res.out
    assert "empty mesh (no surface crossed the threshold 0.999999): nothing written" in res.err
    assert not out.exists()


def test_a_non_finite_field_writes_nothing(images, tmp_path, monkeypatch):
    real = Reconstructor.field_fn

    def nan_field(self, code, index, distance):
        fn = real(self, code, index, distance)
        return lambda points: np.where(np.arange(len(points)) % 7 == 0, np.nan, fn(points))

    monkeypatch.setattr(Reconstructor, "field_fn", nan_field)
    out = tmp_path / "out"
    argv = ["reconstruct", images["chair"], "--model", "pretrained", "--out", out, "--resolution", "16"]
    res = run_cli(argv)
    assert res.rc == 2 and "0 of 1 images reconstructed" in res.out
    assert re.search(r"chair\.png: values has [\d,]+ non-finite entries", res.err), res.err
    assert not out.exists()


def test_the_library_flags_empty_and_nan_meshes():
    box = trimesh.creation.box()
    assert Reconstruction(box, "view", 10).problem() is None
    empty = Reconstruction(trimesh.Trimesh(), "view", 10, threshold=0.3)
    assert empty.problem() == "empty mesh (no surface crossed the threshold 0.3)"
    vertices = box.vertices.copy()
    vertices[0] = np.nan
    nan = trimesh.Trimesh(vertices, box.faces, process=False)
    assert Reconstruction(nan, "view", 10).problem() == "non-finite mesh (1 of 8 vertices are NaN/Inf)"
    assert Reconstruction(box, "view", 10, mesh_object=nan).problem() == (
        "non-finite object-frame mesh (1 of 8 vertices are NaN/Inf)"
    )


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on the NaN rotation
def test_a_nan_pose_is_flagged_by_the_library(images):
    """What `--pose 30 nan` did before it was refused at parse time: a mesh_object of NaN vertices."""
    rec = Reconstructor.from_run("pretrained", device="cpu")
    (out,) = rec.reconstruct([images["chair"]], resolution=16, poses=[Viewpoint(30.0, float("nan"))])
    assert out.problem() is not None and out.problem().startswith("non-finite object-frame mesh")


def test_a_file_in_the_way_of_one_output_fails_that_image_only(tmp_path, capsys):
    """An output-name clash with a file: that image is listed, the others are written, exit 2."""

    from ifkd.cli import main

    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.png"))[:2]
    out = tmp_path / "out"
    out.mkdir()
    (out / examples[0].stem).write_text("a file where the image's output folder goes")
    for e in examples:
        shutil.copy(e, tmp_path / e.name)
    argv = ["reconstruct", *[str(tmp_path / e.name) for e in examples], "--model", "pretrained"]
    assert main([*argv, "--out", str(out), "--resolution", "16", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"{out / examples[0].stem}: not a folder (a file is in the way" in err
    assert (out / examples[1].stem / "mesh.obj").is_file()


def test_nan_weights_are_blamed_on_the_checkpoint_not_the_image(tmp_path, capsys):

    import torch
    from safetensors.torch import load_file, save_file

    from ifkd.cli import main
    from ifkd.pretrained import resolve_run

    run = tmp_path / "run"
    shutil.copytree(resolve_run("pretrained"), run)
    weights = run / "checkpoints" / "best.safetensors"
    tensors = load_file(weights)
    name = next(k for k, t in tensors.items() if t.is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, weights)
    image = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.png"))[0]
    argv = ["reconstruct", str(image), "--model", str(run), "--out", str(tmp_path / "o"), "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(weights) in err[0] and "NaN/Inf" in err[0] and image.name not in err[0], err
