"""ifkd.bench: budgets, planning, tables and claims from synthetic results (fast), and the three
protocols end to end at the smoke budget with caching / resume / --model (slow)."""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ifkd.bench.budgets import ALL_METHODS, BUDGETS, CONVERGED_CAP, CONVERGED_PATIENCE, get_budget
from ifkd.bench.claims import CLAIMS, claim_paragraph, claims_section
from ifkd.bench.harness import Results, plan_jobs, run_benchmark, stretched_schedule
from ifkd.bench.protocols import ProtocolData, epoch_overrides, unseen_data
from ifkd.bench.runs import RunJob, eval_cached, eval_code_version, eval_fingerprint, execute, run_finished
from ifkd.bench.stats import aggregate, compare
from ifkd.bench.tables import (
    EARLIER_RESULTS_MD,
    gap_table,
    protocol_markdown,
    table1,
    table3,
    write_results_md,
)
from ifkd.config import get_preset, save_config
from ifkd.data.synth.generate import plan_splits
from ifkd.train.checkpoint import RunDir, TrainState, config_hash, save_last

REAL_MESHES = Path("/work/shared/realdata/meshes")
KEYS = (
    "iou",
    "iou_voxels_32",
    "chamfer_l1_x10",
    "edge_chamfer_x1000",
    "fscore_1",
    "fscore_2",
    "normal_consistency",
)


# ------------------------------------------------------------------------------------------- helpers
def fake_run(method: str, seed: int, iou: float, chamfer: float = 1.0, cats=("car", "chair"), kd_epoch=None):
    metrics = {k: 0.5 for k in KEYS} | {"iou": iou, "chamfer_l1_x10": chamfer}
    curve = [
        {"epoch": e, "val_iou": iou - 0.01 * (3 - e), "kd_active": kd_epoch is not None and e >= kd_epoch}
        for e in range(4)
    ]
    return {
        "method": method,
        "seed": seed,
        "run_dir": f"runs/{method}-s{seed}",
        "eval_dir": f"evals/{method}-s{seed}",
        "train_seconds": 10.0,
        "steps": 100,
        "curve": curve,
        "mean": metrics,
        "per_category": {c: {**metrics, "n": 2} for c in cats},
    }


def fake_results(protocol: str, runs: list[dict], **extra) -> dict:
    doc = {
        "budget": "smoke",
        "protocol": protocol,
        "created": "2026-01-01 00:00 UTC",
        "machine": {"cpu": "test cpu", "cores": 2, "torch": "x"},
        "command": f"ifkd bench generalise --protocol {protocol}",
        "dataset": {"root": "data", "train_categories": ["car"], "test_categories": ["car", "chair"]},
        "runs": runs,
        **extra,
    }
    doc["table"] = aggregate(runs)
    return doc


# ------------------------------------------------------------------------------------------- budgets
def test_budgets_resolve_every_method_with_equal_schedules():
    for budget in BUDGETS.values():
        cfgs = {m: budget.config(m, 0) for m in budget.methods}
        # Equal optimiser steps: the same epochs and batch for every method of a budget.
        assert (
            len({(c.train.epochs_recon, c.train.epochs_kd, c.train.batch_size) for c in cfgs.values()}) == 1
        )
        assert all(c.method == m and c.train.seed == 0 for m, c in cfgs.items())
    cpu = get_budget("cpu")
    assert cpu.seeds_for("ifkd") == (0, 1, 2) and cpu.seeds_for("ifkd-nokd") == (0, 1, 2)
    assert cpu.seeds_for("global") == (0, 1, 2) and cpu.seeds_for("camera") == (0, 1, 2)
    assert get_budget("gpu").seeds_for("camera") == (0,)
    assert set(cpu.methods) == set(ALL_METHODS)
    assert all(set(b.equal_time_methods) <= set(ALL_METHODS) for b in BUDGETS.values())
    # The cpu budget follows the cpu preset; the gpu budget keeps the student its shipped models have.
    assert cpu.config("ifkd", 0).student.base_channels == get_preset("cpu").student.base_channels
    gpu = get_budget("gpu").config("ifkd", 0)
    assert (gpu.student.base_channels, gpu.data.points_per_shape, gpu.train.lr_schedule) == (
        16,
        1024,
        "constant",
    )
    smoke = get_budget("smoke")
    assert smoke.preset == "tiny" and smoke.synth.image_size <= 48 and smoke.config("ifkd", 3).train.seed == 3
    with pytest.raises(ValueError, match="unknown budget"):
        get_budget("huge")


