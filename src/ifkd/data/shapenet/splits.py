"""The 13 ShapeNet classes of R2N2/OccNet (names <-> synset ids) and split lists (OccNet .lst, R2N2 json).

The importer uses these to name categories in our index and to keep the peers' train/val/test split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ifkd.data.categories import NAMES, SPLIT_FRACTIONS, SYNSETS
from ifkd.io import InputError

SPLIT_NAMES = ("train", "val", "test")


def synset_of(category: str) -> str:
    """A category name ('chair') or synset id ('03001627') -> synset id; InputError when unknown."""
    if category in SYNSETS:
        return SYNSETS[category]
    if category in NAMES:
        return category
    raise InputError(f"unknown category {category!r}; use one of {sorted(SYNSETS)} or their synset ids")


def name_of(synset: str) -> str:
    """Synset id -> our category name; synsets outside the 13 keep their id as the name."""
    return NAMES.get(synset, synset)


def read_list(path: str | Path) -> list[str]:
    """One model id per line (OccNet's ``train.lst``); blank lines ignored; ids must be plain names."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: unreadable split list ({exc})") from None
    ids = [ln.strip() for ln in lines if ln.strip()]
    for mid in ids:
        if "/" in mid or "\\" in mid or mid in (".", ".."):
            raise InputError(f"{path}: model id {mid!r} is not a plain folder name")
    return ids


def read_occnet_splits(synset_dir: str | Path) -> dict[str, list[str]] | None:
    """OccNet layout: ``<synset>/{train,val,test}.lst``. None when the folder has no list at all."""
    synset_dir = Path(synset_dir)
    found = {s: synset_dir / f"{s}.lst" for s in SPLIT_NAMES if (synset_dir / f"{s}.lst").is_file()}
    if not found:
        return None
    return {s: read_list(found[s]) if s in found else [] for s in SPLIT_NAMES}


def read_json_splits(path: str | Path) -> dict[str, dict[str, list[str]]]:
    """R2N2-style json: ``{synset: {"train": [ids], "val": [ids], "test": [ids], ...}}`` -> same, checked.

    3D-R2N2 ships its split this way (extra keys such as "name" or "id" are ignored).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: unreadable split json ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object mapping synset ids to splits")
    out: dict[str, dict[str, list[str]]] = {}
    for syn, entry in data.items():
        if not isinstance(entry, dict):
            raise InputError(f"{path}: entry {syn!r} must be an object with train/val/test lists")
        out[syn] = {}
        for split in SPLIT_NAMES:
            ids = entry.get(split, [])
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise InputError(f"{path}: {syn}.{split} must be a list of model ids")
            out[syn][split] = ids
    return out


def random_split(
    ids: list[str], seed: int | list[int], fractions: tuple[float, float, float] = SPLIT_FRACTIONS
) -> dict[str, list[str]]:
    """Seeded per-class split of sorted ids (OccNet-style 70/10/20); each part sorted."""
    ids = sorted(ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    n_train = int(round(fractions[0] * len(ids)))
    n_val = int(round(fractions[1] * len(ids)))
    parts = (order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])
    return {s: sorted(ids[i] for i in part) for s, part in zip(SPLIT_NAMES, parts)}


def split_of(splits: dict[str, list[str]]) -> dict[str, str]:
    """Invert {split: [ids]} -> {id: split}; an id listed twice is an InputError."""
    out: dict[str, str] = {}
    for split, ids in splits.items():
        for mid in ids:
            if mid in out and out[mid] != split:
                raise InputError(f"model {mid!r} is listed in both {out[mid]!r} and {split!r}")
            out[mid] = split
    return out
