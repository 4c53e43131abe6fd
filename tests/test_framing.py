"""Framing (ifkd.framing): any picture of one object is brought into the training renders' framing.

Geometry first (no model): with ``mode="always"`` a render, the same render pasted off-centre on a canvas
twice as large, shrunk to two thirds, and flattened on white all frame to the same object size and place,
exactly as before the ``auto`` policy (checked against the old algorithm, kept here as the reference);
with ``auto`` (the default) a render framed like the training ones keeps its geometry, an off-centre paste
is recentred, a shrink is rescaled about the image centre, an explicit ratio always rescales. A busy
background without alpha and a blank image are returned untouched with a warning. Then the shipped
weights: with ``always``, each of those pictures reconstructs (Chamfer-L1 against the shape's surface, in
the object frame as ``ifkd evaluate`` scores it) within 10 % of the framed render, and with
``--no-reframe`` the off-centre one is far worse (the test has teeth); the framed weights
(``pretrained:ifkd-frame-cpu``) do the same with their default framing. Last, the CLI's options and its
one-line warning.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from ifkd.cli import main
from ifkd.data.format import (
    RENDER_DIR,
    SHAPE_FILE,
    load_image,
    read_eval_surface,
    read_iou_points,
    read_views,
)
from ifkd.data.synth.generate import SynthSettings, generate_dataset
from ifkd.eval.metrics import evaluate_mesh
from ifkd.framing import (
    MAX_FRAME_SIZE,
    TRAINING_CENTRE_OFFSET,
    TRAINING_FOREGROUND_RATIO,
    TRAINING_OFFSET_X_RANGE,
    TRAINING_OFFSET_Y_RANGE,
    TRAINING_RATIO_RANGE,
    bounding_box,
    find_object,
    frame_image,
    in_range,
)
from ifkd.geometry.camera import view_transform
from ifkd.pretrained import FRAMED_NAME
from ifkd.reconstruct import FramingWarning, Reconstructor, to_object_frame, view_rotation_gl

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "framing_table.py"
SHAPE = "car/0002"
"""The test split's car of :data:`SETTINGS` (the one shape of that split)."""
SETTINGS = SynthSettings(per_category=3, views=2, seed=2024, image_size=137, categories=("car",))


