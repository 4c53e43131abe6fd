"""The ``train()`` entry point: resolve the method, load and check a KD teacher, build the datasets
and the method, then hand over to :func:`ifkd.train.loop.fit` (as one process or one torchrun rank).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ifkd.config import Config, check_config
from ifkd.io import InputError
from ifkd.models.base import Method
from ifkd.train.checkpoint import load_init, load_model, teacher_identity
from ifkd.train.distributed import init_distributed, shutdown_distributed
from ifkd.train.loop import fit
from ifkd.train.schedule import needs_teacher


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python RNGs (identically on every rank, so initial weights agree)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _load_teacher(teacher_run: Path, cfg: Config, spec: Any, device: torch.device) -> Method:
    """The frozen teacher of a KD student, checked against the student's config."""
    teacher, tcfg = load_model(teacher_run, "best", device=device)
    if teacher.input_kind != "voxels" or not hasattr(teacher, "point_features"):
        raise InputError(f"{teacher_run}: run of method {tcfg.method!r}, not a voxel teacher")
    if spec.teacher_kind is not None and tcfg.teacher.kind != spec.teacher_kind:
        raise InputError(
            f"{teacher_run}: a {tcfg.teacher.kind!r} teacher; method {spec.name!r} "
            f"distils from a {spec.teacher_kind!r} one"
        )
    if tcfg.data.voxel_resolution != cfg.data.voxel_resolution:
        raise InputError(
            f"{teacher_run}: teacher trained on {tcfg.data.voxel_resolution}^3 voxels, this run "
            f"uses data.voxel_resolution={cfg.data.voxel_resolution}"
        )
    return teacher.eval().requires_grad_(False)


def validation_sets(
    data_root: str | Path, cfg: Config, fields: dict[str, bool]
) -> tuple[Dataset, dict[str, Dataset]]:
    """The val split of ``data_root`` (the first source of a training mix) twice: uniform points in the
    padded box (volumetric IoU, the metric the test protocol reports, which picks 'best') and the stored
    near-surface pairs (logged as 'surface'). With ``data.val_extra`` also each of ``data.extra_roots``'
    val splits at uniform points (logged as 'extra1', ...; they do not pick 'best'). No augmentation."""
    from ifkd.data.loader import make_dataset

    volume = replace(cfg.data, uniform_fraction=1.0, points_per_shape=cfg.train.val_points)
    surface = replace(cfg.data, uniform_fraction=0.0)  # the stored pairs alone, whatever training mixes in
    seed = cfg.train.seed
    main = make_dataset(data_root, "val", volume, seed=seed, **fields)
    extra = {"surface": make_dataset(data_root, "val", surface, seed=seed, **fields)}
    if cfg.data.val_extra:
        for k, root in enumerate(cfg.data.extra_roots, 1):
            extra[f"extra{k}"] = make_dataset(root, "val", volume, seed=seed, **fields)
    return main, extra


def train(
    cfg: Config,
    data_root: str | Path,
    out_dir: str | Path,
    *,
    teacher_run: str | Path | None = None,
    resume: bool = False,
    device: str = "auto",
    log_every: int = 20,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Train method ``cfg.method`` on the dataset at ``data_root`` into the run folder ``out_dir``.

    KD students need ``teacher_run`` (a finished teacher run folder; its 'best' weights, frozen).
    ``resume=True`` continues ``out_dir`` bit-for-bit from its last checkpoint. Under torchrun each
    process calls this; rank 0 alone writes. Returns the final metrics (``status``: 'completed' or
    'max_steps'). Raises :class:`NonFiniteLossError` (CLI exit 2) and :class:`TrainingInterrupted`.
    """
    from ifkd.data.loader import augmentations_on
    from ifkd.data.mix import MixedDataset, make_training_set
    from ifkd.methods import build_method, get_spec

    cfg = check_config(cfg)  # a bad value fails here, in one line, before the run folder is touched
    try:
        spec = get_spec(cfg.method)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    ctx = init_distributed(device)
    try:
        teacher, teacher_dim, teacher_id, notes = None, None, None, []
        if needs_teacher(cfg.train, spec):
            if teacher_run is None:
                raise InputError(
                    f"method {cfg.method!r} distils from a teacher: pass --teacher RUN (see `ifkd train "
                    "teacher`), or train.epochs_kd=0"
                )
            teacher = _load_teacher(Path(teacher_run), cfg, spec, ctx.device)
            teacher_dim = int(teacher.feature_dim)
            teacher_id = teacher_identity(teacher_run)
            notes.append(f"teacher: {teacher_run} (z2 dim {teacher_dim}, frozen)")
        elif teacher_run is not None:
            notes.append(f"note: method {cfg.method!r} uses no KD here; the teacher {teacher_run} is ignored")
        # Each method reads only what it needs: teachers no images, students without KD no voxels.
        reads_voxels = spec.input == "voxels"
        fields = {"with_images": not reads_voxels, "with_voxels": reads_voxels or teacher is not None}
        # The train split alone is augmented (data.aug_*); validation reads renders as inference does.
        train_set = make_training_set(data_root, cfg.data, seed=cfg.train.seed, augment=True, **fields)
        if isinstance(train_set, MixedDataset):
            names = [str(data_root), *cfg.data.extra_roots]
            notes.append(train_set.describe(names))
        if fields["with_images"] and augmentations_on(cfg.data):
            d = cfg.data
            notes.append(
                f"augmentations: background white {d.aug_background_white:g} / flat colour "
                f"{d.aug_background_colour:g}, jitter brightness {d.aug_brightness:g} contrast "
                f"{d.aug_contrast:g} saturation {d.aug_saturation:g}, framing scale +-{d.aug_scale:g} "
                f"shift +-{d.aug_shift:g}"
            )
        val_set, val_extra = None, {}
        if cfg.train.val_shapes > 0:
            val_set, val_extra = validation_sets(data_root, cfg, fields)
            if cfg.data.extra_roots:
                notes.append(
                    f"validation ('best') on {data_root}'s val split"
                    + "".join(f"; val_iou_{k} on {v.root}" for k, v in val_extra.items() if k != "surface")
                )
        seed_everything(cfg.train.seed)
        method = build_method(cfg.method, cfg, teacher_dim=teacher_dim)
        if cfg.train.init_from:  # fine-tuning; on --resume the run's own 'last' weights replace these
            notes.append(load_init(method, cfg))
        return fit(
            method,
            train_set,
            cfg,
            out_dir,
            spec=spec,
            val_set=val_set,
            val_extra=val_extra,
            teacher=teacher,
            teacher_dim=teacher_dim,
            resume=resume,
            ctx=ctx,
            log_every=log_every,
            progress=progress,
            notes=notes,
            teacher_id=teacher_id,
        )
    finally:
        shutdown_distributed(ctx)
