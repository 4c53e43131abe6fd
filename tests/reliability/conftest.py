"""Fixtures of the reliability tests: a small generated dataset and a tiny trained run (seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from corpus import SMALL, STUDENT, TINY_TRAIN, run_cli

from ifkd.data.synth.generate import generate_dataset


@pytest.fixture(autouse=True)
def _one_thread_everywhere(one_thread):
    """Every reliability test on one thread (tests/conftest.py's ``one_thread``): tiny models run fastest
    so on a shared machine, and runs are comparable."""


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small_dataset")
    generate_dataset(root, SMALL, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_run(small_dataset, tmp_path_factory) -> Path:
    """A trained tiny camera-free student (ifkd without KD: no teacher needed), one epoch."""
    out = tmp_path_factory.mktemp("tiny_run") / "run"
    torch.set_num_threads(1)
    res = run_cli(
        [*STUDENT, "--data", small_dataset, "--out", out, *TINY_TRAIN]
        + ["--set", "train.epochs_recon=1", "--set", "train.epochs_kd=0"]
    )
    assert res.rc == 0, res.err
    return out
