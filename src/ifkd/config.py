"""One config system: typed dataclasses, named presets (paper, cpu, tiny), dotted overrides.

A run folder always holds the resolved ``config.json``; :func:`load_config` rebuilds the dataclasses
from it with type checks (no pickle, no import paths in configs).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DataConfig:
    image_size: int = 128
    """student input size in pixels (renders are resized to this)"""
    points_per_shape: int = 2048
    """point-value pairs drawn per shape and step (OccNet: 2048)"""
    voxel_resolution: int = 32
    """teacher input voxel grid (paper 128; cpu 32)"""
    uniform_fraction: float = 0.0
    """share of each shape's training points drawn uniformly in [-0.55, 0.55]^3 and labelled from the
    128^3 voxels (OccNet trains on uniform points); 0 = the paper's IM-NET-style pairs only"""
    views_per_shape: int | None = None
    """use at most this many views per shape (None: all on disk)"""
    background: float = 1.0
    """grey level the RGBA renders are composited on (1.0 = white, as R2N2 users do)"""
    num_workers: int = 0
    """DataLoader worker processes"""


@dataclass(frozen=True)
class TeacherConfig:
    kind: str = "ifnet"
    """'ifnet' (5 scales, concatenated) or 'simple' (4-layer 3D CNN, last layer only)"""
    channels: tuple[int, ...] = (16, 32, 64, 128)
    """widths of the 4 conv stages (the input grid is the 5th scale)"""
    decoder_hidden: int = 256
    """hidden width of the teacher's MLP decoder"""


@dataclass(frozen=True)
class StudentConfig:
    base_channels: int = 64
    """U-Net base width (paper 64); widths double per level"""
    depth: int = 4
    """down/up levels (the original U-Net: 4)"""
    feature_channels: int = 64
    """channels of the output feature map sampled at projected points (z1)"""
    skip: str = "skip"
    """skip-connection variant: 'skip' | 'cnn5' | 'stn'"""
    norm: str = "batch"
    """normalisation in the U-Net's conv blocks: 'batch' | 'group' | 'none'"""
    decoder_hidden: int = 256
    """hidden width of the 5-layer LeakyReLU decoder"""
    kd_feature: str = "pixel"
    """the student feature the KD head maps to the teacher's z2: 'pixel' (z1, the sampled U-Net feature,
    the same all along a camera ray) or 'point' (the decoder's first hidden layer, which also sees the
    point's position and so can follow z2 along the ray)"""
    global_code: bool = False
    """concatenate a pooled bottleneck code to z1 (the ifkd-global variant)"""
    latent_dim: int = 256
    """global latent size for the 'global' and 'camera' baselines"""


@dataclass(frozen=True)
class TrainConfig:
    epochs_recon: int = 50
    """E1: epochs with the reconstruction loss only"""
    epochs_kd: int = 30
    """E2: epochs with reconstruction + lambda * KD"""
    kd_weight: float = 1.0
    """lambda in front of the L1 feature loss"""
    lr: float = 1e-3
    lr_schedule: str = "constant"
    """'constant' (the paper) or 'cosine': lr decays from ``lr`` to ``lr * lr_final`` over the run's
    planned steps (all epochs x steps per epoch), so that a run of fixed length
    ends annealed instead of wherever Adam's noise left it"""
    lr_final: float = 0.05
    """the cosine schedule's last learning rate, as a fraction of ``lr``"""
    batch_size: int = 32
    seed: int = 0
    checkpoint_every: int = 0
    """save 'last' every this many steps as well as at epoch ends (0: epoch ends only)"""
    val_shapes: int = 32
    """validation shapes scored for IoU each epoch (0: skip)"""
    val_points: int = 8192
    """uniform points per validation shape for the volumetric IoU that picks 'best' (OccNet's
    validation: points uniform in the padded box, labelled from the 128^3 voxels); the IoU at the
    near-surface training pairs is logged beside it as ``val_iou_surface``"""
    amp: bool = True
    """bf16 autocast + channels_last on CUDA (ignored on CPU)"""
    max_steps: int = 0
    """stop after this many optimiser steps (0: no limit); for smoke runs and budgets"""


@dataclass(frozen=True)
class EvalConfig:
    resolution: int = 128
    """marching-cubes grid (corners per side - 1)"""
    threshold: float = 0.5
    coarse_resolution: int = 32
    """first level of the coarse-to-fine extraction"""
    iou_points: int = 100_000
    surface_points: int = 100_000
    """OccNet uses 100k samples each for Chamfer-L1; the paper 4k (set 4096 for its protocol)"""
    edge_points: int = 16_384
    distance_ratio: float = 0.775
    """camera distance ratio assumed at inference when the pose is unknown (R2N2 spans 0.65-0.9)"""
    points_per_chunk: int = 65_536
    """decoder queries per forward pass during extraction (memory vs speed)"""


