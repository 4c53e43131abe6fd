"""One config system: typed dataclasses, named presets (paper, cpu, tiny), dotted overrides.

A run folder always holds the resolved ``config.json``; :func:`load_config` rebuilds the dataclasses
from it with type checks (no pickle, no import paths in configs).

Every field's annotation is its contract: ``Literal[...]`` for a fixed set of strings, and
``Annotated[int | float, Rule(...)]`` for a range. :func:`check_config` enforces both, and it runs on
every way a config is made: presets (:func:`get_preset`), ``--set`` overrides (:func:`apply_overrides`),
JSON (:func:`config_from_dict`, :func:`load_config`) and the trainer's entry point. A violation is an
:class:`ifkd.io.InputError` of one line naming the field, the bad value and what the field accepts,
e.g. ``student.skip: 'nonsense' is not one of 'skip', 'cnn5', 'stn'``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from ifkd.geometry.camera import NOMINAL_DISTANCE_RATIO
from ifkd.io import InputError, atomic_write_text


@dataclass(frozen=True)
class Rule:
    """A range rule on a number (bounds, a divisor) or on a tuple's length."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    multiple_of: int | None = None
    length: int | None = None

    def violation(self, value: Any) -> str | None:
        """Why ``value`` breaks the rule (``"must be > 0"``), or None when it does not."""
        if self.length is not None:
            return None if len(value) == self.length else f"must list {self.length} values"
        low = None if self.gt is None and self.ge is None else ("(" if self.gt is not None else "[")
        high = None if self.lt is None and self.le is None else (")" if self.lt is not None else "]")
        lo = self.gt if self.gt is not None else self.ge
        hi = self.lt if self.lt is not None else self.le
        ok = (
            (self.gt is None or value > self.gt)
            and (self.ge is None or value >= self.ge)
            and (self.lt is None or value < self.lt)
            and (self.le is None or value <= self.le)
        )
        if not ok:
            if low is not None and high is not None:
                return f"must be in {low}{_num(lo)}, {_num(hi)}{high}"
            if low is not None:
                return f"must be {'>' if low == '(' else '>='} {_num(lo)}"
            return f"must be {'<' if high == ')' else '<='} {_num(hi)}"
        if self.multiple_of is not None and value % self.multiple_of:
            return f"must be a multiple of {self.multiple_of}"
        return None


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else str(x)


Positive = Rule(gt=0)
NonNegative = Rule(ge=0)
Fraction = Rule(ge=0, le=1)
"""in [0, 1]"""

PositiveInt = Annotated[int, Rule(ge=1)]
NonNegativeInt = Annotated[int, NonNegative]

MethodName = Literal[
    "teacher",
    "teacher-simple",
    "ifkd",
    "ifkd-nokd",
    "ifkd-simple-teacher",
    "ifkd-cnn5",
    "ifkd-stn",
    "ifkd-global",
    "global",
    "camera",
]
"""The names of :data:`ifkd.methods.METHODS` (a test keeps the two equal; config sits below methods in
the import order, so the registry cannot be read here)."""
PresetName = Literal["paper", "cpu", "tiny"]
TeacherKind = Literal["ifnet", "simple"]
SkipKind = Literal["skip", "cnn5", "stn"]
NormKind = Literal["batch", "group", "none"]
KdFeature = Literal["pixel", "point"]
LrSchedule = Literal["constant", "cosine"]


