"""Checkpoint files: safetensors round trips, clear errors for damaged or foreign files, atomic writes,
pickle-free optimizer and RNG state, config identity for resume, and load_model on a real method."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import ifkd.train.checkpoint as ckpt
from ifkd.config import get_preset, save_config
from ifkd.io import InputError
from ifkd.train.checkpoint import (
    CheckpointError,
    RunDir,
    TrainState,
    capture_rng,
    config_changes,
    config_hash,
    load_last,
    load_model,
    load_weights,
    optimizer_from_flat,
    optimizer_to_flat,
    read_last_state,
    restore_rng,
    save_best,
    save_last,
    save_tensors,
)

pytestmark = pytest.mark.usefixtures("one_thread")


class Tied(nn.Module):
    """Two layers sharing one weight tensor (safetensors refuses shared storage unless handled)."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.a = nn.Linear(width, width)
        self.b = nn.Linear(width, width)
        self.b.weight = self.a.weight
        self.register_buffer("count", torch.tensor(3))


def trained_adam(model: nn.Module, steps: int = 3) -> torch.optim.Adam:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.95))
    for _ in range(steps):
        opt.zero_grad()
        model.a(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    return opt


def test_weights_round_trip_with_shared_tensors(tmp_path):
    torch.manual_seed(0)
    src, dst = Tied(), Tied()
    save_tensors(tmp_path / "w.safetensors", src.state_dict(), {"format": ckpt.FORMAT, "k": "v"})
    meta = load_weights(dst, tmp_path / "w.safetensors")
    assert meta["k"] == "v"
    for key, value in src.state_dict().items():
        assert torch.equal(value, dst.state_dict()[key])


def test_wrong_architecture_names_file_and_keys(tmp_path):
    path = tmp_path / "w.safetensors"
    save_tensors(path, Tied(4).state_dict(), {})
    with pytest.raises(
        CheckpointError, match=r"w\.safetensors: weights do not fit.*shape a\.weight \(4, 4\)"
    ):
        load_weights(Tied(6), path)
    with pytest.raises(CheckpointError, match=r"missing \['c\.bias', 'c\.weight'\]"):
        model = Tied(4)
        model.c = nn.Linear(2, 2)
        load_weights(model, path)


class Boom:
    """Unpickling this would create a file: proof that nothing is unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("damage", ["truncated", "pickle", "empty", "text"])
def test_damaged_or_foreign_file_gives_one_line_error(tmp_path, damage):
    path = tmp_path / "w.safetensors"
    marker = tmp_path / "unpickled"
    if damage == "pickle":
        torch.save({"evil": Boom(marker), "w": torch.zeros(3)}, path)
    else:
        save_tensors(path, Tied().state_dict(), {})
        data = path.read_bytes()
        path.write_bytes({"truncated": data[: len(data) - 7], "empty": b"", "text": b"hello world"}[damage])
    with pytest.raises(CheckpointError) as info:
        load_weights(Tied(), path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "not a readable safetensors file" in message
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        load_weights(Tied(), tmp_path / "missing.safetensors")


def test_interrupted_write_leaves_previous_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    torch.manual_seed(1)
    old = Tied()
    save_tensors(path, old.state_dict(), {})
    before = path.read_bytes()

    def half_write(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 10)  # a partial file, then the crash
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save_file", half_write)
    with pytest.raises(KeyboardInterrupt):
        save_tensors(path, Tied().state_dict(), {})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


def test_optimizer_round_trip_without_pickle(tmp_path):
    torch.manual_seed(2)
    model = Tied()
    opt = trained_adam(model)
    tensors, meta = optimizer_to_flat(opt)
    json.dumps(meta)  # the non-tensor part is plain JSON
    save_tensors(tmp_path / "o.safetensors", tensors, {})
    copy = Tied()
    copy.load_state_dict(model.state_dict())
    opt2 = torch.optim.Adam(copy.parameters(), lr=0.5)
    optimizer_from_flat(opt2, ckpt.load_tensors(tmp_path / "o.safetensors"), json.loads(json.dumps(meta)))
    assert opt2.param_groups[0]["lr"] == 1e-2 and opt2.param_groups[0]["betas"] == (0.8, 0.95)
    x = torch.randn(5, 4)  # one more identical step on both: same moments and step count -> same weights
    for m, o in ((model, opt), (copy, opt2)):
        o.zero_grad()
        m.a(x).pow(2).sum().backward()
        o.step()
    for key, value in model.state_dict().items():
        assert torch.equal(value, copy.state_dict()[key]), key


def test_rng_round_trip():
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    state = json.loads(json.dumps(capture_rng()))
    expected = (torch.rand(3), np.random.randn(3), random.random())
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    restore_rng(state)
    got = (torch.rand(3), np.random.randn(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def test_save_last_is_consistent_and_prunes_old_optimizer_files(tmp_path):
    run = RunDir(tmp_path)
    torch.manual_seed(3)
    model = Tied()
    opt = trained_adam(model)
    state = TrainState("fake", "abc", epoch=1, step_in_epoch=2, global_step=6, rng=capture_rng())
    save_last(run, model, opt, state)
    state.global_step = 7
    save_last(run, model, opt, state)
    assert [p.name for p in run.checkpoints.glob("last-optim-*")] == ["last-optim-000000007.safetensors"]
    assert json.loads(run.sidecar("last").read_text()) == read_last_state(run).to_json()
    model2 = Tied()
    opt2 = torch.optim.Adam(model2.parameters())
    loaded = load_last(run, model2, opt2)
    assert (loaded.epoch, loaded.step_in_epoch, loaded.global_step) == (1, 2, 7)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    # The weights' own metadata is authoritative: a stale sidecar does not matter.
    run.sidecar("last").write_text("{}")
    assert read_last_state(run).global_step == 7


def test_config_identity_ignores_run_control_fields():
    cfg = get_preset("tiny")
    longer = replace(cfg, train=replace(cfg.train, max_steps=10, checkpoint_every=5))
    assert config_hash(cfg) == config_hash(longer) and config_changes(cfg, longer) == []
    other = replace(
        cfg, train=replace(cfg.train, lr=0.5), teacher=replace(cfg.teacher, channels=(1, 2, 3, 4))
    )
    assert config_hash(other) != config_hash(cfg)
    assert config_changes(cfg, other) == [
        "teacher.channels: [4, 8, 8, 16] -> [1, 2, 3, 4]",
        "train.lr: 0.001 -> 0.5",
    ]


def test_load_model_rebuilds_a_real_method(tmp_path):
    from ifkd.methods import build_method, method_config

    cfg = method_config("ifkd", get_preset("tiny"))
    run = RunDir(tmp_path / "run")
    save_config(cfg, run.config)
    torch.manual_seed(4)
    method = build_method("ifkd", cfg, teacher_dim=12)  # a teacher size that the config does not imply
    state = TrainState("ifkd", config_hash(cfg), teacher_dim=12)
    save_last(run, method, torch.optim.Adam(method.parameters()), state)
    loaded, loaded_cfg = load_model(run.root, "best")  # no 'best' (no validation): falls back to 'last'
    assert loaded_cfg == cfg and not loaded.training
    for key, value in method.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    save_best(run, method, state, 0.5, epoch=0)
    assert json.loads(run.sidecar("best").read_text())["val_iou"] == 0.5
    assert load_model(run.root, "best")[0].kd_head is not None
    save_config(method_config("global", cfg), run.config)  # config of another method: clear error
    with pytest.raises(CheckpointError, match=r"best\.safetensors: weights do not fit"):
        load_model(run.root, "best")
    with pytest.raises(InputError, match="run folder not found"):
        load_model(tmp_path / "nope")
