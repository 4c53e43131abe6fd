"""`ifkd demo` end to end at the 'quick' size: data -> teacher + student (or given weights) -> meshes ->
metrics -> report, in seconds."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest
import torch

import ifkd.pretrained
from ifkd.commands import demo as demo_cmd
from ifkd.demo import SIZES, choose_mode, run_demo
from ifkd.io import InputError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    logs: list[str] = []
    torch.set_num_threads(1)
    result = run_demo(out, mode="train", size="quick", workers=1, device="cpu", log=logs.append)
    return result, logs


def test_quick_demo_trains_and_writes_everything(trained_demo):
    result, logs = trained_demo
    out = result.out
    assert result.mode == "train" and result.model == out / "runs" / "ifkd"
    assert list(result.timings) == ["data", "teacher", "student", "reconstruct", "evaluate", "report"]
    assert all(t > 0 for t in result.timings.values())
    for run in ("teacher", "ifkd"):
        assert (out / "runs" / run / "checkpoints" / "last.safetensors").is_file()
    # 3 categories x 1 test shape each: one OBJ (and its input image) per held-out image.
    n_test = len(SIZES["quick"].categories)
    assert len(result.meshes) == n_test and all(p.suffix == ".obj" and p.is_file() for p in result.meshes)
    assert len(list((out / "meshes").glob("*.png"))) == n_test
    summary = json.loads((out / "eval" / "summary.json").read_text())
    assert summary["n"] == SIZES["quick"].eval_shapes and "iou" in summary["mean"]
    assert "| **mean (of classes)** |" in (out / "eval" / "table.md").read_text()
    assert result.report == out / "index.html"
    html = result.report.read_text()
    assert html.count("data:image/png;base64,") == 2  # training curves + picture grid
    assert "Made by `ifkd demo`" in (out / "report.md").read_text()
    assert logs[1].startswith("[1/6] data") and any(line.startswith("[6/6] report done in") for line in logs)
    assert logs[-1].startswith(f"open {out / 'index.html'}")


def test_quick_demo_with_given_weights_skips_training(trained_demo, tmp_path):
    trained, _ = trained_demo
    shutil.copytree(trained.out / "data", tmp_path / "out" / "data")  # the same dataset: not regenerated
    logs: list[str] = []
    result = run_demo(
        tmp_path / "out", size="quick", pretrained_run=trained.model, workers=1, device="cpu", log=logs.append
    )
    assert result.mode == "pretrained" and result.model == trained.model
    assert list(result.timings) == ["data", "reconstruct", "evaluate", "report"]
    assert not (tmp_path / "out" / "runs").exists()
    assert (tmp_path / "out" / "index.html").is_file()
    assert any("using the shipped weights" in line for line in logs)


def test_choose_mode(monkeypatch):
    monkeypatch.setattr(ifkd.pretrained, "available", lambda: [])
    assert choose_mode("auto") == "train" and choose_mode("train") == "train"
    with pytest.raises(InputError, match="no shipped weights"):
        choose_mode("pretrained")
    monkeypatch.setattr(ifkd.pretrained, "available", lambda: [ifkd.pretrained.DEFAULT_NAME])
    assert choose_mode("auto") == "pretrained" and choose_mode("train") == "train"


def test_demo_cli_arguments():
    parser = argparse.ArgumentParser()
    demo_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["demo"])
    assert (args.mode, str(args.out), args.quick) == ("auto", "demo-output", False)
    assert parser.parse_args(["demo", "--train", "--quick"]).mode == "train"
    assert parser.parse_args(["demo", "--pretrained"]).mode == "pretrained"
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--train", "--pretrained"])
    with pytest.raises(InputError, match="demo size"):
        run_demo("unused", size="huge")
