"""The training loop on a fake method and dataset: files, exact resume, KD switch, signals, NaN guard.

The fakes (FakeMethod, FakeTeacher, FakeDataset, FakeSpec, tiny_config) live in tests/helpers.py;
test_ddp.py runs them under torchrun too.
"""

from __future__ import annotations

import json
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FakeDataset, FakeMethod, FakeSpec, FakeTeacher, tiny_config
from torch import nn

from ifkd.config import Config, TrainConfig, check_config
from ifkd.io import InputError
from ifkd.train.checkpoint import RunDir, read_last_state, read_metrics
from ifkd.train.loop import NonFiniteLossError, TrainingInterrupted, fit, validation_shapes
from ifkd.train.schedule import plateaued

pytestmark = pytest.mark.usefixtures("one_thread")


def run_fake(out: Path, cfg: Config, *, resume: bool = False, kd: bool = True, **method_kw) -> tuple:
    """Seed, build the fakes, fit; returns (result, method)."""
    torch.manual_seed(cfg.train.seed)
    method = FakeMethod(teacher_dim=5 if kd else None)
    for key, value in method_kw.items():
        setattr(method, key, value)
    torch.manual_seed(123)
    teacher = FakeTeacher(5) if kd else None
    result = fit(
        method,
        FakeDataset(seed=cfg.train.seed),
        cfg,
        out,
        spec=FakeSpec(uses_kd=kd),
        val_set=FakeDataset(shapes=4, seed=99),
        teacher=teacher,
        teacher_dim=5 if kd else None,
        resume=resume,
        progress=False,
    )
    return result, method


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def without_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in records]


def test_run_folder_files_and_loss_falls(tmp_path):
    cfg = tiny_config(epochs_recon=3, epochs_kd=1)
    result, _ = run_fake(tmp_path / "run", cfg)
    run = RunDir(tmp_path / "run")
    assert result["status"] == "completed" and result["global_step"] == 16 and result["epochs_done"] == 4
    assert json.loads(run.config.read_text())["train"]["epochs_recon"] == 3
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    assert [r["kd_active"] for r in records] == [False, False, False, True]
    assert "train_kd" in records[3] and "train_kd" not in records[0]
    assert records[-1]["train_recon"] < records[0]["train_recon"]
    assert all(0.0 <= r["val_iou"] <= 1.0 and r["samples_per_s"] > 0 for r in records)
    assert run.weights("best").exists() and run.sidecar("best").exists()
    assert read_last_state(run).global_step == 16
    assert "global batch 4 = 4 per rank x 1 rank(s)" in run.log.read_text()
    assert len(list(run.checkpoints.glob("last-optim-*.safetensors"))) == 1


@pytest.mark.parametrize(
    "stop_at, schedule", [(3, "constant"), (6, "constant"), (6, "cosine")]
)  # inside the recon epoch / inside the first KD epoch
def test_resume_after_max_steps_is_bit_identical(tmp_path, stop_at, schedule):
    cfg = tiny_config(lr_schedule=schedule)
    _, straight = run_fake(tmp_path / "a", cfg)
    first, _ = run_fake(tmp_path / "b", tiny_config(max_steps=stop_at, lr_schedule=schedule))
    assert first["status"] == "max_steps" and first["global_step"] == stop_at
    state = read_last_state(RunDir(tmp_path / "b"))
    assert (state.epoch, state.step_in_epoch) == divmod(stop_at, 4)
    result, resumed = run_fake(tmp_path / "b", cfg, resume=True)
    assert result["status"] == "completed" and result["global_step"] == 12
    assert_same_weights(straight, resumed)
    a, b = read_metrics(RunDir(tmp_path / "a")), read_metrics(RunDir(tmp_path / "b"))
    assert without_time(a) == without_time(b)  # epoch means, KD switch and val IoU as if never stopped
    assert [r["kd_active"] for r in b] == [False, True, True]


