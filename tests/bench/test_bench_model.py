"""`ifkd bench generalise --model`: the shipped weights (which keep 'best' only) under a budget that
scores 'last' (cpu), and a model folder without weights rejected before any mesh is imported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ifkd.bench.budgets import get_budget
from ifkd.bench.runs import scored_checkpoint, weights_state
from ifkd.cli import main
from ifkd.io import InputError
from ifkd.pretrained import resolve_run


@pytest.fixture
def two_meshes(tmp_path: Path) -> Path:
    import trimesh

    folder = tmp_path / "meshes"
    folder.mkdir()
    trimesh.creation.box(extents=(1.0, 0.6, 0.4)).export(folder / "box.obj")
    trimesh.creation.cylinder(radius=0.3, height=1.0, sections=24).export(folder / "cyl.obj")
    return folder


def test_scored_checkpoint_falls_back_to_the_one_saved(tmp_path):
    shipped = resolve_run("pretrained")
    assert not (shipped / "checkpoints" / "last.safetensors").exists()  # the reason for the fallback
    assert scored_checkpoint(shipped, "last") == "best" and scored_checkpoint(shipped, "best") == "best"
    assert weights_state(shipped, "last")["weights"] == "best.safetensors"
    with pytest.raises(InputError, match=f"{tmp_path}: no trained weights"):
        scored_checkpoint(tmp_path, "last")
    assert weights_state(tmp_path, "last") == {}


def test_model_without_weights_fails_before_importing_meshes(tmp_path, two_meshes, capsys):
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(resolve_run("pretrained") / "config.json", model / "config.json")
    out = tmp_path / "out"
    argv = ["bench", "generalise", "--protocol", "real", "--budget", "cpu", "--model", str(model)]
    rc = main([*argv, "--meshes", str(two_meshes), "--out", str(out), "--no-results-md", "--device", "cpu"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ifkd: error: {model}: no trained weights"), err
    assert not out.exists()  # nothing imported, no output folder left behind


def test_real_protocol_cpu_budget_scores_the_shipped_model(tmp_path, two_meshes):
    """The user's command: the cpu budget scores 'last', the shipped weights keep 'best' only."""
    assert get_budget("cpu").checkpoint == "last"
    out = tmp_path / "out"
    argv = ["bench", "generalise", "--protocol", "real", "--budget", "cpu", "--model", "pretrained"]
    rc = main([*argv, "--meshes", str(two_meshes), "--out", str(out), "--no-results-md", "--device", "cpu"])
    assert rc == 0
    saved = json.loads((out / "results.json").read_text())
    (run,) = saved["runs"]
    assert run["method"] == "ifkd" and run["model"] == "pretrained" and run["checkpoint"] == "best"
    assert set(run["per_shape"]) == {"real/box", "real/cyl"}
    assert all(m["iou"] is not None for m in run["per_shape"].values())
    summary = json.loads((out / run["eval_dir"] / "summary.json").read_text())
    assert summary["checkpoint"] == "best" and summary["weights_state"]["weights"] == "best.safetensors"
    assert (out / run["eval_dir"] / "per_shape.csv").is_file()
    assert sorted(saved["sheets"]) == ["sheets/box.png", "sheets/cyl.png"]
    assert not (out / "runs").exists()
