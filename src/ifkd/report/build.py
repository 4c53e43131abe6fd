"""`ifkd report`: a benchmark folder (results.json) or one run folder (config.json + metrics.jsonl) ->
DIR/index.html (self-contained), DIR/report.md and DIR/figures/*.png.

The builders gather tables (:mod:`.tables`), plots (:mod:`.figures`) and picture grids
(:mod:`.qualitative`) into one :class:`~ifkd.report.document.Document`, rendered twice.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trimesh

from ifkd.config import load_config
from ifkd.data.format import read_index
from ifkd.io import InputError, check_writable, read_json
from ifkd.report import figures, qualitative, tables
from ifkd.report.document import Document, Figure, Heading, Markdown, Table, Text
from ifkd.report.html import write_html
from ifkd.report.markdown import write_markdown
from ifkd.train.checkpoint import RunDir, read_metrics

Log = Callable[[str], None]


@dataclass(frozen=True)
class ReportOptions:
    shapes: int = 6
    """test shapes in the picture grids (one per category as far as possible)"""
    resolution: int = 64
    """marching-cubes grid of the reconstructed meshes (modest: the report builds in about a minute)"""
    tile: int = 128
    """pixel size of one picture in the grids"""
    data: Path | None = None
    """dataset folder for the grids (default: the benchmark's own; a run report needs it for grids)"""
    eval_summary: Path | None = None
    """an `ifkd evaluate` summary.json (or its folder) to tabulate in a run report"""
    compare: tuple[Path, ...] = ()
    """further run folders whose meshes join a run report's grid (e.g. the teacher)"""
    device: str = "auto"
    notes: tuple[str, ...] = ()
    """paragraphs placed under the title (e.g. what the demo did)"""
    views_curve: Path | None = None
    """benchmarks/views_curve.py's JSON: a benchmark report then shows multi-view fusion's quality
    against the number of views (a figure and its table)"""


@dataclass
class ReportResult:
    html: Path
    markdown: Path
    figures: list[Path] = field(default_factory=list)


def build_report(
    source: str | Path, out: str | Path, opts: ReportOptions = ReportOptions(), log: Log = print
):
    """Build the report of a benchmark folder or of a run folder into ``out``; returns its paths."""
    source, out = Path(source), Path(out)
    check_writable(out)
    if (source / "results.json").is_file():
        doc = bench_document(source, out, opts, log)
    elif (source / "config.json").is_file():
        doc = run_document(source, out, opts, log)
    else:
        raise InputError(
            f"{source}: neither a benchmark folder (results.json) nor a run folder (config.json)"
        )
    html = write_html(doc, out / "index.html")
    md = write_markdown(doc, out / "report.md")
    return ReportResult(html, md, doc.figures)


# ----------------------------------------------------------------------------------- benchmarks
def bench_document(bench: Path, out: Path, opts: ReportOptions, log: Log) -> Document:
    results = read_json(bench / "results.json")
    runs = results.get("runs")
    if not isinstance(runs, list):
        raise InputError(f"{bench / 'results.json'}: no 'runs' list (not a benchmark results file?)")
    table = results.get("table") or tables.table_from_runs(runs)
    doc = Document(
        f"IFKD benchmark — budget {results.get('budget', '?')}, protocol {results.get('protocol', '?')}"
    )
    doc.add(Text(_bench_meta(results)), *[Text(n) for n in opts.notes])

    doc.add(Heading("Summary"))
    doc.add(tables.summary_table(table, runs, "Class means over the test split; mean ± std over seeds."))
    claims = _claims(results)
    if claims:
        doc.add(Heading("The paper's claims on this benchmark", 3), *claims)
    for metric, title in (("iou", "IoU"), ("chamfer_l1_x10", "Chamfer-L1 ×10")):
        doc.add(tables.category_table(table, metric, f"{title} per category (mean over seeds), as Table 1."))
    if results.get("equal_time"):
        doc.add(Heading("Equal wall-clock time", 3))
        doc.add(tables.summary_table(results["equal_time"], (), "Every method trained for the same time."))

    curves = {m: [_run_curve(bench, r) for r in runs if r["method"] == m] for m in ("ifkd", "ifkd-nokd")}
    if any(curves.values()):
        doc.add(Heading("Knowledge distillation over training (Fig 6, Table 3)"))
        try:
            path = figures.plot_iou_per_epoch(curves, out / "figures" / "iou_per_epoch.png")
            doc.add(
                Figure(
                    path,
                    "Validation IoU per epoch, mean ± std over seeds; KD is added after the dashed line.",
                )
            )
        except ValueError as exc:
            doc.add(Text(f"No IoU curve: {exc}."))
        doc.add(tables.epoch_table(curves, "Validation IoU per epoch (mean ± std over seeds)."))

    doc.add(Heading("Qualitative results (Figs 4 and 5)"))
    with tempfile.TemporaryDirectory(prefix="ifkd-report-") as tmp:
        doc.add(*_bench_grids(bench, results, out, opts, log, Path(tmp)))

    if opts.views_curve is not None:
        doc.add(*views_curve_section(opts.views_curve, out))

    if (bench / "RESULTS.md").is_file():
        doc.add(Heading("All benchmark tables (RESULTS.md)"))
        doc.add(Markdown((bench / "RESULTS.md").read_text(), base=bench))
    return doc


def views_curve_section(source: Path, out: Path) -> list:
    """Multi-view fusion with known poses (benchmarks/views_curve.py's JSON): heading, figure and table."""
    stored = read_json(source)
    summary = stored.get("summary") if isinstance(stored, dict) else None
    if not isinstance(summary, dict) or not summary:
        raise InputError(f"{source}: no 'summary' (not a benchmarks/views_curve.py result?)")
    try:
        path = figures.plot_views_curve(summary, out / "figures" / "views_curve.png")
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{source}: cannot plot its summary ({exc})") from None
    counts = sorted({int(k) for by_rule in summary.values() for by_k in by_rule.values() for k in by_k})
    rows = []
    for subset, by_rule in summary.items():
        for rule, by_k in by_rule.items():
            by_k = {int(k): v for k, v in by_k.items()}
            for key, name in (("iou", "IoU"), ("chamfer_l1_x10", "Chamfer-L1 ×10")):
                cells = [f"{by_k[k][key]:.3f}" if k in by_k else "" for k in counts]
                rows.append([figures.VIEWS_SUBSETS.get(subset, subset), rule, name, *cells])
    machine = stored.get("machine") or {}
    where = ", ".join(str(machine[k]) for k in ("cpu", "torch") if machine.get(k))
    return [
        Heading("Multi-view fusion with known poses"),
        Text(
            f"Views fused with their true poses (`Reconstructor.reconstruct_views`), model "
            f"`{stored.get('model', '?')}`; measured by `{stored.get('command', '?')}` ({where})."
        ),
        Figure(path, "IoU and Chamfer-L1 ×10 against the number of views fused (mean and min fusion rules)."),
        Table(
            ["subset", "fusion", "metric", *[f"{k} view{'s' * (k > 1)}" for k in counts]],
            rows,
            "Means over the shapes; the 1-view column is the single-view reconstruction with its known pose.",
            align_left=3,
        ),
    ]


def _claims(results: dict) -> list[Text]:
    """The benchmark's own claim paragraphs (:mod:`ifkd.bench.claims`: same verdict rule as RESULTS.md)
    for the claims this protocol tests."""
    from ifkd.bench.claims import CLAIMS, claim_paragraph

    protocol = results.get("protocol")
    by_protocol = {protocol: results}
    return [
        Text(claim_paragraph(c, by_protocol)) for c in CLAIMS if c.protocol == protocol and c.source != "gap"
    ]


def _bench_meta(results: dict) -> str:
    machine = results.get("machine") or {}
    desc = ", ".join(f"{k} {v}" for k, v in machine.items() if isinstance(v, (str, int, float)))
    ds = results.get("dataset") or {}
    parts = [f"Created {results.get('created', '?')}"]
    if results.get("command"):
        parts.append(f"by `{results['command']}`")
    text = " ".join(parts) + "."
    if desc:
        text += f" Machine: {desc}."
    if ds.get("test_categories"):
        text += f" Test categories: {', '.join(ds['test_categories'])}."
    return text


def _run_curve(bench: Path, run: dict) -> list[dict]:
    """A run's per-epoch records: results.json's 'curve', else the run folder's metrics.jsonl."""
    if run.get("curve"):
        return list(run["curve"])
    if run.get("run_dir"):
        return read_metrics(RunDir(bench / run["run_dir"]))
    return []


def _bench_models(bench: Path, runs: Sequence[dict]) -> dict[str, tuple[int, Path]]:
    """method -> (seed, run folder) of its lowest seed that has weights (the grid shows one seed)."""
    found: dict[str, tuple[int, Path]] = {}
    for run in runs:
        folder = bench / str(run.get("run_dir", ""))
        has_weights = any((folder / "checkpoints" / f"{w}.safetensors").is_file() for w in ("best", "last"))
        if run.get("run_dir") and has_weights:
            seed = int(run.get("seed", 0))
            if run["method"] not in found or seed < found[run["method"]][0]:
                found[run["method"]] = (seed, folder)
    return {m: found[m] for m in tables.method_order(list(found))}


def _bench_data(bench: Path, results: dict, opts: ReportOptions, tmp: Path, n: int, log: Log):
    """(dataset root, test keys to show): --data, the benchmark's data/, or, for a synthetic benchmark
    whose data/ is gone, just those test shapes regenerated from the recorded settings into ``tmp``."""
    ds = results.get("dataset") or {}
    for root in (opts.data, bench / ds.get("root", "data")):
        if root is not None and (Path(root) / "index.json").is_file():
            keys = read_index(root)["splits"].get("test", [])
            return Path(root), qualitative.pick_shapes(keys, n)
    if not ds.get("settings") or results.get("protocol") not in ("seen", "unseen"):
        return None, []  # only the generated protocols can be regenerated
    from ifkd.data.synth.generate import SynthSettings, generate_shape, plan_splits

    fields = {f.name: f for f in dataclasses.fields(SynthSettings)}
    raw = {k: v for k, v in ds["settings"].items() if k in fields}
    s = SynthSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    test = plan_splits(s)["test"]  # unseen: the same shapes, restricted to the held-out categories
    cats = set(ds.get("test_categories") or s.categories)
    keys = qualitative.pick_shapes([k for k in test if k.split("/")[0] in cats], n)
    log(f"  regenerating {len(keys)} test shapes of the benchmark's dataset (seed {s.seed})")
    for key in keys:
        cat, idx = key.split("/")
        generate_shape(tmp, cat, int(idx), s)
    return tmp, keys


def _bench_grids(bench: Path, results: dict, out: Path, opts: ReportOptions, log: Log, tmp: Path) -> list:
    models = _bench_models(bench, results["runs"])
    if not models:
        return [Text("No grid: none of the benchmark's run folders (with weights) is present.")]
    root, keys = _bench_data(bench, results, opts, tmp, opts.shapes, log)
    if root is None or not keys:
        return [Text("No grid: the benchmark's dataset is not present; pass `--data DATASET`.")]
    runs = {m: run for m, (_, run) in models.items()}
    samples = qualitative.load_samples(root, keys, voxel_resolutions=_voxel_inputs(runs.values()))
    meshes = _reconstruct_all(runs, samples, opts, log)
    seeds = sorted({seed for seed, _ in models.values()})
    blocks: list = []
    grid = qualitative.comparison_grid(samples, {_label(m): meshes[m] for m in meshes}, opts.tile)
    path = qualitative.save_png(grid, out / "figures" / "qualitative.png")
    blocks.append(
        Figure(
            path,
            f"Test shapes: input image, ground truth (grey, from the 128³ voxels) and each method's mesh "
            f"(seed {', '.join(map(str, seeds))}, {opts.resolution}³ marching cubes), seen from the input "
            f"view and turned {qualitative.OTHER_TURN:.0f}° around the object.",
        )
    )
    if "ifkd" in meshes and "ifkd-nokd" in meshes:
        pair = {"ifkd-nokd (no KD)": meshes["ifkd-nokd"], "ifkd (with KD)": meshes["ifkd"]}
        grid = qualitative.comparison_grid(samples, pair, int(opts.tile * 1.5))
        path = qualitative.save_png(grid, out / "figures" / "kd_effect.png")
        blocks.append(
            Figure(
                path, "The effect of knowledge distillation (Fig 5): the same student without and with KD."
            )
        )
    return blocks


def _label(method: str) -> str:
    from ifkd.methods import METHODS

    spec = METHODS.get(method)
    return f"{method} (voxels in)" if spec is not None and spec.input == "voxels" else method


def _shown(path: Path, out: Path) -> str:
    """A path as the report shows it: relative to the report folder when inside it."""
    try:
        return Path(path).resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return str(path)


def _voxel_inputs(runs) -> list[int]:
    """Voxel grid sizes read by the voxel-input methods (teachers) among these run folders."""
    cfgs = [load_config(Path(run) / "config.json") for run in runs]
    from ifkd.methods import get_spec

    return sorted({c.data.voxel_resolution for c in cfgs if get_spec(c.method).input == "voxels"})


def _reconstruct_all(models: dict[str, Path], samples, opts: ReportOptions, log: Log) -> dict[str, list]:
    from ifkd.reconstruct import Reconstructor

    meshes: dict[str, list[trimesh.Trimesh]] = {}
    for method, run in models.items():
        t0 = time.perf_counter()
        rec = Reconstructor.from_run(run, device=opts.device)
        meshes[method] = qualitative.reconstruct_samples(rec, samples, opts.resolution)
        log(f"  {method}: {len(samples)} meshes in {time.perf_counter() - t0:.1f}s ({run})")
    return meshes


# ----------------------------------------------------------------------------------- one run
def run_document(run_dir: Path, out: Path, opts: ReportOptions, log: Log) -> Document:
    run = RunDir(run_dir)
    cfg = load_config(run.config)
    records = read_metrics(run)
    best = read_json(run.sidecar("best")) if run.sidecar("best").is_file() else None
    doc = Document(f"IFKD run report — {cfg.method} ({cfg.preset} preset)")
    doc.add(*[Text(n) for n in opts.notes], Text(f"Run folder `{_shown(run_dir, out)}`."))
    doc.add(tables.run_table(cfg, records, best))
    doc.add(Heading("Training curves"))
    if records:
        path = figures.plot_training_curves(records, out / "figures" / "training_curves.png", cfg.method)
        doc.add(
            Figure(
                path,
                "Loss parts per epoch (left) and validation IoU (right); the dashed line marks the KD "
                "switch.",
            )
        )
    else:
        doc.add(Text("No metrics.jsonl in this run folder: no curves."))
    if opts.eval_summary is not None:
        summary_path = opts.eval_summary / "summary.json" if opts.eval_summary.is_dir() else opts.eval_summary
        summary = read_json(summary_path)
        doc.add(Heading("Evaluation"))
        caption = f"`{_shown(summary_path, out)}`: {summary.get('n', '?')} reconstructions."
        doc.add(tables.eval_table(summary, caption))
    if opts.data is not None:
        doc.add(Heading("Qualitative results"))
        keys = qualitative.pick_shapes(read_index(opts.data)["splits"].get("test", []), opts.shapes)
        if not keys:
            doc.add(Text(f"No grid: {opts.data} has no test shapes."))
            return doc
        models = {cfg.method: run_dir}
        for other in opts.compare:
            method = load_config(other).method
            models[method if method not in models else f"{method} ({other.name})"] = other
        samples = qualitative.load_samples(opts.data, keys, voxel_resolutions=_voxel_inputs(models.values()))
        meshes = _reconstruct_all(models, samples, opts, log)
        columns = {_label(m): meshes[m] for m in [*list(models)[1:], cfg.method]}  # this run last
        grid = qualitative.comparison_grid(samples, columns, opts.tile)
        path = qualitative.save_png(grid, out / "figures" / "qualitative.png")
        doc.add(
            Figure(
                path,
                f"Test shapes of `{_shown(opts.data, out)}`: input, ground truth (grey, from the 128³ "
                f"voxels) and the meshes of {', '.join(columns)} ({opts.resolution}³ marching cubes), "
                f"from the input view and turned {qualitative.OTHER_TURN:.0f}° around the object.",
            )
        )
    return doc