def test_checkpoint_every_and_sigint_resume(tmp_path):
    cfg = tiny_config(checkpoint_every=2)
    _, straight = run_fake(tmp_path / "a", cfg)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match="SIGINT received: stopped after global step 7"):
        run_fake(tmp_path / "b", cfg, sigint_at=7)
    state = read_last_state(RunDir(tmp_path / "b"))
    assert (state.global_step, state.epoch, state.step_in_epoch) == (7, 1, 3)
    _, resumed = run_fake(tmp_path / "b", cfg, resume=True)
    assert_same_weights(straight, resumed)
    assert signal.getsignal(signal.SIGINT) is handler  # the caller's handler is back


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = tiny_config(checkpoint_every=3)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 2 \(global step 6\)"):
        run_fake(tmp_path / "run", cfg, nan_at=6)
    run = RunDir(tmp_path / "run")
    assert read_last_state(run).global_step == 4  # epoch end; step 3's save was superseded, 6 never ran
    # The bad step was never applied: resuming without the NaN reproduces an uninterrupted run.
    _, straight = run_fake(tmp_path / "a", cfg)
    _, resumed = run_fake(tmp_path / "run", cfg, resume=True)
    assert_same_weights(straight, resumed)


def test_refuses_to_overwrite_or_change_a_run(tmp_path):
    cfg = tiny_config(max_steps=2)
    run_fake(tmp_path / "run", cfg)
    with pytest.raises(InputError, match="already holds a run; pass --resume"):
        run_fake(tmp_path / "run", cfg)
    with pytest.raises(InputError, match=r"train.lr: 0.01 -> 0.5"):
        run_fake(tmp_path / "run", tiny_config(max_steps=2, lr=0.5), resume=True)
    result, _ = run_fake(tmp_path / "run", tiny_config(max_steps=5), resume=True)  # max_steps may change
    assert result["global_step"] == 5
    assert json.loads(RunDir(tmp_path / "run").config.read_text())["train"]["max_steps"] == 5


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    result, _ = run_fake(tmp_path / "run", tiny_config(max_steps=1), resume=True)
    assert result["global_step"] == 1
    assert "starting a new run" in RunDir(tmp_path / "run").log.read_text()


def test_kd_method_needs_a_teacher_and_nokd_runs_without(tmp_path):
    cfg = tiny_config()
    with pytest.raises(InputError, match="distils from a teacher"):
        fit(FakeMethod(), FakeDataset(), cfg, tmp_path / "x", spec=FakeSpec(uses_kd=True), progress=False)
    result, _ = run_fake(tmp_path / "nokd", tiny_config(val_shapes=0), kd=False)
    records = read_metrics(RunDir(tmp_path / "nokd"))
    assert result["status"] == "completed" and not any(r["kd_active"] for r in records)
    assert all(r["val_iou"] is None for r in records)
    assert not RunDir(tmp_path / "nokd").weights("best").exists()


def test_validation_shapes_takes_first_view_of_each_shape():
    ds = FakeDataset(shapes=5, views=3)
    assert validation_shapes(ds, 3) == [0, 3, 6]
    assert validation_shapes(ds, 10) == [0, 3, 6, 9, 12]


