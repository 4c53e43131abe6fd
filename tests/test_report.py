"""`ifkd report`: a benchmark folder and a single run folder -> index.html, report.md, figures/*.png.

Run folders are written here directly (config.json, metrics.jsonl, 'best' weights of a freshly built
method) with the checkpoint module's own writers, so they load exactly like the trainer's; the demo test
covers folders written by real training. Plus the pure parts: Markdown -> HTML, tables, curves, picks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ifkd.commands import report as report_cmd
from ifkd.config import apply_overrides, get_preset, save_config
from ifkd.data.synth.generate import SynthSettings
from ifkd.io import InputError
from ifkd.methods import build_method, method_config
from ifkd.report import ReportOptions, build_report
from ifkd.report.document import Document, Markdown
from ifkd.report.figures import kd_switch_epoch, mean_std_curve
from ifkd.report.html import inline, markdown_to_html, to_html
from ifkd.report.markdown import to_markdown
from ifkd.report.qualitative import content_box, pick_shapes
from ifkd.report.tables import mean_pm_std, summary_table, table_from_runs
from ifkd.train.checkpoint import RunDir, TrainState, config_hash, save_best, write_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METRICS = ["iou", "iou_voxels_32", "chamfer_l1_x10", "edge_chamfer_x1000", "fscore_1", "fscore_2"]


pytestmark = pytest.mark.usefixtures("one_thread")


def curve(method: str, seed: int, epochs=(2, 1)) -> list[dict]:
    """Per-epoch records like the trainer's: IoU rising, a bit higher with KD from epoch E1 on."""
    e1, e2 = epochs
    recs = []
    for e in range(e1 + e2):
        kd = method == "ifkd" and e >= e1
        iou = 0.3 + 0.05 * e + 0.01 * seed + (0.02 if kd else 0.0)
        rec = {"epoch": e, "step": 5 * (e + 1), "train_recon": 0.3 - 0.02 * e, "train_loss": 0.3 - 0.02 * e}
        if kd:
            rec["train_kd"] = 0.1
            rec["train_loss"] += 0.1
        recs.append(rec | {"kd_active": kd, "val_iou": iou, "seconds": 1.5, "samples_per_s": 10.0})
    return recs


def make_run(folder: Path, method: str, seed: int = 0) -> Path:
    """A run folder as the trainer leaves it: config.json, metrics.jsonl, checkpoints/best.*."""
    cfg = apply_overrides(method_config(method, get_preset("tiny")), [f"train.seed={seed}"])
    run = RunDir(folder)
    folder.mkdir(parents=True)
    save_config(cfg, run.config)
    records = curve(method, seed)
    write_metrics(run, records)
    torch.manual_seed(seed)
    model = build_method(method, cfg)
    state = TrainState(method=method, config_hash=config_hash(cfg), epoch=len(records))
    save_best(run, model, state, max(r["val_iou"] for r in records), len(records) - 1)
    return folder


def run_entry(method: str, seed: int, run_dir: str | None) -> dict:
    base = {"ifkd": 0.42, "ifkd-nokd": 0.40, "teacher": 0.7}[method] + 0.01 * seed
    mean = {k: base for k in METRICS} | {"normal_consistency": 0.8}
    cats = {c: mean | {"n": 1} for c in ("airplane", "chair")}
    return {
        "method": method,
        "seed": seed,
        "run_dir": run_dir,
        "eval_dir": f"evals/{method}-s{seed}",
        "train_seconds": 100.0 + seed,
        "steps": 15,
        "eval_seconds": 3.0,
        "curve": curve(method, seed),
        "mean": mean,
        "per_category": cats,
    }


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory) -> Path:
    """A benchmark folder per the agreed layout: runs of seed 0 on disk, 2 seeds in results.json."""
    root = tmp_path_factory.mktemp("bench")
    runs = []
    for method in ("teacher", "ifkd", "ifkd-nokd"):
        for seed in (0, 1) if method != "teacher" else (0,):
            rel = f"runs/{method}-s{seed}"
            if seed == 0:
                make_run(root / rel, method, seed)
            runs.append(run_entry(method, seed, rel))
    results = {
        "budget": "smoke",
        "protocol": "seen",
        "created": "2026-01-01T00:00:00Z",
        "machine": {"cpu": "test", "cores": 2},
        "command": "ifkd bench --budget smoke",
        "dataset": {"root": "data", "settings": {}, "train_categories": [], "test_categories": []},
        "runs": runs,
    }
    results["table"] = table_from_runs(runs)
    (root / "results.json").write_text(json.dumps(results))
    (root / "RESULTS.md").write_text(
        "# Benchmark (smoke)\n\n| method | IoU |\n|---|---:|\n| ifkd | 0.420 |\n"
    )
    return root


