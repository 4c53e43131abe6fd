"""DDP under torchrun: 2 CPU processes (gloo) train the fake method of test_loop.py through the KD switch;
both ranks must end with identical weights, equal (within float tolerance) to one process with the
same global batch. The fake has no BatchNorm, so per-rank batch statistics cannot differ.

The fast test starts the two ranks itself (setting the variables torchrun sets); the slow one launches
them with ``python -m torch.distributed.run --standalone --nproc-per-node=2 test_ddp.py OUT``, this
file being the worker script.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
PER_RANK_BATCH = 2


def _fakes():
    """test_loop.py's fakes, loaded by path (test folders are not packages)."""
    if "ifkd_train_fakes" in sys.modules:
        return sys.modules["ifkd_train_fakes"]
    spec = importlib.util.spec_from_file_location("ifkd_train_fakes", HERE / "test_loop.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def _train(out: Path, batch_size: int, ctx=None) -> torch.nn.Module:
    from ifkd.train.loop import fit

    fakes = _fakes()
    cfg = fakes.tiny_config(batch_size=batch_size)
    torch.manual_seed(cfg.train.seed)
    method = fakes.FakeMethod(teacher_dim=5, noise=False)  # noise: ranks would draw the same numbers
    torch.manual_seed(123)
    teacher = fakes.FakeTeacher(5)
    fit(
        method,
        fakes.FakeDataset(seed=cfg.train.seed),
        cfg,
        out,
        spec=fakes.FakeSpec(),
        teacher=teacher,
        teacher_dim=5,
        val_set=fakes.FakeDataset(shapes=4, seed=99),
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


def _fork_worker(rank: int, out: Path, port: int) -> None:
    """What torchrun would do for rank ``rank``: set the environment, then run the worker."""
    env = {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": 2, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
    os.environ.update({k: str(v) for k, v in env.items()})
    _worker(out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        _fork_worker, args=(tmp_path, _free_port()), nprocs=2, start_method=_start_method(), join=True
    )
    _check_against_single_process(tmp_path, single)


@pytest.mark.slow
def test_torchrun_launch_matches_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    proc = subprocess.run(
        [*cmd, str(HERE / "test_ddp.py"), str(tmp_path)], env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_against_single_process(tmp_path, _train_single(tmp_path / "single"))


def _initial_kd_head() -> torch.Tensor:
    fakes = _fakes()
    torch.manual_seed(fakes.tiny_config().train.seed)
    return fakes.FakeMethod(teacher_dim=5).kd_head.weight.detach()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
