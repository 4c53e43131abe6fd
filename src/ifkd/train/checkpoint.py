"""Run folders and checkpoints: safetensors weights, pickle-free optimizer state, JSON train state.

Written by the trainer (rank 0 only); read back by ``--resume``, and by the reconstructor and evaluator
through :func:`load_model`. Layout of a run folder::

    config.json                      resolved Config, written before step 1
    metrics.jsonl                    one JSON object per finished epoch
    log.txt                          the trainer's log lines
    checkpoints/last.safetensors     model weights; metadata["state"] = the train state (authoritative)
    checkpoints/last.json            the same train state, for people and tools (jq)
    checkpoints/last-optim-<step>.safetensors   Adam tensors (param-group/scalar parts in the state)
    checkpoints/best.safetensors     weights of the best validation IoU (+ best.json)
    teacher.json                     a KD student's teacher: its run folder and the sha256 of its weights

Every file is written to a temp name and renamed. The optimizer file is named by its global step and
written *before* the weights file that points to it, and stale ones are removed only afterwards, so a
kill at any moment leaves a weights file whose optimizer file exists: 'last' is always consistent.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn
from tqdm import tqdm

from ifkd.config import Config, config_to_dict, load_config
from ifkd.io import InputError, atomic_path, atomic_write_json, atomic_write_text, remove_stale_temps
from ifkd.train.state import capture_rng as capture_rng  # re-exported: moved to train.state
from ifkd.train.state import optimizer_from_flat, optimizer_to_flat
from ifkd.train.state import restore_rng as restore_rng  # re-exported: moved to train.state

FORMAT = "ifkd/1"
"""``metadata['format']`` of every weights file the trainer writes."""

RESUMABLE_KEYS = ("train.max_steps", "train.patience", "train.checkpoint_every", "data.num_workers", "eval.")
"""Config keys that may change on ``--resume`` (they do not change the training arithmetic, only where a
run stops or how it is checkpointed)."""


class CheckpointError(InputError):
    """A checkpoint that cannot be read or does not fit the model; the message names the file."""


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def log(self) -> Path:
        return self.root / "log.txt"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def weights(self, which: str) -> Path:
        return self.checkpoints / f"{which}.safetensors"

    def best_weights(self) -> Path:
        """The weights a finished run serves: 'best', else 'last' for runs trained without validation
        (``train.val_shapes=0``). The path may not exist; callers say so, naming it."""
        best = self.weights("best")
        return best if best.exists() or not self.weights("last").exists() else self.weights("last")

    def sidecar(self, which: str) -> Path:
        return self.checkpoints / f"{which}.json"

    @property
    def teacher(self) -> Path:
        return self.root / "teacher.json"


@dataclass
class TrainState:
    """Everything besides weights and Adam tensors that an exact resume needs (plain JSON types only)."""

    method: str
    config_hash: str
    epoch: int = 0
    """epoch in progress (or next to start when ``step_in_epoch == 0``)"""
    step_in_epoch: int = 0
    """batches of ``epoch`` already trained (they are skipped on resume)"""
    global_step: int = 0
    world_size: int = 1
    best_val_iou: float | None = None
    epochs_since_best: int = 0
    """validated epochs since ``best_val_iou`` last improved (``train.patience`` reads it)"""
    teacher_dim: int | None = None
    epoch_sums: dict[str, float] = field(default_factory=dict)
    """sums of the loss parts over the batches done in ``epoch`` (so resumed epoch means are exact)"""
    epoch_seconds: float = 0.0
    rng: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)
    """param groups + non-tensor Adam state; tensors live in ``optimizer_file``"""
    optimizer_file: str = ""

    def to_json(self) -> dict[str, Any]:
        """A shallow dict (``dataclasses.asdict`` would deep-copy the long RNG lists on every save)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Any, where: str) -> TrainState:
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not {"method", "config_hash"} <= set(data) or set(data) - known:
            raise CheckpointError(f"{where}: not an ifkd train state (expected the keys {sorted(known)})")
        return cls(**data)


# ----------------------------------------------------------------------------------- config identity
def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: list(obj) if isinstance(obj, tuple) else obj}