def _bench():
    """benchmarks/framing_table.py (the same picture transformations as the table), loaded by path."""
    spec = importlib.util.spec_from_file_location("framing_table", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> list[tuple[np.ndarray, object, tuple]]:
    """Per view: (render RGBA, its viewpoint, GT (surface, normals, IoU points, labels)) of a car that no
    shipped model trained on (seed 2024)."""
    root = tmp_path_factory.mktemp("framing_data")
    generate_dataset(root, SETTINGS, progress=False)
    folder = root / SHAPE
    names, views = read_views(folder / RENDER_DIR)
    gt = (*read_eval_surface(folder / SHAPE_FILE), *read_iou_points(folder / SHAPE_FILE))
    return [(load_image(folder / RENDER_DIR / name), view, gt) for name, view in zip(names, views)]


@pytest.fixture(scope="module")
def car(renders):
    return renders[0]


@pytest.fixture(scope="module")
def pictures(car) -> dict[str, np.ndarray]:
    return _bench().conditions(car[0])


# ------------------------------------------------------------------------------------------ geometry
def _framed_box(framed: np.ndarray) -> tuple[float, float, float]:
    """(longest side / width, centre offset x, y in units of the side) of a framed picture's object."""
    x0, y0, x1, y1 = bounding_box(find_object(framed).mask)
    side, size = max(x1 - x0, y1 - y0), framed.shape[1]
    return side / size, ((x0 + x1) / 2 - size / 2) / side, ((y0 + y1) / 2 - size / 2) / side


def test_every_picture_frames_to_the_training_size_and_place_with_always(pictures):
    framed = {}
    for name, picture in pictures.items():
        out, info = frame_image(picture, mode="always")
        assert info.reframed and not info.warnings, (name, info)
        assert not info.kept_centre and not info.kept_size
        assert out.shape[0] == out.shape[1] == info.output_size and out.dtype == np.uint8
        assert info.source == ("background" if name.endswith("white") else "alpha")
        ratio, dx, dy = _framed_box(out)
        tol = 1.5 / (ratio * out.shape[0])  # a pixel and a half, in units of the side
        assert ratio == pytest.approx(TRAINING_FOREGROUND_RATIO, abs=1.5 / out.shape[0]), name
        assert dx == pytest.approx(TRAINING_CENTRE_OFFSET[0], abs=tol), name
        assert dy == pytest.approx(TRAINING_CENTRE_OFFSET[1], abs=tol), name
        framed[name] = out
    # Pasted off-centre at whole pixels: exactly the same framed picture as the render's.
    assert np.array_equal(framed["off_centre_2x"], framed["as_rendered"])
    assert np.array_equal(framed["off_centre_2x_white"], framed["flat_white"])
    # Flattened on white: the plain background became transparency; the box is the alpha one.
    assert find_object(pictures["flat_white"]).background == (255, 255, 255)
    assert frame_image(pictures["flat_white"])[1].bbox == frame_image(pictures["as_rendered"])[1].bbox


def _old_frame_image(rgba: np.ndarray, ratio: float = TRAINING_FOREGROUND_RATIO) -> np.ndarray:
    """The framing before the ``auto`` policy, verbatim (crop, recentre, rescale every picture): the
    reference ``mode="always"`` must reproduce."""
    found = find_object(rgba)
    h, w = rgba.shape[:2]
    x0, y0, x1, y1 = bounding_box(found.mask)
    side = max(x1 - x0, y1 - y0)
    size = max(2, int(round(side / ratio)))
    off_x, off_y = TRAINING_CENTRE_OFFSET
    left = int(round((x0 + x1) / 2.0 - off_x * side - size / 2.0))
    top = int(round((y0 + y1) / 2.0 - off_y * side - size / 2.0))
    canvas = np.zeros((size, size, 4), np.uint8)
    sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(left + size, w), min(top + size, h)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = found.rgba[sy0:sy1, sx0:sx1]
    return canvas


def test_always_reproduces_the_old_framing_exactly(renders):
    bench = _bench()
    for rgba, _, _ in renders:
        for name, picture in bench.conditions(rgba).items():
            for ratio in (None, 0.5):
                out, _ = frame_image(picture, ratio, mode="always")
                old = _old_frame_image(picture, TRAINING_FOREGROUND_RATIO if ratio is None else ratio)
                assert np.array_equal(out, old), (name, ratio)
    with pytest.raises(ValueError, match="framing mode 'sometimes'"):
        frame_image(renders[0][0], mode="sometimes")


# ----------------------------------------------------------------------------- the auto policy
def test_the_training_ranges_are_the_stats_5th_to_95th_percentiles():
    """The constants are the stored measurement's (benchmarks/results/framing_stats.json), to 3 places."""
    import json

    stats = json.loads((BENCH.parent / "results" / "framing_stats.json").read_text())
    columns = stats["row_columns"]
    for column, bounds in (
        ("ratio", TRAINING_RATIO_RANGE),
        ("offset_x", TRAINING_OFFSET_X_RANGE),
        ("offset_y", TRAINING_OFFSET_Y_RANGE),
    ):
        values = [row[columns.index(column)] for row in stats["rows"]]
        assert np.percentile(values, [5, 95]) == pytest.approx(bounds, abs=5e-4), column
    assert len(stats["rows"]) == 2496


def test_a_render_framed_like_the_training_ones_keeps_its_geometry(renders):
    bench = _bench()
    for rgba, _, _ in renders:
        h, w = rgba.shape[:2]
        out, info = frame_image(rgba)  # auto, the default
        assert info.reframed and info.kept_centre and info.kept_size and info.action == "framing kept"
        assert info.crop == (0, 0, w, h) and info.foreground_ratio == info.object_ratio
        assert np.array_equal(out, rgba)  # alpha already there: the very same pixels
        # Flattened on white: the same canvas, only the background became transparency again.
        flat, flat_info = frame_image(bench.flatten_on_white(rgba))
        assert flat_info.kept_centre and flat_info.kept_size and flat.shape == rgba.shape
        assert flat_info.bbox == info.bbox and bounding_box(find_object(flat).mask) == info.bbox
        assert "background made transparent" in flat_info.summary()
        # A non-square picture of it keeps its centre and size too: padded to the square around its centre.
        wide = np.zeros((h, w + 20, 4), np.uint8)
        wide[:, 10 : 10 + w] = rgba
        padded, wide_info = frame_image(wide)
        assert wide_info.action == "framing kept" and padded.shape == (w + 20, w + 20, 4)
        assert np.array_equal(padded[10 : 10 + h, 10 : 10 + w], rgba) and not padded[:10].any()


def test_an_off_centre_paste_is_recentred(pictures):
    out, info = frame_image(pictures["off_centre_2x"])  # off-centre and small in its 2x canvas
    assert not info.kept_centre and not info.kept_size
    assert info.action == "reframed (recentred and rescaled)"
    assert np.array_equal(out, frame_image(pictures["as_rendered"], mode="always")[0])
    # Moved by a quarter of the width on a canvas of its own size: recentred, its size kept.
    render = pictures["as_rendered"]
    w = render.shape[1]
    moved = np.zeros_like(render)
    moved[:, w // 4 :] = render[:, : w - w // 4]
    out, info = frame_image(moved)
    assert not info.kept_centre and info.kept_size and info.action == "reframed (recentred, size kept)"
    assert not in_range(info.offset[0], TRAINING_OFFSET_X_RANGE)
    ratio, dx, dy = _framed_box(out)
    tol = 1.5 / (ratio * out.shape[0])
    assert out.shape[0] == w and ratio == pytest.approx(info.object_ratio, abs=1e-9)
    assert (dx, dy) == pytest.approx(TRAINING_CENTRE_OFFSET, abs=tol)


def test_a_shrink_is_rescaled_about_the_image_centre(renders):
    bench = _bench()
    rgba = renders[1][0]  # view 1: its box fills 0.60 of the frame, shrunk to 2/3 0.39 (under the range)
    small = bench.shrunk(rgba)
    out, info = frame_image(small)
    assert info.kept_centre and not info.kept_size and info.action == "reframed (rescaled, centre kept)"
    assert info.object_ratio < TRAINING_RATIO_RANGE[0]
    ratio, dx, dy = _framed_box(out)
    tol = 1.5 / (ratio * out.shape[0])
    assert ratio == pytest.approx(TRAINING_FOREGROUND_RATIO, abs=1.5 / out.shape[0])
    # the image centre is the canvas centre: the box keeps its offset from it (not the median one)
    assert (dx, dy) == pytest.approx(info.offset, abs=tol)
    h, w = small.shape[:2]
    left, top, right, bottom = info.crop
    assert abs((left + right) - w) <= 1 and abs((top + bottom) - h) <= 1
    assert not np.array_equal(out, frame_image(small, mode="always")[0])  # 'always' moves it
    # View 0 is larger (0.72 of the frame): its 2/3 shrink (0.48) is still in the range and kept as is.
    kept, kept_info = frame_image(bench.shrunk(renders[0][0]))
    assert kept_info.action == "framing kept" and kept.shape == renders[0][0].shape


def test_an_explicit_foreground_ratio_forces_a_rescale(renders):
    rgba = renders[0][0]
    out, info = frame_image(rgba, foreground_ratio=0.6)
    assert info.kept_centre and not info.kept_size and info.foreground_ratio == 0.6
    assert _framed_box(out)[0] == pytest.approx(0.6, abs=1.5 / out.shape[0])
    _, same_info = frame_image(rgba, foreground_ratio=info.object_ratio)  # even the ratio it has
    assert not same_info.kept_size and same_info.action == "reframed (rescaled, centre kept)"


def test_a_plain_coloured_backdrop_becomes_transparent_and_keeps_the_objects_own_light_parts():
    img = np.full((90, 120, 3), (40, 90, 160), np.uint8)  # a blue backdrop, no alpha
    img[30:70, 20:60] = (200, 60, 50)  # the object: red, with a patch of the backdrop's own colour inside
    img[40:50, 30:40] = (40, 90, 160)
    out, info = frame_image(img, foreground_ratio=0.5)
    assert info.reframed and info.source == "background" and info.background == (40, 90, 160)
    assert info.bbox == (20, 30, 60, 70) and info.output_size == 80
    alpha = out[..., 3]
    assert alpha.sum() == 255 * 40 * 40  # the whole object (the inner patch too) opaque, all else clear
    assert find_object(out).mask.sum() == 40 * 40


def test_a_busy_background_without_alpha_is_not_cropped_blindly():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)
    out, info = frame_image(noise)
    assert not info.reframed and info.source == "none"
    assert np.array_equal(out[..., :3], noise) and np.all(out[..., 3] == 255)
    assert len(info.warnings) == 1 and info.warning.startswith("busy background and no transparency")
    assert "\n" not in info.warning


def test_blank_and_tiny_pictures_come_back_unchanged_with_a_warning():
    for blank in (
        np.zeros((40, 40, 4), np.uint8),
        np.full((30, 50, 3), 255, np.uint8),
        np.zeros((2, 2), np.uint8),
    ):
        out, info = frame_image(blank)
        assert not info.reframed and info.warnings and info.warnings[0].startswith("no object")
        assert out.shape[:2] == blank.shape[:2]


def test_options_and_large_canvases(pictures):
    out, info = frame_image(pictures["as_rendered"], foreground_ratio=0.4)
    assert _framed_box(out)[0] == pytest.approx(0.4, abs=1.5 / out.shape[0])
    big = np.kron(pictures["as_rendered"][..., 3:], np.ones((12, 12, 1), np.uint8))  # a 1644 px silhouette
    big = np.concatenate([np.zeros_like(big).repeat(3, axis=2), big], axis=2)
    out, info = frame_image(big, mode="always")
    assert out.shape[0] == MAX_FRAME_SIZE and info.scale == pytest.approx(
        MAX_FRAME_SIZE / info.crop[2:][0], abs=1
    )
    assert _framed_box(out)[0] == pytest.approx(TRAINING_FOREGROUND_RATIO, abs=0.01)
    out, info = frame_image(big)  # auto: its framing kept, the 1644 px canvas scaled down all the same
    assert info.action == "framing kept" and out.shape[0] == MAX_FRAME_SIZE
    assert _framed_box(out)[0] == pytest.approx(info.object_ratio, abs=0.01)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="foreground ratio"):
            frame_image(pictures["as_rendered"], foreground_ratio=bad)


