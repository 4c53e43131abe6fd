"""Run a list of independent per-item tasks: in this process, on a local Dask cluster, or on a running one.

Batch jobs (dataset import, synthesis, evaluation) are independent per shape. :func:`run_tasks` runs
them serially in-process for one worker (no start-up cost: tests and small jobs stay fast), on a
throw-away ``LocalCluster`` of worker processes for ``workers > 1``, or on an existing cluster
(``dask scheduler`` + ``dask worker``, many machines sharing a file system) given its address. The
code that runs per item is the same in all three cases. A failing item never stops the others: it
comes back as :class:`Failed` with a one-line reason, and the caller decides what that means.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import socket
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from ifkd.io import InputError

T = TypeVar("T")
R = TypeVar("R")

CONNECT_TIMEOUT_S = 10.0
"""How long to wait for a ``--scheduler`` to answer before giving up."""

__all__ = ["Failed", "Workers", "check_scheduler", "reason_of", "run_tasks", "scheduler_of"]


@dataclass(frozen=True)
class Failed:
    """The outcome of an item whose task raised (or whose worker died): its one-line reason, and the
    exception itself when it could travel back from the worker (so a caller can re-raise it)."""

    reason: str
    error: BaseException | None = None


class Workers(int):
    """A worker count that also names the Dask scheduler to run on (None: this machine).

    Lets the APIs that take ``workers: int`` run on a cluster unchanged, e.g.
    ``import_meshes(folder, out, workers=Workers(1, "tcp://10.0.0.5:8786"))``.
    """

    scheduler: str | None

    def __new__(cls, n: int, scheduler: str | None = None) -> Workers:
        self = super().__new__(cls, n)
        self.scheduler = scheduler
        return self

    def __reduce__(self) -> tuple:
        return (Workers, (int(self), self.scheduler))

    def __repr__(self) -> str:
        return f"Workers({int(self)}, scheduler={self.scheduler!r})"


def scheduler_of(workers: int) -> str | None:
    """The scheduler address carried by a :class:`Workers` count (None for a plain int)."""
    return getattr(workers, "scheduler", None)


def reason_of(exc: BaseException) -> str:
    """'Type: message' on one line, at most 300 characters (what batch summaries list)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


_PORTABLE = (InputError, OSError, ValueError, RuntimeError, KeyError, TypeError)
"""Exception types that travel back from a worker intact (built-in or ours, plain arguments)."""


def _call(
    fn: Callable[[T], R], item: T, torch_threads: int | None = None, remote: bool = False
) -> R | Failed:
    """Run one item; an exception becomes :class:`Failed` (never raised, so the batch goes on)."""
    if torch_threads is not None:
        _set_torch_threads(torch_threads)
    try:
        return fn(item)
    except Exception as exc:
        if remote and not isinstance(exc, _PORTABLE):
            # the result travels back serialised: an exception of any other type is reduced to its text
            return Failed(reason_of(exc), None)
        return Failed(reason_of(exc), exc)


def _set_torch_threads(n: int) -> None:
    """Inside a worker: one intra-op thread per task (the cluster's processes already use the cores)."""
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


# --------------------------------------------------------------------------------------- the scheduler
async def _identity(address: str, timeout: float) -> dict:
    from distributed.core import rpc

    async def ask() -> dict:
        async with rpc(address, timeout=timeout) as scheduler:
            return await scheduler.identity(n_workers=0)

    # The whole exchange is bounded: a server that is not Dask's may accept and then never answer.
    return await asyncio.wait_for(ask(), timeout)


