"""ifkd.engine: batch jobs as Dask tasks. The in-process path and its failure contract; --scheduler
errors; resumable evaluation; and (slow) a 2-worker Dask cluster running `data synth`, `data import
meshes` and `evaluate` with the same results as a serial run."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import dask
import pytest

from ifkd.cli import main
from ifkd.data.format import read_index
from ifkd.data.shapenet import importer
from ifkd.data.synth.generate import SynthSettings, generate_dataset
from ifkd.engine import Failed, Workers, check_scheduler, reason_of, run_tasks, scheduler_of
from ifkd.eval import evaluate
from ifkd.eval.evaluate import SHAPES_DIR, EvalOptions, run_evaluation
from ifkd.io import InputError

OUTPUTS = ("per_shape.csv", "summary.json", "table.md")


pytestmark = pytest.mark.usefixtures("one_thread")


def _refused_address() -> str:
    """A local port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


# ------------------------------------------------------------------------------- the in-process path
def test_serial_results_keep_input_order_and_a_failure_does_not_stop_the_others():
    results = run_tasks(math.sqrt, [4.0, -1.0, 9.0], progress=False)
    assert results[0] == 2.0 and results[2] == 3.0
    failed = results[1]
    assert isinstance(failed, Failed) and failed.reason == "ValueError: math domain error"
    assert isinstance(failed.error, ValueError)
    assert run_tasks(math.sqrt, [], progress=False) == []


