"""A training mix: the train splits of several datasets (e.g. procedural + real), each drawn with a weight.

An epoch of the mix holds, for a source of n items with weight w, round(w x n) of its items: every item
floor(w) times, plus a random subset of the rest (without repeats) that is fresh each epoch. Which items
an epoch holds depends only on (seed, epoch); each item's random draws (points, augmentation) only on
(seed, epoch, position in the mix). The epoch's length is the same every epoch, so the trainer's
:class:`~ifkd.train.distributed.ResumableSampler` shuffles the positions as for one dataset, and a
resumed run sees exactly what an uninterrupted one would, with any number of workers or ranks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ifkd.config import DataConfig
from ifkd.data.loader import ShapeViewDataset
from ifkd.io import InputError

PLAN_STREAM = 2
"""The subset of a source in an epoch comes from ``default_rng([seed, epoch, source, PLAN_STREAM])``,
apart from the items' own streams (``[seed, epoch, position]`` and ``[..., AUGMENT_STREAM]`` = 1)."""


def source_counts(sizes: Sequence[int], weights: Sequence[float]) -> list[int]:
    """Items per epoch of each source: round(w x n), halves up."""
    return [int(math.floor(w * n + 0.5)) for n, w in zip(sizes, weights, strict=True)]


class MixedDataset(Dataset):
    """The items of several :class:`ShapeViewDataset` sources, drawn per epoch by weight (module docstring).

    Items are those of the sources, with ``category`` re-indexed into the union of the sources'
    categories (first source's order, then new ones as they come), ``index`` the item's index in its
    source and ``source`` the source's position.
    """

    def __init__(self, sources: Sequence[ShapeViewDataset], weights: Sequence[float], seed: int = 0) -> None:
        if len(sources) != len(weights) or not sources:
            raise ValueError(f"{len(sources)} sources and {len(weights)} weights: need one weight each")
        self.sources = list(sources)
        self.weights = [float(w) for w in weights]
        self.seed = int(seed)
        self.categories: list[str] = []
        for src in self.sources:
            self.categories += [c for c in src.categories if c not in self.categories]
        self._category_maps = [
            torch.tensor([self.categories.index(c) for c in src.categories], dtype=torch.int64)
            for src in self.sources
        ]
        self.counts = source_counts([len(s) for s in self.sources], self.weights)
        self.epoch = 0
        self._plan = self.plan(0)

    def plan(self, epoch: int) -> np.ndarray:
        """(len(self), 2) int64 rows (source, item index) of epoch ``epoch``, source by source."""
        rows = []
        for s, (src, count) in enumerate(zip(self.sources, self.counts)):
            n = len(src)
            if n == 0 or count == 0:
                continue
            repeats, rest = divmod(count, n)
            picked = [np.tile(np.arange(n), repeats)]
            if rest:
                rng = np.random.default_rng([self.seed, int(epoch), s, PLAN_STREAM])
                picked.append(np.sort(rng.choice(n, size=rest, replace=False)))
            idx = np.concatenate(picked)
            rows.append(np.stack([np.full_like(idx, s), idx], axis=1))
        return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 2), np.int64)

    def set_epoch(self, epoch: int) -> None:
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self._plan = self.plan(self.epoch)

    @property
    def num_shapes(self) -> int:
        return sum(s.num_shapes for s in self.sources)

    def __len__(self) -> int:
        return len(self._plan)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        s, i = (int(v) for v in self._plan[k])
        item = self.sources[s].load(i, (self.seed, self.epoch, int(k)))
        item["category"] = self._category_maps[s][item["category"]]
        item["source"] = torch.tensor(s, dtype=torch.int64)
        return item

    def describe(self, names: Sequence[str] | None = None) -> str:
        """One line: each source's name, items, weight and items per epoch."""
        names = names or [str(s.root) for s in self.sources]
        parts = [
            f"{name} ({len(src)} items x {w:g} -> {count})"
            for name, src, w, count in zip(names, self.sources, self.weights, self.counts)
        ]
        return f"training mix of {len(self)} items per epoch: " + " + ".join(parts)


def source_weights(cfg: DataConfig) -> tuple[float, ...]:
    """The weight of each source (``--data`` first, then ``cfg.extra_roots``); 1 each when unset."""
    n = 1 + len(cfg.extra_roots)
    weights = tuple(cfg.source_weights) or (1.0,) * n
    if len(weights) != n:
        raise InputError(f"data.source_weights: {weights!r} must list {n} weights (--data, then extra_roots)")
    return weights


def make_training_set(
    data_root: str | Path, cfg: DataConfig, seed: int = 0, **kwargs
) -> ShapeViewDataset | MixedDataset:
    """The train split of ``data_root``, or with ``cfg.extra_roots`` / ``cfg.source_weights`` the mix of
    every source's train split. One source at weight 1 is the plain dataset (exactly as before mixes
    existed). ``kwargs`` go to each :class:`ShapeViewDataset` (``with_images``, ``augment``, ...)."""
    weights = source_weights(cfg)
    roots = [Path(data_root), *(Path(r) for r in cfg.extra_roots)]
    sources = [ShapeViewDataset(root, "train", cfg, seed, **kwargs) for root in roots]
    if len(sources) == 1 and weights[0] == 1.0:
        return sources[0]
    return MixedDataset(sources, weights, seed)
