"""Image(s) -> mesh(es): the library object users touch (``Reconstructor``) and its CLI verb.

Output frame (one choice, used by the CLI, the report and the evaluator alike): the *view-aligned*
frame of the input image, object-centred, with viewer-friendly axes -- +X right, +Y up, +Z towards the
viewer (OpenGL camera axes). It is the paper's design: no pose is needed, the orientation follows the
image. With a known R2N2 pose the mesh can also be returned in the canonical object frame.
Methods that predict in the canonical frame (teacher, 'global', 'camera') return canonical meshes.

Speed on shared CPUs: set ``OMP_WAIT_POLICY=PASSIVE`` before torch is imported, as ``ifkd`` does at
start (:func:`ifkd.cli.passive_openmp_waits`) unless a policy is set: on a busy 2-core machine image ->
mesh was 1.5x faster than with OpenMP's default waits (benchmarks/results/omp_wait_policy.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import trimesh

from ifkd.config import Config
from ifkd.data.format import load_image
from ifkd.data.loader import image_to_tensor
from ifkd.device import resolve_device
from ifkd.extract.marching_cubes import extract_mesh
from ifkd.extract.mise import DEFAULT_HALF, coarse_to_fine, dense_grid
from ifkd.geometry.camera import CAM_MAX_DIST, Viewpoint, view_transform
from ifkd.models.base import Method

CV_TO_GL = np.diag([1.0, -1.0, -1.0])
"""OpenCV view axes (+Y down, +Z forward) <-> our output axes (+Y up, +Z towards the viewer)."""


def view_rotation_gl(E: np.ndarray) -> np.ndarray:
    """3x3 rotation: object frame -> output (view-aligned, OpenGL-axes) frame."""
    return CV_TO_GL @ np.asarray(E, dtype=np.float64)[:3, :3]


@dataclass
class Reconstruction:
    """One reconstructed image."""

    mesh: trimesh.Trimesh
    """in the method's output frame (view-aligned for view-frame methods)"""
    frame: str
    """'view' (view-aligned, +Y up, +Z to the viewer) or 'object' (canonical ShapeNet v1 frame)"""
    n_queries: int
    timings: dict[str, float] = field(default_factory=dict)
    mesh_object: trimesh.Trimesh | None = None
    """the same mesh in the canonical object frame, when a pose was given"""
    threshold: float = 0.5
    """the occupancy level the surface was extracted at"""

    def problem(self) -> str | None:
        """Why this reconstruction is not a result (None when it is one): an empty mesh, or NaN/Inf
        vertices in either mesh (a non-finite field already fails in extraction, with a ValueError).

        The library returns such meshes as they are (an evaluation scores an empty mesh as a miss); the
        CLI reports them as failed images and writes nothing for them.
        """
        for name, mesh in (("mesh", self.mesh), ("object-frame mesh", self.mesh_object)):
            vertices = np.asarray(mesh.vertices) if mesh is not None else np.zeros((0, 3))
            bad = int(np.count_nonzero(~np.isfinite(vertices).all(axis=1))) if len(vertices) else 0
            if bad:
                return f"non-finite {name} ({bad:,} of {len(vertices):,} vertices are NaN/Inf)"
        if len(self.mesh.faces) == 0:
            return f"empty mesh (no surface crossed the threshold {self.threshold:g})"
        return None


