"""One writer per output folder: two ifkd processes started at once on one --out never both run, the
loser says so in one line, and stale-temp cleanup never touches a live writer's files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from corpus import STUDENT, TINY_TRAIN, assert_one_line_error, run_cli

from ifkd.io import LOCK_FILE, OWNER_FILE, FolderInUse, InputError, output_lock, remove_stale_temps

IN_USE = r"in use by another ifkd process \(pid (\d+)\); wait for it or use another --out$"

HOLDER = r"""
import sys
from ifkd.io import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""

WORKER = r"""
import contextlib, io, json, os, sys, time
from ifkd.cli import build_parser, main
build_parser()  # torch and every command module loaded now: a round starts straight at the lock
print("ready", flush=True)
for line in sys.stdin:
    out, err = io.StringIO(), io.StringIO()
    t0 = time.time()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(json.loads(line))
    print(json.dumps({"rc": rc, "err": err.getvalue(), "pid": os.getpid(), "t0": t0, "t1": time.time()}),
          flush=True)
"""


def _python(code: str, *args) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def holder():
    """Start a process holding the lock of a folder; yields start(folder) -> the process."""
    procs: list[subprocess.Popen] = []

    def start(folder: Path) -> subprocess.Popen:
        proc = _python(HOLDER, folder)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held", proc.stderr.read()
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(30)


def _release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(30) == 0, proc.stderr.read()


def _hidden(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.is_file()]


# ----------------------------------------------------------------------------------- the helper


def test_a_held_folder_is_refused_at_once_naming_the_holder(tmp_path, holder):
    folder = tmp_path / "out"
    proc = holder(folder)
    t0 = time.monotonic()
    with pytest.raises(FolderInUse) as caught:
        with output_lock(folder):
            pytest.fail("entered a folder another process holds")
    assert time.monotonic() - t0 < 5  # fails at once, does not wait for the holder
    assert str(caught.value) == (
        f"{folder}: in use by another ifkd process (pid {proc.pid}); wait for it or use another --out"
    )
    _release(proc)
    with output_lock(folder):  # free again once the holder is done
        assert (folder / LOCK_FILE).exists()


def test_lock_file_lives_only_while_held_and_an_unused_new_folder_goes_away(tmp_path):
    fresh = tmp_path / "fresh"
    with output_lock(fresh) as got:
        assert got == fresh and (fresh / LOCK_FILE).is_file()
        assert (fresh / OWNER_FILE).read_text().split()[0] == str(os.getpid())
        with output_lock(fresh):  # nested in one process: the same writer, no second lock
            pass
        assert (fresh / LOCK_FILE).is_file()
    assert not fresh.exists()  # a command that failed before writing leaves nothing behind

    used = tmp_path / "used"
    with output_lock(used):
        (used / "result.txt").write_text("x")
    assert [p.name for p in used.iterdir()] == ["result.txt"] and _hidden(used) == []


