"""`ifkd serve` without a browser: the command's options, and -- when gradio is installed -- the page's
wiring and the Reconstruct handler called directly on an example image (tests/test_serve_browser.py
drives the real page)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

from ifkd.commands import serve as serve_cmd
from ifkd.io import InputError

ROOT = Path(__file__).resolve().parents[1]
CHAIR = ROOT / "examples" / "chair.png"


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


def _reconstruct_event(app):
    """The function the Reconstruct button runs, with its inputs and outputs."""
    (fn,) = [f for f in app.fns.values() if getattr(f.fn, "__name__", "") == "reconstruct"]
    return fn


def no_progress(*args, **kwargs):
    return None


def test_page_wiring_and_the_handler_on_an_example(app):
    import gradio as gr

    from ifkd.data.format import load_image
    from ifkd.serve import framed_input, tensor_to_display

    assert isinstance(app, gr.Blocks)
    event = _reconstruct_event(app)
    kinds = [type(b).__name__ for b in event.inputs], [type(b).__name__ for b in event.outputs]
    assert kinds == (["Image", "Slider", "Number"], ["Image", "Model3D", "File", "File", "Textbox"])

    framed, viewer, obj, glb, text = event.fn(str(CHAIR), 64, 0.5, progress=no_progress)
    assert viewer == glb and glb.endswith(".glb") and obj.endswith(".obj"), text
    data = Path(glb).read_bytes()
    assert data[:4] == b"glTF" and len(data) > 1000
    assert Path(obj).stat().st_size > 1000
    assert "faces" in text and "timings" in text and "+Z toward the viewer" in text
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
    ],
    ids=["no-image", "not-an-image", "threshold-1.5", "threshold-nan", "empty-mesh"],
)
def test_errors_are_a_readable_message(app, image, threshold, expected):
    if image == "README.md":
        image = str(ROOT / "README.md")
    framed, viewer, obj, glb, text = _reconstruct_event(app).fn(image, 64, threshold, progress=no_progress)
    assert text.startswith("Error: ") and expected in text, text
    assert "Traceback" not in text and viewer is None and obj is None and glb is None