class Timer:
    """Per-stage wall-clock timings, printed like TripoSR's (`encode 0.05s · query 0.6s · ...`)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def stage(self, name: str):
        timer = self

        class _Stage:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                timer.times[name] = timer.times.get(name, 0.0) + time.perf_counter() - self.t0

        return _Stage()

    def summary(self) -> str:
        return " · ".join(f"{k} {v:.2f}s" for k, v in self.times.items())


def as_rgba(arr: np.ndarray) -> np.ndarray:
    """uint8 grey (H, W) or (H, W, 1), grey+alpha (H, W, 2), RGB (H, W, 3) or RGBA (H, W, 4) -> RGBA
    (H, W, 4); a missing alpha is opaque (the whole frame is the object's view)."""
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image array, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or min(arr.shape[:2]) < 2:
        raise ValueError(f"expected an image array (H, W[, 1|2|3|4]) of at least 2x2, got shape {arr.shape}")
    if arr.shape[2] <= 2:  # grey (+ alpha): repeat the grey level into RGB
        arr = np.concatenate([np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:]], axis=2)
    if arr.shape[2] == 3:
        arr = np.concatenate([arr, np.full(arr.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return np.ascontiguousarray(arr)


class Reconstructor:
    """A trained method plus its config: ``Reconstructor.from_run(RUN).reconstruct(images)``."""

    def __init__(self, model: Method, cfg: Config, device: str | torch.device = "cpu") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.cfg = cfg

    @classmethod
    def from_run(cls, run: str | Path, which: str = "best", device: str = "auto") -> Reconstructor:
        """Load a run folder (or 'pretrained' for the shipped weights)."""
        from ifkd.pretrained import resolve_run
        from ifkd.train.checkpoint import load_model

        model, cfg = load_model(resolve_run(run), which=which)
        return cls(model, cfg, resolve_device(device))

    # -- inputs ---------------------------------------------------------------------------------
    def prepare(self, image: str | Path | np.ndarray) -> torch.Tensor:
        """A path or a uint8 array (see :func:`as_rgba`) -> (3, S, S) tensor in [0, 1], as in training."""
        if isinstance(image, (str, Path)):
            rgba = load_image(image)
        else:
            rgba = as_rgba(np.asarray(image))
        return image_to_tensor(rgba, self.cfg.data.image_size, self.cfg.data.background)

    # -- the field ------------------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, inputs: torch.Tensor):
        """Images (B, 3, S, S) (or voxels for the teacher) -> the method's code."""
        return self.model.encode(inputs.to(self.device))

    def field_fn(self, code, index: int, distance: float | None):
        """A numpy field fn(points (N, 3) in the output frame) -> occupancy probabilities (N,)."""
        code_i = _select(code, index)
        distance = distance if distance is not None else self.cfg.eval.distance_ratio * CAM_MAX_DIST
        d = torch.tensor([distance], dtype=torch.float32, device=self.device)
        view = self.model.frame == "view"
        flip = torch.tensor(np.diag(CV_TO_GL), dtype=torch.float32, device=self.device)

        @torch.inference_mode()  # no autograd bookkeeping on the hot path
        def fn(points: np.ndarray) -> np.ndarray:
            p = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)).to(self.device)[None]
            if view:
                p = p * flip  # output axes -> OpenCV view axes (CV_TO_GL is diagonal: its own inverse)
            logits = self.model.decode(code_i, p, d)
            return torch.sigmoid(logits.float())[0].cpu().numpy()

        return fn

    def extract(
        self, fn, resolution: int | None = None, threshold: float | None = None, dense: bool = False
    ) -> tuple[trimesh.Trimesh, int]:
        """Field -> mesh with coarse-to-fine sampling (or the dense reference) and marching cubes."""
        ev = self.cfg.eval
        res = resolution or ev.resolution
        thr = ev.threshold if threshold is None else threshold
        if dense:
            values, n = dense_grid(fn, res, DEFAULT_HALF, ev.points_per_chunk), (res + 1) ** 3
        else:
            coarse = coarse_level(res, ev.coarse_resolution)
            values, n = coarse_to_fine(fn, res, coarse, thr, DEFAULT_HALF, ev.points_per_chunk)
        return extract_mesh(values, thr, DEFAULT_HALF), n

    # -- the verbs ------------------------------------------------------------------------------
    def reconstruct(
        self,
        images: Sequence[str | Path | np.ndarray] | torch.Tensor,
        *,
        resolution: int | None = None,
        threshold: float | None = None,
        distance: float | None = None,
        poses: Sequence[Viewpoint | None] | None = None,
        dense: bool = False,
    ) -> list[Reconstruction]:
        """Reconstruct each image. ``distance``: camera distance if known (default: the config's nominal
        one); ``poses``: optional R2N2 viewpoints, to also return canonical-frame meshes."""
        if self.model.input_kind != "image" and not isinstance(images, torch.Tensor):
            raise ValueError(
                f"method {self.cfg.method!r} reconstructs from voxel grids (a (B, 1, R, R, R) tensor), "
                "not from images"
            )
        timer = Timer()
        with timer.stage("load"):
            batch = (
                images if isinstance(images, torch.Tensor) else torch.stack([self.prepare(i) for i in images])
            )
        with timer.stage("encode"):
            code = self.encode(batch)
        out = []
        for i in range(batch.shape[0]):
            t = Timer()
            pose = poses[i] if poses is not None else None
            d = distance if distance is not None else (pose.distance if pose is not None else None)
            with t.stage("query+mc"):
                mesh, n = self.extract(self.field_fn(code, i, d), resolution, threshold, dense)
            thr = self.cfg.eval.threshold if threshold is None else threshold
            rec = Reconstruction(mesh, self.model.frame, n, {**timer.times, **t.times}, threshold=thr)
            if pose is not None:
                R = view_rotation_gl(view_transform(pose))
                rec.mesh_object = to_object_frame(mesh, R) if self.model.frame == "view" else mesh
                if self.model.frame == "object":
                    rec.mesh = to_object_frame(mesh, R.T)
                    rec.frame = "view"
            out.append(rec)
        return out


def coarse_level(resolution: int, coarse: int) -> int:
    """First grid of the coarse-to-fine pass: ``resolution`` halved while even and above ``coarse``,
    so that ``resolution = level * 2**k`` for any resolution (an odd one is sampled densely)."""
    level = resolution
    while level > coarse and level % 2 == 0:
        level //= 2
    return level


def to_object_frame(mesh: trimesh.Trimesh, R: np.ndarray) -> trimesh.Trimesh:
    """Apply R^T (undo an object->output rotation R) to a copy of the mesh."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(R).T
    out = mesh.copy()
    if len(out.vertices):
        out.apply_transform(T)
    return out


def _select(code, i: int):
    """Pick sample i of a batched code (tensor, tuple/NamedTuple of tensors, dict), keeping batch dim 1."""
    if code is None:
        return None
    if isinstance(code, torch.Tensor):
        return code[i : i + 1]
    if isinstance(code, dict):
        return {k: _select(v, i) for k, v in code.items()}
    if isinstance(code, tuple):
        items = [_select(v, i) for v in code]
        return type(code)(*items) if hasattr(code, "_fields") else tuple(items)
    return code
