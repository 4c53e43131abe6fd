"""`ifkd demo` (`make demo`): the whole flow in a few minutes on a laptop CPU -- a small generated
dataset, a teacher and an IFKD student (trained here, or the shipped weights), meshes of held-out
images, the evaluation table and the report, all under one output folder.

Sizes are chosen for a 2-core CPU: the default takes about 5 minutes (train) or 1-2 (shipped weights);
``quick`` is the same flow at toy sizes, for the test suite.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ifkd.io import InputError, check_writable

Log = Callable[[str], None]
Mode = Literal["auto", "pretrained", "train"]

DEMO_SEED = 31337
"""Dataset seed of the demo. The benchmarks draw their shapes with seed 2024; per-shape seeds derive
from (seed, category, index), so with another seed every demo shape is new to the shipped weights."""


@dataclass(frozen=True)
class DemoSize:
    """Everything that sets the demo's cost."""

    per_category: int
    """shapes per category (70/10/20 train/val/test split)"""
    views: int
    image_size: int
    """render size in pixels (the student resizes to its preset's input size)"""
    preset: str
    teacher: tuple[str, ...]
    """config overrides of the teacher run"""
    student: tuple[str, ...]
    """config overrides of the student run"""
    eval: tuple[str, ...]
    """config overrides applied to the evaluated model (cheaper metrics)"""
    eval_shapes: int | None
    """test shapes evaluated (None: all)"""
    mesh_resolution: int
    report_shapes: int
    report_tile: int = 128
    """pixel size of one picture in the report's grid"""
    categories: tuple[str, ...] | None = None
    """None: all 13"""
    synth: dict = field(default_factory=dict)
    """further SynthSettings fields"""


_SLIM = (
    "teacher.channels=(4,8,16,32)",
    "student.base_channels=8",
    "data.image_size=48",
    "data.points_per_shape=512",
    "train.batch_size=8",
    "train.val_shapes=13",
)
"""Size overrides shared by the demo's teacher and student (the student reads the teacher's width)."""

SIZES: dict[str, DemoSize] = {
    # 13 x 8 shapes (78 train / 13 val / 13 test) x 4 views at 64 px. Networks slimmer than the cpu
    # preset (teacher channels 4-32, student base 8 at 48 px), 512 points per item. Measured on the
    # 2 cores, lightly loaded: teacher ~0.2 s/step (CPU conv3d backward is slow), student ~0.1 s/step.
    # 80 teacher steps at lr 3e-3 reached val IoU 0.62 and 468 student steps test IoU 0.10 (silhouettes
    # right, depth still smeared): 94 s for the whole demo. 702 student steps: test IoU 0.17, but 6 min
    # when other jobs shared the cores. Here: 100 teacher and 585 student steps (10 recon + 5 KD epochs).
    "default": DemoSize(
        per_category=8,
        views=4,
        image_size=64,
        preset="cpu",
        teacher=(*_SLIM, "train.epochs_recon=10", "train.epochs_kd=0", "train.lr=3e-3"),
        student=(*_SLIM, "train.epochs_recon=10", "train.epochs_kd=5"),
        eval=("eval.iou_points=20000", "eval.surface_points=10000", "eval.edge_points=8192"),
        eval_shapes=None,
        mesh_resolution=64,
        report_shapes=6,
    ),
    # Seconds, for tests: 3 categories, the tiny preset, a handful of steps.
    "quick": DemoSize(
        per_category=3,
        views=2,
        image_size=32,
        preset="tiny",
        teacher=("train.epochs_recon=1", "train.epochs_kd=0", "train.val_shapes=2"),
        student=("train.epochs_recon=1", "train.epochs_kd=1", "train.val_shapes=2"),
        eval=("eval.iou_points=4000", "eval.surface_points=2000", "eval.edge_points=2000"),
        eval_shapes=2,
        mesh_resolution=16,
        report_shapes=2,
        report_tile=64,
        categories=("airplane", "chair", "car"),
        synth={"n_points": 2000, "surface_points": 4096, "voxel_resolutions": (32, 128)},
    ),
}


@dataclass
class DemoResult:
    out: Path
    mode: str
    """'pretrained' or 'train'"""
    model: Path
    timings: dict[str, float]
    summary: dict
    report: Path
    meshes: list[Path]


