"""`ifkd serve`: a local web app (gradio) that turns an image into a mesh, over :class:`Reconstructor`.

Tab *One image*: upload an image (or click one of ``examples/*.png``), pick the framing (``auto``,
``always``, ``off``: :mod:`ifkd.framing`), the marching-cubes resolution and the occupancy threshold,
press *Reconstruct*: the page shows the framed input (the exact image tensor the model received), the
mesh in a 3D viewer, OBJ and GLB downloads, and the timings.

Tab *Several views*: upload several images of ONE object with known R2N2 poses, plus either their
``rendering_metadata.txt`` or one pose line per image (``AZ EL [DIST_RATIO]``, as ``ifkd reconstruct
--pose`` takes it), pick the fusion rule: one object-frame mesh
(:meth:`Reconstructor.reconstruct_views`, as ``ifkd reconstruct --views-fused``), with the same outputs.

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
FRAMING_CHOICES = ("auto", "always", "off")
"""The single-view tab's framing: ``reframe_mode`` auto / always (:data:`ifkd.framing.FRAMING_MODES`), or
``reframe=False``"""
DEFAULT_FRAMING = "auto"
FUSION_RULES = ("mean", "min")
""":data:`ifkd.reconstruct.FUSION_RULES` (repeated so that building the page does not need torch first)"""
DEFAULT_FUSION = "mean"
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
SCALE_NOTE_FUSED = (
    "Scale and axes: the mesh is in the normalised object scale (bounding-box diagonal about 1, no "
    "real-world units) in the canonical ShapeNet v1 object frame (+Y up) that the poses refer to, not "
    "aligned with any one view. The GLB is Y-up as glTF expects."
)
METADATA_NAME = "rendering_metadata.txt"

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
def framed_input_and_info(rec: Reconstructor, rgba: np.ndarray, **framing: Any):
    """THE FRAMING HOOK: (the exact (3, S, S) image tensor in [0, 1] that the model is given for ``rgba``,
    what framing did -- a :class:`ifkd.framing.FramingInfo`, None when framing is off).

    It is whatever :meth:`Reconstructor.prepare_framed` makes of the image -- the function ``reconstruct``
    itself applies to each input -- so the app never re-implements (or double-applies) the preprocessing:
    the object recentred and/or rescaled to the training framing as :func:`ifkd.framing.frame_image`
    decides, then the frame resized to the model's input size. Framing options (``reframe``,
    ``reframe_mode``, ``foreground_ratio``) are passed on when it accepts them and dropped otherwise. The
    app gives this very tensor to :meth:`Reconstructor.reconstruct`.
    """
    accepted = inspect.signature(rec.prepare_framed).parameters
    options = {k: v for k, v in framing.items() if k in accepted and v is not None}
    return rec.prepare_framed(rgba, **options)


def framed_input(rec: Reconstructor, rgba: np.ndarray, **framing: Any) -> torch.Tensor:
    """The model's input tensor for ``rgba`` (:func:`framed_input_and_info` without the info)."""
    return framed_input_and_info(rec, rgba, **framing)[0]


def framing_options(choice: str | None) -> dict[str, Any]:
    """A :data:`FRAMING_CHOICES` entry (None: the default) -> the options of :func:`framed_input`."""
    choice = DEFAULT_FRAMING if choice is None else str(choice).strip().lower()
    if choice not in FRAMING_CHOICES:
        raise InputError(f"framing {choice!r}: choose one of {', '.join(FRAMING_CHOICES)}")
    return {"reframe": False} if choice == "off" else {"reframe": True, "reframe_mode": choice}


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

    framed: np.ndarray | list[np.ndarray] | None
    """the framed input, enlarged for display (:func:`tensor_to_display`); several views: one per view"""
    glb: str | None
    obj: str | None
    message: str

    def outputs(self) -> tuple:
        """The values of the page's outputs: framed input(s), 3D viewer, OBJ link, GLB link, text."""
        return self.framed, self.glb, self.obj, self.glb, self.message


def _no_progress(*_args: Any, **_kwargs: Any) -> None:
    return None