def test_the_converged_budget_trains_every_baseline_to_a_plateau_or_the_cap():
    conv = get_budget("converged")
    assert {"ifkd", "ifkd-nokd", "global", "camera"} <= set(conv.methods) and conv.checkpoint == "best"
    assert conv.synth == get_budget("cpu").synth  # the cpu budget's data: the two compare directly
    for method in conv.methods:
        tc = conv.config(method, 0).train
        assert tc.patience == CONVERGED_PATIENCE > 0 and tc.lr_schedule == "constant" and tc.val_shapes > 0
        assert (tc.epochs_recon, tc.epochs_kd) == CONVERGED_CAP


def test_a_plateaued_run_counts_as_finished(tmp_path):
    """The harness must not resume (and re-score) a run that stopped on ``train.patience``."""
    smoke = get_budget("smoke").config("ifkd-nokd", 0)
    cfg = replace(smoke, train=replace(smoke.train, epochs_recon=9, epochs_kd=0, patience=2))
    run = RunDir(tmp_path / "run")
    save_config(cfg, run.config)
    module = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(module.parameters())
    for since_best, done in ((1, False), (2, True)):
        state = TrainState(
            "ifkd-nokd", config_hash(cfg), epoch=4, global_step=40, epochs_since_best=since_best
        )
        save_last(run, module, optimizer, state)
        assert run_finished(run.root, cfg) is done


def test_plan_trains_each_teacher_once_per_seed_used(tmp_path):
    cpu = get_budget("cpu")
    args = (tmp_path / "runs", tmp_path / "data", tmp_path / "evals", tmp_path / "data", "cpu", 0)
    teachers, students = plan_jobs(cpu, ["ifkd", "ifkd-simple-teacher", "global"], None, *args)
    assert sorted((j.method, j.seed) for j in teachers) == [
        ("teacher", 0),
        ("teacher", 1),
        ("teacher", 2),
        ("teacher-simple", 0),
        ("teacher-simple", 1),
        ("teacher-simple", 2),
    ]
    assert all(j.eval_dir is None for j in teachers)  # needed, not benchmarked themselves
    ifkd = {j.seed: j for j in students if j.method == "ifkd"}
    assert sorted(ifkd) == [0, 1, 2] and ifkd[2].teacher_run == str(tmp_path / "runs" / "teacher-s2")
    simple = next(j for j in students if j.method == "ifkd-simple-teacher" and j.seed == 0)
    assert simple.teacher_run.endswith("teacher-simple-s0")
    assert next(j for j in students if j.method == "global").teacher_run is None
    # --seeds overrides every method's seeds; a selected teacher is evaluated.
    teachers, students = plan_jobs(cpu, ["teacher", "ifkd"], [5], *args)
    assert [(j.method, j.seed, j.eval_dir is not None) for j in teachers] == [("teacher", 5, True)]
    assert [(j.method, j.seed) for j in students] == [("ifkd", 5)]


def test_unseen_trains_as_many_steps_as_seen(tmp_path, monkeypatch):
    """3 of 13 categories: 4x the epochs (teachers too), so the gap is not a shorter training."""
    import ifkd.bench.protocols as protocols

    monkeypatch.setattr(protocols, "_generate_shapes", lambda *a: None)  # the splits are what counts here
    smoke = get_budget("smoke")
    data = unseen_data(smoke, tmp_path / "unseen")
    seen_train = len(plan_splits(smoke.synth)["train"])
    unseen_train = len(
        json.loads((tmp_path / "unseen" / "data" / "index.json").read_text())["splits"]["train"]
    )
    assert data.extra["epoch_scale"] == round(seen_train / unseen_train) == 4
    assert data.settings["epoch_scale"] == 4
    over = epoch_overrides(smoke, 4)
    assert over == ("train.epochs_recon=4", "train.epochs_kd=4")
    assert epoch_overrides(smoke, 1) == ()
    converged = get_budget("converged")  # stops on a plateau: its patience spans the same steps as seen's
    base = converged.config("ifkd", 0).train
    scaled = converged.config("ifkd", 0, epoch_overrides(converged, 4)).train
    assert base.patience > 0
    assert (scaled.epochs_recon, scaled.epochs_kd, scaled.patience) == (
        4 * base.epochs_recon,
        4 * base.epochs_kd,
        4 * base.patience,
    )
    args = (tmp_path / "runs", tmp_path / "data", tmp_path / "evals", tmp_path / "data", "cpu", 0)
    teachers, students = plan_jobs(smoke, ["ifkd"], None, *args, over)
    for job in [*teachers, *students]:
        cfg = smoke.config(job.method, job.seed, job.overrides)
        assert (cfg.train.epochs_recon, cfg.train.epochs_kd) == (4, 4)


