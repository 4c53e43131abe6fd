"""The one registry of trainable methods (paper, ablations, baselines): a name -> a frozen spec that says
how to configure and build it and whether it distils from a teacher. Trainer, CLI and tests iterate it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ifkd.config import Config
from ifkd.models.base import Method
from ifkd.models.baselines import CameraSVR, GlobalSVR
from ifkd.models.student import IFKDStudent
from ifkd.models.teacher import VoxelTeacher, teacher_feature_dim

Builder = Callable[[Config, "int | None"], Method]


@dataclass(frozen=True)
class MethodSpec:
    """A named method: config overrides on top of a preset, whether it uses KD, how to build it."""

    name: str
    description: str
    builder: Builder
    """(resolved config, teacher_dim or None) -> an untrained :class:`Method`"""
    student_overrides: Mapping[str, Any] = field(default_factory=dict)
    """StudentConfig fields this method fixes (read-only; the name decides the variant)"""
    teacher_overrides: Mapping[str, Any] = field(default_factory=dict)
    """TeacherConfig fields this method fixes besides ``kind`` (read-only)"""
    uses_kd: bool = False
    """trained with recon for E1 epochs then recon + lambda*KD for E2; False: recon for E1 + E2"""
    teacher_kind: str | None = None
    """'ifnet' | 'simple': the teacher distilled from (or, for teacher methods, the one trained)"""


def _teacher(cfg: Config, teacher_dim: int | None) -> Method:
    return VoxelTeacher(cfg.teacher)


def _student(cfg: Config, teacher_dim: int | None) -> Method:
    # The KD head is sized from the teacher config unless the caller knows the loaded teacher's size.
    dim = teacher_dim if teacher_dim is not None else teacher_feature_dim(cfg.teacher)
    return IFKDStudent(cfg.student, teacher_dim=dim, kd_weight=cfg.train.kd_weight)


def _student_nokd(cfg: Config, teacher_dim: int | None) -> Method:
    return IFKDStudent(cfg.student, teacher_dim=None)


def _global(cfg: Config, teacher_dim: int | None) -> Method:
    return GlobalSVR(cfg.student)


def _camera(cfg: Config, teacher_dim: int | None) -> Method:
    return CameraSVR(cfg.student)


_PLAIN_UNET = {"skip": "skip", "global_code": False}


def _specs() -> dict[str, MethodSpec]:
    specs = [
        MethodSpec(
            "teacher", "IF-Net voxel teacher (5 scales + neighbourhood)", _teacher, teacher_kind="ifnet"
        ),
        MethodSpec(
            "teacher-simple",
            "simple 4-layer 3D CNN teacher (last layer only)",
            _teacher,
            teacher_kind="simple",
        ),
        MethodSpec(
            "ifkd",
            "IFKD student: U-Net + M_c projection, distilled from IF-Net",
            _student,
            _PLAIN_UNET,
            uses_kd=True,
            teacher_kind="ifnet",
        ),
        MethodSpec(
            "ifkd-nokd",
            "IFKD student without distillation (recon only, same epochs)",
            _student_nokd,
            _PLAIN_UNET,
        ),
        MethodSpec(
            "ifkd-simple-teacher",
            "IFKD student distilled from the simple teacher",
            _student,
            _PLAIN_UNET,
            uses_kd=True,
            teacher_kind="simple",
        ),
        MethodSpec(
            "ifkd-cnn5",
            "IFKD with skip paths through a 5-layer CNN",
            _student,
            {**_PLAIN_UNET, "skip": "cnn5"},
            uses_kd=True,
            teacher_kind="ifnet",
        ),
        MethodSpec(
            "ifkd-stn",
            "IFKD with spatial transformers on the skip paths",
            _student,
            {**_PLAIN_UNET, "skip": "stn"},
            uses_kd=True,
            teacher_kind="ifnet",
        ),
        MethodSpec(
            "ifkd-global",
            "IFKD + a pooled global code concatenated to z1",
            _student,
            {**_PLAIN_UNET, "global_code": True},
            uses_kd=True,
            teacher_kind="ifnet",
        ),
        MethodSpec("global", "IM-NET-style global-latent SVR baseline (object frame)", _global),
        MethodSpec(
            "camera",
            "DISN-style baseline: estimated camera + local and global features",
            _camera,
            _PLAIN_UNET,
        ),
    ]
    return {s.name: s for s in specs}


METHODS: dict[str, MethodSpec] = _specs()


def get_spec(name: str) -> MethodSpec:
    """The spec of ``name``; ValueError listing the valid names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {list(METHODS)}") from None


def method_config(name: str, cfg: Config) -> Config:
    """``cfg`` with the method's overrides applied and ``cfg.method = name`` (idempotent)."""
    spec = get_spec(name)
    teacher_fields = dict(spec.teacher_overrides)
    if spec.teacher_kind is not None:
        teacher_fields["kind"] = spec.teacher_kind
    return replace(
        cfg,
        method=name,
        student=replace(cfg.student, **spec.student_overrides),
        teacher=replace(cfg.teacher, **teacher_fields),
    )


def build_method(name: str, cfg: Config, teacher_dim: int | None = None) -> Method:
    """An untrained network for ``name`` under ``cfg`` (overrides applied here too).

    ``teacher_dim``: size of the loaded teacher's z2, for KD students (default: from ``cfg.teacher``).
    """
    spec = get_spec(name)
    return spec.builder(method_config(name, cfg), teacher_dim)