def _identity(cfg: Config) -> dict[str, Any]:
    flat = _flat(config_to_dict(cfg))
    return {k: v for k, v in flat.items() if not any(k == r or k.startswith(r) for r in RESUMABLE_KEYS)}


def config_hash(cfg: Config, keys: Collection[str] | None = None) -> str:
    """sha256 (16 hex digits) of the config minus :data:`RESUMABLE_KEYS`: what a resume must keep.

    ``keys`` limits the hash to those dotted keys: the ones a run's ``config.json`` was written with
    (:func:`saved_config_keys`), so that a run saved before a config field existed still matches a
    config that leaves the new field at its default (:func:`config_changes` checks the values).
    """
    ident = _identity(cfg)
    if keys is not None:
        ident = {k: v for k, v in ident.items() if k in keys}
    text = json.dumps(ident, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def saved_config_keys(path: Path) -> set[str] | None:
    """The dotted keys of a run's ``config.json`` as written (None when it is missing or unreadable)."""
    try:
        return set(_flat(json.loads(Path(path).read_text())))
    except (OSError, ValueError):
        return None


def config_changes(old: Config, new: Config) -> list[str]:
    """Dotted keys outside :data:`RESUMABLE_KEYS` whose values differ, as ``key: old -> new``."""
    a, b = _identity(old), _identity(new)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


# ----------------------------------------------------------------------------------- weights
def _plain_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, no two entries sharing storage (safetensors refuses shared tensors)."""
    out, seen = {}, set()
    for key, value in tensors.items():
        t = value.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel() > 0:
            t = t.clone()
        seen.add(ptr)
        out[key] = t
    return out


def save_file(
    tensors: dict[str, torch.Tensor], filename: str, metadata: dict[str, str] | None = None
) -> None:
    """``safetensors.torch.save_file``, but serialised in memory and written by Python.

    safetensors' own writer reports a full disk as a SafetensorError; Python's raises
    ``OSError(ENOSPC)``, which the CLI turns into one line naming the file.
    """
    Path(filename).write_bytes(save(tensors, metadata=metadata))


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Atomically write ``tensors`` + string ``metadata`` as a safetensors file."""
    with atomic_path(path) as tmp:
        save_file(_plain_tensors(tensors), str(tmp), metadata=metadata)


def _unreadable(path: Path, exc: Exception) -> CheckpointError:
    return CheckpointError(
        f"{path}: not a readable safetensors file ({exc}); it may be truncated or another format "
        "(ifkd never unpickles torch.save files)"
    )


def read_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file (reads the header only)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise _unreadable(path, exc) from None


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, on CPU; one-line :class:`CheckpointError` when unreadable."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise _unreadable(path, exc) from None


def load_weights(module: nn.Module, path: Path) -> dict[str, str]:
    """Load a weights file into ``module`` (strict); returns its metadata. A key or shape mismatch --
    a checkpoint of another architecture or config -- is a :class:`CheckpointError` naming the file."""
    meta = read_metadata(path)
    tensors = load_tensors(path)
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    shapes = [
        f"{k} {tuple(tensors[k].shape)} in file vs {tuple(own[k].shape)} in model"
        for k in sorted(set(own) & set(tensors))
        if tensors[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = [
            f"missing {missing[:4]}" if missing else "",
            f"unexpected {unexpected[:4]}" if unexpected else "",
        ]
        parts += [f"shape {s}" for s in shapes[:3]]
        what = "; ".join(p for p in parts if p)
        raise CheckpointError(f"{path}: weights do not fit this model (wrong method or config?): {what}")
    module.load_state_dict(tensors, strict=True)
    return meta


# ----------------------------------------------------------------------------------- checkpoints
def _weights_metadata(state: TrainState, extra: dict[str, Any]) -> dict[str, str]:
    return {
        "format": FORMAT,
        "method": state.method,
        "teacher_dim": "" if state.teacher_dim is None else str(state.teacher_dim),
        "config_hash": state.config_hash,
        "state": json.dumps(extra),
    }


def save_last(run: RunDir, module: nn.Module, optimizer: torch.optim.Optimizer, state: TrainState) -> None:
    """Write 'last': optimizer tensors first, then the weights (the commit), then the sidecar."""
    tensors, state.optimizer = optimizer_to_flat(optimizer)
    state.optimizer_file = f"last-optim-{state.global_step:09d}.safetensors"
    save_tensors(run.checkpoints / state.optimizer_file, tensors, {"format": FORMAT})
    record = state.to_json()
    save_tensors(run.weights("last"), module.state_dict(), _weights_metadata(state, record))
    atomic_write_json(run.sidecar("last"), record)
    for stale in run.checkpoints.glob("last-optim-*.safetensors"):
        if stale.name != state.optimizer_file:
            stale.unlink(missing_ok=True)
    # Temp files of writes killed mid-way (SIGKILL, power loss): rank 0 is the run's only writer,
    # and between two saves none of its own temp files exist.
    for stale in run.checkpoints.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    remove_stale_temps(run.config)
    remove_stale_temps(run.metrics)


def save_best(run: RunDir, module: nn.Module, state: TrainState, val_iou: float, epoch: int) -> None:
    """Write 'best' (weights only) for ``epoch`` (0-based), which just reached ``val_iou``."""
    record = {
        "method": state.method,
        "epoch": epoch,
        "global_step": state.global_step,
        "val_iou": val_iou,
        "teacher_dim": state.teacher_dim,
        "config_hash": state.config_hash,
    }
    save_tensors(run.weights("best"), module.state_dict(), _weights_metadata(state, record))
    atomic_write_json(run.sidecar("best"), record)


def read_last_state(run: RunDir) -> TrainState:
    """The train state stored inside ``checkpoints/last.safetensors`` (authoritative over last.json)."""
    path = run.weights("last")
    meta = read_metadata(path)
    if meta.get("format") != FORMAT or "state" not in meta:
        raise CheckpointError(
            f"{path}: not an ifkd training checkpoint (metadata format {meta.get('format')!r})"
        )
    try:
        data = json.loads(meta["state"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: damaged train state in metadata ({exc.msg})") from None
    return TrainState.from_json(data, str(path))


def load_last(run: RunDir, module: nn.Module, optimizer: torch.optim.Optimizer) -> TrainState:
    """Load 'last' into ``module`` and ``optimizer``; returns its :class:`TrainState` (RNG not restored)."""
    state = read_last_state(run)
    load_weights(module, run.weights("last"))
    optim_path = run.checkpoints / state.optimizer_file
    try:
        optimizer_from_flat(optimizer, load_tensors(optim_path), state.optimizer)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{optim_path}: optimizer state does not fit this model ({exc})") from None
    return state


def load_model(
    run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu"
) -> tuple[nn.Module, Config]:
    """Rebuild a run's method from its config.json and load its weights -> ``(method in eval mode, Config)``.

    ``which='best'`` falls back to 'last' for runs trained without validation (``train.val_shapes=0``).
    Building the method does not disturb the caller's global RNG.
    """
    from ifkd.methods import build_method  # the methods registry sits above train in the import order

    run = RunDir(Path(run_dir))
    if which not in ("best", "last"):
        raise ValueError(f"which={which!r}: choose 'best' or 'last'")
    if not run.root.is_dir():
        raise InputError(f"{run.root}: run folder not found")
    try:
        cfg = load_config(run.config)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise InputError(f"{run.root}: cannot read the run's config ({exc})") from None
    path = run.best_weights() if which == "best" else run.weights(which)
    if not path.exists():
        raise CheckpointError(f"{path}: no {which!r} checkpoint in this run folder (has training saved one?)")
    meta = read_metadata(path)
    teacher_dim = int(meta["teacher_dim"]) if meta.get("teacher_dim") else None
    with torch.random.fork_rng(devices=[]):
        method = build_method(cfg.method, cfg, teacher_dim=teacher_dim)
    load_weights(method, path)
    bad = [
        name
        for name, t in method.state_dict().items()
        if t.is_floating_point() and not torch.isfinite(t).all()
    ]
    if bad:  # said here, once, naming the file: not later, per image, as a fault of the input
        raise CheckpointError(
            f"{path}: {len(bad)} weight tensors hold NaN/Inf (first: {bad[0]}): the training diverged or the "
            "file was damaged; use another checkpoint"
        )
    return method.to(device).eval(), cfg


def load_init(module: nn.Module, cfg: Config) -> str:
    """Fine-tuning: load ``cfg.train.init_from``'s best weights (or 'last' for runs without validation)
    into the freshly built ``module``; returns a log line naming the file. Another method than
    ``cfg.method`` or weights of another size are an error naming the run, never a partial load."""
    from ifkd.pretrained import resolve_run  # resolves 'pretrained:NAME' as every other command does

    run = RunDir(resolve_run(cfg.train.init_from))
    try:
        init_cfg = load_config(run.config)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise InputError(f"{run.root}: train.init_from: cannot read the run's config ({exc})") from None
    if init_cfg.method != cfg.method:
        raise InputError(
            f"{run.root}: train.init_from holds a {init_cfg.method!r} run; this run trains {cfg.method!r}"
        )
    path = run.best_weights()
    if not path.exists():
        raise CheckpointError(
            f"{run.root}: train.init_from: no 'best' or 'last' checkpoint in this run folder"
        )
    try:
        meta = load_weights(module, path)
    except CheckpointError as exc:  # say where the sizes to match are written
        raise CheckpointError(f"{exc} (train.init_from: match its settings in {run.config})") from None
    state = json.loads(meta.get("state") or "{}")
    at = f" (epoch {state['epoch'] + 1}, step {state['global_step']})" if "global_step" in state else ""
    return f"init: the weights of {path}{at}"


# ----------------------------------------------------------------------------------- metrics and log
class RunLog:
    """Log lines: always appended to log.txt (rank 0), echoed to stderr unless progress bars own it."""

    def __init__(self, path: Path | None, echo: bool) -> None:
        self.path, self.echo = path, echo

    def __call__(self, message: str, *, always: bool = False) -> None:
        if self.path is None:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        if self.echo or always:
            tqdm.write(message, file=sys.stderr)


def read_metrics(run: RunDir) -> list[dict[str, Any]]:
    """The records of metrics.jsonl (empty when the file does not exist yet)."""
    if not run.metrics.is_file():
        return []
    lines = run.metrics.read_text().splitlines()
    try:
        return [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as exc:
        raise InputError(f"{run.metrics}: damaged metrics line ({exc.msg})") from None


def write_metrics(run: RunDir, records: list[dict[str, Any]]) -> None:
    """Rewrite metrics.jsonl atomically (a few hundred lines at most: cheaper than being clever)."""
    atomic_write_text(run.metrics, "".join(json.dumps(r) + "\n" for r in records))


def teacher_identity(teacher_run: str | Path) -> dict[str, str]:
    """Which weights a KD student distils from: the teacher's run folder and the sha256 of the weights
    it serves ('best', else 'last'; a teacher trained further, or replaced, has another digest)."""
    path = RunDir(Path(teacher_run)).best_weights()
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the teacher's weights ({exc.strerror})") from None
    return {"run": str(Path(teacher_run).resolve()), "weights_sha256": digest.hexdigest()}


def recorded_teacher(run: RunDir) -> dict[str, str] | None:
    """The teacher identity a KD run recorded when it started (None: no KD, or a run from before it
    was recorded)."""
    if not run.teacher.is_file():
        return None
    try:
        rec = json.loads(run.teacher.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{run.teacher}: unreadable teacher record ({exc})") from None
    if not isinstance(rec, dict) or "weights_sha256" not in rec:
        raise InputError(f"{run.teacher}: not a teacher record (no weights_sha256)")
    return rec


def teacher_changed(run: RunDir, identity: dict[str, str]) -> str | None:
    """Why ``run`` may not go on with the teacher ``identity`` (its recorded teacher had other weights),
    or None when it may."""
    old = recorded_teacher(run)
    if old is None or old["weights_sha256"] == identity["weights_sha256"]:
        return None
    return (
        f"{run.teacher}: this run distilled from {old.get('run', '?')} (weights sha256 "
        f"{old['weights_sha256'][:12]}), the teacher given now, {identity['run']}, has other weights "
        f"({identity['weights_sha256'][:12]}): start a new run folder"
    )