def test_results_keep_earlier_runs_of_the_same_recipe(tmp_path):
    """--methods/--seeds add to a benchmark: earlier entries of the same recipe stay, redone ones are
    replaced, and a changed recipe (or a lost evaluation) starts afresh."""
    smoke = get_budget("smoke")
    data = ProtocolData("seen", tmp_path / "data", tmp_path / "data", {"seed": 1}, ["car"], ["car"])
    first = Results(tmp_path, smoke, data, "ifkd bench quality --methods ifkd", 1)
    for m in ("ifkd", "global"):
        (tmp_path / "evals" / f"{m}-s0").mkdir(parents=True)
        (tmp_path / "evals" / f"{m}-s0" / "summary.json").write_text("{}")
    first.doc["runs"] = [fake_run("ifkd", 0, 0.5), fake_run("global", 0, 0.3), fake_run("camera", 0, 0.1)]
    first.save()
    again = Results(tmp_path, smoke, data, "ifkd bench quality --methods global", 1)
    # camera's evaluation is not on disk: dropped; the earlier command is listed in the header.
    assert [(r["method"], r["seed"]) for r in again.doc["runs"]] == [("ifkd", 0), ("global", 0)]
    assert again.doc["earlier"][0]["command"] == "ifkd bench quality --methods ifkd"
    assert "runs kept from an earlier command: `ifkd bench quality --methods ifkd`" in protocol_markdown(
        json.loads(json.dumps(again.doc))
    )
    changed = replace(smoke, overrides=(*smoke.overrides, "train.lr=0.01"))
    assert Results(tmp_path, changed, data, "x", 1).doc["runs"] == []
    other = replace(data, settings={"seed": 2})
    assert Results(tmp_path, smoke, other, "x", 1).doc["runs"] == []


def test_stretched_schedule_keeps_kd_ratio_and_sets_steps():
    cfg = get_budget("cpu").config("global", 0, ["train.epochs_recon=3", "train.epochs_kd=2"])
    steps = 5 * 40
    assert stretched_schedule(cfg, steps, 400) == (
        "train.epochs_recon=6",
        "train.epochs_kd=4",
        "train.max_steps=400",
    )
    assert stretched_schedule(cfg, steps, 50) == (
        "train.epochs_recon=1",
        "train.epochs_kd=1",
        "train.max_steps=50",
    )


def test_eval_cache_needs_the_same_fingerprint(tmp_path):
    fp = eval_fingerprint(tmp_path / "no-run", "best", "first", None)
    assert fp == {"weights": {}, "views": "first", "limit": None, "code": eval_code_version()}
    assert not eval_cached(tmp_path, fp)
    (tmp_path / "summary.json").write_text(json.dumps({"fingerprint": fp}))
    assert eval_cached(tmp_path, fp)
    assert not eval_cached(tmp_path, {**fp, "views": "all"})
    assert not eval_cached(tmp_path, {**fp, "code": "another"})


# ------------------------------------------------------------------------------------------- tables
def test_aggregate_and_tables_show_mean_and_std():
    runs = [fake_run("ifkd", s, iou, kd_epoch=2) for s, iou in enumerate((0.50, 0.52, 0.54))]
    runs += [fake_run("ifkd-nokd", s, iou) for s, iou in enumerate((0.49, 0.50, 0.51))]
    runs.append(fake_run("global", 0, 0.40, chamfer=2.0))
    table = aggregate(runs)
    assert table["ifkd"]["n_seeds"] == 3 and table["ifkd"]["mean"]["iou"] == pytest.approx(0.52)
    assert table["ifkd"]["std"]["iou"] == pytest.approx(0.02)
    assert table["global"]["std"]["iou"] == 0.0
    md = protocol_markdown(fake_results("seen", runs))
    assert "0.520 ± 0.020" in md and "0.500 ± 0.010" in md
    assert "| global | 1 | 0.400 |" in md  # one seed: no ± shown
    t1 = table1(table)
    assert "| car | 0.520 | 0.500 | 0.400 |" in t1 and "**mean**" in t1
    t3 = table3(runs)
    assert "3 ← KD on" in t3 and "| 1 |" in t3
    assert "ifkd bench generalise --protocol seen" in md and "test cpu" in md