class ImageToMesh:
    """The app's work, independent of the page: one image in, the framed input, OBJ + GLB and a text out
    (:meth:`run`); or several views with their poses in, one fused mesh out (:meth:`run_views`).

    Expected failures (unreadable image, bad option, bad pose, empty mesh) come back as a readable
    message, and an unexpected one as its one-line summary (the traceback goes to the server's log),
    never raised.
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

    def __call__(
        self, image, resolution, threshold, framing=None, progress: Callable[..., Any] | None = None
    ) -> tuple:
        return self.run(image, resolution, threshold, framing, progress).outputs()

    def run(
        self, image, resolution, threshold, framing=None, progress: Callable[..., Any] | None = None
    ) -> Result:
        """``image``: a file path (what the page gives), or a uint8 array; ``framing``: one of
        :data:`FRAMING_CHOICES` (None: :data:`DEFAULT_FRAMING`); -> :class:`Result`."""
        return self._guarded(self._run, image, resolution, threshold, framing, progress or _no_progress)

    def views(
        self,
        images,
        metadata,
        poses,
        fusion,
        resolution,
        threshold,
        progress: Callable[..., Any] | None = None,
    ) -> tuple:
        return self.run_views(images, metadata, poses, fusion, resolution, threshold, progress).outputs()

    def run_views(
        self,
        images,
        metadata,
        poses,
        fusion,
        resolution,
        threshold,
        progress: Callable[..., Any] | None = None,
    ) -> Result:
        """Several views of ONE object -> one fused object-frame mesh. ``images``: image file paths (what
        the page gives); ``metadata``: the path of their ``rendering_metadata.txt`` or None; ``poses``:
        the pose box's text (one ``AZ EL [DIST_RATIO]`` line per image) or empty -- exactly one of the two
        (:func:`views_and_poses`); ``fusion``: one of :data:`FUSION_RULES`; -> :class:`Result` whose
        ``framed`` is the list of the views as the model reads them."""
        args = (images, metadata, poses, fusion, resolution, threshold, progress or _no_progress)
        return self._guarded(self._run_views, *args)

    def _guarded(self, fn, *args) -> Result:
        try:
            return fn(*args)
        except (InputError, ValueError) as exc:
            return Result(None, None, None, f"Error: {_one_line(exc)}")
        except Exception as exc:  # a bug or a broken model: say what, keep the server up
            log.exception("reconstruction failed")
            return Result(
                None, None, None, f"Error: reconstruction failed ({type(exc).__name__}: {_one_line(exc)})"
            )

    def _run(self, image, resolution, threshold, framing, progress) -> Result:
        from ifkd.extract.export import export_mesh
        from ifkd.reconstruct import as_rgba

        resolution = check_resolution(resolution)
        threshold = check_threshold(threshold)
        options = framing_options(framing)
        if image is None or (isinstance(image, str) and not image.strip()):
            raise InputError("no image: upload one (PNG, JPEG, ...) or click one of the examples")
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        progress(0.05, desc="reading the image")
        if isinstance(image, (str, Path)):
            name = Path(image).name
            rgba = _read_image(image)
        else:
            name = "image"
            rgba = as_rgba(np.asarray(image))
        times["read"] = time.perf_counter() - t0

        progress(0.15, desc="framing the input")
        t = time.perf_counter()
        tensor, info = framed_input_and_info(self.rec, rgba, **options)
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
            "framing: off (the picture as it is)" if info is None else info.summary(),
            (SCALE_NOTE if out.frame == "view" else SCALE_NOTE_OBJECT)
            + f" This mesh's bounding-box diagonal: {diagonal:.2f}.",
        ]
        if info is not None and info.warnings:
            lines.insert(1, f"Warning: {info.warning}")
        progress(1.0, desc="done")
        return Result(tensor_to_display(tensor), str(glb), str(obj), "\n".join(lines))

    def _run_views(self, images, metadata, poses, fusion, resolution, threshold, progress) -> Result:
        import torch

        from ifkd.extract.export import export_mesh

        resolution = check_resolution(resolution)
        threshold = check_threshold(threshold)
        fusion = DEFAULT_FUSION if fusion is None or not str(fusion).strip() else str(fusion).strip()
        if fusion not in FUSION_RULES:
            raise InputError(f"fusion {fusion!r}: choose one of {', '.join(FUSION_RULES)}")
        files, views, how = views_and_poses(images, metadata, poses)
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        progress(0.05, desc=f"reading {len(files)} views")
        # Read as they are (never reframed: each pose describes its image's own R2N2 framing), and shown
        # as the model reads them.
        tensors = [framed_input(self.rec, _read_image(f), reframe=False) for f in files]
        times["read"] = time.perf_counter() - t0

        progress(0.25, desc=f"fusing {len(files)} views (encode, query the field, marching cubes)")
        out = self.rec.reconstruct_views(
            torch.stack(tensors), views, resolution, threshold=threshold, fusion=fusion
        )
        times.update({k: v for k, v in out.timings.items() if k != "load"})
        shown = [tensor_to_display(t) for t in tensors]
        problem = out.problem()
        if problem is not None:
            hint = " -- try a lower threshold" if "empty" in problem else ""
            return Result(shown, None, None, f"Error: the {len(files)} fused views: {problem}{hint}")

        progress(0.9, desc="writing OBJ and GLB")
        t = time.perf_counter()
        folder = self._result_folder()
        obj = export_mesh(out.mesh, folder / "fused.obj", up="+y")
        glb = export_mesh(with_viewer_material(out.mesh), folder / "fused.glb", up="+y")
        times["export"] = time.perf_counter() - t
        total = time.perf_counter() - t0

        mesh = out.mesh
        diagonal = float(np.linalg.norm(np.ptp(np.asarray(mesh.vertices), axis=0)))
        timing = " · ".join(f"{k} {v:.2f}s" for k, v in times.items())
        listed = "; ".join(
            f"{Path(f).name} az {v.azimuth:g} el {v.elevation:g} dist {v.distance_ratio:g}"
            for f, v in zip(files, views)
        )
        lines = [
            f"{len(files)} views fused ({fusion}) -> {len(mesh.faces):,} faces, {len(mesh.vertices):,} "
            f"vertices (resolution {resolution}, threshold {threshold:g}, {out.n_queries:,} field queries)",
            f"timings: {timing} · total {total:.2f}s",
            f"model: {self.describe_model()}; views read as they are (not reframed)",
            f"poses ({how}): {listed}",
            SCALE_NOTE_FUSED + f" This mesh's bounding-box diagonal: {diagonal:.2f}.",
        ]
        progress(1.0, desc="done")
        return Result(shown, str(glb), str(obj), "\n".join(lines))

    def _result_folder(self) -> Path:
        """A new folder per result; the oldest are deleted beyond :data:`KEEP_RESULTS`."""
        with self._lock:
            self._count += 1
            folder = self.out_root / f"{self._count:06d}"
            old = self.out_root / f"{self._count - KEEP_RESULTS:06d}"
        shutil.rmtree(old, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def _read_image(path) -> np.ndarray:
    """An image file -> RGBA uint8, an unreadable one an InputError naming the file the user gave (its
    name), not gradio's cache path."""
    from ifkd.data.format import load_image

    try:
        return load_image(path)
    except InputError as exc:
        raise InputError(str(exc).replace(str(path), Path(path).name)) from None