@dataclass(frozen=True)
class DataConfig:
    image_size: PositiveInt = 128
    """student input size in pixels (renders are resized to this)"""
    points_per_shape: PositiveInt = 2048
    """point-value pairs drawn per shape and step (OccNet: 2048)"""
    voxel_resolution: Annotated[int, Rule(ge=8, multiple_of=8)] = 32
    """teacher input voxel grid (paper 128; cpu 32); the teacher halves it 3 times"""
    uniform_fraction: Annotated[float, Fraction] = 0.0
    """share of each shape's training points drawn uniformly in [-0.55, 0.55]^3 and labelled from the
    128^3 voxels (OccNet trains on uniform points); 0 = the paper's IM-NET-style pairs only"""
    views_per_shape: PositiveInt | None = None
    """use at most this many views per shape (None: all on disk)"""
    background: Annotated[float, Fraction] = 1.0
    """grey level the RGBA renders are composited on (1.0 = white, as R2N2 users do)"""
    num_workers: NonNegativeInt = 0
    """DataLoader worker processes"""
    extra_roots: tuple[str, ...] = ()
    """more dataset folders (ifkd format) whose train splits are mixed into training, e.g. ``ifkd data
    real``'s beside the procedural ``--data``; categories are the union. Validation (and 'best') stays on
    ``--data``'s val split (see ``val_extra``)"""
    source_weights: tuple[Annotated[float, NonNegative], ...] = ()
    """sampling weight per source: ``--data`` first, then each of ``extra_roots`` (() = 1 each). An epoch
    draws round(w x n) items of a source of n items: all of them w times over for whole w, plus a fresh
    random subset (from the seed and the epoch) for the fraction"""
    val_extra: bool = False
    """also score each extra root's val split at epoch ends (logged as ``val_iou_extra1``, ...; 'best'
    still follows ``--data``'s val split)"""
    aug_background_white: Annotated[float, Fraction] = 0.0
    """training augmentation: probability of compositing the render on white"""
    aug_background_colour: Annotated[float, Fraction] = 0.0
    """probability of compositing on a random flat colour (uniform RGB); the rest of the time the
    render goes on ``background``, as at inference"""
    aug_brightness: Annotated[float, Rule(ge=0, le=0.5)] = 0.0
    """colour jitter: brightness factor uniform in [1 - x, 1 + x] (0: off)"""
    aug_contrast: Annotated[float, Rule(ge=0, le=0.5)] = 0.0
    """contrast factor uniform in [1 - x, 1 + x] (blend with the image's mean grey; 0: off)"""
    aug_saturation: Annotated[float, Rule(ge=0, le=0.5)] = 0.0
    """saturation factor uniform in [1 - x, 1 + x] (blend with each pixel's grey; 0: off)"""
    aug_scale: Annotated[float, Rule(ge=0, le=0.5)] = 0.0
    """framing jitter: the image is scaled by s uniform in [1 - a, 1 + a] about its centre; points
    then project to s u + d, which the methods that project apply (``item['framing']``)"""
    aug_shift: Annotated[float, Rule(ge=0, le=0.5)] = 0.0
    """framing jitter: the image is shifted by d uniform in [-b, b]^2, in normalised [-1, 1] units"""
    aug_frame: Annotated[float, Fraction] = 0.0
    """probability of showing a training render in the framing inference gives any picture
    (:func:`ifkd.framing.frame_image`, mode 'always': the object's box recentred and rescaled to the
    median training framing), the projection following the same affine (then the jitter above). A model
    trained with 1.0 has seen only such pictures, so inference frames every picture the same way for it
    (:attr:`ifkd.reconstruct.Reconstructor.framing_mode`)"""

    def cross_field_problem(self) -> tuple[str, str] | None:
        """A rule between fields, checked after each field's own: (field, why) or None."""
        if self.aug_background_white + self.aug_background_colour > 1 + 1e-9:
            total = self.aug_background_white + self.aug_background_colour
            return "aug_background_colour", f"plus aug_background_white is {total:g}; must be <= 1"
        sources = 1 + len(self.extra_roots)
        if self.source_weights and len(self.source_weights) != sources:
            return "source_weights", (
                f"must list {sources} weight{'s' * (sources > 1)} (--data, then each of extra_roots) "
                "or none (1 each)"
            )
        if self.source_weights and not sum(self.source_weights) > 0:
            return "source_weights", "must not all be 0"
        return None


@dataclass(frozen=True)
class TeacherConfig:
    kind: TeacherKind = "ifnet"
    """'ifnet' (5 scales, concatenated) or 'simple' (4-layer 3D CNN, last layer only)"""
    channels: Annotated[tuple[PositiveInt, ...], Rule(length=4)] = (16, 32, 64, 128)
    """widths of the 4 conv stages (the input grid is the 5th scale)"""
    decoder_hidden: PositiveInt = 256
    """hidden width of the teacher's MLP decoder"""


