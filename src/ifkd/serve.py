"""`ifkd serve`: a local web app (gradio) that turns an image into a mesh, over :class:`Reconstructor`.

Upload an image (or click one of ``examples/*.png``), pick the marching-cubes resolution and the
occupancy threshold, press *Reconstruct*: the page shows the framed input (the exact image tensor the
model received), the mesh in a 3D viewer, OBJ and GLB downloads, and the timings.

Nothing here reaches the internet: the server binds 127.0.0.1 unless told otherwise, gradio's telemetry
is off, and a public share link is made only with ``share=True`` (``ifkd serve --share``).
gradio is an optional dependency: ``pip install 'ifkd[app]'``.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ifkd.io import InputError

if TYPE_CHECKING:
    import gradio
    import torch

    from ifkd.reconstruct import Reconstructor

log = logging.getLogger("ifkd.serve")

RESOLUTIONS = (64, 96, 128)
DEFAULT_RESOLUTION = 128
DEFAULT_THRESHOLD = 0.5
FRAMED_DISPLAY_SIZE = 256
"""the framed input is shown enlarged by an integer factor (nearest neighbour) to at least this size"""
KEEP_RESULTS = 32
"""result folders kept on disk (older ones are deleted; all of them when the server stops)"""
MAX_UPLOAD = "25mb"

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
"""``examples/`` of a source checkout (absent from an installed wheel: the app then shows no examples)"""

SCALE_NOTE = (
    "Scale and axes: the mesh is in the normalised object scale (bounding-box diagonal about 1, no "
    "real-world units: one image does not tell the size), view-aligned: +X right, +Y up, +Z toward the "
    "viewer, so it faces the way the image does. The GLB is Y-up as glTF expects."
)
SCALE_NOTE_OBJECT = (
    "Scale and axes: the mesh is in the normalised object scale (bounding-box diagonal about 1, no "
    "real-world units) in the canonical ShapeNet v1 object frame (+Y up): this model predicts in that "
    "frame, not view-aligned."
)
GRADIO_MISSING = (
    "ifkd serve needs gradio, which is not installed: pip install 'ifkd[app]' (or pip install 'gradio>=5')"
)


def import_gradio():
    """gradio, with its telemetry off (set before the import), or an InputError saying how to install it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError:
        raise InputError(GRADIO_MISSING) from None
    return gradio


# -- the framing hook ----------------------------------------------------------------------------------
def framed_input(rec: Reconstructor, rgba: np.ndarray, **framing: Any) -> torch.Tensor:
    """THE FRAMING HOOK: the exact (3, S, S) image tensor in [0, 1] that the model is given for ``rgba``.

    It is whatever :meth:`Reconstructor.prepare` makes of the image -- the function ``reconstruct`` itself
    applies to each input -- so the app never re-implements (or double-applies) the preprocessing. Today
    that is the whole frame resized to the model's input size (:func:`ifkd.data.loader.image_to_tensor`);
    once ``prepare`` also crops, recentres and rescales the object to the training framing, the app shows
    and uses that. Framing options (e.g. ``foreground_ratio``, ``reframe``) are passed on when ``prepare``
    accepts them and dropped otherwise. The app gives this very tensor to :meth:`Reconstructor.reconstruct`.
    """
    accepted = inspect.signature(rec.prepare).parameters
    options = {k: v for k, v in framing.items() if k in accepted and v is not None}
    return rec.prepare(rgba, **options)


def tensor_to_display(image: torch.Tensor, min_size: int = FRAMED_DISPLAY_SIZE) -> np.ndarray:
    """(3, S, S) float in [0, 1] -> uint8 (k*S, k*S, 3), each pixel repeated k x k (k = ceil(min_size / S)):
    the model's input pixels, made big enough to see, and nothing else."""
    arr = image.detach().float().cpu().numpy().transpose(1, 2, 0)
    arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    k = max(1, math.ceil(min_size / max(arr.shape[:2])))
    return np.ascontiguousarray(arr.repeat(k, axis=0).repeat(k, axis=1))