def _paths(files) -> list[str]:
    """gradio's file value (a path, a list of them, or file objects with ``.name`` / ``.path``) -> paths."""
    if files is None:
        return []
    if isinstance(files, (str, Path)):
        files = [files]
    out = []
    for f in files:
        path = f if isinstance(f, (str, Path)) else getattr(f, "path", None) or getattr(f, "name", None)
        if path is not None and str(path).strip():
            out.append(str(path))
    return out


def views_and_poses(images, metadata, poses: str | None) -> tuple[list[str], list, str]:
    """The several-views tab's inputs -> (image paths in file-name order, one Viewpoint each, how the
    poses were matched to them), or an :class:`InputError` saying what to fix.

    ``metadata``: the path of an uploaded ``rendering_metadata.txt`` (R2N2's: ``az el in-plane dist_ratio
    fov`` per line, :func:`ifkd.geometry.camera.parse_metadata_line`); line i is the pose of the i-th image
    in file-name order -- or, when every image is named by its line's index as in R2N2's ``rendering/``
    folders (``00.png`` is the first line), of that image, so a few of a folder's 24 views can be given
    with its whole metadata. ``poses``: one ``AZ EL [DIST_RATIO]`` line per image, in file-name order, read
    by ``ifkd reconstruct``'s own ``--pose`` parser (:func:`ifkd.commands.reconstruct.parse_pose`; the
    distance ratio defaults to the nominal one). Exactly one of the two.
    """
    from ifkd.commands.reconstruct import parse_pose
    from ifkd.geometry.camera import parse_metadata_line

    files = sorted(_paths(images), key=lambda p: (Path(p).name, p))
    meta = _paths(metadata)
    text = poses if isinstance(poses, str) else ""
    if not files:
        raise InputError("no images: upload the views (images of ONE object, each with its pose)")
    if meta and text.strip():
        raise InputError(
            f"poses given twice: upload {METADATA_NAME} or type one pose line per image, not both"
        )
    names = [Path(f).name for f in files]
    if meta:
        (path,) = meta[:1]
        shown = Path(path).name
        try:
            raw = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{shown}: unreadable ({type(exc).__name__})") from None
        lines = [ln for ln in raw.splitlines() if ln.strip()]
        views = []
        for i, line in enumerate(lines):
            try:
                views.append(parse_metadata_line(line, f"{shown}: line {i + 1}"))
            except ValueError as exc:
                raise InputError(str(exc)) from None
        stems = [Path(n).stem for n in names]
        if all(s.isdigit() and int(s) < len(views) for s in stems):
            return files, [views[int(s)] for s in stems], f"{shown}, by the images' numbers"
        if len(views) != len(files):
            raise InputError(
                f"{len(files)} images but {len(views)} poses in {shown}: give one pose per image (line i "
                "is the i-th image in file-name order), or name the images by their line as in R2N2's "
                "rendering/ folders (00.png is the first line)"
            )
        return files, views, f"{shown}, in file-name order"
    if not text.strip():
        raise InputError(
            f"no poses: upload the views' {METADATA_NAME} or type one pose line per image "
            "(AZ EL [DIST_RATIO], in file-name order)"
        )
    numbered = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if len(numbered) != len(files):
        raise InputError(
            f"{len(files)} images but {len(numbered)} pose lines: give one pose line (AZ EL [DIST_RATIO]) "
            f"per image, in file-name order ({', '.join(names)})"
        )
    views = [parse_pose(line, f"pose line {i}") for i, line in numbered]
    return files, views, "pose lines, in file-name order"


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

    The handlers are ``app.image_to_mesh`` (an :class:`ImageToMesh`), callable without a browser:
    ``app.image_to_mesh.run("examples/chair.png", 128, 0.5)`` behind *Reconstruct*, and
    ``app.image_to_mesh.run_views(images, "rendering_metadata.txt", "", "mean", 128, 0.5)`` behind the
    *Several views* tab's button.
    """
    gr = import_gradio()
    rec = reconstructor if reconstructor is not None else load_reconstructor(model, device)
    handler = ImageToMesh(rec, model)

    def reconstruct(image, resolution, threshold, framing, progress=gr.Progress()):  # noqa: B008 (gradio)
        return handler(image, resolution, threshold, framing, progress)

    def reconstruct_views(
        images,
        metadata,
        poses,
        fusion,
        resolution,
        threshold,
        progress=gr.Progress(),  # noqa: B008
    ):
        return handler.views(images, metadata, poses, fusion, resolution, threshold, progress)

    with gr.Blocks(title="ifkd: image to mesh", analytics_enabled=False) as app:
        gr.Markdown(
            "## ifkd: one image to a 3D mesh\n"
            f"Model: `{handler.describe_model()}`. Upload an object's picture (a transparent or plain "
            "background works best) or click an example, then **Reconstruct**; or fuse several views with "
            "known poses in the second tab."
        )
        with gr.Tabs():
            with gr.Tab("One image", id="one-image", elem_id="tab-one-image"):
                examples = _single_view_tab(gr, reconstruct)
            with gr.Tab("Several views", id="several-views", elem_id="tab-several-views"):
                _views_tab(gr, reconstruct_views)
    app.image_to_mesh = handler
    app.ifkd_allowed_paths = [str(handler.out_root)] + ([str(EXAMPLES_DIR)] if examples else [])
    return app


def _resolution_and_threshold(gr, prefix: str = ""):
    resolution = gr.Slider(
        minimum=RESOLUTIONS[0],
        maximum=RESOLUTIONS[-1],
        step=RESOLUTIONS[1] - RESOLUTIONS[0],
        value=DEFAULT_RESOLUTION,
        label="resolution (marching-cubes grid)",
        elem_id=f"{prefix}resolution",
    )
    threshold = gr.Number(
        value=DEFAULT_THRESHOLD,
        label="threshold (occupancy level of the surface, between 0 and 1)",
        elem_id=f"{prefix}threshold",
    )
    return resolution, threshold


def _mesh_outputs(gr, prefix: str = ""):
    """The 3D viewer and the OBJ / GLB downloads."""
    viewer = gr.Model3D(
        label="mesh (drag to turn, scroll to zoom)",
        clear_color=(0.94, 0.95, 0.97, 1.0),
        camera_position=(90, 90, None),  # from +Z: the mesh as the image shows it
        height=420,
        interactive=False,
        elem_id=f"{prefix}mesh-viewer",
    )
    with gr.Row():
        obj_file = gr.File(label="OBJ", interactive=False, elem_id=f"{prefix}obj-file")
        glb_file = gr.File(label="GLB", interactive=False, elem_id=f"{prefix}glb-file")
    return viewer, obj_file, glb_file


def _single_view_tab(gr, reconstruct) -> list[str]:
    """The *One image* tab; -> the example images it lists."""
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
            resolution, threshold = _resolution_and_threshold(gr)
            framing = gr.Radio(
                choices=list(FRAMING_CHOICES),
                value=DEFAULT_FRAMING,
                label="framing (auto: recentre / rescale only what is off the training framing; always; "
                "off: the picture as it is)",
                elem_id="framing",
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
            viewer, obj_file, glb_file = _mesh_outputs(gr)
    button.click(
        reconstruct,
        inputs=[image, resolution, threshold, framing],
        outputs=[framed, viewer, obj_file, glb_file, info],
        concurrency_limit=1,  # one reconstruction at a time: they share the model and the cores
        concurrency_id="reconstruct",
    )
    return examples


def _views_tab(gr, reconstruct_views) -> None:
    """The *Several views* tab: images + their poses -> one fused object-frame mesh."""
    gr.Markdown(
        "Several views of **one** object with known R2N2 poses, fused into one mesh in the object frame "
        "(as `ifkd reconstruct --views-fused`). Give the poses as the views' `rendering_metadata.txt` "
        "(line i: the i-th image in file-name order, or image `NN.png` when they are numbered as in R2N2's "
        "`rendering/` folders) **or** as one line `AZ EL [DIST_RATIO]` per image in file-name order (as "
        "`--pose`). The views are read as they are, never reframed."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=260):
            images = gr.File(
                label="views (images of one object)",
                file_count="multiple",
                file_types=["image"],
                type="filepath",
                elem_id="views-images",
            )
            metadata = gr.File(
                label=f"{METADATA_NAME} (R2N2 poses)",
                file_count="single",
                file_types=[".txt"],
                type="filepath",
                elem_id="views-metadata",
            )
            poses = gr.Textbox(
                label="or one pose per image: AZ EL [DIST_RATIO], in file-name order",
                lines=4,
                placeholder="45 30 0.8\n135 30 0.8\n225 30 0.8",
                elem_id="views-poses",
            )
            fusion = gr.Radio(
                choices=list(FUSION_RULES),
                value=DEFAULT_FUSION,
                label="fusion (mean: views outvote each other's errors; min: visual hull, keeps them all)",
                elem_id="views-fusion",
            )
            resolution, threshold = _resolution_and_threshold(gr, "views-")
            button = gr.Button("Reconstruct from the views", variant="primary", elem_id="views-reconstruct")
        with gr.Column(scale=1, min_width=260):
            shown = gr.Gallery(
                label="the views (= the model's inputs)",
                format="png",
                columns=3,
                height=280,
                interactive=False,
                elem_id="views-inputs",
            )
            info = gr.Textbox(
                label="result", lines=10, max_lines=16, interactive=False, elem_id="views-result-text"
            )
        with gr.Column(scale=2, min_width=320):
            viewer, obj_file, glb_file = _mesh_outputs(gr, "views-")
    button.click(
        reconstruct_views,
        inputs=[images, metadata, poses, fusion, resolution, threshold],
        outputs=[shown, viewer, obj_file, glb_file, info],
        concurrency_limit=1,
        concurrency_id="reconstruct",  # shared with the one-image tab: one reconstruction at a time
    )


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