def check_png(path: Path, min_std: float = 5.0) -> np.ndarray:
    """A valid PNG with real content: not blank, not one flat colour."""
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    with Image.open(path) as img:
        img.verify()
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    assert arr.shape[0] > 100 and arr.shape[1] > 100
    assert arr.std() > min_std, f"{path} looks blank"
    assert (arr < 200).any(axis=2).mean() > 0.005, f"{path} has almost no drawn pixels"
    return arr


def test_bench_report(bench_dir, tiny_dataset, tmp_path):
    out = tmp_path / "report"
    opts = ReportOptions(shapes=2, resolution=16, tile=64, data=tiny_dataset, device="cpu")
    logs: list[str] = []
    result = build_report(bench_dir, out, opts, log=logs.append)
    names = {p.name for p in result.figures}
    assert names == {"iou_per_epoch.png", "qualitative.png", "kd_effect.png"}
    for path in result.figures:
        assert path.parent == out / "figures"
        check_png(path)
    # Fig 4: 2 shapes x 2 views; columns input, GT, teacher, ifkd, ifkd-nokd.
    grid = np.asarray(Image.open(out / "figures" / "qualitative.png"))
    assert grid.shape[1] > 5 * 64 and grid.shape[0] > 4 * 64
    html = (out / "index.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3  # self-contained: figures embedded
    for method in ("teacher", "ifkd", "ifkd-nokd"):
        assert f"<td>{method}</td>" in html
    assert "0.425 ± 0.005" in html  # ifkd IoU over seeds 0 and 1 (0.42, 0.43)
    claim = re.search(r"<strong>Knowledge distillation improves the student.*?</p>", html)
    assert claim and "difference +0.020" in claim.group(0) and "<strong>holds</strong>" in claim.group(0)
    assert "<h2>Benchmark (smoke)</h2>" in html  # RESULTS.md included, headings demoted
    md = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(Path(p).name for p in links) == sorted(names)
    assert all((out / p).is_file() for p in links)  # relative to report.md
    assert "| ifkd | 2 |" in md
    assert any("ifkd-nokd: 2 meshes" in line for line in logs)


def test_bench_report_shows_the_views_curve(bench_dir, tmp_path):
    """--views-curve: the committed multi-view measurement becomes a figure and a table in the report."""
    source = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "views_curve.json"
    stored = json.loads(source.read_text())
    out = tmp_path / "report"
    opts = ReportOptions(shapes=0, device="cpu", views_curve=source)
    build_report(bench_dir, out, opts, log=lambda _m: None)
    check_png(out / "figures" / "views_curve.png")
    html = (out / "index.html").read_text()
    assert "Multi-view fusion with known poses" in html
    four = stored["summary"]["synth"]["mean"]["4"]["iou"]
    assert f"{four:.3f}" in html  # the 4-view synthetic IoU, as measured
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="no 'summary'"):
        build_report(bench_dir, tmp_path / "r2", ReportOptions(shapes=0, views_curve=bad), log=print)


def test_bench_report_regenerates_missing_data(bench_dir, tmp_path):
    """A synthetic benchmark whose data/ was not kept: the shown test shapes are regenerated."""
    bench = tmp_path / "bench"
    bench.mkdir()
    results = json.loads((bench_dir / "results.json").read_text())
    synth = SynthSettings(per_category=3, views=1, seed=5, image_size=48, categories=("chair", "lamp"))
    results["dataset"]["settings"] = json.loads(
        json.dumps(dataclasses.asdict(synth))
    )  # as a harness writes it
    results["runs"] = [r for r in results["runs"] if r["method"] == "ifkd-nokd" and r["seed"] == 0]
    (bench / "results.json").write_text(json.dumps(results))
    shutil.copytree(bench_dir / "runs" / "ifkd-nokd-s0", bench / "runs" / "ifkd-nokd-s0")
    out = tmp_path / "report"
    result = build_report(
        bench, out, ReportOptions(shapes=2, resolution=16, tile=48, device="cpu"), log=print
    )
    assert {p.name for p in result.figures} == {"iou_per_epoch.png", "qualitative.png"}
    check_png(out / "figures" / "qualitative.png")


def test_run_report_with_grid_and_eval(tiny_dataset, tmp_path):
    run = make_run(tmp_path / "run", "ifkd")
    teacher = make_run(tmp_path / "teacher", "teacher")
    summary = {
        "n": 2,
        "mean": {k: 0.5 for k in METRICS} | {"normal_consistency": 0.75},
        "per_category": {"chair": {k: 0.5 for k in METRICS} | {"normal_consistency": 0.75, "n": 2}},
    }
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "summary.json").write_text(json.dumps(summary))
    opts = ReportOptions(
        shapes=2,
        resolution=16,
        tile=64,
        data=tiny_dataset,
        eval_summary=tmp_path / "eval",
        compare=(teacher,),
    )
    result = build_report(run, tmp_path / "out", opts, log=print)
    assert [p.name for p in result.figures] == ["training_curves.png", "qualitative.png"]
    for path in result.figures:
        check_png(path)
    html = result.html.read_text()
    assert "<td>chair</td>" in html and "0.500" in html and "0.750" in html
    assert "ifkd / tiny" in html