# -- the handler ---------------------------------------------------------------------------------------
@dataclass
class Result:
    """What one press of *Reconstruct* gives the page (None where a run failed)."""

    framed: np.ndarray | None
    """the framed input, enlarged for display (:func:`tensor_to_display`)"""
    glb: str | None
    obj: str | None
    message: str

    def outputs(self) -> tuple:
        """The values of the page's outputs: framed input, 3D viewer, OBJ link, GLB link, text."""
        return self.framed, self.glb, self.obj, self.glb, self.message


def _no_progress(*_args: Any, **_kwargs: Any) -> None:
    return None


class ImageToMesh:
    """The app's work, independent of the page: one image in, the framed input, OBJ + GLB and a text out.

    Expected failures (unreadable image, bad option, empty mesh) come back as a readable message, and an
    unexpected one as its one-line summary (the traceback goes to the server's log), never raised.
    """

    def __init__(self, rec: Reconstructor, model_name: str, out_root: str | Path | None = None) -> None:
        self.rec = rec
        self.model_name = model_name
        if out_root is None:
            out_root = tempfile.mkdtemp(prefix="ifkd-serve-")
            atexit.register(shutil.rmtree, out_root, True)
        self.out_root = Path(out_root)
        self.out_root.mkdir(parents=True, exist_ok=True)
        self._count = 0
        self._lock = threading.Lock()

    def describe_model(self) -> str:
        cfg = self.rec.cfg
        return f"{self.model_name} (method {cfg.method}, {cfg.preset} preset) on {self.rec.device}"

    def __call__(self, image, resolution, threshold, progress: Callable[..., Any] | None = None) -> tuple:
        return self.run(image, resolution, threshold, progress).outputs()

    def run(self, image, resolution, threshold, progress: Callable[..., Any] | None = None) -> Result:
        """``image``: a file path (what the page gives), or a uint8 array; -> :class:`Result`."""
        progress = progress or _no_progress
        try:
            return self._run(image, resolution, threshold, progress)
        except (InputError, ValueError) as exc:
            return Result(None, None, None, f"Error: {_one_line(exc)}")
        except Exception as exc:  # a bug or a broken model: say what, keep the server up
            log.exception("reconstruction failed")
            return Result(
                None, None, None, f"Error: reconstruction failed ({type(exc).__name__}: {_one_line(exc)})"
            )

    def _run(self, image, resolution, threshold, progress) -> Result:
        from ifkd.data.format import load_image
        from ifkd.extract.export import export_mesh
        from ifkd.reconstruct import as_rgba

        resolution = check_resolution(resolution)
        threshold = check_threshold(threshold)
        if image is None or (isinstance(image, str) and not image.strip()):
            raise InputError("no image: upload one (PNG, JPEG, ...) or click one of the examples")
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        progress(0.05, desc="reading the image")
        if isinstance(image, (str, Path)):
            name = Path(image).name
            try:
                rgba = load_image(image)
            except InputError as exc:  # name the file the user gave, not gradio's cache path
                raise InputError(str(exc).replace(str(image), name)) from None
        else:
            name = "image"
            rgba = as_rgba(np.asarray(image))
        times["read"] = time.perf_counter() - t0

        progress(0.15, desc="framing the input")
        t = time.perf_counter()
        tensor = framed_input(self.rec, rgba)
        times["frame"] = time.perf_counter() - t

        progress(0.25, desc=f"reconstructing (encode, query the field, marching cubes at {resolution})")
        (out,) = self.rec.reconstruct(tensor[None], resolution=resolution, threshold=threshold)
        times.update({k: v for k, v in out.timings.items() if k != "load"})
        problem = out.problem() if hasattr(out, "problem") else _problem(out.mesh, threshold)
        if problem is not None:
            hint = " -- try a lower threshold" if "empty" in problem else ""
            return Result(tensor_to_display(tensor), None, None, f"Error: {name}: {problem}{hint}")

        progress(0.9, desc="writing OBJ and GLB")
        t = time.perf_counter()
        folder = self._result_folder()
        stem = Path(name).stem or "mesh"
        obj = export_mesh(out.mesh, folder / f"{stem}.obj", up="+y")
        glb = export_mesh(with_viewer_material(out.mesh), folder / f"{stem}.glb", up="+y")
        times["export"] = time.perf_counter() - t
        total = time.perf_counter() - t0

        mesh = out.mesh
        diagonal = float(np.linalg.norm(np.ptp(np.asarray(mesh.vertices), axis=0)))
        timing = " · ".join(f"{k} {v:.2f}s" for k, v in times.items())
        size = tuple(tensor.shape[-2:])
        lines = [
            f"{name} -> {len(mesh.faces):,} faces, {len(mesh.vertices):,} vertices "
            f"(resolution {resolution}, threshold {threshold:g}, {out.n_queries:,} field queries)",
            f"timings: {timing} · total {total:.2f}s",
            f"model: {self.describe_model()}; framed input {size[1]}x{size[0]} px",
            (SCALE_NOTE if out.frame == "view" else SCALE_NOTE_OBJECT)
            + f" This mesh's bounding-box diagonal: {diagonal:.2f}.",
        ]
        progress(1.0, desc="done")
        return Result(tensor_to_display(tensor), str(glb), str(obj), "\n".join(lines))

    def _result_folder(self) -> Path:
        """A new folder per result; the oldest are deleted beyond :data:`KEEP_RESULTS`."""
        with self._lock:
            self._count += 1
            folder = self.out_root / f"{self._count:06d}"
            old = self.out_root / f"{self._count - KEEP_RESULTS:06d}"
        shutil.rmtree(old, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        return folder


MESH_COLOUR = (150, 170, 200, 255)


def with_viewer_material(mesh):
    """A copy of ``mesh`` with a matte grey-blue PBR material, so it stands out in the 3D viewer (a GLB
    without one is drawn near-white); the geometry is untouched."""
    import trimesh

    out = mesh.copy()
    material = trimesh.visual.material.PBRMaterial(
        baseColorFactor=MESH_COLOUR, metallicFactor=0.0, roughnessFactor=0.9, doubleSided=True
    )
    out.visual = trimesh.visual.TextureVisuals(material=material)
    return out


def check_resolution(value) -> int:
    try:
        res = int(round(float(value)))
    except (TypeError, ValueError):
        raise InputError(f"resolution {value!r}: not a number") from None
    if res not in RESOLUTIONS:
        raise InputError(f"resolution {res}: choose one of {', '.join(map(str, RESOLUTIONS))}")
    return res


def check_threshold(value) -> float:
    try:
        thr = float(value)
    except (TypeError, ValueError):
        raise InputError(f"threshold {value!r}: not a number (an occupancy level, e.g. 0.5)") from None
    if not 0.0 < thr < 1.0:  # also false for nan
        raise InputError(f"threshold {thr:g}: must be an occupancy probability strictly between 0 and 1")
    return thr


def _problem(mesh, threshold: float) -> str | None:
    """Fallback for a Reconstruction without ``problem()``: empty or non-finite meshes are no result."""
    vertices = np.asarray(mesh.vertices)
    if len(vertices) and not np.isfinite(vertices).all():
        return "non-finite mesh (NaN/Inf vertices)"
    if len(mesh.faces) == 0:
        return f"empty mesh (no surface crossed the threshold {threshold:g})"
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# -- the page ------------------------------------------------------------------------------------------
def example_images() -> list[str]:
    return [str(p) for p in sorted(EXAMPLES_DIR.glob("*.png"))] if EXAMPLES_DIR.is_dir() else []


def load_reconstructor(model: str, device: str) -> Reconstructor:
    from ifkd.reconstruct import Reconstructor

    rec = Reconstructor.from_run(model, device=device)
    if rec.model.input_kind != "image":
        raise InputError(
            f"{model}: method {rec.cfg.method!r} reconstructs from voxel grids, not images; "
            "use a single-view method's run (ifkd, its variants, global, camera)"
        )
    return rec


def build_app(
    model: str = "pretrained", device: str = "cpu", *, reconstructor: Reconstructor | None = None
) -> gradio.Blocks:
    """The page, with the model loaded once (``model``: a run folder or 'pretrained[:NAME]').

    The handler behind *Reconstruct* is ``app.image_to_mesh`` (an :class:`ImageToMesh`), callable without
    a browser: ``app.image_to_mesh.run("examples/chair.png", 128, 0.5)``.
    """
    gr = import_gradio()
    rec = reconstructor if reconstructor is not None else load_reconstructor(model, device)
    handler = ImageToMesh(rec, model)

    def reconstruct(image, resolution, threshold, progress=gr.Progress()):  # noqa: B008 (gradio's idiom)
        return handler(image, resolution, threshold, progress)

    with gr.Blocks(title="ifkd: image to mesh", analytics_enabled=False) as app:
        gr.Markdown(
            "## ifkd: one image to a 3D mesh\n"
            f"Model: `{handler.describe_model()}`. Upload an object's picture (a transparent or plain "
            "background works best) or click an example, then **Reconstruct**."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=260):
                image = gr.Image(
                    label="input image",
                    type="filepath",
                    image_mode=None,  # keep the file as uploaded (alpha too); ifkd reads it like the CLI
                    sources=["upload", "clipboard"],
                    height=280,
                    elem_id="input-image",
                )
                _keep_unreadable_uploads(image)
                resolution = gr.Slider(
                    minimum=RESOLUTIONS[0],
                    maximum=RESOLUTIONS[-1],
                    step=RESOLUTIONS[1] - RESOLUTIONS[0],
                    value=DEFAULT_RESOLUTION,
                    label="resolution (marching-cubes grid)",
                    elem_id="resolution",
                )
                threshold = gr.Number(
                    value=DEFAULT_THRESHOLD,
                    label="threshold (occupancy level of the surface, between 0 and 1)",
                    elem_id="threshold",
                )
                button = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct")
                examples = example_images()
                if examples:
                    gr.Examples(
                        examples=[[p] for p in examples],
                        inputs=[image],
                        label="examples (examples/*.png)",
                        examples_per_page=len(examples),
                    )
            with gr.Column(scale=1, min_width=260):
                framed = gr.Image(
                    label="framed input (= the model's input)",
                    type="numpy",
                    format="png",  # lossless: the model's input pixels, not a webp approximation
                    interactive=False,
                    height=280,
                    elem_id="framed-input",
                )
                info = gr.Textbox(
                    label="result", lines=10, max_lines=16, interactive=False, elem_id="result-text"
                )
            with gr.Column(scale=2, min_width=320):
                viewer = gr.Model3D(
                    label="mesh (drag to turn, scroll to zoom)",
                    clear_color=(0.94, 0.95, 0.97, 1.0),
                    camera_position=(90, 90, None),  # from +Z: the mesh as the image shows it
                    height=420,
                    interactive=False,
                    elem_id="mesh-viewer",
                )
                with gr.Row():
                    obj_file = gr.File(label="OBJ", interactive=False, elem_id="obj-file")
                    glb_file = gr.File(label="GLB", interactive=False, elem_id="glb-file")
        button.click(
            reconstruct,
            inputs=[image, resolution, threshold],
            outputs=[framed, viewer, obj_file, glb_file, info],
            concurrency_limit=1,  # one reconstruction at a time: they share the model and the cores
        )
    app.image_to_mesh = handler
    app.ifkd_allowed_paths = [str(handler.out_root)] + ([str(EXAMPLES_DIR)] if examples else [])
    return app


def _stop(_signum, _frame):
    raise KeyboardInterrupt


def _keep_unreadable_uploads(component) -> None:
    """gradio opens an uploaded image before the handler runs and fails with a bare 'Error' on a file that
    is no image; pass such a file on as it is, so the handler's reader says what is wrong with it."""
    preprocess = component.preprocess

    def tolerant(payload):
        try:
            return preprocess(payload)
        except Exception:
            path = getattr(payload, "path", None)
            if path is None:
                raise
            return str(path)

    component.preprocess = tolerant


def serve(
    model: str = "pretrained",
    device: str = "cpu",
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    *,
    block: bool = True,
) -> gradio.Blocks:
    """Build the app and serve it on http://HOST:PORT (blocks until interrupted unless ``block=False``)."""
    app = build_app(model, device)
    print(f"ifkd serve: model {app.image_to_mesh.describe_model()}")
    print(
        f"ifkd serve: open http://{host}:{port} (Ctrl+C stops)" + ("; share link requested" if share else "")
    )
    app.queue(default_concurrency_limit=1)
    if block and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)  # `kill PID` stops like Ctrl+C: results folder removed
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        allowed_paths=app.ifkd_allowed_paths,
        max_file_size=MAX_UPLOAD,
        prevent_thread_lock=not block,
        inbrowser=False,
        show_error=True,
        quiet=True,
    )
    return app


def _stop(_signum, _frame):
    raise KeyboardInterrupt
