"""The one config system: every field checked (type, choice, range) on presets, on ``--set`` and on a run
folder's config.json; a bad value is one line naming the field, and nothing is written before the check."""

from __future__ import annotations

import contextlib
import io
import json
import typing
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ifkd.cli import main
from ifkd.config import (
    PRESETS,
    Config,
    KdFeature,
    LrSchedule,
    MethodName,
    NormKind,
    SkipKind,
    TeacherKind,
    apply_overrides,
    check_config,
    config_from_dict,
    config_to_dict,
    get_preset,
    load_config,
    save_config,
)
from ifkd.geometry.camera import CAM_MAX_DIST, NOMINAL_DISTANCE_RATIO
from ifkd.io import InputError
from ifkd.methods import METHODS, method_config


def run_cli(argv: list) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, err.getvalue()


def assert_one_line(rc: int, err: str, *parts: str) -> str:
    """Exit 2 and exactly one stderr line, ``ifkd: error: ...``, containing every one of ``parts``."""
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ifkd: error: "), err
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


# ----------------------------------------------------------------------------------- --set through the CLI
BAD_SETS = {
    "student.skip=nonsense": "student.skip: 'nonsense' is not one of 'skip', 'cnn5', 'stn'",
    "student.norm=layer": "student.norm: 'layer' is not one of 'batch', 'group', 'none'",
    "student.kd_feature=voxel": "student.kd_feature: 'voxel' is not one of 'pixel', 'point'",
    "teacher.kind=pointnet": "teacher.kind: 'pointnet' is not one of 'ifnet', 'simple'",
    "train.lr_schedule=linear": "train.lr_schedule: 'linear' is not one of 'constant', 'cosine'",
    "method=nerf": "method: 'nerf' is not one of 'teacher'",
    "train.lr=abc": "train.lr: 'abc' is not a number",
    "train.lr=-1": "train.lr: -1.0 must be > 0",
    "train.lr=nan": "train.lr: nan is not a finite number",
    "student.depth=-3": "student.depth: -3 must be >= 1",
    "student.base_channels=four": "student.base_channels: 'four' is not an integer",
    "data.uniform_fraction=1.5": "data.uniform_fraction: 1.5 must be in [0, 1]",
    "data.voxel_resolution=36": "data.voxel_resolution: 36 must be a multiple of 8",
    "eval.threshold=1": "eval.threshold: 1.0 must be in (0, 1)",
    "teacher.channels=(8,16,32)": "teacher.channels: (8, 16, 32) must list 4 values",
    "train.amp=maybe": "train.amp: 'maybe' is not a boolean (true or false)",
    "data.aug_scale=0.7": "data.aug_scale: 0.7 must be in [0, 0.5]",
    "data.aug_shift=-0.1": "data.aug_shift: -0.1 must be in [0, 0.5]",
    "data.aug_brightness=1": "data.aug_brightness: 1.0 must be in [0, 0.5]",
    "data.aug_background_colour=1.5": "data.aug_background_colour: 1.5 must be in [0, 1]",
    "data.source_weights=(1,-1)": "data.source_weights[1]: -1.0 must be >= 0",
    "data.val_extra=maybe": "data.val_extra: 'maybe' is not a boolean (true or false)",
}


@pytest.mark.parametrize("override", sorted(BAD_SETS))
def test_bad_set_is_one_line_and_writes_nothing(override, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "student", "--method", "ifkd-nokd", "--preset", "tiny", "--data", tmp_path / "no-data"]
    rc, err = run_cli([*argv, "--out", out, "--device", "cpu", "--set", override])
    assert_one_line(rc, err, f"--set {BAD_SETS[override]}")
    assert not out.exists()  # no folder, no config.json: the same --out works once the value is fixed


def test_bad_set_fails_before_the_teacher_and_data_are_read(tmp_path):
    """The KD student: the config is checked before --teacher and --data are looked at."""
    out = tmp_path / "run"
    argv = ["train", "student", "--teacher", tmp_path / "no-teacher", "--data", tmp_path / "no-data"]
    rc, err = run_cli([*argv, "--out", out, "--set", "student.skip=nonsense", "--set", "train.lr=1e-3"])
    assert_one_line(rc, err, "student.skip: 'nonsense' is not one of")
    assert not out.exists()
    rc, err = run_cli(["train", "teacher", "--data", tmp_path, "--out", out, "--set", "train.lr=-1"])
    assert_one_line(rc, err, "--set train.lr: -1.0 must be > 0")
    assert not out.exists()