def write_ball_dataset(root: Path, radii: dict[str, float], views: int = 2, res: int = 32) -> None:
    """A tiny dataset in the on-disk format: spheres ('ball/<id>': radius), discs as renders."""
    from ifkd.data.format import ShapeRecord, shape_dir, write_index, write_shape, write_views
    from ifkd.geometry.camera import Viewpoint

    rng = np.random.default_rng(0)
    centres = (np.arange(res) + 0.5) / res - 0.5
    grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), axis=-1)
    yy, xx = np.mgrid[:32, :32]
    for key, radius in radii.items():
        points = rng.uniform(-0.55, 0.55, size=(512, 3)).astype(np.float32)
        normals = rng.normal(size=(64, 3))
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        record = ShapeRecord(
            points,
            np.linalg.norm(points, axis=1) < radius,
            normals * radius,
            normals,
            voxels={res: np.linalg.norm(grid, axis=-1) < radius},
        )
        folder = shape_dir(root, key)
        write_shape(folder / "shape.npz", record)
        disc = (xx - 15.5) ** 2 + (yy - 15.5) ** 2 < (radius * 40) ** 2
        image = np.zeros((32, 32, 4), np.uint8)
        image[disc] = (200, 60, 60, 255)
        write_views(folder / "rendering", [Viewpoint(30.0 * v, 20.0) for v in range(views)], [image] * views)
    keys = sorted(radii)
    write_index(root, {"ball": "0"}, {"train": keys[:-1], "val": keys[-1:], "test": []})


def test_end_to_end_teacher_then_ifkd_student_with_exact_resume(tmp_path):
    """Real loader + real methods: teacher run, KD student run, and a student stopped and resumed."""
    from ifkd.config import get_preset
    from ifkd.methods import method_config
    from ifkd.train.checkpoint import load_model
    from ifkd.train.run import train

    data = tmp_path / "data"
    write_ball_dataset(data, {f"ball/{i}": 0.2 + 0.05 * i for i in range(4)})
    base = get_preset("tiny")
    base = replace(base, train=replace(base.train, epochs_recon=1, epochs_kd=1, batch_size=2, val_shapes=1))
    teacher = train(method_config("teacher", base), data, tmp_path / "teacher", device="cpu", progress=False)
    assert teacher["status"] == "completed" and teacher["global_step"] == 4  # teachers: 1 item per shape

    student_cfg = method_config("ifkd", base)
    train(student_cfg, data, tmp_path / "a", teacher_run=tmp_path / "teacher", device="cpu", progress=False)
    records = read_metrics(RunDir(tmp_path / "a"))
    assert [r["kd_active"] for r in records] == [False, True] and "train_kd" in records[1]
    # 'best' follows the volumetric IoU at uniform points; the near-surface pairs' IoU is logged beside it
    assert all(0.0 <= r["val_iou"] <= 1.0 and 0.0 <= r["val_iou_surface"] <= 1.0 for r in records)
    stopped = replace(student_cfg, train=replace(student_cfg.train, max_steps=4))  # inside the KD epoch
    train(stopped, data, tmp_path / "b", teacher_run=tmp_path / "teacher", device="cpu", progress=False)
    train(
        student_cfg,
        data,
        tmp_path / "b",
        teacher_run=tmp_path / "teacher",
        resume=True,
        device="cpu",
        progress=False,
    )
    straight, _ = load_model(tmp_path / "a", "last")
    resumed, cfg = load_model(tmp_path / "b", "last")
    assert cfg.method == "ifkd"
    assert_same_weights(straight, resumed)
    assert without_time(records) == without_time(read_metrics(RunDir(tmp_path / "b")))
    with pytest.raises(InputError, match="distils from a teacher"):
        train(student_cfg, data, tmp_path / "c", device="cpu", progress=False)

    # The student records which teacher weights it distilled from; a teacher with other weights (trained
    # further, or replaced) is refused on resume, and the benchmark sets such a run aside and retrains.
    import shutil

    from ifkd.bench.runs import set_aside, teacher_stale
    from ifkd.train.checkpoint import load_tensors, read_metadata, save_tensors, teacher_identity

    recorded = json.loads(RunDir(tmp_path / "b").teacher.read_text())
    assert recorded == teacher_identity(tmp_path / "teacher")
    assert teacher_stale(tmp_path / "b", tmp_path / "teacher") is None
    shutil.copytree(tmp_path / "teacher", tmp_path / "teacher2")
    best = RunDir(tmp_path / "teacher2").weights("best")
    tensors = load_tensors(best)
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 0.01
    save_tensors(best, tensors, read_metadata(best))
    before = RunDir(tmp_path / "b").weights("last").read_bytes()
    with pytest.raises(InputError, match="has other weights"):
        train(student_cfg, data, tmp_path / "b", teacher_run=tmp_path / "teacher2", resume=True, device="cpu")
    assert RunDir(tmp_path / "b").weights("last").read_bytes() == before  # nothing was written
    assert "has other weights" in teacher_stale(tmp_path / "b", tmp_path / "teacher2")
    aside = set_aside(tmp_path / "b")
    assert aside.name == "b.stale-1" and RunDir(aside).weights("last").is_file()
    assert not (tmp_path / "b").exists()


