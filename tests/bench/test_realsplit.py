"""The `realsplit` protocol: procedural vs procedural + real training data at equal optimiser steps, scored
on a real dataset's test split (trained vs held-out classes) and the synthetic one. Unit tests of the row
split and the paired differences, and one smoke-budget run (both arms, ifkd-nokd and a KD ifkd) in seconds.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ifkd.bench.harness import paired_differences, run_benchmark, split_real
from ifkd.bench.protocols import PROTOCOLS, REAL_WEIGHT
from ifkd.bench.runs import index_stamp
from ifkd.config import load_config
from ifkd.data.synth.generate import SynthSettings, generate_dataset
from ifkd.io import InputError

pytestmark = pytest.mark.usefixtures("one_thread")

REAL = SynthSettings(
    per_category=5,
    views=2,
    seed=99,
    image_size=48,
    n_points=2048,
    surface_points=4096,
    categories=("car", "chair", "lamp"),
)
"""A real-style dataset in seconds: 'lamp' plays a held-out class (test split only, never trained on)."""
HELD_OUT = "lamp"
METHODS = ["ifkd-nokd", "ifkd"]


def make_real_style(root: Path) -> Path:
    """A tiny generated dataset rewritten into `ifkd data real`'s index: held_out_categories, whose
    shapes are in the test split only."""
    generate_dataset(root, REAL, workers=1, progress=False)
    index = json.loads((root / "index.json").read_text())
    for split in ("train", "val"):
        index["splits"][split] = [k for k in index["splits"][split] if not k.startswith(f"{HELD_OUT}/")]
    index["held_out_categories"] = [HELD_OUT]
    index["counts"] = {s: len(k) for s, k in index["splits"].items()}
    (root / "index.json").write_text(json.dumps(index))
    return root


def _mtimes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for pattern in ("*.safetensors", "summary.json")
        for p in folder.rglob(pattern)
    }


# ------------------------------------------------------------------------------------------- units
def test_cli_lists_every_protocol():
    from ifkd.commands import bench

    assert bench.PROTOCOLS == PROTOCOLS and "realsplit" in PROTOCOLS


def test_split_real_rows_by_held_out_category(tmp_path):
    rows = [
        ("car/a", "car", 0.5, 1.0),
        ("car/b", "car", 0.7, 3.0),
        ("chair/a", "chair", 0.2, 2.0),
        ("dog/a", "dog", 0.1, 5.0),
        ("dog/b", "dog", "", 7.0),  # a missing value is left out of its class mean
    ]
    with open(tmp_path / "per_shape.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["shape", "category", "view", "iou", "chamfer_l1_x10"])
        writer.writerows([(s, c, 0, iou, cd) for s, c, iou, cd in rows])
    out = split_real(tmp_path, ["dog", "tree"])
    seen, unseen = out["real_seen"], out["real_unseen"]
    assert set(seen["per_category"]) == {"car", "chair"} and set(unseen["per_category"]) == {"dog"}
    assert seen["mean"]["iou"] == pytest.approx((0.6 + 0.2) / 2)  # class mean, as the other tables
    assert seen["mean"]["chamfer_l1_x10"] == pytest.approx((2.0 + 2.0) / 2)
    assert unseen["mean"]["iou"] == pytest.approx(0.1) and unseen["mean"]["chamfer_l1_x10"] == 6.0
    assert (seen["n"], seen["shapes"], unseen["n"]) == (3, 3, 2)
    assert split_real(tmp_path, [])["real_unseen"] is None


def test_paired_differences_match_seeds_of_both_arms():
    def run(arm, seed, iou):
        target = {"mean": {"iou": iou, "empty": 0.0}, "per_category": {}}
        return {"method": "ifkd", "seed": seed, "arm": arm, "targets": {t: target for t in ("synthetic",)}}

    runs = [run("procedural", 0, 0.5), run("mix", 0, 0.6), run("procedural", 1, 0.4), run("mix", 1, 0.6)]
    runs.append(run("mix", 2, 0.9))  # no procedural seed 2: not paired
    d = paired_differences(runs)["synthetic"]["ifkd"]
    assert [(x["seed"], round(x["iou"], 6)) for x in d["per_seed"]] == [(0, 0.1), (1, 0.2)]
    assert d["mean"]["iou"] == pytest.approx(0.15) and d["n"] == 2
    assert "real_seen" not in paired_differences(runs)


def test_index_stamp_follows_the_splits(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    (root / "chair" / "0000").mkdir(parents=True)
    index = {
        "format_version": 1,
        "categories": {"chair": "1"},
        "splits": {"train": [], "test": ["chair/0000"]},
    }
    (root / "index.json").write_text(json.dumps(index))
    first = index_stamp(root)
    (root / "index.json").write_text(json.dumps({**index, "seconds": 3.0}))  # timings do not count
    assert index_stamp(root) == first
    (root / "index.json").write_text(json.dumps({**index, "held_out_categories": ["chair"]}))
    assert index_stamp(root) != first


def test_missing_real_data_is_one_line_input_error(tmp_path, capsys):
    from ifkd.cli import main

    with pytest.raises(InputError, match="--real-data DIR"):
        run_benchmark("smoke", "realsplit", tmp_path / "out", real_data=None)
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (tmp_path / "nowhere", empty):
        with pytest.raises(InputError, match=f"{folder}: not a real-shape dataset.*ifkd data real --out"):
            run_benchmark("smoke", "realsplit", tmp_path / "out", real_data=folder)
    argv = [
        "bench",
        "generalise",
        "--protocol",
        "realsplit",
        "--budget",
        "smoke",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 2
    assert main([*argv, "--real-data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--real-data DIR" in err[0] and "ifkd data real --out" in err[1]
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()  # nothing made


# -------------------------------------------------------------------------------- smoke end to end
@pytest.fixture(scope="module")
def realsplit_smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("realsplit")
    real = make_real_style(root / "real")
    lines: list[str] = []
    out = root / "bench" / "realsplit"
    results = run_benchmark(
        "smoke",
        "realsplit",
        out,
        methods=METHODS,
        real_data=real,
        progress=lines.append,
        command="pytest",
        workers=1,
    )
    return root, out, real, results, lines


def test_arms_train_equal_optimiser_steps(realsplit_smoke):
    _, _, _, results, _ = realsplit_smoke
    schedules = results["realsplit"]["schedules"]
    assert set(schedules) == {"ifkd-nokd", "ifkd", "teacher"}  # the teacher too, one per arm
    for sch in schedules.values():
        proc, mix = sch["procedural"], sch["mix"]
        assert proc["steps"] == mix["steps"] > 0 and mix["max_steps"] == mix["steps"]
        assert mix["items_per_epoch"] > proc["items_per_epoch"]
    student = schedules["ifkd"]
    assert student["mix"]["steps_per_epoch"] > student["procedural"]["steps_per_epoch"]  # stopped early
    steps = {(r["arm"], r["method"], r["seed"]): r["steps"] for r in results["runs"]}
    assert sorted(steps) == sorted((a, m, 0) for a in ("procedural", "mix") for m in METHODS)
    for m in METHODS:
        assert steps[("procedural", m, 0)] == steps[("mix", m, 0)] == schedules[m]["procedural"]["steps"]


def test_only_the_mix_arm_trains_on_the_real_split(realsplit_smoke):
    root, out, real, results, _ = realsplit_smoke
    seen_runs = out / "runs" / "procedural"  # its own runs, not the seen folder's
    for method in [*METHODS, "teacher"]:
        mix = load_config(out / "runs" / "mix" / f"{method}-s0").data
        proc = load_config(seen_runs / f"{method}-s0").data
        assert mix.extra_roots == (str(real.resolve()),) and mix.source_weights == (1.0, REAL_WEIGHT)
        assert mix.val_extra and proc.extra_roots == () and proc.source_weights == () and not proc.val_extra
    # The mix student distilled from the mix teacher.
    assert (
        str(out / "runs" / "mix" / "teacher-s0") in (out / "runs" / "mix" / "ifkd-s0" / "log.txt").read_text()
    )
    entry = next(r for r in results["runs"] if r["arm"] == "mix" and r["method"] == "ifkd")
    assert (
        entry["run_dir"] == "runs/mix/ifkd-s0" and f"data.extra_roots={real.resolve()}" in entry["overrides"]
    )
    assert results["realsplit"]["weight"] == REAL_WEIGHT
    assert results["dataset"]["settings"]["real_weight"] == REAL_WEIGHT


def test_rows_split_into_real_seen_real_unseen_and_synthetic(realsplit_smoke):
    root, _, real, results, _ = realsplit_smoke
    test = json.loads((real / "index.json").read_text())["splits"]["test"]
    synthetic = json.loads((root / "bench" / "seen" / "data" / "index.json").read_text())["splits"]["test"]
    for r in results["runs"]:
        t = r["targets"]
        assert set(t["real_seen"]["per_category"]) == {"car", "chair"}
        assert set(t["real_unseen"]["per_category"]) == {HELD_OUT}
        assert t["real_seen"]["shapes"] + t["real_unseen"]["shapes"] == len(test)
        assert t["synthetic"]["n"] == len(synthetic)
        assert set(t["synthetic"]["per_category"]) == {k.split("/")[0] for k in synthetic}
        assert t["synthetic"]["eval_dir"] == f"evals/{r['arm']}/synthetic/{r['method']}-s0"
        per_cat = [v["iou"] for v in t["real_seen"]["per_category"].values()]
        assert t["real_seen"]["mean"]["iou"] == pytest.approx(sum(per_cat) / len(per_cat))


def test_results_json_and_markdown_hold_the_tables(realsplit_smoke):
    _, out, _, results, _ = realsplit_smoke
    saved = json.loads((out / "results.json").read_text())
    assert saved["protocol"] == "realsplit" and saved["command"] == "pytest"
    rs = saved["realsplit"]
    for target in ("real_seen", "real_unseen", "synthetic"):
        for arm in ("procedural", "mix"):
            row = rs["targets"][target][arm]["ifkd"]
            assert row["n_seeds"] == 1 and set(row["mean"]) >= {"iou", "chamfer_l1_x10", "fscore_1", "empty"}
        paired = rs["paired"][target]["ifkd-nokd"]
        assert [x["seed"] for x in paired["per_seed"]] == [0] and "iou" in paired["mean"]
    assert set(saved["table"]) == {f"{m} ({a})" for m in METHODS for a in ("procedural", "mix")}
    md = (out / "RESULTS.md").read_text()
    assert "protocol `realsplit`" in md and f"W = {REAL_WEIGHT}" in md and "machine:" in md
    for title in ("`real_seen`", "`real_unseen`", "`synthetic`", "mix − procedural", "Equal optimiser steps"):
        assert title in md
    assert "| mix | ifkd-nokd | 1 |" in md and "| procedural | ifkd | 1 |" in md


def test_rerun_trains_and_evaluates_nothing(realsplit_smoke):
    root, out, real, results, _ = realsplit_smoke
    before, lines = _mtimes(root / "bench"), []
    again = run_benchmark(
        "smoke", "realsplit", out, methods=METHODS, real_data=real, progress=lines.append, workers=1
    )
    assert _mtimes(root / "bench") == before
    assert not [x for x in lines if "trained True" in x or "evaluated True" in x]
    assert len(again["runs"]) == len(results["runs"]) and again["earlier"][0]["command"] == "pytest"
    # --methods adds to the benchmark: the other method's entries are kept.
    only = run_benchmark(
        "smoke", "realsplit", out, methods=["ifkd-nokd"], real_data=real, progress=lambda m: None, workers=1
    )
    assert {(r["arm"], r["method"]) for r in only["runs"]} == {
        (a, m) for a in ("procedural", "mix") for m in METHODS
    }
    assert set(only["realsplit"]["schedules"]) == {"ifkd-nokd", "ifkd", "teacher"}


def test_mix_runs_of_another_real_dataset_are_refused(realsplit_smoke):
    """A run's config names the real folder, not its content: a dataset rebuilt in place is caught by
    the stamp the mix runs folder keeps."""
    _, out, real, _, _ = realsplit_smoke
    stamp = out / "runs" / "mix" / "real_data.json"
    kept = stamp.read_text()
    assert json.loads(kept) == {"real_data": str(real.resolve()), "real_index": index_stamp(real)}
    stamp.write_text(json.dumps({"real_data": str(real.resolve()), "real_index": "0123456789ab"}))
    try:
        with pytest.raises(InputError, match="trained on another real dataset"):
            run_benchmark("smoke", "realsplit", out, methods=["ifkd-nokd"], real_data=real, workers=1)
    finally:
        stamp.write_text(kept)