class _Stages:
    """Numbered progress lines with per-stage wall-clock times."""

    def __init__(self, total: int, log: Log) -> None:
        self.total, self.log, self.n, self.times = total, log, 0, {}

    def run(self, name: str, what: str, fn: Callable):
        self.n += 1
        self.log(f"[{self.n}/{self.total}] {name}: {what}")
        t0 = time.perf_counter()
        result = fn()
        self.times[name] = time.perf_counter() - t0
        self.log(f"[{self.n}/{self.total}] {name} done in {self.times[name]:.1f}s")
        return result


def choose_mode(mode: Mode) -> str:
    """'auto' -> 'pretrained' when shipped weights exist, else 'train'."""
    from ifkd.pretrained import DEFAULT_NAME, available

    if mode == "auto":
        return "pretrained" if DEFAULT_NAME in available() else "train"
    if mode == "pretrained" and DEFAULT_NAME not in available():
        raise InputError(f"--pretrained: no shipped weights in this installation (available: {available()})")
    return mode


def run_demo(
    out: str | Path,
    *,
    mode: Mode = "auto",
    size: str = "default",
    pretrained_run: str | Path | None = None,
    workers: int = 1,
    device: str = "auto",
    log: Log = print,
) -> DemoResult:
    """Run the demo into ``out`` (re-running reuses the dataset; runs are retrained into fresh folders).

    pretrained_run: the run folder used in 'pretrained' mode (default: the shipped weights).
    """
    from ifkd.data.synth.generate import SynthSettings

    if size not in SIZES:
        raise InputError(f"demo size {size!r}: choose from {sorted(SIZES)}")
    z = SIZES[size]
    out = Path(out)
    check_writable(out)
    mode = "pretrained" if pretrained_run is not None and mode != "train" else choose_mode(mode)
    stages = _Stages(6 if mode == "train" else 4, log)
    t_start = time.perf_counter()
    log(f"ifkd demo ({size}, {'shipped weights' if mode == 'pretrained' else 'training here'}) -> {out}")

    data = out / "data"
    settings = SynthSettings(
        per_category=z.per_category,
        views=z.views,
        seed=DEMO_SEED,
        image_size=z.image_size,
        **({"categories": z.categories} if z.categories else {}),
        **z.synth,
    )
    what = (
        "test shapes only" if mode == "pretrained" else f"{len(settings.categories) * z.per_category} shapes"
    )
    stages.run(
        "data",
        f"{len(settings.categories)} categories x {z.per_category} shapes x {z.views} views "
        f"at {z.image_size} px ({what}) -> {data}",
        lambda: _make_data(data, settings, workers, test_only=mode == "pretrained"),
    )
    compare: tuple[Path, ...] = ()
    if mode == "train":
        runs = out / "runs"
        teacher = _fresh(runs / "teacher")
        stages.run(
            "teacher",
            f"IF-Net voxel teacher ({z.preset} preset) -> {teacher}",
            lambda: _train("teacher", z.preset, z.teacher, data, teacher, None, device),
        )
        model = _fresh(runs / "ifkd")
        stages.run(
            "student",
            f"IFKD student distilled from the teacher ({z.preset} preset) -> {model}",
            lambda: _train("ifkd", z.preset, z.student, data, model, teacher, device),
        )
        compare = (teacher,)
    else:
        from ifkd.pretrained import resolve_run

        model = Path(pretrained_run) if pretrained_run is not None else resolve_run("pretrained")
        compare = _other_shipped(model) if pretrained_run is None else ()
        log(f"using the shipped weights in {model} (test shapes drawn with seed {DEMO_SEED}: new to them)")
    rec = _reconstructor(model, z.eval, device)
    meshes = stages.run(
        "reconstruct",
        f"one held-out image per test shape -> {out / 'meshes'}",
        lambda: _reconstruct_test(rec, data, out / "meshes", z.mesh_resolution),
    )
    summary = stages.run(
        "evaluate",
        f"IoU, Chamfer-L1, ECD, F-score, NC on the test split -> {out / 'eval'}",
        lambda: _evaluate(rec, data, out / "eval", z),
    )
    log((out / "eval" / "table.md").read_text())
    note = _note(z, mode, model, stages.times)
    report = stages.run(
        "report",
        f"figures and tables -> {out / 'index.html'}",
        lambda: _report(model, data, out, z, compare, note, device, log),
    )
    timings = dict(stages.times)
    log(
        f"demo finished in {time.perf_counter() - t_start:.0f}s: "
        + " · ".join(f"{k} {v:.0f}s" for k, v in timings.items())
    )
    log(f"open {report} (report), {out / 'meshes'} (OBJ meshes), {out / 'eval' / 'table.md'} (metrics)")
    return DemoResult(out, mode, model, timings, summary, report, meshes)