def test_gap_table_pairs_seeds():
    seen = fake_results("seen", [fake_run("ifkd", s, v) for s, v in ((0, 0.6), (1, 0.7))])
    unseen = fake_results("unseen", [fake_run("ifkd", s, v) for s, v in ((0, 0.3), (1, 0.5))])
    gap = gap_table(seen, unseen)
    # Per-seed gaps 0.3 and 0.2: 0.25 ± 0.071.
    assert "| ifkd | 0.650 ± 0.071 | 0.400 ± 0.141 | 0, 1 | 0.250 ± 0.071 |" in gap
    # Seeds run in one protocol only enter its mean column, not the gap, and the row says which paired.
    seen["runs"].append(fake_run("ifkd", 2, 0.9))
    seen["table"] = aggregate(seen["runs"])
    unseen["runs"].append(fake_run("ifkd", 3, 0.1))
    unseen["table"] = aggregate(unseen["runs"])
    assert "| ifkd | 0.733 ± 0.153 | 0.300 ± 0.200 | 0, 1 | 0.250 ± 0.071 |" in gap_table(seen, unseen)


# ------------------------------------------------------------------------------------------- claims
def _kd(ifkd: tuple[float, ...], nokd: tuple[float, ...]) -> str:
    runs = [fake_run("ifkd", s, v) for s, v in enumerate(ifkd)] + [
        fake_run("ifkd-nokd", s, v) for s, v in enumerate(nokd)
    ]
    return claim_paragraph(CLAIMS[0], {"seen": fake_results("seen", runs)})


def test_claims_follow_the_numbers():
    holds = _kd((0.60, 0.61, 0.62), (0.50, 0.51, 0.52))
    assert "**holds**" in holds and "ifkd 0.610 ± 0.010 vs ifkd-nokd 0.510 ± 0.010 over 3 seeds" in holds
    assert "+0.100" in holds
    within = _kd((0.512, 0.508, 0.516), (0.505, 0.499, 0.511))  # 0.007 < hypot(0.004, 0.006)
    assert "**not shown**" in within and "within one std of the difference (0.007)" in within
    reversed_ = _kd((0.40, 0.41, 0.42), (0.50, 0.51, 0.52))
    assert "**does not hold**" in reversed_ and "-0.100" in reversed_
    single = _kd((0.6,), (0.5,))
    assert "one seed" in single and "points the claim's way" in single
    # Chamfer: lower is better, so a higher Chamfer for ifkd disagrees with an IoU win.
    runs = [fake_run("ifkd", s, 0.6 + s / 100, chamfer=2.0) for s in range(2)]
    runs += [fake_run("ifkd-nokd", s, 0.5 + s / 100, chamfer=1.0) for s in range(2)]
    assert "disagrees" in claim_paragraph(CLAIMS[0], {"seen": fake_results("seen", runs)})


def test_claims_section_covers_protocols_gap_and_missing_ones():
    seen = fake_results("seen", [fake_run("ifkd", s, 0.7) for s in (0, 1)] + [fake_run("global", 0, 0.8)])
    text = claims_section(seen)
    assert text.count("**") >= 2 * len(CLAIMS)
    assert "not measured: the `unseen` protocol has not been run" in text
    assert "not measured: `ifkd` or `ifkd-nokd` is missing" in text
    assert "equal-wall-time runs were not made" in text
    unseen = fake_results("unseen", [fake_run("ifkd", s, 0.5) for s in (0, 1)] + [fake_run("global", 0, 0.3)])
    text = claims_section({"seen": seen, "unseen": unseen})
    gap = next(p for p in text.split("\n\n") if p.startswith("**Local features lose less"))
    # Gaps: ifkd 0.2, global 0.5 -> ifkd loses less, one seed for global.
    assert "ifkd 0.200 ± 0.000 vs global 0.500" in gap and "points the claim's way" in gap
    assert compare(seen["table"], "ifkd", "global")["verdict"] == "single"


