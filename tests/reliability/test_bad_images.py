"""Bad and odd images through `ifkd reconstruct`: one clear line per bad file, odd files just work."""

from __future__ import annotations

import re

import numpy as np
import pytest
import trimesh
from corpus import (
    BAD_IMAGES,
    ODD_IMAGES,
    assert_one_line_error,
    run_cli,
    write_good_image,
    write_images,
)
from PIL import Image, ImageFile

from ifkd.data.format import MAX_IMAGE_PIXELS, load_image
from ifkd.io import InputError

RECON = ["--resolution", "16", "--device", "cpu"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    return {**write_images(folder, BAD_IMAGES), **write_images(folder, ODD_IMAGES)}


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_bad_image_gives_one_line_and_exit_2(name, images, tiny_run, tmp_path):
    res = run_cli(["reconstruct", images[name], "--model", tiny_run, "--out", tmp_path / "out", *RECON])
    assert res.rc == 2 and "Traceback" not in res.err
    assert "0 of 1 images reconstructed" in res.out
    # the per-file line and the summary both name the file and the problem
    lines = [ln for ln in res.err.splitlines() if str(images[name]) in ln]
    assert len(lines) == 2 and all(re.search(BAD_IMAGES[name][1], ln) for ln in lines), res.err


def test_batch_completes_the_good_and_odd_and_lists_the_bad(images, tiny_run, tmp_path):
    folder = next(iter(images.values())).parent
    write_good_image(folder / "good.png")
    out = tmp_path / "out"
    res = run_cli(["reconstruct", folder, "--model", tiny_run, "--out", out, *RECON])
    assert res.rc == 2 and "Traceback" not in res.err
    n = len(BAD_IMAGES) + len(ODD_IMAGES) + 1
    assert f"{n - len(BAD_IMAGES)} of {n} images reconstructed" in res.out
    summary = res.err.split(f"{len(BAD_IMAGES)} failed:\n", 1)[1].splitlines()
    assert sorted(ln.strip().split(":")[0] for ln in summary) == sorted(str(folder / b) for b in BAD_IMAGES)
    for name in [*ODD_IMAGES, "good.png"]:
        mesh = trimesh.load(out / name.rsplit(".", 1)[0] / "mesh.obj", force="mesh")
        assert len(mesh.faces) > 0, name  # a real surface, not an empty file


def test_debug_shows_the_traceback(images, tmp_path):
    # --debug: a fatal error propagates (with its traceback) instead of the one-line message
    with pytest.raises(InputError, match="run folder not found"):
        run_cli(["--debug", "reconstruct", images["gray.png"], "--model", tmp_path / "no", "--out", tmp_path])


def test_odd_images_load_as_rgba_with_the_right_colours(images):
    expect_centre = {  # (200, 30, 30) red disc; grey versions use Pillow's L = 0.299 R + 0.587 G + 0.114 B
        "rgba16.png": (200, 30, 30, 255),
        "palette.png": (200, 30, 30, 255),
        "cmyk.jpg": (200, 30, 30, 255),
        "gray.png": (81, 81, 81, 255),
        "gray_alpha.png": (81, 81, 81, 255),
        "gray16.png": (200, 200, 200, 255),
    }
    for name, rgba in expect_centre.items():
        arr = load_image(images[name])
        assert arr.shape == (48, 48, 4) and arr.dtype == np.uint8, name
        np.testing.assert_allclose(arr[24, 24], rgba, atol=3, err_msg=name)
    # transparency survives where the file has it (16-bit RGBA, palette tRNS, LA)
    for name in ("rgba16.png", "palette.png", "gray_alpha.png"):
        assert load_image(images[name])[0, 0, 3] == 0, name
    assert load_image(images["one_pixel.png"]).tolist() == [[[90, 90, 90, 255]]]


def test_exif_orientation_is_applied(images, tmp_path):
    from corpus import exif_jpeg

    exif_jpeg(tmp_path / "plain.jpg", None)  # the same pixels, no orientation tag
    rotated, plain = load_image(images["exif_rotated.jpg"]), load_image(tmp_path / "plain.jpg")
    assert plain.shape == (16, 32, 4) and rotated.shape == (32, 16, 4)
    # orientation 6: stored left (red) is the visual top; the upright image is the stored one turned CW
    np.testing.assert_array_equal(rotated, np.rot90(plain, k=-1))
    assert rotated[2, 8, 0] > 200 and rotated[2, 8, 2] < 50  # top: red
    assert rotated[29, 8, 2] > 200 and rotated[29, 8, 0] < 50  # bottom: blue


def test_bomb_is_refused_before_decoding(images, monkeypatch):
    def no_decoding(self):
        raise AssertionError("the pixel data of a bomb must never be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for name in ("bomb_header.png", "bomb_solid.png"):
        with pytest.raises(InputError, match=f"exceeds the limit of {MAX_IMAGE_PIXELS}"):
            load_image(images[name])


def test_bomb_solid_is_a_real_image_just_over_the_limit(images):
    # The guard, not a broken file, is what refuses it: the file decodes fine (to 16.8 M pixels).
    with Image.open(images["bomb_solid.png"]) as im:
        im.load()
        assert im.size == (4100, 4100) and im.getextrema() == (0, 0)
    assert 4100 * 4100 > MAX_IMAGE_PIXELS


def test_missing_input_file_is_named(tiny_run, tmp_path):
    missing = tmp_path / "nope.png"
    res = run_cli(["reconstruct", missing, "--model", tiny_run, "--out", tmp_path / "o", *RECON])
    assert res.rc == 2 and f"{missing}: image file not found" in res.err


def test_unknown_model_folder_is_one_line(images, tmp_path):
    res = run_cli(["reconstruct", images["gray.png"], "--model", tmp_path / "nope", "--out", tmp_path / "o"])
    assert_one_line_error(res, tmp_path / "nope", "model run folder not found")
