"""The one registry of trainable methods (paper, ablations, baselines): a name -> a frozen spec that says
its role (teacher / student / baseline), what it reads (image / voxels), which teacher kind it is or
distils from, and how to configure and build it. Trainer, CLI, benchmarks, reports and tests read the
roles from here instead of guessing them from names.

The KD loss itself is :meth:`ifkd.models.student.IFKDStudent.training_losses` (``kd_loss`` there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ifkd.config import Config
from ifkd.models.base import Method
from ifkd.models.baselines import CameraSVR, GlobalSVR
from ifkd.models.student import IFKDStudent
from ifkd.models.teacher import VoxelTeacher, teacher_feature_dim

Builder = Callable[[Config, "int | None"], Method]
Role = Literal["teacher", "student", "baseline"]
InputKind = Literal["image", "voxels"]


@dataclass(frozen=True)
class MethodSpec:
    """A named method: its role, its input, its teacher kind, config overrides on top of a preset, how
    to build it. Whether it uses KD and what it reads in training are derived from these."""

    name: str
    description: str
    role: Role
    """'teacher' (voxels in, trained first), 'student' (the IFKD family) or 'baseline'"""
    input: InputKind
    """what the network reads: 'image' (a render) or 'voxels' (the ground-truth grid, teachers)"""
    builder: Builder
    """(resolved config, teacher_dim or None) -> an untrained :class:`Method`"""
    student_overrides: Mapping[str, Any] = field(default_factory=dict)
    """StudentConfig fields this method fixes (read-only; the name decides the variant)"""
    teacher_overrides: Mapping[str, Any] = field(default_factory=dict)
    """TeacherConfig fields this method fixes besides ``kind`` (read-only)"""
    teacher_kind: str | None = None
    """'ifnet' | 'simple': for a student, the teacher it distils from (None: no KD); for a teacher, the
    kind it is"""

    @property
    def is_teacher(self) -> bool:
        return self.role == "teacher"

    @property
    def uses_kd(self) -> bool:
        """Trained with recon for E1 epochs then recon + lambda*KD for E2; False: recon for E1 + E2."""
        return not self.is_teacher and self.teacher_kind is not None

    @property
    def teacher_method(self) -> str | None:
        """The registered teacher method this one distils from (None without KD)."""
        return teacher_method(self.teacher_kind) if self.uses_kd else None


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
            "teacher",
            "IF-Net voxel teacher (z2: the input grid and its 4 stages sampled at the point, 5 scales; "
            "IF-Net's neighbourhood off)",
            "teacher",
            "voxels",
            _teacher,
            teacher_kind="ifnet",
        ),
        MethodSpec(
            "teacher-simple",
            "simple 4-layer 3D CNN teacher (last layer only)",
            "teacher",
            "voxels",
            _teacher,
            teacher_kind="simple",
        ),
        MethodSpec(
            "ifkd",
            "IFKD student: U-Net + M_c projection, distilled from IF-Net",
            "student",
            "image",
            _student,
            _PLAIN_UNET,
            teacher_kind="ifnet",
        ),
        MethodSpec(
            "ifkd-nokd",
            "IFKD student without distillation (recon only, same epochs)",
            "student",
            "image",
            _student_nokd,
            _PLAIN_UNET,
        ),
        MethodSpec(
            "ifkd-simple-teacher",
            "IFKD student distilled from the simple teacher",
            "student",
            "image",
            _student,
            _PLAIN_UNET,
            teacher_kind="simple",
        ),
        MethodSpec(
            "ifkd-cnn5",
            "IFKD with skip paths through a 5-layer CNN",
            "student",
            "image",
            _student,
            {**_PLAIN_UNET, "skip": "cnn5"},
            teacher_kind="ifnet",
        ),
        MethodSpec(
            "ifkd-stn",
            "IFKD with spatial transformers on the skip paths",
            "student",
            "image",
            _student,
            {**_PLAIN_UNET, "skip": "stn"},
            teacher_kind="ifnet",
        ),
        MethodSpec(
            "ifkd-global",
            "IFKD + a pooled global code concatenated to z1",
            "student",
            "image",
            _student,
            {**_PLAIN_UNET, "global_code": True},
            teacher_kind="ifnet",
        ),
        MethodSpec(
            "global", "IM-NET-style global-latent SVR baseline (object frame)", "baseline", "image", _global
        ),
        MethodSpec(
            "camera",
            "DISN-style baseline: estimated camera + local and global features",
            "baseline",
            "image",
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


def methods_with(role: Role) -> tuple[str, ...]:
    """The registered methods of one role, in registry order."""
    return tuple(n for n, s in METHODS.items() if s.role == role)


def teacher_method(kind: str) -> str:
    """The registered teacher method of a teacher kind: 'ifnet' -> 'teacher', 'simple' -> 'teacher-simple'."""
    for name, spec in METHODS.items():
        if spec.is_teacher and spec.teacher_kind == kind:
            return name
    raise ValueError(f"no teacher method of kind {kind!r}")


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