def test_tensors_are_never_reframed_and_paths_are_by_default(car, tmp_path):
    rec = Reconstructor.from_run("pretrained", device="cpu")
    rgba = car[0]
    off = _bench().off_centre(rgba)
    always = {"reframe_mode": "always"}
    assert torch.equal(rec.prepare(off, **always), rec.prepare(rgba, **always))  # framed alike
    assert torch.equal(rec.prepare(off), rec.prepare(rgba, **always))  # auto: the paste is reframed fully
    assert torch.equal(rec.prepare(rgba), rec.prepare(rgba, reframe=False))  # auto: the render as it is
    assert not torch.equal(rec.prepare(off, reframe=False), rec.prepare(rgba, reframe=False))
    tensor = rec.prepare(off, reframe=False)[None]
    (out,) = rec.reconstruct(tensor, resolution=16)
    assert out.framing is None  # a tensor is used as given
    Image.fromarray(off).save(tmp_path / "off.png")
    (out,) = rec.reconstruct([tmp_path / "off.png"], resolution=16)
    assert out.framing is not None and out.framing.reframed
    with pytest.warns(FramingWarning, match="image 0: busy background"):
        rec.reconstruct(
            [np.random.default_rng(1).integers(0, 256, (50, 50, 3), dtype=np.uint8)], resolution=16
        )