def test_nested_use_keeps_the_lock_until_the_outer_block_ends(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with output_lock(folder):
        with output_lock(folder):
            pass
        probe = _python(HOLDER, folder)  # another process still cannot take it
        probe.stdin.close()
        assert probe.wait(30) == 1 and "in use by another ifkd process" in probe.stderr.read()


def test_a_killed_holder_does_not_block_the_next_writer(tmp_path, holder):
    folder = tmp_path / "out"
    proc = holder(folder)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert (folder / LOCK_FILE).exists()  # left behind by the kill, but no longer held
    with output_lock(folder):
        pass
    assert _hidden(folder) == []


def test_an_unwritable_folder_is_still_reported_as_such(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="not writable"):
        with output_lock(blocker / "out"):
            pass


def test_stale_temp_cleanup_spares_a_live_writers_files(tmp_path, holder):
    folder = tmp_path / "data"
    temp = folder / "chair" / "0000" / ".shape.npz.x1y2.tmp"
    temp.parent.mkdir(parents=True)
    temp.write_bytes(b"being written")
    proc = holder(folder)
    remove_stale_temps(temp.parent / "shape.npz")
    assert temp.exists()  # another process holds the folder: its temp files are live
    _release(proc)
    remove_stale_temps(temp.parent / "shape.npz")
    assert not temp.exists()  # nobody holds it: stale, swept
    temp.write_bytes(b"left by a kill")
    with output_lock(folder):
        remove_stale_temps(temp.parent / "shape.npz")  # our own folder: swept
    assert not temp.exists()


def test_a_second_cli_writer_gets_one_line_and_exit_2(tmp_path, holder, small_dataset):
    folder = tmp_path / "out"
    proc = holder(folder)
    commands = {
        "data synth": ["data", "synth", "--out", folder, "--per-category", 1, "--views", 1],
        "data import": ["data", "import", "meshes", tmp_path, "--out", folder],
        "train": [*STUDENT, "--data", small_dataset, "--out", folder, *TINY_TRAIN],
        "reconstruct": ["reconstruct", tmp_path, "--model", "pretrained", "--out", folder],
        "evaluate": ["evaluate", "--model", "pretrained", "--data", small_dataset, "--out", folder],
        "bench": ["bench", "generalise", "--protocol", "real", "--model", "pretrained", "--out", folder],
    }
    for argv in commands.values():
        line = assert_one_line_error(run_cli(argv), folder, IN_USE)
        assert re.search(IN_USE, line).group(1) == str(proc.pid)
    assert sorted(p.name for p in folder.iterdir()) == sorted([LOCK_FILE, OWNER_FILE])  # nothing written
    _release(proc)


# ----------------------------------------------------------------------------------- real races


def _race(argv_for, rounds: int) -> list[tuple[dict, dict]]:
    """Two warm worker processes run ``argv_for(i)`` at the same moment, ``rounds`` times."""
    workers = [_python(WORKER), _python(WORKER)]
    try:
        for w in workers:
            assert w.stdout.readline().strip() == "ready", w.stderr.read()[-2000:]
        results = []
        for i in range(rounds):
            line = json.dumps([str(a) for a in argv_for(i)]) + "\n"
            for w in workers:  # both are blocked reading: they wake together
                w.stdin.write(line)
            for w in workers:
                w.stdin.flush()
            a, b = (json.loads(w.stdout.readline()) for w in workers)
            results.append((a, b))
        return results
    finally:
        for w in workers:
            w.stdin.close()
            w.wait(60)


def _check_round(folder: Path, a: dict, b: dict) -> bool:
    """Check one race; False when it was none. On a loaded machine one process can reach the lock only
    after the other released it (the writes take ~0.2 s): then both rightly succeed one after the other,
    or a second `train` finds a finished run ("already holds a run"). The caller requires most rounds to
    be real races (a quarter of them), so a broken lock (both succeed nearly every time) still fails."""
    if a["rc"] == 0 and b["rc"] == 0:
        return False
    winner, loser = (a, b) if a["rc"] == 0 else (b, a)
    assert winner["rc"] == 0, winner["err"][-2000:]
    if loser["rc"] == 2 and "already holds a run; pass --resume" in loser["err"]:
        return False  # a `train` that came after the winner had finished: refused for the right reason
    assert loser["rc"] == 2 and loser["t0"] < winner["t1"]  # it ran while the winner held the folder
    lines = loser["err"].splitlines()
    assert len(lines) == 1 and "Traceback" not in loser["err"], loser["err"]
    assert re.fullmatch(f"ifkd: error: {re.escape(str(folder))}: {IN_USE}", lines[0]), lines[0]
    assert re.search(IN_USE, lines[0]).group(1) == str(winner["pid"])
    return True


def test_two_writers_started_at_once_never_both_run(small_dataset, tmp_path):
    """8 races of two `data synth` into one folder, then 8 of two `train` (half with --resume) into one
    run folder: exactly one runs, the other gets the one line naming it."""
    size = ["--per-category", 1, "--views", 1, "--image-size", 16, "--categories", "chair", "table"]

    def argv(i: int) -> list:
        if i < 8:  # ~0.2 s of writing: 20x the skew of the two starts
            return ["data", "synth", "--out", tmp_path / f"out{i}", *size]
        resume = ["--resume"] if i % 2 else []  # `--resume` of a run not made yet starts it
        return [*STUDENT, "--data", small_dataset, "--out", tmp_path / f"out{i}", *TINY_TRAIN, *resume]

    races = 0
    for i, (a, b) in enumerate(_race(argv, rounds=16)):
        folder = tmp_path / f"out{i}"
        races += _check_round(folder, a, b)
        made = "index.json" if i < 8 else "checkpoints/last.json"
        assert (folder / made).is_file() and _hidden(folder) == []
    assert races >= 4, f"only {races} of 16 rounds were real races (machine too loaded to test)"


@pytest.mark.slow
def test_torchrun_ranks_of_one_job_share_the_folder(small_dataset, tmp_path):
    """Under torchrun every rank runs the command, rank 0 alone writes: only rank 0 takes the lock."""
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "ifkd"]
    cmd += [*STUDENT, "--data", small_dataset, "--out", run, *TINY_TRAIN]
    done = subprocess.run(list(map(str, cmd)), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "in use by another" not in done.stderr
    assert (run / "checkpoints" / "last.json").is_file() and _hidden(run) == []