@dataclass(frozen=True)
class Config:
    method: str = "ifkd"
    preset: str = "cpu"
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


PRESETS: dict[str, Config] = {
    "paper": Config(
        preset="paper",
        data=DataConfig(image_size=128, points_per_shape=2048, voxel_resolution=128),
        teacher=TeacherConfig(channels=(16, 32, 64, 128), decoder_hidden=256),
        student=StudentConfig(base_channels=64, feature_channels=64, decoder_hidden=256),
        train=TrainConfig(epochs_recon=50, epochs_kd=30, batch_size=64),
        eval=EvalConfig(resolution=128),
    ),
    # Sized for 2 CPU cores (benchmarks/results/cpu_curve.md): a base-8 U-Net trains 3x faster per
    # step than base 16 at equal loss per step; 512 points per item; half of them uniform in the box
    # (OccNet's sampling) so that free space far from the surface is learnt; a cosine schedule so that
    # a run of fixed length ends annealed (validation IoU swings by +-0.07 between epochs at lr 1e-3).
    "cpu": Config(
        preset="cpu",
        data=DataConfig(image_size=64, points_per_shape=512, voxel_resolution=32, uniform_fraction=0.5),
        teacher=TeacherConfig(channels=(8, 16, 32, 64), decoder_hidden=128),
        student=StudentConfig(base_channels=8, feature_channels=32, decoder_hidden=128, latent_dim=128),
        train=TrainConfig(epochs_recon=30, epochs_kd=15, batch_size=32, val_shapes=32, lr_schedule="cosine"),
        eval=EvalConfig(resolution=64, coarse_resolution=32),  # 16^3 cells lose thin parts
    ),
    "tiny": Config(
        preset="tiny",
        data=DataConfig(image_size=32, points_per_shape=256, voxel_resolution=32),
        teacher=TeacherConfig(channels=(4, 8, 8, 16), decoder_hidden=32),
        student=StudentConfig(base_channels=4, depth=3, feature_channels=8, decoder_hidden=32, latent_dim=32),
        train=TrainConfig(epochs_recon=2, epochs_kd=1, batch_size=8, val_shapes=4),
        eval=EvalConfig(
            resolution=32, coarse_resolution=8, iou_points=20_000, surface_points=4096, edge_points=4096
        ),
    ),
}


def get_preset(name: str) -> Config:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None


def _coerce(value: str, typ: Any, key: str) -> Any:
    """Parse a command-line string into the declared field type."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin is typing.Union or origin is types.UnionType:
        if value.lower() in ("none", "null"):
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is tuple:
        parts = [p for p in value.strip("()[]").split(",") if p.strip()]
        return tuple(_coerce(p.strip(), args[0], key) for p in parts)
    if typ is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--set {key}: expected a boolean, got {value!r}")
    try:
        return typ(value)
    except (TypeError, ValueError):
        raise ValueError(f"--set {key}: cannot read {value!r} as {getattr(typ, '__name__', typ)}") from None


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def apply_overrides(cfg: Config, overrides: list[str] | None) -> Config:
    """Apply ``section.key=value`` strings (e.g. ``train.epochs_recon=5``) to a config."""
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected key=value, e.g. train.lr=3e-4")
        key, value = item.split("=", 1)
        path = key.strip().split(".")
        cfg = _set_path(cfg, path, value.strip(), key)
    return cfg


def _set_path(obj: Any, path: list[str], value: str, key: str) -> Any:
    names = {f.name for f in fields(obj)}
    if path[0] not in names:
        raise ValueError(f"--set {key}: unknown field {path[0]!r} (known: {sorted(names)})")
    current = getattr(obj, path[0])
    if len(path) == 1:
        if is_dataclass(current):
            raise ValueError(f"--set {key}: {path[0]!r} is a section, name one of its fields")
        return replace(obj, **{path[0]: _coerce(value, _hints(type(obj))[path[0]], key)})
    if not is_dataclass(current):
        raise ValueError(f"--set {key}: {path[0]!r} is not a section")
    return replace(obj, **{path[0]: _set_path(current, path[1:], value, key)})


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_from_dict(data: dict[str, Any], cls: type = Config, where: str = "config") -> Any:
    """Typed rebuild of a dataclass from JSON data; unknown keys are an error naming them."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    hints = _hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        typ = hints[name]
        if is_dataclass(typ):
            kwargs[name] = config_from_dict(value, typ, f"{where}.{name}")
        elif typing.get_origin(typ) is tuple:
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def save_config(cfg: Config, path: str | Path) -> None:
    from ifkd.io import atomic_write_text

    atomic_write_text(Path(path), json.dumps(config_to_dict(cfg), indent=2) + "\n")


def load_config(path: str | Path) -> Config:
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return config_from_dict(data, Config, str(path))