def test_library_train_checks_the_config_before_touching_the_folder(tmp_path):
    from ifkd.train.run import train

    cfg = method_config("ifkd-nokd", get_preset("tiny"))
    bad = replace(cfg, student=replace(cfg.student, depth=-3))
    with pytest.raises(InputError, match=r"^student\.depth: -3 must be >= 1$"):
        train(bad, tmp_path / "no-data", tmp_path / "run", device="cpu", progress=False)
    assert not (tmp_path / "run").exists()


CROSS_FIELD = {
    "weights_without_roots": (
        ["data.source_weights=1,2"],
        "data.source_weights: (1.0, 2.0) must list 1 weight (--data, then each of extra_roots) or none",
    ),
    "too_few_weights": (
        ["data.extra_roots=/a,/b", "data.source_weights=1,2"],
        "data.source_weights: (1.0, 2.0) must list 3 weights",
    ),
    "all_zero": (
        ["data.extra_roots=/a", "data.source_weights=0,0"],
        "data.source_weights: (0.0, 0.0) must not",
    ),
    "backgrounds_over_one": (
        ["data.aug_background_white=0.6", "data.aug_background_colour=0.6"],
        "data.aug_background_colour: 0.6 plus aug_background_white is 1.2; must be <= 1",
    ),
}


@pytest.mark.parametrize("case", sorted(CROSS_FIELD))
def test_rules_between_data_fields_are_one_line_whatever_the_order(case, tmp_path):
    sets, message = CROSS_FIELD[case]
    out = tmp_path / "run"
    for order in (sets, sets[::-1]):  # each --set is checked alone; the rule once all are applied
        argv = ["train", "student", "--method", "ifkd-nokd", "--preset", "tiny", "--data", tmp_path / "none"]
        rc, err = run_cli([*argv, "--out", out, *[a for s in order for a in ("--set", s)]])
        assert_one_line(rc, err, message)
        assert not out.exists()
    with pytest.raises(InputError, match="^data\\."):
        check_config(apply_overrides(get_preset("tiny"), sets))


def test_augmentation_presets_and_the_training_mix_fields(tmp_path):
    paper, cpu, tiny = (get_preset(n).data for n in ("paper", "cpu", "tiny"))
    aug = [f for f in config_to_dict(paper) if f.startswith("aug_")]
    assert len(aug) == 8
    assert all(getattr(paper, f) == 0 for f in aug) and all(getattr(tiny, f) == 0 for f in aug)
    assert all(getattr(Config().data, f) == 0 for f in aug)  # a run saved before they existed: off
    assert (cpu.aug_background_white, cpu.aug_background_colour) == (0.0, 0.2)
    assert (cpu.aug_brightness, cpu.aug_contrast, cpu.aug_saturation) == (0.1, 0.1, 0.1)
    assert (cpu.aug_scale, cpu.aug_shift, cpu.aug_frame) == (0.1, 0.05, 0.0)
    for d in (paper, cpu, tiny):
        assert (d.extra_roots, d.source_weights, d.val_extra) == ((), (), False)
    sets = ["data.extra_roots=/data/real", "data.source_weights=1,0.5", "data.val_extra=true"]
    cfg = check_config(apply_overrides(get_preset("cpu"), sets))
    assert cfg.data.extra_roots == ("/data/real",) and cfg.data.source_weights == (1.0, 0.5)
    save_config(cfg, tmp_path / "config.json")
    assert load_config(tmp_path) == cfg
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["data"]["extra_roots"] == ["/data/real"] and data["data"]["source_weights"] == [1.0, 0.5]


def test_data_extra_is_saved_absolute_after_the_sets(tmp_path, monkeypatch):
    from ifkd.commands.train import build_config

    monkeypatch.chdir(tmp_path)
    cfg = build_config(
        "ifkd-nokd", "cpu", ["data.extra_roots=/a", "data.source_weights=1,1,0.5"], None, [Path("r")]
    )
    assert cfg.data.extra_roots == ("/a", str(tmp_path / "r"))
    with pytest.raises(InputError, match="must list 2 weights"):
        build_config("ifkd-nokd", "cpu", ["data.source_weights=1,1,0.5"], None, [Path("r")])


# ----------------------------------------------------------------------------------- a run's config.json
def _run_folder(tmp_path: Path, section: str, key: str, value) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    save_config(method_config("ifkd-nokd", get_preset("tiny")), run / "config.json")
    data = json.loads((run / "config.json").read_text())
    (data[section] if section else data)[key] = value
    (run / "config.json").write_text(json.dumps(data, indent=2))
    return run


BAD_FILES = {
    "unknown_method": ("", "method", "nerf", "method: 'nerf' is not one of"),
    "wrong_type": ("student", "base_channels", "four", "student.base_channels: 'four' is not an integer"),
    "out_of_range": ("student", "depth", -3, "student.depth: -3 must be >= 1"),
    "bad_choice": ("student", "skip", "nonsense", "student.skip: 'nonsense' is not one of"),
    "unknown_field": ("train", "lr_warmup", 5, "train.lr_warmup: unknown field"),
}


