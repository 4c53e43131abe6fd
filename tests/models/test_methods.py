"""The method registry: names, config overrides, KD flags, and one training step of every method under
the tiny and cpu presets with finite losses and gradients wherever a gradient should reach."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
import torch

from ifkd.config import PRESETS, MethodName
from ifkd.geometry.camera import Viewpoint, view_transform
from ifkd.methods import METHODS, build_method, get_spec, method_config, methods_with, teacher_method
from ifkd.models.teacher import VoxelTeacher

NAMES = list(get_args(MethodName))  # the config's Literal; a test below keeps it equal to the registry


pytestmark = pytest.mark.usefixtures("one_thread")


def random_batch(cfg, B: int = 2, N: int = 64) -> dict[str, torch.Tensor]:
    S, R = cfg.data.image_size, cfg.data.voxel_resolution
    views = [Viewpoint(azimuth=50.0 * i + 10, elevation=25.0, distance_ratio=0.8) for i in range(B)]
    return {
        "image": torch.rand(B, 3, S, S),
        "points": torch.rand(B, N, 3) * 1.1 - 0.55,
        "occ": (torch.rand(B, N) > 0.5).float(),
        "E": torch.as_tensor(np.stack([view_transform(v) for v in views]), dtype=torch.float32),
        "voxels": (torch.rand(B, 1, R, R, R) > 0.7).float(),
        "category": torch.zeros(B, dtype=torch.long),
    }


def test_registry_names():
    assert list(METHODS) == NAMES
    assert all(spec.name == name for name, spec in METHODS.items())
    assert {n for n, s in METHODS.items() if s.uses_kd} == {
        "ifkd",
        "ifkd-simple-teacher",
        "ifkd-cnn5",
        "ifkd-stn",
        "ifkd-global",
    }


def test_registry_roles():
    assert methods_with("teacher") == ("teacher", "teacher-simple")
    assert methods_with("baseline") == ("global", "camera")
    assert all((s.input == "voxels") == s.is_teacher for s in METHODS.values())
    assert teacher_method("ifnet") == "teacher" and teacher_method("simple") == "teacher-simple"
    assert get_spec("ifkd-simple-teacher").teacher_method == "teacher-simple"
    assert get_spec("ifkd-nokd").teacher_method is None and get_spec("teacher").teacher_method is None


def test_unknown_method_lists_valid_names():
    with pytest.raises(ValueError, match="ifkd-nokd") as err:
        build_method("occnet", PRESETS["tiny"])
    assert "occnet" in str(err.value)


def test_method_config_overrides():
    cfg = PRESETS["tiny"]
    assert method_config("ifkd-cnn5", cfg).student.skip == "cnn5"
    assert method_config("ifkd-stn", cfg).student.skip == "stn"
    assert method_config("ifkd-global", cfg).student.global_code is True
    assert method_config("ifkd-simple-teacher", cfg).teacher.kind == "simple"
    assert method_config("teacher-simple", cfg).teacher.kind == "simple"
    resolved = method_config("ifkd-cnn5", cfg)
    assert resolved.method == "ifkd-cnn5" and resolved.preset == "tiny"
    assert method_config("ifkd-cnn5", resolved) == resolved  # idempotent
    # The name decides the variant, whatever an earlier method left in the config.
    back = method_config("ifkd", method_config("ifkd-global", resolved))
    assert back.student.skip == "skip" and back.student.global_code is False and back.method == "ifkd"


def test_method_frames_and_inputs():
    cfg = PRESETS["tiny"]
    for name in NAMES:
        m = build_method(name, cfg)
        assert m.frame == ("view" if name.startswith("ifkd") else "object")
        assert m.input_kind == get_spec(name).input
        assert m.uses_teacher == get_spec(name).uses_kd


@pytest.mark.parametrize("kind", ["teacher", "teacher-simple"])
def test_kd_head_matches_teacher_dim(kind):
    cfg = PRESETS["tiny"]
    student_name = "ifkd" if kind == "teacher" else "ifkd-simple-teacher"
    teacher = build_method(kind, method_config(student_name, cfg))
    student = build_method(student_name, cfg)
    assert student.kd_head.out_features == teacher.feature_dim
    assert build_method("ifkd", cfg, teacher_dim=17).kd_head.out_features == 17


def _expected_without_grad(name: str) -> tuple[str, ...]:
    # The STN's last layer starts at zero weight (identity), so no gradient reaches its localisation
    # net on the first step; everything else must receive one.
    return (".localisation.",) if name == "ifkd-stn" else ()


@pytest.mark.parametrize("preset", ["tiny", "cpu"])
@pytest.mark.parametrize("name", NAMES)
def test_training_step(name, preset):
    torch.manual_seed(0)
    cfg = PRESETS[preset]
    spec = get_spec(name)
    method = build_method(name, cfg)
    teacher = None
    if spec.uses_kd:
        teacher = VoxelTeacher(method_config(name, cfg).teacher).eval()
    batch = random_batch(cfg)
    out = method.training_losses(batch, kd_active=spec.uses_kd, teacher=teacher)
    assert {"loss", "recon"} <= set(out)
    assert ("kd" in out) == spec.uses_kd
    assert ("cam" in out) == (name == "camera")
    assert all(torch.isfinite(v) and v.dim() == 0 for v in out.values())
    out["loss"].backward()
    skip = _expected_without_grad(name)
    no_grad = [
        n
        for n, p in method.named_parameters()
        if not any(s in n for s in skip) and (p.grad is None or not torch.any(p.grad != 0))
    ]
    assert not no_grad, f"{name}: no gradient in {no_grad}"
    method.eval()
    with torch.no_grad():
        prob = method.predict(batch)
    assert prob.shape == batch["occ"].shape and bool(((prob >= 0) & (prob <= 1)).all())


def test_nokd_student_trains_without_teacher():
    method = build_method("ifkd-nokd", PRESETS["tiny"])
    assert method.kd_head is None and not method.uses_teacher
    out = method.training_losses(random_batch(PRESETS["tiny"]))
    assert set(out) == {"loss", "recon"}


def test_paper_preset_constructs_and_runs_forward():
    cfg = PRESETS["paper"]
    for name in NAMES:
        assert sum(p.numel() for p in build_method(name, cfg).parameters()) > 0
    student = build_method("ifkd", cfg).eval()
    batch = random_batch(cfg, B=1, N=128)
    with torch.no_grad():
        code = student.encode(batch["image"])
        assert code.features.shape == (1, 64, 128, 128)
        assert student.decode(code, batch["points"]).shape == (1, 128)


@pytest.mark.slow
def test_paper_teacher_forward():
    cfg = PRESETS["paper"]
    teacher = build_method("teacher", cfg).eval()
    batch = random_batch(cfg, B=1, N=128)
    with torch.no_grad():
        assert teacher.predict(batch).shape == (1, 128)