def test_write_results_md_assembles_every_results_json(tmp_path):
    for proto, v in (("seen", 0.7), ("unseen", 0.4)):
        folder = tmp_path / "results" / "smoke" / proto
        folder.mkdir(parents=True)
        runs = [fake_run("ifkd", s, v + s / 100) for s in (0, 1)] + [fake_run("global", 0, v - 0.1)]
        (folder / "results.json").write_text(json.dumps(fake_results(proto, runs)))
    (tmp_path / "results" / "render.json").write_text("{}")  # another benchmark's file: ignored
    check = tmp_path / "results" / "smoke" / "model-check"  # a --model evaluation: listed, not the main one
    check.mkdir()
    (check / "results.json").write_text(json.dumps(fake_results("unseen", [fake_run("ifkd", 0, 0.9)])))
    out = write_results_md(tmp_path)
    text = out.read_text()
    assert out == tmp_path / "RESULTS.md"
    assert "# Budget `smoke`" in text and "protocol `seen`" in text and "protocol `unseen`" in text
    assert (
        "Generalisation gap" in text
        and "| ifkd | 0.705 ± 0.007 | 0.405 ± 0.007 | 0, 1 | 0.300 ± 0.000 |" in text
    )
    assert "The paper's claims" in text and "Source: `results/smoke/seen/results.json`" in text
    assert "Source: `results/smoke/model-check/results.json`" in text
    assert "## Budget `smoke`, protocol `unseen`, folder `model-check`" in text
    assert "## Budget `smoke`, protocol `seen` (trained on CPU" in text


def test_cli_parser_registers_both_verbs():
    from ifkd.commands import bench

    parser = argparse.ArgumentParser()
    bench.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["bench", "generalise", "--protocol", "real", "--model", "pretrained", "--out", "x"]
    )
    assert args.protocol == "real" and args.model == "pretrained" and args.func is bench.cmd_bench
    args = parser.parse_args(
        ["bench", "quality", "--budget", "cpu", "--jobs", "4", "--methods", "ifkd", "global"]
    )
    assert args.protocol == "seen" and args.jobs == 4 and args.methods == ["ifkd", "global"]
    assert bench.results_root(Path("/a/benchmarks/results/cpu/seen")) == Path("/a/benchmarks")


# ------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def seen_smoke(tmp_path_factory):
    """The `seen` protocol at the smoke budget: teacher (as a dependency), ifkd and global, seed 0,
    with the equal-time comparison."""
    root = tmp_path_factory.mktemp("bench")
    lines: list[str] = []
    results = run_benchmark(
        "smoke",
        "seen",
        root / "seen",
        methods=["ifkd", "global"],
        progress=lines.append,
        command="pytest",
        equal_time_runs=True,
    )
    return root, results, lines


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*.safetensors")}


@pytest.mark.slow
def test_seen_smoke_end_to_end_cached_and_partly_redone(seen_smoke):
    root, results, lines = seen_smoke
    out = root / "seen"
    saved = json.loads((out / "results.json").read_text())
    assert saved["budget"] == "smoke" and saved["protocol"] == "seen" and saved["command"] == "pytest"
    assert [(r["method"], r["seed"]) for r in saved["runs"]] == [("ifkd", 0), ("global", 0)]
    for r in saved["runs"]:
        assert (out / r["run_dir"] / "config.json").is_file() and (
            out / r["eval_dir"] / "summary.json"
        ).is_file()
        assert r["steps"] > 0 and r["train_seconds"] > 0 and len(r["curve"]) == 2
        assert set(r["per_category"]) == set(get_budget("smoke").synth.categories)
    assert (out / "runs" / "teacher-s0").is_dir() and not (out / "evals" / "teacher-s0").exists()
    assert set(saved["table"]) == {"ifkd", "global"} and set(saved["equal_time"]) == {"ifkd", "global"}
    eq = {r["method"]: r for r in saved["equal_time_runs"]}
    assert eq["ifkd"]["reused"] and eq["global"]["target_seconds"] == saved["runs"][0]["train_seconds"]
    assert "Table 1" in (out / "RESULTS.md").read_text()

    # Running again trains and evaluates nothing.
    before, lines2 = _mtimes(out), []
    run_benchmark(
        "smoke", "seen", out, methods=["ifkd", "global"], progress=lines2.append, equal_time_runs=True
    )
    assert _mtimes(out) == before
    assert not [x for x in lines2 if "trained True" in x or "evaluated True" in x]
    # Deleting one evaluation redoes only that one.
    shutil.rmtree(out / "evals" / "ifkd-s0")
    lines3: list[str] = []
    run_benchmark("smoke", "seen", out, methods=["ifkd", "global"], progress=lines3.append)
    done = [x for x in lines3 if "evaluated True" in x]
    assert len(done) == 1 and "ifkd-s0" in done[0] and not [x for x in lines3 if "trained True" in x]
    assert _mtimes(out) == before and (out / "evals" / "ifkd-s0" / "summary.json").is_file()