# --------------------------------------------------------------------------------- the shipped weights
def _chamfer(rec: Reconstructor, picture: np.ndarray, car, reframe: bool, mode: str = "always") -> float:
    _, view, gt = car
    (out,) = rec.reconstruct([picture], resolution=64, reframe=reframe, reframe_mode=mode)
    mesh = to_object_frame(out.mesh, view_rotation_gl(view_transform(view)))  # as ifkd evaluate does
    return evaluate_mesh(mesh, *gt, n_surface=50_000, edge=False, rng=np.random.default_rng(0))[
        "chamfer_l1_x10"
    ]


def test_framed_pictures_reconstruct_as_well_as_the_render(renders):
    """Mean Chamfer over the car's two views, each picture framed with ``always`` within 10 % of the
    render's framed so. (``auto`` reads these two renders as they are: their score is the 'off' one, which
    beats the framed render's -- why ``auto`` is the default.)

    Per view, the one picture that is not an exact copy of the render's pixels -- shrunk to 2/3, i.e.
    resampled to 91 px -- lands within 8 % (view 0) and 13 % (view 1) of it: that is the detail the
    shrinking throws away, not the framing. The render itself blurred the same way (down to 91 px and back
    up, same geometry) is framed to the same place and scores what the shrunk one does (0.401 vs 0.375
    against 0.333 for view 1), and undoing the shrink exactly gives 0.395; so a single view cannot be
    held to 10 %, their mean is (4 % here)."""
    rec = Reconstructor.from_run("pretrained", device="cpu")
    bench = _bench()
    on: dict[str, list[float]] = {}
    off: dict[str, list[float]] = {}
    for car in renders:
        for name, picture in bench.conditions(car[0]).items():
            on.setdefault(name, []).append(_chamfer(rec, picture, car, True))
            if name in ("as_rendered", "off_centre_2x"):
                off.setdefault(name, []).append(_chamfer(rec, picture, car, False))
    on_mean = {name: float(np.mean(v)) for name, v in on.items()}
    off_mean = {name: float(np.mean(v)) for name, v in off.items()}
    base = on_mean["as_rendered"]
    assert base < 0.5, on  # a real reconstruction of the car, not a blob
    for name, value in on_mean.items():
        assert value == pytest.approx(base, rel=0.10), (name, on)
    # Without framing, the off-centre picture is far worse: the test has teeth.
    assert off_mean["off_centre_2x"] > 4 * on_mean["off_centre_2x"], (off, on)
    assert off_mean["off_centre_2x"] > 4 * off_mean["as_rendered"], off
    # A render read as it is (what auto does with these two) beats the same render recentred and rescaled.
    assert off_mean["as_rendered"] < base, (off, on)


