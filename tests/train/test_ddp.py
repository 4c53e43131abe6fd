"""DDP under torchrun: 2 CPU processes (gloo) train the fake method of helpers.py through the KD switch;
both ranks must end with identical weights, equal (within float tolerance) to one process with the
same global batch. The fake has no BatchNorm, so per-rank batch statistics cannot differ.

The fast test starts the two ranks itself (setting the variables torchrun sets; they meet through a
file, not a TCP port); the slow one launches
them with ``python -m torch.distributed.run --standalone --nproc-per-node=2 test_ddp.py OUT``, this
file being the worker script.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import helpers
import pytest
import torch

HERE = Path(__file__).resolve().parent
PER_RANK_BATCH = 2


def _train(out: Path, batch_size: int, ctx=None) -> torch.nn.Module:
    from ifkd.train.loop import fit

    cfg = helpers.tiny_config(batch_size=batch_size)
    torch.manual_seed(cfg.train.seed)
    method = helpers.FakeMethod(teacher_dim=5, noise=False)  # noise: ranks would draw the same numbers
    torch.manual_seed(123)
    teacher = helpers.FakeTeacher(5)
    fit(
        method,
        helpers.FakeDataset(seed=cfg.train.seed),
        cfg,
        out,
        spec=helpers.FakeSpec(),
        teacher=teacher,
        teacher_dim=5,
        val_set=helpers.FakeDataset(shapes=4, seed=99),
        ctx=ctx,
        progress=False,
    )
    return method


def _worker(out: Path) -> None:
    from safetensors.torch import save_file

    from ifkd.train.distributed import init_distributed, shutdown_distributed

    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    assert ctx.world_size == 2 and torch.distributed.get_backend() == "gloo"
    try:
        method = _train(out / "run", PER_RANK_BATCH, ctx)
        save_file(
            {k: v.contiguous() for k, v in method.state_dict().items()},
            str(out / f"rank{ctx.rank}.safetensors"),
        )
    finally:
        shutdown_distributed(ctx)


def _fork_worker(rank: int, out: Path) -> None:
    """What torchrun would do for rank ``rank``: set the environment, join the group, run the worker.

    The group meets through a file in ``out`` (no TCP port to pick, so no race with other processes on
    the machine); :func:`init_distributed` reuses it."""
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"})
    torch.distributed.init_process_group("gloo", init_method=f"file://{out}/rdzv", rank=rank, world_size=2)
    try:
        _worker(out)
    finally:
        torch.distributed.destroy_process_group()


def _train_single(out: Path) -> dict[str, torch.Tensor]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(out, PER_RANK_BATCH * 2).state_dict()
    finally:
        torch.set_num_threads(threads)


def _check_against_single_process(tmp_path: Path, single: dict[str, torch.Tensor]) -> None:
    """Ranks bit-identical; equal to one process with the same global batch up to float summation order."""
    from safetensors.torch import load_file

    from ifkd.train.checkpoint import RunDir, read_last_state, read_metrics

    rank0 = load_file(str(tmp_path / "rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys() == single.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
        assert torch.allclose(rank0[key], single[key], atol=2e-5, rtol=1e-4), key
    assert not torch.equal(rank0["kd_head.weight"], _initial_kd_head())  # the KD epochs trained the head
    ddp_run, single_run = RunDir(tmp_path / "run"), RunDir(tmp_path / "single")
    assert read_last_state(ddp_run).global_step == read_last_state(single_run).global_step == 12
    assert "global batch 4 = 2 per rank x 2 rank(s)" in ddp_run.log.read_text()
    ddp_iou = [r["val_iou"] for r in read_metrics(ddp_run)]
    single_iou = [r["val_iou"] for r in read_metrics(single_run)]
    assert ddp_iou == pytest.approx(single_iou, abs=1e-6) and max(single_iou) > 0


def _start_method() -> str:
    """'fork' where safe: forked ranks inherit the imported modules, so they start in a fraction of a
    second. Torch builds with GPU devices refuse autograd in a child forked after the parent ran a
    backward pass (their autograd has device threads), so those spawn fresh interpreters instead."""
    return "fork" if torch.cuda.device_count() == 0 else "spawn"


def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    single = _train_single(tmp_path / "single")
    torch.multiprocessing.start_processes(
        _fork_worker, args=(tmp_path,), nprocs=2, start_method=_start_method(), join=True
    )
    _check_against_single_process(tmp_path, single)


@pytest.mark.slow
def test_torchrun_launch_matches_one_process(tmp_path):
    path = os.pathsep.join(p for p in (str(HERE.parent), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}  # helpers
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    proc = subprocess.run(
        [*cmd, str(HERE / "test_ddp.py"), str(tmp_path)], env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_against_single_process(tmp_path, _train_single(tmp_path / "single"))


def _initial_kd_head() -> torch.Tensor:
    torch.manual_seed(helpers.tiny_config().train.seed)
    return helpers.FakeMethod(teacher_dim=5).kd_head.weight.detach()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
