"""The one training loop for every method: teachers (recon only), then students (recon -> recon + KD).

Runs as one process or as DDP under torchrun (:mod:`ifkd.train.distributed`); resumes exactly from
``checkpoints/last`` (:mod:`ifkd.train.checkpoint`); SIGINT/SIGTERM finish the step, save and stop;
a non-finite loss stops before the bad step is applied, keeping the last good checkpoint.
The ``train()`` entry point (:mod:`ifkd.train.run`, which imports this module) builds what :func:`fit`
needs; validation is in :mod:`ifkd.train.validate`.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ifkd.config import Config, load_config, save_config
from ifkd.io import InputError, atomic_write_json, check_writable
from ifkd.models.base import Batch, Method
from ifkd.train.checkpoint import (
    CheckpointError,
    RunDir,
    RunLog,
    TrainState,
    config_changes,
    config_hash,
    load_last,
    read_last_state,
    read_metrics,
    save_best,
    save_last,
    saved_config_keys,
    teacher_changed,
    write_metrics,
)
from ifkd.train.distributed import (
    DistContext,
    ResumableSampler,
    StopSignals,
    all_reduce_max,
    barrier,
    wrap_ddp,
)
from ifkd.train.schedule import (
    ScheduleSpec,
    kd_active,
    learning_rate,
    make_optimizer,
    needs_teacher,
    planned_steps,
    plateaued,
    reached_max_steps,
    total_epochs,
)
from ifkd.train.state import capture_rng, restore_rng
from ifkd.train.validate import validation_iou, validation_shapes

__all__ = [
    "NonFiniteLossError",
    "Trainer",
    "TrainingInterrupted",
    "fit",
    "validation_iou",
    "validation_shapes",
]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/Inf; nothing of that step was applied or saved. The CLI exits with status 2."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM: the step in flight was finished and 'last' saved; ``--resume`` continues the run.
    A KeyboardInterrupt, so callers treat it like Ctrl-C (the CLI exits with status 130)."""


class _LossModule(nn.Module):
    """Puts ``Method.training_losses`` behind ``forward`` so DDP's gradient sync sees the call."""

    def __init__(self, method: Method, teacher: Method | None) -> None:
        super().__init__()
        self.method = method
        self.__dict__["teacher"] = teacher  # not a submodule: frozen, never synced or saved

    def forward(self, batch: Batch, kd: bool) -> dict[str, torch.Tensor]:
        return self.method.training_losses(batch, kd_active=kd, teacher=self.teacher)


def _prepare_run_dir(
    run: RunDir, cfg: Config, resume: bool, ctx: DistContext, teacher_id: dict[str, str] | None = None
) -> bool:
    """Check the run folder against ``resume`` (and a KD run against the teacher it started with) and
    write config.json (and teacher.json); True when 'last' will be loaded."""
    has_last = run.weights("last").exists()
    if not resume and (has_last or run.config.exists()):
        raise InputError(
            f"{run.root}: already holds a run; pass --resume to continue it or choose another --out"
        )
    if resume and has_last:
        if run.config.exists():
            changes = config_changes(load_config(run.config), cfg)
            if changes:
                raise InputError(f"{run.config}: --resume with a different config: {'; '.join(changes[:6])}")
        saved = read_last_state(run)
        if saved.config_hash != config_hash(cfg, saved_config_keys(run.config)) or saved.method != cfg.method:
            raise CheckpointError(
                f"{run.weights('last')}: checkpoint of another config or method ({saved.method})"
            )
        why = teacher_changed(run, teacher_id) if teacher_id else None
        if why:
            raise InputError(why)
    barrier(ctx)  # every rank has looked at the folder before rank 0 writes into it
    if ctx.is_main:
        check_writable(run.root)
        save_config(cfg, run.config)  # resolved config before step 1 (max_steps etc. may have changed)
        if teacher_id:
            atomic_write_json(run.teacher, teacher_id)
    barrier(ctx)
    return resume and has_last