def test_the_framed_model_reads_every_picture_alike_by_default(renders):
    """``pretrained:ifkd-frame-cpu`` (trained on pictures in the inference framing, ``data.aug_frame`` = 1):
    with the default framing every picture of the car -- as rendered, on white, off-centre on a 2x
    canvas, shrunk to 2/3 -- reconstructs within 10 % of the render's Chamfer (mean over the two views),
    the criterion of benchmarks/results/framing_frame.md on synthetic renders; without framing the
    off-centre one is far worse (the test has teeth)."""
    rec = Reconstructor.from_run(f"pretrained:{FRAMED_NAME}", device="cpu")
    assert rec.framing_mode == "always"  # its 'auto' frames every picture, as it learnt them
    bench = _bench()
    on: dict[str, list[float]] = {}
    off: list[float] = []
    for car in renders:
        pictures = bench.conditions(car[0])
        for name, picture in pictures.items():
            on.setdefault(name, []).append(_chamfer(rec, picture, car, True, mode="auto"))
        off.append(_chamfer(rec, pictures["off_centre_2x"], car, False))
    on_mean = {name: float(np.mean(v)) for name, v in on.items()}
    base = on_mean["as_rendered"]
    assert base < 0.5, on  # a real reconstruction of the car, not a blob
    for name, value in on_mean.items():
        assert value == pytest.approx(base, rel=0.10), (name, on)
    assert float(np.mean(off)) > 4 * on_mean["off_centre_2x"], (off, on)


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_options_and_the_busy_background_warning(pictures, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(pictures["off_centre_2x"]).save(folder / "off.png")
    busy = folder / "busy.jpg"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(busy)
    base = ["reconstruct", "--model", "pretrained", "--resolution", "32", "--device", "cpu"]
    assert main([*base, str(folder), "--out", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if "busy background" in line]
    assert len(warned) == 1 and warned[0].startswith(f"ifkd: warning: {busy}: busy background"), captured.err
    assert "off.png -> " in captured.out and "reframed (recentred and rescaled)" in captured.out
    assert "normalised object scale (bounding-box diagonal about 1" in captured.out
    assert "note: 1 image(s) rescaled" in captured.out and f"pretrained:{FRAMED_NAME}" in captured.out
    framed = trimesh.load(tmp_path / "a" / "off" / "mesh.obj", force="mesh")
    assert main([*base, str(folder / "off.png"), "--out", str(tmp_path / "b"), "--no-reframe"]) == 0
    assert "not reframed" not in capsys.readouterr().out  # --no-reframe: no framing at all, so no note
    framed_model = [*base[:2], f"pretrained:{FRAMED_NAME}", *base[3:]]
    assert main([*framed_model, str(folder / "off.png"), "--out", str(tmp_path / "e")]) == 0
    assert "rescaled" in (out := capsys.readouterr().out) and "image(s) rescaled" not in out  # it frames all
    raw = trimesh.load(tmp_path / "b" / "off" / "mesh.obj", force="mesh")
    assert np.linalg.norm(framed.centroid) < 0.1 < np.linalg.norm(raw.centroid)  # centred only when framed
    assert (
        main([*base, str(folder / "off.png"), "--out", str(tmp_path / "c"), "--foreground-ratio", "0.4"]) == 0
    )
    small = trimesh.load(tmp_path / "c" / "off" / "mesh.obj", force="mesh")
    assert small.extents.max() < 0.85 * framed.extents.max()  # a smaller object in the frame, a smaller mesh
    capsys.readouterr()
    assert (
        main([*base, str(folder / "off.png"), "--out", str(tmp_path / "d"), "--foreground-ratio", "1.5"]) == 2
    )
    assert re.search(r"--foreground-ratio 1\.5: must be in \(0, 1\]", capsys.readouterr().err)


def test_cli_keeps_a_well_framed_render_and_reframe_always_does_not(car, tmp_path, capsys):
    render = tmp_path / "render.png"
    Image.fromarray(car[0]).save(render)
    base = ["reconstruct", str(render), "--model", "pretrained", "--resolution", "32", "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path / "auto")]) == 0
    assert "render.png -> " in (out := capsys.readouterr().out) and "framing kept" in out, out
    assert main([*base, "--out", str(tmp_path / "always"), "--reframe-always"]) == 0
    assert "reframed (recentred and rescaled)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses the pair before anything runs
        main([*base, "--out", str(tmp_path / "both"), "--reframe-always", "--no-reframe"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_the_framing_tables_shape_score_undoes_the_pictures_move_of_the_object(car):
    """benchmarks/framing_table.py scores the shape whatever the picture's scale: the object's move from
    the render to the picture shown (its box) is measured, and undone on the view-frame mesh."""
    import trimesh

    bench = _bench()
    rgba = car[0]
    s, tx, ty = bench.picture_affine(rgba, bench.shrunk(rgba))
    assert s == pytest.approx(2 / 3, abs=0.03) and abs(tx) < 0.03 and abs(ty) < 0.03  # about the centre
    s, tx, ty = bench.picture_affine(rgba, bench.off_centre(rgba))
    assert s == pytest.approx(0.5, abs=0.02) and tx > 0.3 and ty < -0.3  # smaller, to the right and up
    assert bench.picture_affine(rgba, rgba) == pytest.approx((1.0, 0.0, 0.0))
    framed, _ = frame_image(bench.off_centre(rgba), mode="always")
    s_f = bench.picture_affine(rgba, framed)[0]
    assert s_f == pytest.approx(bench.picture_affine(rgba, frame_image(rgba, mode="always")[0])[0], rel=0.03)

    # a picture's object shrunk by s and moved right/down by t shows, at the nominal distance, the
    # object scaled by s and moved right/down (GL: +x, -y): undoing gives back the render's object
    box = trimesh.creation.box(extents=(0.4, 0.3, 0.2))
    s, tx, ty = 0.6, 0.2, 0.1
    from ifkd.geometry.camera import CAM_MAX_DIST, NOMINAL_DISTANCE_RATIO, NORMALISED_FOCAL

    lateral = NOMINAL_DISTANCE_RATIO * CAM_MAX_DIST / NORMALISED_FOCAL
    seen = box.copy()
    seen.vertices = box.vertices * s + np.array([tx * lateral, -ty * lateral, 0.0])
    back = bench.undo_picture_affine(seen, (s, tx, ty))
    assert np.allclose(back.vertices, box.vertices, atol=1e-9)
    assert np.allclose(seen.vertices, box.vertices * s + np.array([tx * lateral, -ty * lateral, 0.0]))  # copy