@dataclass(frozen=True)
class StudentConfig:
    base_channels: PositiveInt = 64
    """U-Net base width (paper 64); widths double per level"""
    depth: PositiveInt = 4
    """down/up levels (the original U-Net: 4)"""
    feature_channels: PositiveInt = 64
    """channels of the output feature map sampled at projected points (z1)"""
    skip: SkipKind = "skip"
    """skip-connection variant: 'skip' | 'cnn5' | 'stn'"""
    norm: NormKind = "batch"
    """normalisation in the U-Net's conv blocks: 'batch' | 'group' | 'none'"""
    decoder_hidden: PositiveInt = 256
    """hidden width of the 5-layer LeakyReLU decoder"""
    kd_feature: KdFeature = "pixel"
    """the student feature the KD head maps to the teacher's z2: 'pixel' (z1, the sampled U-Net feature,
    the same all along a camera ray) or 'point' (the decoder's first hidden layer, which also sees the
    point's position and so can follow z2 along the ray)"""
    global_code: bool = False
    """concatenate a pooled bottleneck code to z1 (the ifkd-global variant)"""
    latent_dim: PositiveInt = 256
    """global latent size for the 'global' and 'camera' baselines"""


@dataclass(frozen=True)
class TrainConfig:
    epochs_recon: NonNegativeInt = 50
    """E1: epochs with the reconstruction loss only"""
    epochs_kd: NonNegativeInt = 30
    """E2: epochs with reconstruction + lambda * KD"""
    kd_weight: Annotated[float, NonNegative] = 1.0
    """lambda in front of the L1 feature loss"""
    lr: Annotated[float, Positive] = 1e-3
    lr_schedule: LrSchedule = "constant"
    """'constant' (the paper) or 'cosine': lr decays from ``lr`` to ``lr * lr_final`` over the run's
    planned steps (all epochs x steps per epoch), so that a run of fixed length
    ends annealed instead of wherever Adam's noise left it"""
    lr_final: Annotated[float, Fraction] = 0.05
    """the cosine schedule's last learning rate, as a fraction of ``lr``"""
    batch_size: PositiveInt = 32
    seed: int = 0
    checkpoint_every: NonNegativeInt = 0
    """save 'last' every this many steps as well as at epoch ends (0: epoch ends only)"""
    val_shapes: NonNegativeInt = 32
    """validation shapes scored for IoU each epoch (0: skip)"""
    val_points: PositiveInt = 8192
    """uniform points per validation shape for the volumetric IoU that picks 'best' (OccNet's
    validation: points uniform in the padded box, labelled from the 128^3 voxels); the IoU at the
    near-surface training pairs is logged beside it as ``val_iou_surface``"""
    amp: bool = True
    """bf16 autocast + channels_last on CUDA (ignored on CPU)"""
    max_steps: NonNegativeInt = 0
    """stop after this many optimiser steps (0: no limit); for smoke runs and budgets"""
    patience: NonNegativeInt = 0
    """stop once validation IoU has not improved on its best for this many epochs (0: never; the
    `converged` budget). Counted from epoch E1 on when E2 > 0 (from the start when E2 = 0), for every
    method alike: each gets at least E1 + ``patience`` epochs -- a KD student its KD phase, a method
    without KD as many epochs -- and ``epochs_recon + epochs_kd`` stays the cap. Needs ``val_shapes`` > 0"""
    init_from: str = ""
    """fine-tuning: start from the weights of this run folder or ``pretrained:NAME`` (its 'best'
    checkpoint) instead of a random init; the optimiser and schedule start fresh. The run must be of the
    same method and model size (checked as it loads, naming the file). '' : random init"""

    def cross_field_problem(self) -> tuple[str, str] | None:
        """A rule between fields, checked after each field's own: (field, why) or None."""
        if self.patience and not self.val_shapes:
            return "patience", "needs validation (train.val_shapes > 0): it stops on validation IoU"
        return None


@dataclass(frozen=True)
class EvalConfig:
    resolution: Annotated[int, Rule(ge=8)] = 128
    """marching-cubes grid (corners per side - 1)"""
    threshold: Annotated[float, Rule(gt=0, lt=1)] = 0.5
    """occupancy probability of the surface"""
    coarse_resolution: PositiveInt = 32
    """first level of the coarse-to-fine extraction"""
    iou_points: PositiveInt = 100_000
    surface_points: PositiveInt = 100_000
    """OccNet uses 100k samples each for Chamfer-L1; the paper 4k (set 4096 for its protocol)"""
    edge_points: PositiveInt = 16_384
    distance_ratio: Annotated[float, Positive] = NOMINAL_DISTANCE_RATIO
    """camera distance ratio assumed at inference when the pose is unknown (R2N2 spans 0.65-0.9)"""
    points_per_chunk: PositiveInt = 65_536
    """decoder queries per forward pass during extraction (memory vs speed)"""


