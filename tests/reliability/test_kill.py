"""Crash safety: SIGKILL mid-run then rerun, disk full, and output folders that cannot be written."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from corpus import STUDENT, TINY_TRAIN, assert_one_line_error, run_cli, write_good_image
from safetensors.torch import load_file

from ifkd.data.format import RENDER_DIR, SHAPE_FILE, check_shape, load_image, read_views
from ifkd.data.synth.generate import SynthSettings, generate_shape
from ifkd.io import read_json
from ifkd.train.checkpoint import RunDir, load_tensors, read_last_state, read_metrics

KILL_TRAIN = ["--set", "train.batch_size=1", "--set", "train.checkpoint_every=3"]
KILL_TRAIN += ["--set", "train.epochs_recon=2", "--set", "train.epochs_kd=0"]
"""8 items at batch 1: 8 steps per epoch, 16 in all; 'last' every 3 steps (mid-epoch) and at epoch ends."""


CATEGORIES = ("chair", "table")


def _train_argv(data: Path, out: Path) -> list:
    return [*STUDENT, "--data", data, "--out", out, *TINY_TRAIN, *KILL_TRAIN]


def _ifkd(argv: list) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the in-process runs use one thread too: same arithmetic
    return subprocess.Popen(
        [sys.executable, "-m", "ifkd", *map(str, argv)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` is true (polled every 10 ms); fail if it ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            tail = proc.stderr.read().decode()[-800:]
            pytest.fail(f"finished (rc {proc.returncode}) before the kill: {tail}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("never reached the kill point")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL


def _hidden(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.is_file()]


def _assert_run_files_readable(run: Path) -> None:
    """Every file a reader looks at parses: weights, optimizer state, JSON, metrics, log."""
    for path in sorted(run.rglob("*")):
        if path.is_dir() or path.name.startswith("."):
            continue
        if path.suffix == ".safetensors":
            load_tensors(path)
        elif path.suffix == ".json":
            read_json(path)
        elif path.name == "metrics.jsonl":
            read_metrics(RunDir(run))
        else:
            path.read_text(encoding="utf-8")
    state = read_last_state(RunDir(run))
    assert (run / "checkpoints" / state.optimizer_file).is_file()  # 'last' always has its optimizer file


def _weights(run: Path) -> dict:
    return load_file(str(run / "checkpoints" / "last.safetensors"))


def test_sigkill_mid_epoch_then_resume_loses_nothing_checkpointed(small_dataset, tmp_path):
    run = tmp_path / "run"
    argv = _train_argv(small_dataset, run)
    sidecar = run / "checkpoints" / "last.json"

    def mid_epoch_checkpoint() -> bool:  # the sidecar is written last: its step is on disk
        try:
            state = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            return False
        return state["step_in_epoch"] > 0 and state["global_step"] >= 3

    _kill_when(_ifkd(argv), mid_epoch_checkpoint)
    _assert_run_files_readable(run)
    saved = read_last_state(RunDir(run))
    assert 0 < saved.global_step < 16
    # what a kill inside a write leaves (whether this kill did is chance): half-written temp files
    for junk in (".last.safetensors.k1ll3d.tmp", ".metrics.jsonl.k1ll3d.tmp"):
        folder = run / "checkpoints" if junk.startswith(".last") else run
        (folder / junk).write_bytes(b"half a file")

    res = run_cli([*argv, "--resume"])
    assert res.rc == 0, res.err
    log = (run / "log.txt").read_text()
    # it continued from the last checkpoint on disk: only the steps after it were redone
    assert f"step {saved.step_in_epoch}/8 (global step {saved.global_step})" in log
    final = read_last_state(RunDir(run))
    assert (final.global_step, final.epoch, final.step_in_epoch) == (16, 2, 0)
    assert [r["epoch"] for r in read_metrics(RunDir(run))] == [0, 1]
    _assert_run_files_readable(run)
    assert _hidden(run) == []  # temp files of the killed writes are swept

    # and exactly so: the same weights as a run that was never killed
    ref = tmp_path / "ref"
    assert run_cli(_train_argv(small_dataset, ref)).rc == 0
    a, b = _weights(run), _weights(ref)
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_sigkill_data_synth_then_rerun_completes_it(tmp_path):
    root = tmp_path / "data"
    argv = ["data", "synth", "--out", root, "--per-category", 4, "--views", 2, "--image-size", 32]
    argv += ["--categories", *CATEGORIES, "--seed", 3]
    _kill_when(_ifkd(argv), lambda: len(list(root.glob(f"*/*/{SHAPE_FILE}"))) >= 2)

    assert not (root / "index.json").exists()  # written last
    done = {p.parent for p in root.glob(f"*/*/{SHAPE_FILE}")}
    before = {d: _digest(d) for d in done}
    for folder in done:  # complete shapes are fully readable
        check_shape(root, str(folder.relative_to(root)))
    partial = [d for d in root.glob("*/*") if d not in done]
    for folder in partial:  # a half-written shape: whatever carries its final name is whole
        if (folder / RENDER_DIR / "rendering_metadata.txt").exists():
            read_views(folder / RENDER_DIR)
        for png in (folder / RENDER_DIR).glob("[0-9]*.png"):
            load_image(png)

    last = root / CATEGORIES[-1] / "0003"  # generated last: not started at the kill
    assert last not in done
    (last / RENDER_DIR).mkdir(parents=True, exist_ok=True)
    for junk in (last / ".shape.npz.k1ll3d.tmp", last / RENDER_DIR / ".00.png.k1ll3d.png"):
        junk.write_bytes(b"half a file")  # what a kill inside a write leaves

    res = run_cli(argv)
    assert res.rc == 0, res.err
    assert {d: _digest(d) for d in done} == before  # finished shapes were skipped, not redone
    res = run_cli(["data", "info", "--check", root])
    assert res.rc == 0 and "checked 8 shapes: no problems" in res.out, res.err
    assert _hidden(root) == []
    for folder in partial:  # the interrupted shape is byte-identical to an uninterrupted one
        category, index = folder.relative_to(root).parts
        settings = SynthSettings(per_category=4, views=2, seed=3, image_size=32, categories=CATEGORIES)
        generate_shape(tmp_path / "fresh", category, int(index), settings)
        assert _digest(folder) == _digest(tmp_path / "fresh" / category / index)


# ----------------------------------------------------------------------------------- disk full


def _fill_disk_after(monkeypatch, prefix: str, allowed: int) -> None:
    """Let ``allowed`` temp-file writes whose name starts with ``.prefix`` through, then fail the next
    ones half-way like a full disk (the real error carries the temp name; atomic_path renames it)."""
    real_write = Path.write_bytes
    seen = {"n": 0}

    def write_bytes(self: Path, data: bytes) -> int:
        if self.name.startswith("." + prefix):
            seen["n"] += 1
            if seen["n"] > allowed:
                real_write(self, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def test_disk_full_during_training_keeps_the_last_checkpoint(small_dataset, tmp_path, monkeypatch):
    run = tmp_path / "run"
    argv = _train_argv(small_dataset, run)
    _fill_disk_after(monkeypatch, "last-optim-", allowed=1)  # the first save (step 3) works, step 6 fails
    res = run_cli(argv)
    failed = run / "checkpoints" / "last-optim-000000006.safetensors"
    line = assert_one_line_error(res, failed, "No space left")
    assert "disk full" in line and "--resume" in line
    assert read_last_state(RunDir(run)).global_step == 3
    _assert_run_files_readable(run)
    assert _hidden(run) == []

    monkeypatch.undo()  # space freed: the advertised command continues the run
    assert run_cli([*argv, "--resume"]).rc == 0
    assert read_last_state(RunDir(run)).global_step == 16


def test_disk_full_during_reconstruct_keeps_the_previous_mesh(tiny_run, tmp_path, monkeypatch):
    image = write_good_image(tmp_path / "good.png")
    argv = ["reconstruct", image, "--model", tiny_run, "--out", tmp_path / "out", "--resolution", "16"]
    assert run_cli(argv).rc == 0
    mesh = tmp_path / "out" / "good" / "mesh.obj"
    before = mesh.read_bytes()
    _fill_disk_after(monkeypatch, "mesh.obj", allowed=0)
    res = run_cli([*argv, "--threshold", "0.45"])
    assert_one_line_error(res, mesh, "No space left on device")
    assert mesh.read_bytes() == before and _hidden(tmp_path / "out") == []


# ----------------------------------------------------------------------------------- unwritable output


def _commands(out: Path, data: Path, run: Path, image: Path) -> dict[str, list]:
    return {
        "synth": ["data", "synth", "--out", out, "--per-category", 1, "--views", 1, "--image-size", 16],
        "train": [*STUDENT, "--data", data, "--out", out, *TINY_TRAIN],
        "reconstruct": ["reconstruct", image, "--model", run, "--out", out, "--device", "cpu"],
        "evaluate": ["evaluate", "--model", run, "--data", data, "--out", out, "--device", "cpu"],
    }


@pytest.mark.parametrize("verb", ["synth", "train", "reconstruct", "evaluate"])
def test_output_under_a_file_is_refused_before_any_work(verb, small_dataset, tiny_run, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder is expected\n")
    out = blocker / "out"
    argv = _commands(out, small_dataset, tiny_run, write_good_image(tmp_path / "good.png"))[verb]
    res = run_cli(argv)
    assert_one_line_error(res, out, "not writable")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.png", "not-a-folder"]


def test_read_only_output_folder_is_refused(small_dataset, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        (folder / "probe").write_text("x")
    except PermissionError:
        pass
    else:
        folder.chmod(0o700)
        pytest.skip("running as root: chmod does not block writes (the ENOTDIR cases cover refusal)")
    try:
        res = run_cli(_commands(folder / "run", small_dataset, folder, folder)["train"])
        assert_one_line_error(res, folder / "run", "not writable")
    finally:
        folder.chmod(0o700)


def test_read_only_file_system_message_is_clear():
    from ifkd.cli import one_line

    exc = OSError(errno.EROFS, os.strerror(errno.EROFS), "/mnt/ro/run/checkpoints/last.safetensors")
    assert one_line(exc) == (
        "/mnt/ro/run/checkpoints/last.safetensors: Read-only file system (read-only file system: "
        "choose another --out)"
    )