def check_scheduler(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, before any output is written, unless ``address`` is a Dask scheduler with workers.

    Raises :class:`InputError` naming the address (the CLI prints one line and exits 2).
    """
    if address is None:
        return
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        scheme, loc = parse_address(address)
        if scheme in ("tcp", "tls", "ws", "wss"):
            # A plain socket first: a refused port or an unknown host fails at once, not after the timeout.
            with socket.create_connection(parse_host_port(loc), timeout=timeout):
                pass
        # A fresh thread owns the event loop, so this works even where one is already running.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            info = pool.submit(asyncio.run, _identity(address, timeout)).result()
    except (TimeoutError, asyncio.TimeoutError):  # before OSError: socket.timeout is both
        raise InputError(f"--scheduler {address}: no Dask scheduler answered within {timeout:g} s") from None
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"--scheduler {address}: no Dask scheduler there ({reason_of(exc)})") from None
    if not isinstance(info, dict) or info.get("type") != "Scheduler":
        raise InputError(f"--scheduler {address}: not a Dask scheduler")
    if not info.get("n_workers"):
        raise InputError(
            f"--scheduler {address}: the scheduler has no workers (start some: dask worker {address})"
        )


@contextmanager
def _client(workers: int, scheduler: str | None) -> Iterator[Any]:
    """A dask.distributed Client: of the cluster at ``scheduler``, or of a LocalCluster made for this job."""
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        check_scheduler(scheduler)
        with Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False) as client:
            yield client
        return
    with warnings.catch_warnings():
        # Even without a dashboard the scheduler serves its health routes on :8787, another port if taken.
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    with cluster, Client(cluster, set_as_default=False) as client:
        yield client


def _missing_paths(paths: Sequence[str]) -> list[str]:
    return [p for p in paths if not Path(p).exists()]


def _check_shared(client: Any, paths: Sequence[str | Path]) -> None:
    """Every worker must see the job's folders: a cluster's machines need one shared file system."""
    if not paths:
        return
    seen = client.run(_missing_paths, [str(p) for p in paths])
    for worker, missing in sorted(seen.items()):
        if missing:
            raise InputError(
                f"{missing[0]}: not visible from Dask worker {worker} (the workers need the same file system)"
            )


# ---------------------------------------------------------------------------------------- the runner
def run_tasks(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int = 1,
    scheduler: str | None = None,
    desc: str = "tasks",
    progress: bool | None = None,
    unit: str = "item",
    torch_threads: int | None = None,
    shared: Sequence[str | Path] = (),
) -> list[R | Failed]:
    """``[fn(item) for item in items]`` in input order, each result or :class:`Failed`; never stops early.

    ``scheduler=None``: ``workers == 1`` runs in this process; ``workers > 1`` starts a LocalCluster of
    that many single-threaded processes for the job (logs silenced, no dashboard) and closes it after.
    ``scheduler="tcp://host:port"``: the tasks run on that cluster (``workers`` is then unused).
    ``fn`` and the items must pickle (module-level functions, plain data). ``torch_threads`` caps
    torch's threads inside workers (not in this process); ``shared`` lists folders that every worker of
    a remote cluster must see. ``progress``: tqdm bar (None: only on a terminal). Worker processes are
    spawned, so a script that calls this with ``workers > 1`` needs the ``if __name__ == "__main__":``
    guard (the ``ifkd`` command has it).
    """
    items = list(items)
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    bar = tqdm(
        total=len(items), desc=desc, unit=unit, disable=(not progress) if progress is not None else None
    )
    try:
        if scheduler is None and (workers == 1 or len(items) <= 1):
            results: list[R | Failed] = []
            for item in items:
                results.append(_call(fn, item))
                bar.update()
            return results
        with _client(workers, scheduler) as client:
            if scheduler is not None:
                _check_shared(client, shared)
            return _gather(client, fn, items, bar, torch_threads)
    finally:
        bar.close()


def _gather(client: Any, fn: Callable[[T], R], items: list[T], bar: tqdm, torch_threads: int | None) -> list:
    """Submit one task per item; collect them as they finish (dask's as_completed), in input order."""
    from dask.distributed import as_completed

    if not items:
        return []
    task = functools.partial(_call, fn, torch_threads=torch_threads, remote=True)
    futures = client.map(task, items, pure=False)
    position = {f.key: i for i, f in enumerate(futures)}
    results: list = [None] * len(items)
    for future in as_completed(futures, loop=client.loop):
        try:
            results[position[future.key]] = future.result()
        except BaseException as exc:  # the worker died (KilledWorker), or the task was cancelled
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            results[position[future.key]] = Failed(reason_of(exc), None)
        future.release()
        bar.update()
    return results