def test_serial_path_needs_no_dask():
    code = (
        "import sys; from ifkd.engine import run_tasks; "
        "assert run_tasks(abs, [-1, 2], progress=False) == [1, 2]; "
        "assert 'distributed' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_worker_counts_and_reasons():
    with pytest.raises(InputError, match="--workers must be >= 1"):
        run_tasks(abs, [1], workers=0)
    assert reason_of(OSError("disk\n  full")) == "OSError: disk full"
    assert reason_of(KeyError()) == "KeyError: KeyError"


def test_workers_carry_the_scheduler():
    w = Workers(3, "tcp://h:8786")
    assert w == 3 and w > 1 and int(w) == 3 and scheduler_of(w) == "tcp://h:8786"
    assert scheduler_of(4) is None and scheduler_of(Workers(2)) is None
    again = pickle.loads(pickle.dumps(w))
    assert again == 3 and again.scheduler == "tcp://h:8786"


def test_importer_lists_a_task_whose_worker_died_as_broken(monkeypatch, tmp_path):
    monkeypatch.setattr(importer, "run_tasks", lambda *a, **k: [Failed("KilledWorker: died")])
    jobs = [(None, str(tmp_path), "real/a", "a.obj", ())]
    assert importer.run_import_jobs(tmp_path, jobs, 1, "import", False) == [
        ("real/a", "broken", "a.obj", {"reason": "KilledWorker: died"}, 0.0)
    ]


def test_synth_finishes_the_other_shapes_when_one_fails(tmp_path, monkeypatch):
    from ifkd.data.synth import generate

    real = generate.generate_shape

    def broken_first(root, category, index, s):
        if index == 0:
            raise ArithmeticError("boom")
        return real(root, category, index, s)

    monkeypatch.setattr(generate, "generate_shape", broken_first)
    s = SynthSettings(per_category=2, views=1, seed=1, image_size=16, categories=("chair",))
    with pytest.raises(
        RuntimeError, match="1 of 2 shapes failed .* first: chair/0000: ArithmeticError: boom"
    ):
        generate_dataset(tmp_path, s, progress=False)
    assert (tmp_path / "chair/0001/shape.npz").is_file() and not (tmp_path / "index.json").exists()
    monkeypatch.setattr(generate, "generate_shape", real)
    generate_dataset(tmp_path, s, progress=False)  # the rerun completes it
    assert (tmp_path / "chair/0000/shape.npz").is_file() and (tmp_path / "index.json").is_file()


# -------------------------------------------------------------------------------------- --scheduler
def test_check_scheduler_names_the_address():
    check_scheduler(None)
    for address in ("nonsense", "http://x:1", _refused_address()):
        with pytest.raises(InputError, match=f"--scheduler {address}: no Dask scheduler"):
            check_scheduler(address)


@pytest.mark.parametrize("verb", ["synth", "import", "evaluate"])
def test_a_bad_scheduler_address_is_one_line_and_writes_nothing(verb, tmp_path, capsys):
    address, out = _refused_address(), tmp_path / "out"
    (tmp_path / "meshes").mkdir()
    argv = {
        "synth": ["data", "synth", "--out", out, "--per-category", "1"],
        "import": ["data", "import", "meshes", tmp_path / "meshes", "--out", out],
        "evaluate": ["evaluate", "--model", "pretrained", "--data", tmp_path, "--out", out],
    }[verb]
    assert main([str(a) for a in argv] + ["--scheduler", address]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ifkd: error: --scheduler {address}: "), err
    assert not out.exists()


# ------------------------------------------------------------------------------- resumable evaluate
@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    """3 categories x 3 shapes x 1 view at 32 px: one test shape per category."""
    root = tmp_path_factory.mktemp("engine_data")
    s = SynthSettings(per_category=3, views=1, seed=2, image_size=32, categories=("chair", "lamp", "table"))
    generate_dataset(root, s, progress=False)
    return root


def _outputs(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def test_evaluate_rerun_skips_recorded_shapes_and_writes_the_same_files(small_dataset, tmp_path, monkeypatch):
    out, keys = tmp_path / "res", read_index(small_dataset)["splits"]["test"]
    opts = EvalOptions(resolution=16, limit=2)
    loads: list[str] = []
    load = evaluate.Reconstructor.from_run
    monkeypatch.setattr(
        evaluate.Reconstructor, "from_run", lambda run, **kw: loads.append(str(run)) or load(run, **kw)
    )
    first = run_evaluation("pretrained", small_dataset, out, opts, device="cpu", progress=False)
    assert loads == ["pretrained"]  # in-process: the shapes reuse the model loaded for the run
    assert sorted(p.relative_to(out / SHAPES_DIR).as_posix() for p in (out / SHAPES_DIR).rglob("*.json")) == [
        f"{k}.json" for k in keys[:2]
    ]
    before = _outputs(out)
    seen: list[str] = []
    real = evaluate._evaluate_shape
    monkeypatch.setattr(
        evaluate, "_evaluate_shape", lambda rec, root, key, o: seen.append(key) or real(rec, root, key, o)
    )
    for name in OUTPUTS:
        (out / name).unlink()
    assert run_evaluation("pretrained", small_dataset, out, opts, device="cpu", progress=False) == first
    assert seen == [] and _outputs(out) == before  # nothing re-evaluated, the same bytes
    (out / SHAPES_DIR / f"{keys[0]}.json").write_text("{ half a record")
    run_evaluation("pretrained", small_dataset, out, EvalOptions(resolution=16), device="cpu", progress=False)
    assert seen == [keys[0], keys[2]]  # the damaged record and the shape the limit left out
    seen.clear()
    run_evaluation("pretrained", small_dataset, out, EvalOptions(resolution=12), device="cpu", progress=False)
    assert seen == keys  # other options: every record is stale


# ------------------------------------------------------------------------------ a real Dask cluster
def _meshes(folder: Path) -> Path:
    import trimesh

    folder.mkdir()
    trimesh.creation.box(extents=(0.6, 0.4, 0.8)).export(folder / "box.obj")
    trimesh.creation.icosphere(subdivisions=2).export(folder / "sphere.obj")
    trimesh.creation.cylinder(radius=0.3, height=0.9).export(folder / "cylinder.obj")
    (folder / "bad.obj").write_text("this is not a mesh\n")
    return folder


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_two_worker_dask_cluster_runs_synth_import_and_evaluate(tmp_path, capsys):
    from dask.distributed import LocalCluster

    with (
        dask.config.set(
            {"distributed.scheduler.allowed-failures": 0}
        ),  # a dead worker fails its task at once
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
    ):
        address = cluster.scheduler_address
        # the engine itself: input order, a raising task, a task that kills its worker
        assert run_tasks(math.sqrt, [4.0, -1.0, 9.0], scheduler=address, progress=False)[::2] == [2.0, 3.0]
        (died,) = run_tasks(os._exit, [3], scheduler=address, progress=False)
        assert isinstance(died, Failed) and "KilledWorker" in died.reason
        local = run_tasks(math.sqrt, [4.0, -1.0], workers=2, progress=False)  # a LocalCluster of its own
        assert local[0] == 2.0 and local[1].reason == "ValueError: math domain error"

        # (a) synth: byte-identical to a serial run
        synth = ["data", "synth", "--per-category", "2", "--views", "2", "--image-size", "32", "--seed", "4"]
        synth += ["--categories", "chair", "lamp"]
        assert main([*synth, "--out", str(tmp_path / "a"), "--scheduler", address]) == 0
        assert main([*synth, "--out", str(tmp_path / "b")]) == 0
        assert _files(tmp_path / "a") == _files(tmp_path / "b")

        # (b) import meshes: the three meshes import, the broken file is listed
        data = tmp_path / "imported"
        argv = ["data", "import", "meshes", str(_meshes(tmp_path / "meshes")), "--out", str(data)]
        argv += [
            "--views",
            "2",
            "--points",
            "2000",
            "--voxel-resolutions",
            "32",
            "128",
            "--scheduler",
            address,
        ]
        capsys.readouterr()
        assert main(argv) == 2  # the batch rule: one model broken -> exit 2, the others written
        cap = capsys.readouterr()
        printed = cap.out
        assert "imported 3" in printed and "broken 1" in printed and "broken  real/bad:" in printed
        assert "1 of 4 models failed or were flagged" in cap.err
        assert read_index(data)["splits"]["test"] == ["real/box", "real/cylinder", "real/sphere"]

        # (c) evaluate: the same metrics as in this process
        ev = [
            "evaluate",
            "--model",
            "pretrained",
            "--data",
            str(data),
            "--resolution",
            "16",
            "--views",
            "all",
        ]
        ev += ["--device", "cpu"]
        assert main([*ev, "--out", str(tmp_path / "serial")]) == 0
        assert main([*ev, "--out", str(tmp_path / "cluster"), "--scheduler", address]) == 0
        assert _rows(tmp_path / "cluster" / "per_shape.csv") == _rows(tmp_path / "serial" / "per_shape.csv")
        summaries = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("serial", "cluster")]
        assert summaries[0] == summaries[1] and summaries[0]["n"] == 6


def test_processes_ifkd_starts_keep_their_malloc_heap_unless_the_user_chose(monkeypatch):
    """ifkd's CLI hands its children (benchmark and Dask workers) glibc settings that stop large tensors
    from being mmapped and page-faulted in every step; a value the user set is kept."""
    import subprocess
    import sys

    from ifkd import cli

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "5")
    cli.keep_malloc_heap_for_children()
    code = "import os; print(os.environ['MALLOC_MMAP_THRESHOLD_'], os.environ['MALLOC_TRIM_THRESHOLD_'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [cli.MALLOC_KEEP["MALLOC_MMAP_THRESHOLD_"], "5"]
