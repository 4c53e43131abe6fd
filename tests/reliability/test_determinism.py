"""Same seed, same CPU -> the same weights and optimizer state after N steps, tensor for tensor."""

from __future__ import annotations

from pathlib import Path

import torch
from corpus import STUDENT, TINY_TRAIN, run_cli

from ifkd.train.checkpoint import RunDir, load_tensors, read_last_state

STEPS = 5


def _train(data: Path, out: Path, seed: int) -> dict[str, torch.Tensor]:
    """A tiny run stopped after STEPS steps -> its weights and Adam tensors (prefixed 'optim.')."""
    argv = [*STUDENT, "--data", data, "--out", out, *TINY_TRAIN]
    res = run_cli([*argv, "--seed", seed, "--set", "train.batch_size=2", "--set", f"train.max_steps={STEPS}"])
    assert res.rc == 0, res.err
    run = RunDir(out)
    state = read_last_state(run)
    assert state.global_step == STEPS
    tensors = load_tensors(run.weights("last"))
    optim = load_tensors(run.checkpoints / state.optimizer_file)
    return {**tensors, **{f"optim.{k}": v for k, v in optim.items()}}


def test_same_seed_same_weights_and_another_seed_differs(small_dataset, tmp_path):
    a = _train(small_dataset, tmp_path / "a", seed=7)
    b = _train(small_dataset, tmp_path / "b", seed=7)
    assert a.keys() == b.keys() and any(k.startswith("optim.") for k in a)
    unequal = [k for k in a if not torch.equal(a[k], b[k])]
    assert unequal == []
    c = _train(small_dataset, tmp_path / "c", seed=8)
    float_keys = [k for k in a if a[k].is_floating_point()]
    assert sum(not torch.equal(a[k], c[k]) for k in float_keys) > len(float_keys) // 2