@pytest.mark.slow
def test_half_finished_run_resumes(seen_smoke):
    root, _, _ = seen_smoke
    job = RunJob("ifkd-nokd", 0, "smoke", str(root / "partial"), str(root / "seen" / "data"))
    execute(RunJob(**{**job.__dict__, "overrides": ("train.max_steps=2",)}))  # interrupted after 2 steps
    cfg = get_budget("smoke").config("ifkd-nokd", 0)
    assert not run_finished(job.run_dir, cfg)
    assert execute(job)["trained"] and run_finished(job.run_dir, cfg)
    assert "resuming" in (root / "partial" / "log.txt").read_text()
    assert not execute(job)["trained"]


@pytest.mark.slow
def test_real_protocol_reuses_seen_runs_and_skips_bad_meshes(seen_smoke, tmp_path):
    root, _, _ = seen_smoke
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    for name in ("teapot.stl", "monkey.glb"):
        shutil.copy(REAL_MESHES / name, meshes / name)
    (meshes / "broken.obj").write_text("")
    before, lines = _mtimes(root / "seen" / "runs"), []
    results = run_benchmark(
        "smoke", "real", root / "real", methods=["ifkd", "global"], meshes=meshes, progress=lines.append
    )
    assert _mtimes(root / "seen" / "runs") == before  # reused, not retrained
    assert not [x for x in lines if "trained True" in x]
    imp = results["dataset"]["import"]
    assert imp["n_skipped"] == 1 and imp["skipped"][0]["key"] == "real/broken"
    assert any("skipped real/broken" in x for x in lines)
    assert {r["method"] for r in results["runs"]} == {"ifkd", "global"}
    for r in results["runs"]:
        assert set(r["per_shape"]) == {"real/teapot", "real/monkey"}
        assert r["run_dir"] == f"../seen/runs/{r['method']}-s0"
    assert sorted(results["sheets"]) == ["sheets/monkey.png", "sheets/teapot.png"]
    assert all((root / "real" / s).stat().st_size > 0 for s in results["sheets"])
    md = (root / "real" / "RESULTS.md").read_text()
    assert "Skipped meshes: 1" in md and "real/teapot" in md


@pytest.mark.slow
def test_unseen_protocol_and_model_only(seen_smoke, tmp_path):
    root, _, _ = seen_smoke
    results = run_benchmark(
        "smoke", "unseen", tmp_path / "unseen", methods=["global"], progress=lambda m: None
    )
    ds = results["dataset"]
    assert ds["train_categories"] == ["airplane", "car", "chair"] and len(ds["test_categories"]) == 10
    (run,) = results["runs"]
    assert set(run["per_category"]) == set(ds["test_categories"])
    index = json.loads((tmp_path / "unseen" / "data" / "index.json").read_text())
    assert {k.split("/")[0] for k in index["splits"]["train"]} == {"airplane", "car", "chair"}
    # The unseen test shapes are the seen dataset's test shapes of those categories.
    seen_test = json.loads((root / "seen" / "data" / "index.json").read_text())["splits"]["test"]
    assert set(index["splits"]["test"]) == {k for k in seen_test if k.split("/")[0] in ds["test_categories"]}

    # --model evaluates that one run and trains nothing (through the CLI verb).
    from ifkd.commands import bench

    parser = argparse.ArgumentParser()
    bench.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "model"
    model = root / "seen" / "runs" / "ifkd-s0"
    args = parser.parse_args(
        [
            "bench",
            "generalise",
            "--protocol",
            "unseen",
            "--budget",
            "smoke",
            "--model",
            str(model),
            "--out",
            str(out),
        ]
    )
    assert args.func(args) == 0
    saved = json.loads((out / "results.json").read_text())
    assert [(r["method"], r["eval_dir"]) for r in saved["runs"]] == [("ifkd", "evals/model-ifkd-s0")]
    assert not (out / "runs").exists()