@pytest.mark.parametrize("verb", ["reconstruct", "evaluate"])
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_run_config_is_one_line_naming_the_file(case, verb, tmp_path):
    section, key, value, message = BAD_FILES[case]
    run = _run_folder(tmp_path, section, key, value)
    image = tmp_path / "view.png"
    Image.fromarray(np.full((32, 32, 4), 255, np.uint8)).save(image)
    given = [image] if verb == "reconstruct" else ["--data", tmp_path]
    rc, err = run_cli([verb, *given, "--model", run, "--out", tmp_path / "o", "--device", "cpu"])
    line = assert_one_line(rc, err, str(run / "config.json"), message)
    assert "Traceback" not in err, line


def test_resume_with_a_bad_run_config_is_one_line(tmp_path):
    run = _run_folder(tmp_path, "train", "lr", -1)
    argv = ["train", "student", "--method", "ifkd-nokd", "--data", tmp_path, "--out", run, "--resume"]
    rc, err = run_cli(argv)
    line = assert_one_line(rc, err, "train.lr: -1 must be > 0")
    assert line.startswith(f"ifkd: error: {run / 'config.json'}: "), line


def test_load_config_message_starts_with_the_path(tmp_path):
    run = _run_folder(tmp_path, "data", "uniform_fraction", 2)
    with pytest.raises(InputError) as info:
        load_config(run)
    assert str(info.value) == f"{run / 'config.json'}: data.uniform_fraction: 2 must be in [0, 1]"


# ----------------------------------------------------------------------------------- presets, round trips
@pytest.mark.parametrize("name", ["paper", "cpu", "tiny"])
def test_presets_and_every_method_on_them_are_valid(name):
    assert set(PRESETS) == {"paper", "cpu", "tiny"}
    assert check_config(PRESETS[name]) == PRESETS[name] == get_preset(name)
    for method in METHODS:
        cfg = method_config(method, get_preset(name))
        assert check_config(cfg) == cfg


@pytest.mark.parametrize("name", ["paper", "cpu", "tiny"])
def test_round_trip_config_json_config_is_identity(name, tmp_path):
    sets = ["data.views_per_shape=2", "teacher.channels=(4,8,8,16)", "train.kd_weight=0.25", "train.amp=0"]
    for cfg in (get_preset(name), apply_overrides(method_config("ifkd-stn", get_preset(name)), sets)):
        assert config_from_dict(json.loads(json.dumps(config_to_dict(cfg)))) == cfg
        save_config(cfg, tmp_path / "config.json")
        assert load_config(tmp_path) == cfg


def test_overrides_parse_and_keep_valid_values():
    sets = ["data.views_per_shape=none", "student.norm=group", "train.lr=3e-4"]
    cfg = apply_overrides(get_preset("tiny"), sets)
    assert cfg.data.views_per_shape is None and cfg.student.norm == "group" and cfg.train.lr == 3e-4
    assert apply_overrides(cfg, ["data.views_per_shape=3"]).data.views_per_shape == 3
    assert apply_overrides(cfg, ["train.kd_weight=0"]).train.kd_weight == 0.0  # >= 0 allows 0


def test_unknown_preset_is_an_input_error():
    with pytest.raises(InputError, match="unknown preset 'huge'; choose from 'paper', 'cpu', 'tiny'"):
        get_preset("huge")


def test_choices_match_what_the_code_builds():
    """The Literal choices are the names the registry and the modules accept, no more and no fewer."""
    from ifkd.models.student import KD_FEATURES
    from ifkd.models.teacher import TEACHER_KINDS
    from ifkd.models.unet import NORMS, SKIP_VARIANTS
    from ifkd.train.schedule import LR_SCHEDULES

    assert typing.get_args(MethodName) == tuple(METHODS)
    assert typing.get_args(SkipKind) == SKIP_VARIANTS
    assert typing.get_args(NormKind) == NORMS
    assert typing.get_args(KdFeature) == KD_FEATURES
    assert typing.get_args(LrSchedule) == LR_SCHEDULES
    assert typing.get_args(TeacherKind) == tuple(TEACHER_KINDS)


def test_one_nominal_camera_distance():
    from ifkd.models.student import NOMINAL_DISTANCE

    assert NOMINAL_DISTANCE_RATIO == 0.775
    assert Config().eval.distance_ratio == NOMINAL_DISTANCE_RATIO
    assert all(p.eval.distance_ratio == NOMINAL_DISTANCE_RATIO for p in PRESETS.values())
    assert NOMINAL_DISTANCE == NOMINAL_DISTANCE_RATIO * CAM_MAX_DIST
