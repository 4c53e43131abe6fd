"""Shared fixtures: one tiny generated dataset per test session (all 13 categories), the ``one_thread``
fixture, and the hypothesis profile (derandomised when ``CI`` is set, so a failure reproduces).

Helpers shared by several test files are in ``helpers.py`` next to this file (``import helpers``)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from ifkd.config import Config, get_preset
from ifkd.data.synth.generate import SynthSettings, generate_dataset
from ifkd.methods import method_config

TINY = SynthSettings(per_category=3, views=3, seed=11, image_size=64)

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (``pytestmark = pytest.mark.usefixtures("one_thread")`` in a
    file): small batches gain nothing from threads, two contending threads on a shared machine are far
    slower, and serial evaluation then computes exactly what single-threaded workers do."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """13 categories x 3 shapes x 3 views at 64 px (train 13 / val 13 / test 13)."""
    root = tmp_path_factory.mktemp("tiny_dataset")
    generate_dataset(root, TINY, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_runs(tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    """A teacher and a KD student trained 2 optimiser steps each: loadable run folders."""
    from ifkd.train.run import train

    root = tmp_path_factory.mktemp("tiny_runs")

    def cfg(method: str) -> Config:
        c = method_config(method, get_preset("tiny"))
        return replace(c, train=replace(c.train, max_steps=2, batch_size=4, val_shapes=0))

    with torch.random.fork_rng():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        train(cfg("teacher"), tiny_dataset, root / "teacher", device="cpu", progress=False)
        train(cfg("ifkd"), tiny_dataset, root / "student", teacher_run=root / "teacher", progress=False)
        torch.set_num_threads(threads)
    return {"teacher": root / "teacher", "student": root / "student"}
