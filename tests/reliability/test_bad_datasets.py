"""Damaged datasets through `ifkd data info [--check]`, `train` and `evaluate`: one clear line each."""

from __future__ import annotations

import re
import shutil

import pytest
from corpus import (
    BAD_DATASETS,
    STUDENT,
    TINY_TRAIN,
    assert_one_line_error,
    damaged_copy,
    first_key,
    run_cli,
)

from ifkd.io import InputError

REFUSED_BY = {
    "missing_index": ("info", "student", "evaluate"),
    "truncated_shape": ("check", "student", "evaluate"),
    "nan_points": ("check", "student", "evaluate"),
    "inf_surface_points": ("check", "evaluate"),  # training never reads the surface samples
    "wrong_voxel_shape": ("check", "teacher", "evaluate"),  # only teachers read voxels
    "metadata_columns": ("check", "student", "evaluate"),
    "escaping_key": ("info", "student", "evaluate"),
}
"""case -> the commands that read the damaged part (and so must refuse it)."""

CASES = [(case, cmd) for case, cmds in REFUSED_BY.items() for cmd in cmds]


def _command(cmd: str, root, out, model) -> list:
    train = ["--data", root, "--out", out, *TINY_TRAIN, "--set", "train.max_steps=1"]
    return {
        "info": ["data", "info", root],
        "check": ["data", "info", "--check", root],
        "student": [*STUDENT, *train],
        "teacher": ["train", "teacher", *train],
        "evaluate": ["evaluate", "--model", model, "--data", root, "--out", out, "--device", "cpu"],
    }[cmd]


def test_every_case_is_covered():
    assert set(REFUSED_BY) == set(BAD_DATASETS)


@pytest.mark.parametrize("case,cmd", CASES, ids=[f"{c}-{m}" for c, m in CASES])
def test_damaged_dataset_is_refused_with_one_line(case, cmd, small_dataset, tiny_run, tmp_path):
    split = "test" if cmd == "evaluate" else "train"
    root = tmp_path / "data"
    bad_file = damaged_copy(small_dataset, root, case, split)
    res = run_cli(_command(cmd, root, tmp_path / "out", tiny_run))
    pattern = BAD_DATASETS[case][1]
    if cmd == "check":  # a batch: the summary lists the bad shape, exit 2
        assert res.rc == 2 and "Traceback" not in res.err
        bad = res.err.split("1 problems:\n", 1)[1].strip()
        assert bad.startswith(str(bad_file)) and re.search(pattern, bad), res.err
        assert "checked 6 shapes: 1 problems" in res.out
    else:
        assert_one_line_error(res, bad_file, pattern)


def test_evaluate_scores_the_other_shapes_and_lists_the_damaged_one(small_dataset, tiny_run, tmp_path):
    """A damaged test shape does not cost the run: the others are scored and written, exit status 2."""
    import json

    root = tmp_path / "data"
    bad_file = damaged_copy(small_dataset, root, "truncated_shape", "test")
    n_test = len(json.loads((root / "index.json").read_text())["splits"]["test"])
    res = run_cli(_command("evaluate", root, tmp_path / "out", tiny_run))
    assert_one_line_error(res, bad_file, "1 shape\\(s\\) skipped")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary["skipped"]) == 1 and str(bad_file) in summary["skipped"][0]
    assert summary["n"] == n_test - 1 and n_test > 1
    assert "skipped" in (tmp_path / "out" / "table.md").read_text()


def test_info_check_lists_every_bad_shape_and_passes_a_good_dataset(small_dataset, tmp_path):
    res = run_cli(["data", "info", "--check", small_dataset])
    assert res.rc == 0 and "checked 6 shapes: no problems" in res.out, res.err
    root = tmp_path / "data"
    one = damaged_copy(small_dataset, root, "truncated_shape", "train")
    two = BAD_DATASETS["metadata_columns"][0](root, "test")
    res = run_cli(["data", "info", "--check", root])
    assert res.rc == 2 and "checked 6 shapes: 2 problems" in res.out
    listed = res.err.split("2 problems:\n", 1)[1].splitlines()
    assert sorted(ln.strip().split(":")[0] for ln in listed) == sorted([str(one), str(two)])


def test_shape_folder_linked_outside_the_dataset_is_refused(small_dataset, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(small_dataset, root)
    key = first_key(root)
    outside = tmp_path / "elsewhere"
    shutil.move(root / key, outside)
    (root / key).symlink_to(outside, target_is_directory=True)
    res = run_cli(["data", "info", root])
    assert_one_line_error(res, root / "index.json", f"'{key}' points outside the dataset")


def test_worker_traceback_is_reduced_to_the_original_message():
    from torch._utils import ExceptionWrapper  # what DataLoader workers send back to the main process

    from ifkd.cli import one_line

    try:
        raise InputError("/data/chair/0001/shape.npz: 'points' has 1 rows with NaN/Inf")
    except InputError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(InputError) as info:
        wrapped.reraise()
    assert "Traceback" in str(info.value)  # the raw message carries the worker's traceback
    assert one_line(info.value) == "/data/chair/0001/shape.npz: 'points' has 1 rows with NaN/Inf"


@pytest.mark.slow  # DataLoader takes ~5 s to shut down an errored worker
def test_error_in_a_dataloader_worker_is_still_one_line(small_dataset, tmp_path):
    root = tmp_path / "data"
    bad_file = damaged_copy(small_dataset, root, "nan_points", "train")
    argv = [*STUDENT, "--data", root, "--out", tmp_path / "run", *TINY_TRAIN]
    res = run_cli([*argv, "--set", "data.num_workers=1", "--set", "train.max_steps=1"])
    line = assert_one_line_error(res, bad_file, BAD_DATASETS["nan_points"][1])
    assert "worker" not in line and "Original" not in line


def test_debug_raises_instead(tmp_path):
    with pytest.raises(InputError, match="dataset folder not found"):
        run_cli(["--debug", "data", "info", tmp_path / "nope"])
