"""`ifkd serve` without a browser: the command's options, and -- when gradio is installed -- the page's
wiring, the Reconstruct handler called directly on an example image, and the Several-views handler on a
synthetic object's renders with their rendering_metadata.txt or typed pose lines, error paths included
(tests/test_serve_browser.py drives the real page)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

from ifkd.commands import serve as serve_cmd
from ifkd.data.format import METADATA_FILE, RENDER_DIR, read_index, read_views, shape_dir
from ifkd.data.synth.generate import SynthSettings, generate_dataset
from ifkd.io import InputError

ROOT = Path(__file__).resolve().parents[1]
CHAIR = ROOT / "examples" / "chair.png"
VIEWS = SynthSettings(per_category=3, views=3, seed=7, image_size=96, categories=("chair",))
"""Three chairs with three R2N2-style renders each (the test split's one is used)."""


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ifkd")
    serve_cmd.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


def test_serve_options_default_to_local_cpu_pretrained_no_share():
    args = _parse([])
    assert (args.model, args.device, args.host, args.port, args.share) == (
        "pretrained",
        "cpu",
        "127.0.0.1",
        7860,
        False,
    )
    assert args.func is serve_cmd.cmd_serve and args.check_args is serve_cmd.check_args
    args = _parse(["--model", "runs/x", "--device", "auto", "--host", "0.0.0.0", "--port", "8000", "--share"])
    assert (args.model, args.device, args.host, args.port, args.share) == (
        "runs/x",
        "auto",
        "0.0.0.0",
        8000,
        True,
    )
    with pytest.raises(InputError, match="--port 0"):
        serve_cmd.check_args(_parse(["--port", "0"]))


def test_missing_gradio_is_one_line_with_the_install_hint(monkeypatch):
    from ifkd.serve import import_gradio

    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    with pytest.raises(InputError, match=r"pip install 'ifkd\[app\]'"):
        import_gradio()
    assert serve_cmd.main(["--port", "7999"]) == 2  # the standalone entry point: one line, exit 2


@pytest.fixture(scope="module")
def app():
    pytest.importorskip("gradio", reason="gradio is not installed (pip install 'ifkd[app]')")
    from ifkd.serve import build_app

    return build_app("pretrained", "cpu")


def _event(app, name: str = "reconstruct"):
    """The function a button runs ('reconstruct': the one-image tab's, 'reconstruct_views': the
    several-views tab's), with its inputs and outputs."""
    (fn,) = [f for f in app.fns.values() if getattr(f.fn, "__name__", "") == name]
    return fn


_reconstruct_event = _event


def no_progress(*args, **kwargs):
    return None


def test_page_wiring_and_the_handler_on_an_example(app):
    import gradio as gr

    from ifkd.data.format import load_image
    from ifkd.serve import framed_input, tensor_to_display

    assert isinstance(app, gr.Blocks)
    event = _reconstruct_event(app)
    kinds = [type(b).__name__ for b in event.inputs], [type(b).__name__ for b in event.outputs]
    assert kinds == (["Image", "Slider", "Number", "Radio"], ["Image", "Model3D", "File", "File", "Textbox"])
    views = _event(app, "reconstruct_views")
    kinds = [type(b).__name__ for b in views.inputs], [type(b).__name__ for b in views.outputs]
    assert kinds == (
        ["File", "File", "Textbox", "Radio", "Slider", "Number"],
        ["Gallery", "Model3D", "File", "File", "Textbox"],
    )

    framed, viewer, obj, glb, text = event.fn(str(CHAIR), 64, 0.5, "auto", progress=no_progress)
    assert viewer == glb and glb.endswith(".glb") and obj.endswith(".obj"), text
    data = Path(glb).read_bytes()
    assert data[:4] == b"glTF" and len(data) > 1000
    assert Path(obj).stat().st_size > 1000
    assert "faces" in text and "timings" in text and "+Z toward the viewer" in text
    assert "(auto framing" in text, text
    # the framed input is the model's input tensor itself, enlarged pixel by pixel
    tensor = framed_input(app.image_to_mesh.rec, load_image(CHAIR))
    assert framed.dtype == np.uint8 and framed.shape[2] == 3 and framed.shape[0] >= 256
    np.testing.assert_array_equal(framed, tensor_to_display(tensor))
    k = framed.shape[0] // tensor.shape[-1]
    np.testing.assert_array_equal(framed[::k, ::k], tensor_to_display(tensor, min_size=1))


@pytest.mark.parametrize(
    "image, threshold, expected",
    [
        (None, 0.5, "no image"),
        ("README.md", 0.5, "README.md: not an image file"),
        (str(CHAIR), 1.5, "threshold 1.5"),
        (str(CHAIR), "nan", "threshold nan"),
        (str(CHAIR), 0.999999, "empty mesh"),
        (str(CHAIR), "framing", "framing 'sometimes': choose one of auto, always, off"),
    ],
    ids=["no-image", "not-an-image", "threshold-1.5", "threshold-nan", "empty-mesh", "framing"],
)
def test_errors_are_a_readable_message(app, image, threshold, expected):
    if image == "README.md":
        image = str(ROOT / "README.md")
    framing = "auto"
    if threshold == "framing":
        threshold, framing = 0.5, "sometimes"
    framed, viewer, obj, glb, text = _reconstruct_event(app).fn(
        image, 64, threshold, framing, progress=no_progress
    )
    assert text.startswith("Error: ") and expected in text, text
    assert "Traceback" not in text and viewer is None and obj is None and glb is None


def test_the_framing_choice_reaches_the_model_input(app, chair_views):
    """auto keeps a render framed like the training ones; always recentres and rescales it; off reads it as
    it is. The page shows each (the model's input) and says what framing did."""
    from ifkd.data.format import load_image
    from ifkd.framing import frame_image
    from ifkd.serve import framed_input, tensor_to_display

    rec = app.image_to_mesh.rec
    kept = [f for f in chair_views[0] if frame_image(load_image(f))[1].action == "framing kept"]
    assert kept, "no render of the chair is framed like the training ones"
    render = kept[0]
    shown = {}
    for choice in ("auto", "always", "off"):
        result = app.image_to_mesh.run(render, 64, 0.5, choice)
        assert result.glb is not None, result.message
        shown[choice] = result.framed
        assert ("framing: off" in result.message) == (choice == "off"), result.message
        assert ("\nframing kept: " in result.message) == (choice == "auto"), result.message
    rgba = load_image(render)
    np.testing.assert_array_equal(shown["auto"], tensor_to_display(framed_input(rec, rgba, reframe=False)))
    np.testing.assert_array_equal(shown["auto"], shown["off"])
    always = framed_input(rec, rgba, reframe_mode="always")
    np.testing.assert_array_equal(shown["always"], tensor_to_display(always))
    assert not np.array_equal(shown["always"], shown["off"])


# ------------------------------------------------------------------------------------- several views
@pytest.fixture(scope="module")
def chair_views(tmp_path_factory) -> tuple[list[Path], Path]:
    """(the test chair's three renders 00.png, 01.png, 02.png, its rendering_metadata.txt)."""
    root = tmp_path_factory.mktemp("views") / "data"
    generate_dataset(root, VIEWS, progress=False)
    folder = shape_dir(root, read_index(root)["splits"]["test"][0]) / RENDER_DIR
    names, _ = read_views(folder)
    return [folder / n for n in names], folder / METADATA_FILE


def _pose_lines(metadata: Path, keep=None) -> str:
    """The metadata's poses typed as the pose box takes them: AZ EL DIST_RATIO per line."""
    from ifkd.geometry.camera import parse_metadata_line

    views = [parse_metadata_line(ln) for ln in metadata.read_text().splitlines() if ln.strip()]
    views = views if keep is None else [views[i] for i in keep]
    return "\n".join(f"{v.azimuth!r} {v.elevation!r} {v.distance_ratio!r}" for v in views)


def test_several_views_fuse_into_one_object_frame_mesh(app, chair_views, tmp_path):
    import trimesh

    from ifkd.cli import main

    files, metadata = chair_views
    # Through the page's own event function, as the button calls it.
    gallery, viewer, obj, glb, text = _event(app, "reconstruct_views").fn(
        [str(f) for f in reversed(files)], str(metadata), "", "mean", 64, 0.5, progress=no_progress
    )
    assert viewer == glb and glb.endswith(".glb") and obj.endswith(".obj"), text
    assert Path(glb).read_bytes()[:4] == b"glTF"
    mesh = trimesh.load(obj, force="mesh")
    assert len(mesh.faces) > 100 and 0.3 < np.linalg.norm(mesh.extents) < 2.0
    assert text.startswith("3 views fused (mean) -> ") and "timings" in text and "object frame" in text
    assert "00.png az " in text and "by the images' numbers" in text, text
    assert len(gallery) == 3 and all(g.dtype == np.uint8 and g.shape[2] == 3 for g in gallery)

    # What `ifkd reconstruct FOLDER --views-fused` makes of the same rendering folder, to the byte.
    argv = ["reconstruct", str(metadata.parent), "--views-fused", "--model", "pretrained"]
    assert main([*argv, "--resolution", "64", "--device", "cpu", "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "fused" / "mesh.obj").read_bytes() == Path(obj).read_bytes()

    # The same poses typed one line per image (in file-name order): the very same mesh.
    typed = app.image_to_mesh.run_views([str(f) for f in files], None, _pose_lines(metadata), "mean", 64, 0.5)
    assert typed.obj is not None and "pose lines, in file-name order" in typed.message, typed.message
    assert Path(typed.obj).read_bytes() == Path(obj).read_bytes()

    # Two of the folder's views with its whole metadata: each image takes its own line (00.png, 02.png).
    two = app.image_to_mesh.run_views([str(files[0]), str(files[2])], str(metadata), "", "min", 64, 0.5)
    assert two.message.startswith("2 views fused (min) -> "), two.message
    typed_two = app.image_to_mesh.run_views(
        [str(files[0]), str(files[2])], None, _pose_lines(metadata, keep=[0, 2]), "min", 64, 0.5
    )
    assert Path(typed_two.obj).read_bytes() == Path(two.obj).read_bytes()


def _error_case(case: str, files: list[Path], metadata: Path, tmp_path: Path) -> tuple:
    """The several-views tab's inputs (images, metadata, pose text, fusion) for an error ``case``."""
    images, lines = [str(f) for f in files], _pose_lines(metadata).splitlines()
    # Copies not named like R2N2's NN.png: matched to the metadata's lines by order, so they are counted.
    named = []
    for i, f in enumerate(files[:2]):
        named.append(tmp_path / f"view_{'ab'[i]}.png")
        named[-1].write_bytes(f.read_bytes())
    own_metadata = tmp_path / METADATA_FILE
    good = metadata.read_text().splitlines()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a PNG\n" * 10)
    if case == "metadata-count":
        own_metadata.write_text("\n".join(good))  # 3 lines for the 2 copies
    elif case == "metadata-line":
        own_metadata.write_text("\n".join([good[0], "x y"]))
    else:
        own_metadata.write_text("\n".join(good[:2]))
    return {
        "no-images": ([], str(metadata), "", "mean"),
        "no-poses": (images, None, "  \n", "mean"),
        "both": (images, str(metadata), "\n".join(lines), "mean"),
        "fewer-lines": (images, None, "\n".join(lines[:2]), "mean"),
        "bad-line": (images, None, "\n".join([lines[0], "45 abc", lines[2]]), "mean"),
        "bad-ratio": (images, None, "\n".join([*lines[:2], "45 30 -1"]), "mean"),
        "four-numbers": (images, None, "\n".join(["1 2 0.8 4", *lines[1:]]), "mean"),
        "metadata-count": ([str(p) for p in named], str(own_metadata), "", "mean"),
        "metadata-line": ([str(p) for p in named], str(own_metadata), "", "mean"),
        "not-an-image": ([str(named[0]), str(broken)], str(own_metadata), "", "mean"),
        "fusion": (images, str(metadata), "", "max"),
    }[case]


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no-images", "no images: upload the views"),
        ("no-poses", "no poses: upload the views' rendering_metadata.txt or type one pose line per image"),
        ("both", "poses given twice"),
        ("fewer-lines", "3 images but 2 pose lines: give one pose line (AZ EL [DIST_RATIO]) per image"),
        ("bad-line", "pose line 2 '45 abc': not a pose (AZ EL [DIST_RATIO]"),
        ("bad-ratio", "pose line 3 '45 30 -1': the distance ratio must be > 0"),
        ("four-numbers", "pose line 1 '1 2 0.8 4': a pose is AZ EL [DIST_RATIO] (2 or 3 numbers), got 4"),
        ("metadata-count", "2 images but 3 poses in rendering_metadata.txt"),
        ("metadata-line", "rendering_metadata.txt: line 2: not a number in line 'x y'"),
        ("not-an-image", "broken.png: not an image file"),
        ("fusion", "fusion 'max': choose one of mean, min"),
    ],
)
def test_several_views_errors_are_a_readable_message(app, chair_views, tmp_path, case, expected):
    images, meta, poses, fusion = _error_case(case, *chair_views, tmp_path)
    result = app.image_to_mesh.run_views(images, meta, poses, fusion, 64, 0.5)
    assert result.message.startswith("Error: ") and expected in result.message, result.message
    assert "Traceback" not in result.message and result.glb is None and result.obj is None
