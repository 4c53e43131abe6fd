"""Shared fixtures: one tiny generated dataset per test session (all 13 categories)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ifkd.data.synth.generate import SynthSettings, generate_dataset

TINY = SynthSettings(per_category=3, views=3, seed=11, image_size=64)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """13 categories x 3 shapes x 3 views at 64 px (train 13 / val 13 / test 13)."""
    root = tmp_path_factory.mktemp("tiny_dataset")
    generate_dataset(root, TINY, workers=1, progress=False)
    return root