def test_run_report_without_data_has_curves_only(tmp_path):
    run = make_run(tmp_path / "run", "ifkd-nokd")
    result = build_report(run, tmp_path / "out", ReportOptions(), log=print)
    assert [p.name for p in result.figures] == ["training_curves.png"]
    check_png(result.figures[0])


def test_report_cli_rejects_other_folders(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    report_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["report", str(tmp_path), "--out", str(tmp_path / "out")])
    with pytest.raises(InputError, match="neither a benchmark folder"):
        args.func(args)
    run = make_run(tmp_path / "run", "ifkd")
    args = parser.parse_args(["report", str(run), "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    assert f"open {tmp_path / 'out' / 'index.html'}" in capsys.readouterr().out


# ------------------------------------------------------------------------------------- pure parts
def test_markdown_to_html_subset():
    text = "# Title\n\nSome `a|b` and **bold** <b>.\n\n| m | IoU |\n|---|---:|\n| x | 1 |\n\n- one\n- two\n"
    html = markdown_to_html(text)
    assert "<h1>Title</h1>" in html
    assert "<code>a|b</code>" in html and "<strong>bold</strong>" in html and "&lt;b&gt;" in html
    assert '<td class="num">1</td>' in html and "<td>x</td>" in html
    assert "<ul><li>one</li><li>two</li></ul>" in html
    assert markdown_to_html("```\n<x> | y\n```") == "<pre>&lt;x&gt; | y</pre>"
    assert inline("[a](b.html) *e*") == '<a href="b.html">a</a> <em>e</em>'


def test_included_markdown_images_are_embedded_and_relinked(tmp_path):
    """RESULTS.md of a real-mesh benchmark links picture sheets relative to its own folder."""
    bench, out = tmp_path / "bench", tmp_path / "report"
    (bench / "sheets").mkdir(parents=True)
    Image.new("RGB", (4, 4), "red").save(bench / "sheets" / "bunny.png")
    doc = Document("t", [Markdown("![bunny](sheets/bunny.png) ![web](https://x.org/a.png)", base=bench)])
    page = to_html(doc)
    assert '<img src="data:image/png;base64,' in page and '<img src="https://x.org/a.png"' in page
    md = to_markdown(doc, out)
    assert "![bunny](../bench/sheets/bunny.png)" in md and "![web](https://x.org/a.png)" in md


def test_mean_std_curve_over_common_epochs():
    a = [{"epoch": e, "val_iou": v} for e, v in enumerate([0.1, 0.2, 0.3])]
    b = [{"epoch": e, "val_iou": v} for e, v in enumerate([0.3, 0.4])]  # cut short
    x, mean, std = mean_std_curve([a, b])
    np.testing.assert_array_equal(x, [1, 2])
    np.testing.assert_allclose(mean, [0.2, 0.3])
    np.testing.assert_allclose(std, [0.1, 0.1])
    assert kd_switch_epoch(curve("ifkd", 0)) == 2 and kd_switch_epoch(curve("ifkd-nokd", 0)) is None


def test_tables_mean_pm_std_and_summary():
    assert mean_pm_std(0.5, 0.01, 3) == "0.500 ± 0.010"
    assert mean_pm_std(0.5, 0.01, 1) == "0.500"
    assert mean_pm_std(float("nan"), None, 2) == "–"
    runs = [run_entry("ifkd", s, None) for s in (0, 1, 2)] + [run_entry("teacher", 0, None)]
    table = table_from_runs(runs)
    assert table["ifkd"]["n_seeds"] == 3
    assert table["ifkd"]["mean"]["iou"] == pytest.approx(0.43)
    summary = summary_table(table, runs)
    assert [r[0] for r in summary.rows] == ["teacher", "ifkd"]  # registry order
    assert summary.rows[1][2] == "0.430 ± 0.008"


def test_pick_shapes_spreads_categories():
    keys = [f"{c}/{i:04d}" for c in ("a", "b", "c", "d", "e") for i in range(3)]
    picked = pick_shapes(keys, 3)
    assert len({k.split("/")[0] for k in picked}) == 3 and picked[0] == "a/0000" and picked[-1] == "e/0000"
    assert len(pick_shapes(keys, 7)) == 7 and len(set(pick_shapes(keys, 7))) == 7
    assert pick_shapes(keys, 20) == pick_shapes(keys, 15) and pick_shapes([], 3) == []


def test_content_box_is_square_inside_and_covers_content():
    img = np.full((100, 100, 3), 255, np.uint8)
    img[10:20, 80:98] = 0
    x0, y0, x1, y1 = content_box([img], margin=0.1)
    assert x1 - x0 == y1 - y0 and 0 <= x0 and x1 <= 100 and 0 <= y0 and y1 <= 100
    assert x0 <= 80 and x1 >= 98 and y0 <= 10 and y1 >= 20
    assert content_box([np.full((50, 50, 3), 255, np.uint8)]) == (0, 0, 50, 50)
