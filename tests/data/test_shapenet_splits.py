"""Category names <-> synsets and split lists (OccNet .lst, R2N2 json, seeded random)."""

from __future__ import annotations

import json

import pytest

from ifkd.data.shapenet import splits
from ifkd.io import InputError


def test_thirteen_classes_both_ways():
    assert len(splits.SYNSETS) == 13
    assert splits.synset_of("chair") == "03001627" and splits.synset_of("03001627") == "03001627"
    assert splits.name_of("04530566") == "vessel" and splits.name_of("99999999") == "99999999"
    with pytest.raises(InputError, match="unknown category 'chairs'"):
        splits.synset_of("chairs")


def test_occnet_lists(tmp_path):
    (tmp_path / "train.lst").write_text("a\nb\n\n")
    (tmp_path / "test.lst").write_text("c\n")
    assert splits.read_occnet_splits(tmp_path) == {"train": ["a", "b"], "val": [], "test": ["c"]}
    assert splits.read_occnet_splits(tmp_path / "missing") is None
    (tmp_path / "val.lst").write_text("../evil\n")
    with pytest.raises(InputError, match="val.lst: model id '../evil'"):
        splits.read_occnet_splits(tmp_path)


def test_json_splits(tmp_path):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"03001627": {"name": "chair", "train": ["a"], "test": ["b"]}}))
    assert splits.read_json_splits(path) == {"03001627": {"train": ["a"], "val": [], "test": ["b"]}}
    path.write_text(json.dumps({"03001627": {"train": "a"}}))
    with pytest.raises(InputError, match="03001627.train must be a list"):
        splits.read_json_splits(path)


def test_random_split_is_seeded_partition():
    ids = [f"m{i:03d}" for i in range(50)]
    a, b = splits.random_split(ids, 3), splits.random_split(list(reversed(ids)), 3)
    assert a == b and a != splits.random_split(ids, 4)
    assert [len(a[s]) for s in splits.SPLIT_NAMES] == [35, 5, 10]
    assert sorted(sum(a.values(), [])) == ids


def test_split_of_rejects_duplicates():
    with pytest.raises(InputError, match="both 'train' and 'test'"):
        splits.split_of({"train": ["a"], "test": ["a"]})