def _make_data(root: Path, settings, workers: int, test_only: bool) -> None:
    """The demo dataset; with shipped weights only its test shapes are needed (and generated)."""
    from ifkd.data.format import write_index
    from ifkd.data.synth.families import CATEGORIES
    from ifkd.data.synth.generate import generate_dataset, generate_shape, plan_splits

    if not test_only:
        generate_dataset(root, settings, workers=workers, progress=False)
        return
    test = plan_splits(settings)["test"]
    for key in test:
        category, index = key.split("/")
        generate_shape(root, category, int(index), settings)
    cats = {c: CATEGORIES[c] for c in settings.categories}
    write_index(root, cats, {"test": test}, source="ifkd-synth", views_per_shape=settings.views,
                image_size=settings.image_size)  # fmt: skip


def _other_shipped(model: Path) -> tuple[Path, ...]:
    """The other shipped runs (e.g. the student without KD, a teacher): the report shows their meshes
    beside the model's."""
    from ifkd.pretrained import PRETRAINED_DIR, available

    folders = [PRETRAINED_DIR / name for name in available()]
    return tuple(f for f in folders if f.resolve() != Path(model).resolve())


def _fresh(folder: Path) -> Path:
    """A run folder to train into: a previous demo's run there is replaced (the demo never resumes)."""
    if folder.exists():
        shutil.rmtree(folder)
    return folder


def _train(method: str, preset: str, overrides, data: Path, out: Path, teacher: Path | None, device: str):
    from ifkd.config import apply_overrides, get_preset
    from ifkd.methods import method_config
    from ifkd.train.run import train

    cfg = apply_overrides(method_config(method, get_preset(preset)), list(overrides))
    return train(cfg, data, out, teacher_run=teacher, device=device, progress=False)


def _reconstructor(model: Path, eval_overrides, device: str):
    from ifkd.config import apply_overrides
    from ifkd.reconstruct import Reconstructor

    rec = Reconstructor.from_run(model, device=device)
    rec.cfg = apply_overrides(rec.cfg, list(eval_overrides))  # metric sample counts only
    return rec


def _reconstruct_test(rec, data: Path, out: Path, resolution: int) -> list[Path]:
    """Each test shape's first view -> ``out/<category>_<id>.obj`` (view frame, +Y up) + its input PNG."""
    from ifkd.data.format import RENDER_DIR, read_index, read_views, shape_dir
    from ifkd.extract.export import export_mesh

    written = []
    for key in read_index(data)["splits"]["test"]:
        folder = shape_dir(data, key)
        names, _ = read_views(folder / RENDER_DIR)
        image = folder / RENDER_DIR / names[0]
        (r,) = rec.reconstruct([image], resolution=resolution)
        stem = key.replace("/", "_")
        written.append(export_mesh(r.mesh, out / f"{stem}.obj", up="+y"))
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, out / f"{stem}.png")
    return written


def _evaluate(rec, data: Path, out: Path, z: DemoSize) -> dict:
    from ifkd.eval.evaluate import EvalOptions, evaluate_model, write_results

    opts = EvalOptions(limit=z.eval_shapes, resolution=z.mesh_resolution)
    rows = evaluate_model(rec, data, opts, progress=False)
    meta = {"model": str(rec.cfg.method), "data": str(data), "options": dataclasses.asdict(opts)}
    return write_results(rows, out, f"{rec.cfg.method} on the demo's test split", meta)


def _report(model: Path, data: Path, out: Path, z: DemoSize, compare, note: str, device: str, log: Log):
    """The run report of the model, with the demo's grid, metrics and a note on what was done."""
    from ifkd.report import ReportOptions, build_report

    opts = ReportOptions(
        shapes=z.report_shapes,
        resolution=z.mesh_resolution,
        tile=z.report_tile,
        data=data,
        eval_summary=out / "eval",
        compare=compare,
        device=device,
        notes=(note,),
    )
    return build_report(model, out, opts, log).html


def _note(z: DemoSize, mode: str, model: Path, timings: dict[str, float]) -> str:
    how = "a teacher and student trained here" if mode == "train" else f"the shipped weights (`{model}`)"
    return (
        f"Made by `ifkd demo`: a generated dataset of {z.per_category} shapes per category "
        f"(seed {DEMO_SEED}), {how}, meshes of the held-out test images in `meshes/`, and "
        "the metrics below. Stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + "."
    )