class Trainer:
    """One run: the epoch loop, steps, checkpoints and metrics for a built method and dataset."""

    def __init__(
        self,
        method: Method,
        train_set: Dataset,
        cfg: Config,
        run: RunDir,
        *,
        spec: ScheduleSpec,
        val_set: Dataset | None,
        val_extra: Mapping[str, Dataset] | None = None,
        teacher: Method | None,
        teacher_dim: int | None,
        ctx: DistContext,
        resuming: bool,
        log_every: int,
        progress: bool | None,
    ) -> None:
        self.cfg, self.tc, self.rundir, self.spec, self.ctx = cfg, cfg.train, run, spec, ctx
        self.method, self.train_set, self.val_set, self.teacher = method, train_set, val_set, teacher
        self.val_extra = dict(val_extra or {})
        self.log_every = max(1, log_every)
        self.bars = ctx.is_main and (sys.stderr.isatty() if progress is None else progress)
        self.log = RunLog(run.log if ctx.is_main else None, echo=not self.bars)
        dev = ctx.device
        self.amp = self.tc.amp and dev.type == "cuda"
        # channels_last for tensor cores under bf16 on CUDA only. On CPU it was 12 % faster for the U-Net
        # but corrupted the heap (torch 2.13.0+cpu: "free(): invalid next size") when a spawned benchmark
        # worker went on from ifkd-stn/-cnn5 to global/ifkd-global: `ifkd bench quality --budget smoke
        # --jobs 2 --device cpu` reproduces it with channels_last on CPU, and passes without.
        self.channels_last = method.input_kind == "image" and self.amp
        method.to(dev)
        if self.channels_last:
            method.to(memory_format=torch.channels_last)
        if teacher is not None:
            teacher.to(dev).eval().requires_grad_(False)
        try:
            learning_rate(0, 1, self.tc)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        self.optimizer = make_optimizer(method.parameters(), self.tc)
        if resuming:
            self.state = load_last(run, method, self.optimizer)
            restore_rng(self.state.rng)
            # _prepare_run_dir checked this config against the checkpoint and rewrote config.json with
            # every field of this version: the next checkpoint's hash must cover those same fields
            self.state.config_hash = config_hash(cfg)
        else:
            self.state = TrainState(
                cfg.method, config_hash(cfg), world_size=ctx.world_size, teacher_dim=teacher_dim
            )
        self.model = wrap_ddp(_LossModule(method, teacher), ctx)
        self.sampler = ResumableSampler(train_set, ctx, self.tc.seed)
        # An own generator: DataLoader would otherwise draw worker seeds from the global RNG, which
        # would make a resumed run's global RNG stream differ from an uninterrupted one.
        self.loader = DataLoader(
            train_set,
            batch_size=self.tc.batch_size,
            sampler=self.sampler,
            num_workers=cfg.data.num_workers,
            pin_memory=dev.type == "cuda",
            generator=torch.Generator().manual_seed(self.tc.seed),
        )
        self.n_batches = math.ceil(self.sampler.num_samples / self.tc.batch_size)
        if self.n_batches == 0:
            raise InputError(f"{run.root}: the training split is empty")
        self.records = [r for r in read_metrics(run) if r["epoch"] < self.state.epoch] if ctx.is_main else []
        self._adapt_world_size()

    def _adapt_world_size(self) -> None:
        """A mid-epoch checkpoint from another number of ranks: continue at the same sample count."""
        st = self.state
        if st.world_size != self.ctx.world_size and st.step_in_epoch:
            done = st.step_in_epoch * self.tc.batch_size * st.world_size
            st.step_in_epoch = done // (self.tc.batch_size * self.ctx.world_size)
            self.log(
                f"note: resuming on {self.ctx.world_size} ranks a checkpoint of {st.world_size}: "
                "same data, but not bit-identical to an uninterrupted run",
                always=True,
            )
        st.world_size = self.ctx.world_size

    # ------------------------------------------------------------------------------ one step
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _to_device(self, batch: Batch) -> Batch:
        out = {k: v.to(self.ctx.device, non_blocking=True) for k, v in batch.items()}
        if self.channels_last and "image" in out:
            out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
        return out

    def _step(self, batch: Batch, kd: bool, stop: StopSignals) -> tuple[dict[str, float], bool]:
        """Forward, check, backward, Adam step -> (loss parts as floats, stop requested on any rank)."""
        with self._autocast():
            parts = self.model(self._to_device(batch), kd)
        loss = parts["loss"]
        flags = torch.stack(
            [(~torch.isfinite(loss.detach())).float(), loss.new_tensor(float(bool(stop.received)))]
        )
        # One reduction so that every rank takes the same decision (no rank left alone in a collective).
        bad, stop_now = all_reduce_max(flags.float(), self.ctx).tolist()
        if bad:
            st = self.state
            raise NonFiniteLossError(
                f"non-finite loss ({loss.item()}) at epoch {st.epoch + 1}, step {st.step_in_epoch + 1} "
                f"(global step {st.global_step + 1}); kept the last good checkpoint in "
                f"{self.rundir.checkpoints}; try a lower train.lr or check the data"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = learning_rate(self.state.global_step, planned_steps(self.tc, self.n_batches), self.tc)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        values = torch.stack([v.detach().float() for v in parts.values()]).tolist()
        return dict(zip(parts, values)), bool(stop_now)

    # ------------------------------------------------------------------------------ epochs
    def _save_last(self) -> None:
        if self.ctx.is_main:
            self.state.rng = capture_rng()
            save_last(self.rundir, self.method, self.optimizer, self.state)
        barrier(self.ctx)  # under torchrun a rank that exits early gets the others killed mid-save

    def _epoch(self, stop: StopSignals) -> str | None:
        """Train the rest of epoch ``state.epoch``; returns why to stop ('signal', 'max_steps') or None."""
        st, tc = self.state, self.tc
        epoch, start = st.epoch, st.step_in_epoch
        self.sampler.set_epoch(epoch, start * tc.batch_size)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        kd = kd_active(epoch, tc, self.spec)
        self.method.train()
        t0 = time.perf_counter() - st.epoch_seconds
        window: dict[str, float] = {}
        t_window, n_window = time.perf_counter(), 0
        desc = f"epoch {epoch + 1}/{total_epochs(tc)}{' +KD' if kd else ''}"
        bar = tqdm(
            total=self.n_batches,
            initial=start,
            desc=desc,
            disable=not self.bars,
            leave=False,
            file=sys.stderr,
            dynamic_ncols=True,
            unit="step",
        )
        reason = None
        for batch in self.loader:
            values, stop_now = self._step(batch, kd, stop)
            st.step_in_epoch += 1
            st.global_step += 1
            n_window += 1
            for k, v in values.items():
                st.epoch_sums[k] = st.epoch_sums.get(k, 0.0) + v
                window[k] = window.get(k, 0.0) + v
            reason = "signal" if stop_now else "max_steps" if reached_max_steps(st.global_step, tc) else None
            if n_window == self.log_every or reason or st.step_in_epoch == self.n_batches:
                rate = n_window * tc.batch_size * self.ctx.world_size / (time.perf_counter() - t_window)
                losses = " ".join(f"{k} {v / n_window:.4g}" for k, v in window.items())
                bar.set_postfix_str(f"{losses} {rate:.0f} samples/s", refresh=False)
                self.log(
                    f"{desc} step {st.step_in_epoch}/{self.n_batches} (global {st.global_step}) "
                    f"{losses} | {rate:.0f} samples/s"
                )
                window, t_window, n_window = {}, time.perf_counter(), 0
            bar.update(1)
            if st.step_in_epoch == self.n_batches:
                break  # the epoch end below saves, also for a stop on the epoch's last step
            st.epoch_seconds = time.perf_counter() - t0
            if reason:
                bar.close()
                self._save_last()
                return reason
            if tc.checkpoint_every and st.global_step % tc.checkpoint_every == 0:
                self._save_last()
        bar.close()
        self._end_epoch(kd, time.perf_counter() - t0)
        return reason

    def _end_epoch(self, kd: bool, seconds: float) -> None:
        """Validate, append the epoch's metrics, save 'best' when val IoU improved, save 'last'."""
        st, tc = self.state, self.tc
        val, extra = None, {}
        if self.val_set is not None and tc.val_shapes > 0:
            barrier(self.ctx)
            val = validation_iou(
                self.method, self.val_set, tc.val_shapes, self.ctx, tc.batch_size, self._autocast
            )
            for name, dataset in self.val_extra.items():
                extra[f"val_iou_{name}"] = validation_iou(
                    self.method, dataset, tc.val_shapes, self.ctx, tc.batch_size, self._autocast
                )
        samples = self.sampler.num_samples * self.ctx.world_size
        record: dict[str, Any] = {"epoch": st.epoch, "step": st.global_step}
        record.update({f"train_{k}": v / st.step_in_epoch for k, v in st.epoch_sums.items()})
        record.update(
            {
                "kd_active": kd,
                "val_iou": val,
                **extra,
                "seconds": round(seconds, 3),
                "samples_per_s": round(samples / max(seconds, 1e-9), 2),
            }
        )
        summary = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
        self.log(f"epoch {st.epoch + 1}/{total_epochs(tc)} done: {summary}", always=True)
        if self.ctx.is_main:
            self.records.append(record)
            write_metrics(self.rundir, self.records)  # before 'last': a resume rewrites later lines
        finished_epoch = st.epoch
        st.epoch, st.step_in_epoch, st.epoch_sums, st.epoch_seconds = st.epoch + 1, 0, {}, 0.0
        if val is not None and (st.best_val_iou is None or val > st.best_val_iou):
            st.best_val_iou, st.epochs_since_best = val, 0
            if self.ctx.is_main:
                save_best(self.rundir, self.method, st, val, finished_epoch)
        elif val is not None:
            st.epochs_since_best += 1
        self._save_last()

    def run(self) -> dict[str, Any]:
        """Train to the end of the schedule (or ``train.max_steps``); returns the final metrics."""
        st, tc = self.state, self.tc
        epochs = total_epochs(tc)
        with StopSignals() as stop:
            reason = "max_steps" if reached_max_steps(st.global_step, tc) else None
            while reason is None and st.epoch < epochs:
                if plateaued(st.epoch, st.epochs_since_best, tc):
                    reason = "plateau"
                    break
                reason = self._epoch(stop)
        if reason == "signal":
            msg = (
                f"{stop.received or 'signal'} received: stopped after global step {st.global_step} "
                f"(epoch {st.epoch + 1}); saved {self.rundir.weights('last')}; continue with --resume"
            )
            self.log(msg, always=True)
            raise TrainingInterrupted(msg)
        status = reason if reason in ("max_steps", "plateau") else "completed"
        last = self.records[-1] if self.records else {}
        result = {
            "status": status,
            "epochs_done": st.epoch,
            "global_step": st.global_step,
            "best_val_iou": st.best_val_iou,
            **{k: v for k, v in last.items() if k.startswith("train_")},
        }
        self.log(f"{status}: {result}", always=True)
        return result


def fit(
    method: Method,
    train_set: Dataset,
    cfg: Config,
    out_dir: str | Path,
    *,
    spec: ScheduleSpec,
    val_set: Dataset | None = None,
    val_extra: Mapping[str, Dataset] | None = None,
    teacher: Method | None = None,
    teacher_dim: int | None = None,
    resume: bool = False,
    ctx: DistContext | None = None,
    log_every: int = 20,
    progress: bool | None = None,
    notes: Sequence[str] = (),
    teacher_id: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Train a built ``method`` on ``train_set`` into the run folder ``out_dir`` (see :func:`train`).
    ``teacher_id``: :func:`~ifkd.train.checkpoint.teacher_identity` of ``teacher``, recorded in the run
    (a resume with a teacher of other weights is refused)."""
    ctx = ctx or DistContext()
    if needs_teacher(cfg.train, spec) and teacher is None:
        raise InputError(
            f"method {spec.name!r} distils from a teacher: pass a teacher run (or train.epochs_kd=0)"
        )
    run = RunDir(Path(out_dir))
    resuming = _prepare_run_dir(run, cfg, resume, ctx, teacher_id)
    trainer = Trainer(
        method,
        train_set,
        cfg,
        run,
        spec=spec,
        val_set=val_set,
        val_extra=val_extra,
        teacher=teacher,
        teacher_dim=teacher_dim,
        ctx=ctx,
        resuming=resuming,
        log_every=log_every,
        progress=progress,
    )
    tc, st = cfg.train, trainer.state
    trainer.log(
        f"{cfg.method}: {total_epochs(tc)} epochs ({tc.epochs_recon} recon + {tc.epochs_kd} "
        f"{'recon+KD' if needs_teacher(tc, spec) else 'recon'}), {len(train_set)} items, "
        f"{trainer.n_batches} steps/epoch, global batch {tc.batch_size * ctx.world_size} = "
        f"{tc.batch_size} per rank x {ctx.world_size} rank(s), device {ctx.device}"
        f"{', bf16 autocast' if trainer.amp else ''}",
        always=True,
    )
    for note in notes:
        trainer.log(note, always=True)
    if resuming:
        trainer.log(
            f"resuming {run.weights('last')}: epoch {st.epoch + 1}, step {st.step_in_epoch}/"
            f"{trainer.n_batches} (global step {st.global_step})",
            always=True,
        )
    elif resume:
        trainer.log(f"no checkpoint in {run.checkpoints} yet: starting a new run", always=True)
    return trainer.run()
