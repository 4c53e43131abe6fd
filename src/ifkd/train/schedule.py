"""The paper's training schedule: E1 epochs of reconstruction loss, then E2 epochs of recon + lambda * KD.

The trainer loop asks :func:`kd_active` once per epoch (so a resumed run switches at the same epoch);
teachers and methods without KD train the same E1 + E2 epochs with the reconstruction loss only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Protocol

import torch

from ifkd.config import TrainConfig


class ScheduleSpec(Protocol):
    """What the schedule needs from a method's spec (``ifkd.methods.MethodSpec`` satisfies it)."""

    name: str
    uses_kd: bool


def total_epochs(cfg: TrainConfig) -> int:
    """E1 + E2: the length of every run, teacher or student, KD or not."""
    return cfg.epochs_recon + cfg.epochs_kd


def needs_teacher(cfg: TrainConfig, spec: ScheduleSpec) -> bool:
    """True when some epoch of this run adds the KD term, so a frozen teacher must be given."""
    return spec.uses_kd and cfg.epochs_kd > 0


def kd_active(epoch: int, cfg: TrainConfig, spec: ScheduleSpec) -> bool:
    """KD term on in epoch ``epoch`` (0-based): epochs [E1, E1 + E2) of a method whose spec uses KD."""
    return needs_teacher(cfg, spec) and cfg.epochs_recon <= epoch < total_epochs(cfg)


def patience_start(cfg: TrainConfig) -> int:
    """First epoch (0-based) that ``train.patience`` counts in: E1 when the schedule runs epochs after
    E1, else 0. The same floor for every method: a KD student's KD phase gets its chance, and a method
    without KD (whose E2 epochs are more reconstruction) is not stopped before a KD student could be.
    Counting from epoch 0 for the latter stopped `camera` at epoch 7 with a validation IoU of 0 and
    `global` / `ifkd-nokd` at 15 while `ifkd` trained 46 (the first `converged` run, 2026-12-01)."""
    return cfg.epochs_recon if cfg.epochs_kd > 0 else 0


def plateaued(epochs_done: int, epochs_since_best: int, cfg: TrainConfig) -> bool:
    """``train.patience`` (0 = off): after ``epochs_done`` epochs, validation IoU has not improved for
    ``patience`` epochs and at least that many have run since :func:`patience_start`."""
    if cfg.patience <= 0:
        return False
    counted = epochs_done - patience_start(cfg)
    return counted >= cfg.patience and min(epochs_since_best, counted) >= cfg.patience


def reached_max_steps(global_step: int, cfg: TrainConfig) -> bool:
    """``train.max_steps`` (0 = no limit) reached after ``global_step`` optimiser steps."""
    return cfg.max_steps > 0 and global_step >= cfg.max_steps


def make_optimizer(params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Adam:
    """Adam at ``train.lr`` (the paper: 1e-3), no weight decay; :func:`learning_rate` sets each step's lr."""
    return torch.optim.Adam([p for p in params if p.requires_grad], lr=cfg.lr)


LR_SCHEDULES = ("constant", "cosine")


def planned_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """Optimiser steps of the whole schedule (all epochs). ``max_steps`` is a stop, not the plan: a run
    stopped there and resumed without it follows the same learning-rate curve as an uninterrupted one."""
    return total_epochs(cfg) * steps_per_epoch


def learning_rate(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """The learning rate of optimiser step ``step`` (0-based) of ``total_steps``: a function of the step
    alone, so a resumed run follows the same curve."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "cosine":
        t = min(max(step / max(total_steps, 1), 0.0), 1.0)
        return cfg.lr * (cfg.lr_final + (1.0 - cfg.lr_final) * 0.5 * (1.0 + math.cos(math.pi * t)))
    raise ValueError(f"train.lr_schedule {cfg.lr_schedule!r}: choose from {list(LR_SCHEDULES)}")