@dataclass(frozen=True)
class Config:
    method: MethodName = "ifkd"
    preset: PresetName = "cpu"
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
    # Single-view augmentations on (the paper trains without): a random flat background 1 time in 5 (the
    # rest on white, the inference background), small colour jitter, and framing jitter (scale +-10 %,
    # shift +-2.5 % of the width) that the projection follows, so that a photo framed a little unlike
    # R2N2's camera still lines up. The paper preset keeps every augmentation off.
    "cpu": Config(
        preset="cpu",
        data=DataConfig(
            image_size=64,
            points_per_shape=512,
            voxel_resolution=32,
            uniform_fraction=0.5,
            aug_background_colour=0.2,
            aug_brightness=0.1,
            aug_contrast=0.1,
            aug_saturation=0.1,
            aug_scale=0.1,
            aug_shift=0.05,
        ),
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
    """The named preset, checked like every other config."""
    try:
        cfg = PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose from {', '.join(map(repr, PRESETS))}") from None
    return check_config(cfg)


# ----------------------------------------------------------------------------------- checking
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _split(typ: Any) -> tuple[Any, list[Rule], bool]:
    """An annotation -> (bare type, its range rules, whether None is allowed)."""
    rules: list[Rule] = []
    nullable = False
    origin = typing.get_origin(typ)
    if origin is typing.Union or origin is types.UnionType:
        inner = [a for a in typing.get_args(typ) if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported config annotation {typ!r}")
        nullable, typ = True, inner[0]
    if typing.get_origin(typ) is Annotated:
        typ, *meta = typing.get_args(typ)
        rules = [m for m in meta if isinstance(m, Rule)]
    return typ, rules, nullable


def _or_null(text: str, nullable: bool) -> str:
    return f"{text} or null" if nullable else text


def check_value(value: Any, typ: Any, name: str) -> Any:
    """``value`` checked against the field annotation ``typ``; returns it normalised (a list becomes a
    tuple, a numpy integer an int). Raises :class:`InputError` ``"name: value <what is wrong>"``."""
    base, rules, nullable = _split(typ)
    if value is None and nullable:
        return None
    origin = typing.get_origin(base)
    if origin is Literal:
        choices = typing.get_args(base)
        if not (isinstance(value, str) and value in choices):
            raise InputError(f"{name}: {value!r} is not one of {', '.join(map(repr, choices))}")
    elif origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{name}: {value!r} is not {_or_null('a list', nullable)}")
        value = tuple(check_value(v, typing.get_args(base)[0], f"{name}[{i}]") for i, v in enumerate(value))
    elif base is bool:
        if not isinstance(value, bool):
            raise InputError(f"{name}: {value!r} is not {_or_null('a boolean (true or false)', nullable)}")
    elif base is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InputError(f"{name}: {value!r} is not {_or_null('an integer', nullable)}")
        value = int(value)
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InputError(f"{name}: {value!r} is not {_or_null('a number', nullable)}")
        value = int(value) if isinstance(value, numbers.Integral) else float(value)
        if not math.isfinite(value):
            raise InputError(f"{name}: {value!r} is not a finite number")
    elif base is str:
        if not isinstance(value, str):
            raise InputError(f"{name}: {value!r} is not {_or_null('a string', nullable)}")
    else:
        raise TypeError(f"{name}: unsupported config annotation {typ!r}")
    for rule in rules:
        why = rule.violation(value)
        if why:
            raise InputError(f"{name}: {value!r} {why}")
    return value


def check_config(cfg: Any) -> Any:
    """Check every field of a config (or of one section) against its annotation; returns the config
    normalised (lists -> tuples). Raises :class:`InputError` naming the first bad field."""
    return config_from_dict(config_to_dict(cfg), type(cfg))


def _dotted(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def config_from_dict(data: Any, cls: type = Config, where: str = "") -> Any:
    """Checked rebuild of a dataclass from JSON data. Missing keys take their defaults (runs saved
    before a field existed); unknown keys, wrong types and out-of-range values raise
    :class:`InputError` naming the dotted field (``where`` is the section's own dotted name)."""
    if not isinstance(data, dict):
        raise InputError(f"{where or 'config'}: {data!r} is not an object (a JSON {{...}} section)")
    hints = _hints(cls)
    known = [f.name for f in fields(cls)]
    unknown = [k for k in data if k not in known]
    if unknown:
        names = ", ".join(_dotted(where, str(k)) for k in unknown)
        raise InputError(f"{names}: unknown field{'s' * (len(unknown) > 1)} (known: {', '.join(known)})")
    kwargs = {}
    for name, value in data.items():
        typ = hints[name]
        if is_dataclass(typ):
            kwargs[name] = config_from_dict(value, typ, _dotted(where, name))
        else:
            kwargs[name] = check_value(value, typ, _dotted(where, name))
    out = cls(**kwargs)
    problem = out.cross_field_problem() if hasattr(out, "cross_field_problem") else None
    if problem:
        name, why = problem
        raise InputError(f"{_dotted(where, name)}: {getattr(out, name)!r} {why}")
    return out


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


# ----------------------------------------------------------------------------------- --set overrides
def _parse(text: str, typ: Any, name: str) -> Any:
    """A command-line string -> a value of the field's type (unchecked: :func:`check_value` follows)."""
    base, _, nullable = _split(typ)
    if nullable and text.lower() in ("none", "null"):
        return None
    if typing.get_origin(base) is tuple:
        parts = [p.strip() for p in text.strip("()[]").split(",") if p.strip()]
        return tuple(_parse(p, typing.get_args(base)[0], name) for p in parts)
    if base is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise InputError(f"{name}: {text!r} is not {_or_null('a boolean (true or false)', nullable)}")
    if base is int:
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{name}: {text!r} is not {_or_null('an integer', nullable)}") from None
    if base is float:
        try:
            return float(text)
        except ValueError:
            raise InputError(f"{name}: {text!r} is not {_or_null('a number', nullable)}") from None
    return text  # str and Literal fields: check_value checks the choice


def apply_overrides(cfg: Config, overrides: list[str] | None) -> Config:
    """Apply ``section.key=value`` strings (e.g. ``train.epochs_recon=5``) to a config; each value is
    checked like a loaded one (:class:`InputError` ``--set section.key: ...`` otherwise)."""
    for item in overrides or []:
        if "=" not in item:
            raise InputError(f"--set {item!r}: expected key=value, e.g. train.lr=3e-4")
        key, value = item.split("=", 1)
        try:
            cfg = _set_path(cfg, key.strip().split("."), value.strip(), key.strip())
        except InputError as exc:
            raise InputError(f"--set {exc}") from None
    return cfg


def _set_path(obj: Any, path: list[str], value: str, key: str) -> Any:
    names = [f.name for f in fields(obj)]
    if path[0] not in names:
        raise InputError(f"{key}: unknown field {path[0]!r} (known: {', '.join(names)})")
    current = getattr(obj, path[0])
    if len(path) == 1:
        if is_dataclass(current):
            raise InputError(f"{key}: {path[0]!r} is a section, name one of its fields")
        typ = _hints(type(obj))[path[0]]
        return replace(obj, **{path[0]: check_value(_parse(value, typ, key), typ, key)})
    if not is_dataclass(current):
        raise InputError(f"{key}: {path[0]!r} is not a section")
    return replace(obj, **{path[0]: _set_path(current, path[1:], value, key)})


# ----------------------------------------------------------------------------------- files
def save_config(cfg: Config, path: str | Path) -> None:
    atomic_write_text(Path(path), json.dumps(config_to_dict(cfg), indent=2) + "\n")


def load_config(path: str | Path) -> Config:
    """A run's ``config.json`` (or the file itself) -> the checked :class:`Config`. Every problem but a
    missing file (FileNotFoundError) is an :class:`InputError` starting with the file's path."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid JSON (not UTF-8 text)") from None
    try:
        return config_from_dict(data, Config)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