@pytest.mark.slow
def test_real_protocol_scores_the_shipped_model_on_an_unseen_folder(tmp_path, capsys):
    """`ifkd bench generalise --protocol real --model pretrained --meshes DIR`: imports the folder and
    writes per-mesh metrics for that one model, training nothing."""
    from ifkd.cli import main

    meshes = tmp_path / "meshes" / "nested"
    meshes.mkdir(parents=True)
    shutil.copy(REAL_MESHES / "teapot.stl", meshes / "teapot.stl")
    (meshes / "nan.obj").write_text("v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    out = tmp_path / "out"
    argv = ["bench", "generalise", "--protocol", "real", "--budget", "smoke", "--model", "pretrained"]
    # the batch rule: nan.obj is broken -> exit 2 after the good mesh is scored and written
    assert main([*argv, "--meshes", str(tmp_path / "meshes"), "--out", str(out), "--no-results-md"]) == 2
    assert "1 of 2 meshes failed or were flagged" in capsys.readouterr().err
    saved = json.loads((out / "results.json").read_text())
    (run,) = saved["runs"]
    assert run["method"] == "ifkd" and run["model"] == "pretrained"
    key = "real/nested_teapot"  # found recursively, named by its path
    assert set(run["per_shape"]) == {key} and run["per_shape"][key]["iou"] is not None
    assert saved["dataset"]["import"]["n_skipped"] == 1
    assert not (out / "runs").exists()
    assert key in (out / "RESULTS.md").read_text()


def test_every_table_says_how_it_was_scored_and_earlier_protocol_claims_are_marked(tmp_path):
    """A results.json scored before exact labels existed (its per_shape.csv has no iou_exact_labels) is
    labelled the earlier protocol, and so are the claims resting on it; one with exact labels says so, with
    its sample counts."""
    from ifkd.bench.tables import evaluation_protocol
    from ifkd.eval.evaluate import ECD_NOTE

    old = tmp_path / "results" / "cpu" / "seen"
    new = tmp_path / "results" / "converged" / "seen"
    for folder, header, row in (
        (old, "shape,iou", "a,0.5"),
        (new, "shape,iou,iou_exact_labels,gt_surface_samples", "a,0.5,1.0,100000.0"),
    ):
        runs = [fake_run("ifkd", 0, 0.6), fake_run("ifkd-nokd", 0, 0.5)]
        for run in runs:
            (folder / run["eval_dir"]).mkdir(parents=True)
            (folder / run["eval_dir"] / "per_shape.csv").write_text(f"{header}\n{row}\n")
        results = fake_results("seen", runs)
        results["budget"] = folder.parent.name
        (folder / "results.json").write_text(json.dumps(results))
    assert evaluation_protocol(json.loads((old / "results.json").read_text()), None) is None
    assert "earlier protocol" in evaluation_protocol(json.loads((old / "results.json").read_text()), old)
    line = evaluation_protocol(json.loads((new / "results.json").read_text()), new)
    assert "exact labels" in line and "100,000 ground-truth and 100,000 predicted" in line
    assert ECD_NOTE in line  # what the ECD column does and does not measure, under every table
    assert "own extraction grid" in evaluation_protocol(json.loads((old / "results.json").read_text()), old)
    out = write_results_md(tmp_path)
    text, archive = out.read_text(), out.with_name(EARLIER_RESULTS_MD)
    # RESULTS.md holds only exact-label tables and points to the archive of the earlier ones
    assert "# Budget `converged`" in text and "# Budget `cpu`" not in text
    assert "**earlier protocol**" not in text and "exact labels" in text
    assert f"[{EARLIER_RESULTS_MD}]({EARLIER_RESULTS_MD}) (budgets `cpu`)" in text
    old_text = archive.read_text()
    assert "# Budget `cpu`" in old_text and "# Budget `converged`" not in old_text
    assert "**earlier protocol**" in old_text and "*Scored under the earlier protocol (seen" in old_text
    assert "Source: `results/cpu/seen/results.json`" in old_text  # links relative to the archive too
    # once every table is rescored, the archive is not left behind to mislead
    (old / "results.json").unlink()
    text = write_results_md(tmp_path).read_text()
    assert not archive.exists() and EARLIER_RESULTS_MD not in text