def test_cosine_learning_rate_curve_and_unknown_schedule(tmp_path):
    from ifkd.train.schedule import learning_rate, planned_steps

    tc = TrainConfig(lr=1e-3, lr_schedule="cosine", lr_final=0.1, epochs_recon=3, epochs_kd=1, max_steps=5)
    assert planned_steps(tc, 10) == 40  # max_steps stops a run; it does not reshape its curve
    assert learning_rate(0, 40, tc) == pytest.approx(1e-3)
    assert learning_rate(20, 40, tc) == pytest.approx(0.55e-3)
    assert learning_rate(40, 40, tc) == pytest.approx(1e-4)
    assert learning_rate(7, 40, replace(tc, lr_schedule="constant")) == 1e-3
    with pytest.raises(InputError, match="lr_schedule 'step'"):
        run_fake(tmp_path / "run", tiny_config(lr_schedule="step"))


def test_resume_a_run_saved_before_a_config_field_existed(tmp_path):
    """Upgrading ifkd mid-run: a checkpoint written by a version without ``train.lr_final`` resumes when
    the field stays at its default, and is refused, naming the field, when it does not."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from ifkd.train.checkpoint import config_hash

    cfg = tiny_config()
    _, straight = run_fake(tmp_path / "a", cfg)
    run_fake(tmp_path / "b", tiny_config(max_steps=3))
    run = RunDir(tmp_path / "b")
    old_cfg = json.loads(run.config.read_text())
    del old_cfg["train"]["lr_final"]  # as an older version wrote it
    run.config.write_text(json.dumps(old_cfg))
    keys = {k for k in _flat_keys(old_cfg)}
    path = run.weights("last")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    state = json.loads(meta["state"])
    state["config_hash"] = meta["config_hash"] = config_hash(tiny_config(max_steps=3), keys)
    meta["state"] = json.dumps(state)
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(InputError, match="lr_final"):
        run_fake(tmp_path / "b", tiny_config(lr_final=0.5), resume=True)
    # stopped again after the upgrade: config.json now lists every field, and so must the next 'last'
    mid, _ = run_fake(tmp_path / "b", tiny_config(max_steps=5), resume=True)
    assert mid["status"] == "max_steps" and "lr_final" in json.loads(run.config.read_text())["train"]
    result, resumed = run_fake(tmp_path / "b", cfg, resume=True)
    assert result["status"] == "completed"
    assert_same_weights(straight, resumed)


def _flat_keys(obj: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in obj.items():
        out += _flat_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return out


def test_plateau_rule_counts_from_epoch_e1_for_every_method():
    tc = TrainConfig(epochs_recon=10, epochs_kd=20, patience=3)
    assert not plateaued(3, 3, tc) and not plateaued(12, 12, tc)  # E1 + 2: the KD phase gets its chance
    assert plateaued(13, 3, tc) and not plateaued(13, 2, tc)  # and a method without KD as many epochs
    only_e1 = replace(tc, epochs_kd=0)
    assert plateaued(3, 3, only_e1) and not plateaued(3, 2, only_e1)  # no E2: every epoch counts
    assert not plateaued(29, 29, replace(tc, patience=0))  # off


def test_patience_stops_a_run_that_no_longer_improves_and_resume_can_extend_it(tmp_path):
    # A learning rate too small to change any prediction: validation IoU never improves on epoch 1's.
    cfg = tiny_config(epochs_recon=1, epochs_kd=6, patience=2, lr=1e-12)
    result, _ = run_fake(tmp_path / "run", cfg)
    records = read_metrics(RunDir(tmp_path / "run"))
    assert result["status"] == "plateau" and result["epochs_done"] == 3  # E1 + 2 KD epochs, not 7
    assert len({r["val_iou"] for r in records}) == 1 and [r["kd_active"] for r in records] == [
        False,
        True,
        True,
    ]
    again, _ = run_fake(tmp_path / "run", cfg, resume=True)
    assert again["status"] == "plateau" and again["global_step"] == result["global_step"]  # nothing more
    longer, _ = run_fake(tmp_path / "run", replace(cfg, train=replace(cfg.train, patience=3)), resume=True)
    assert longer["status"] == "plateau" and longer["epochs_done"] == 4  # patience may change on resume
    with pytest.raises(InputError, match="patience.*val_shapes"):
        check_config(tiny_config(patience=2, val_shapes=0))


def test_init_from_starts_a_run_from_another_runs_weights_and_refuses_a_mismatch(tmp_path):
    """train.init_from: the new run's first step starts from the given run's 'best' weights (fine-tuning);
    another method or another model size is refused naming the run, never loaded in part."""
    from ifkd.config import get_preset
    from ifkd.methods import build_method, method_config
    from ifkd.train.checkpoint import CheckpointError, load_init, load_model
    from ifkd.train.run import train

    data = tmp_path / "data"
    write_ball_dataset(data, {f"ball/{i}": 0.2 + 0.05 * i for i in range(4)})
    base = get_preset("tiny")
    base = replace(base, train=replace(base.train, epochs_recon=1, epochs_kd=0, batch_size=2, val_shapes=1))
    cfg = method_config("ifkd-nokd", base)
    train(cfg, data, tmp_path / "first", device="cpu", progress=False)
    first, _ = load_model(tmp_path / "first", "best")

    tuned_cfg = replace(cfg, train=replace(cfg.train, init_from=str(tmp_path / "first"), max_steps=1))
    fresh = build_method("ifkd-nokd", tuned_cfg)
    assert "init: the weights of" in load_init(fresh, tuned_cfg)
    assert_same_weights(first, fresh)
    train(tuned_cfg, data, tmp_path / "tuned", device="cpu", progress=False)
    tuned, saved = load_model(tmp_path / "tuned", "last")
    assert saved.train.init_from == str(tmp_path / "first")  # saved with the run
    assert "init: the weights of" in RunDir(tmp_path / "tuned").log.read_text()
    # one Adam step away from the init, far closer to it than a random init is
    step = sum((a - b).abs().sum() for a, b in zip(tuned.parameters(), first.parameters()))
    other = build_method("ifkd-nokd", cfg)
    scratch = sum((a - b).abs().sum() for a, b in zip(other.parameters(), first.parameters()))
    assert 0 < step < 0.1 * scratch

    wider = replace(
        tuned_cfg, student=replace(tuned_cfg.student, decoder_hidden=tuned_cfg.student.decoder_hidden * 2)
    )
    with pytest.raises(CheckpointError, match="match its settings in"):
        load_init(build_method("ifkd-nokd", wider), wider)
    as_global = method_config("global", replace(tuned_cfg))
    with pytest.raises(InputError, match="holds a 'ifkd-nokd' run"):
        load_init(build_method("global", as_global), as_global)
    missing = replace(cfg, train=replace(cfg.train, init_from=str(tmp_path / "nowhere")))
    with pytest.raises(InputError, match="nowhere"):
        train(missing, data, tmp_path / "never", device="cpu", progress=False)
    assert not (tmp_path / "never").exists()  # refused before the run folder is made
