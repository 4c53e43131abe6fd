"""Safe file writing and user-facing errors shared by every module.

Writers go through a temp file + fsync + rename so a crash never leaves a half-written file under the
final name; errors about user input are :class:`InputError` so the CLI can print one line and exit 2.
An output folder has one writer at a time: :func:`output_lock` (an advisory lock file in the folder,
taken by every command that writes one before it writes anything).
"""

from __future__ import annotations

import errno
import glob
import io
import json
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class InputError(ValueError):
    """Bad user input (file, shape, value): the message names the file and the problem."""


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success fsync and rename it into place.

    A failed write (disk full, read-only folder) leaves the previous ``path`` untouched and raises an
    OSError whose ``filename`` is ``path`` -- not the temp name -- so the user is told which file.
    """
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or ".tmp")
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp makes 0600 files; give the final file the usual permissions (0666 minus the umask)
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except OSError as exc:
        about_temp = exc.filename is None or str(exc.filename).startswith(str(path.parent / f".{path.name}."))
        if exc.errno is None or not about_temp:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc  # same errno -> same subclass
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temps(path: str | Path) -> None:
    """Delete the temp files that atomic writes of ``path`` killed mid-way left beside it (``.<name>.*``).

    Only for files that one process writes at a time (a shape's files, a run's checkpoints), and only
    while holding the lock of the output folder they lie in (see :func:`output_lock`): when another
    process holds it, its temp files are live, not stale, and nothing is deleted.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return
    with _cleanup_permit(path.parent) as allowed:
        if allowed:
            for stale in path.parent.glob(f".{glob.escape(path.name)}.*"):
                stale.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def npz_bytes(arrays: dict[str, np.ndarray], compressed: bool = True) -> bytes:
    """An .npz archive as bytes, byte-identical for identical inputs.

    ``np.savez`` stamps each member with the current time; we fix the timestamp so that the same
    seed gives the same files (deterministic datasets).
    """
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def atomic_save_npz(path: str | Path, compressed: bool = True, **arrays: np.ndarray) -> None:
    """Write an .npz atomically (temp file + rename) and deterministically."""
    atomic_write_bytes(path, npz_bytes(arrays, compressed))


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise InputError(not_found(path))
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None


def check_writable(folder: str | Path) -> None:
    """Fail early, before any work, if ``folder`` cannot be written (read-only, missing rights)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ifkd-write-test-"):
            pass
    except OSError as exc:
        raise InputError(f"{folder}: output folder is not writable ({exc.strerror})") from None


# ----------------------------------------------------------------------------------- one writer per folder

LOCK_FILE = ".ifkd.lock"
"""the advisory lock of an output folder (flock via ``filelock``); removed when its holder is done"""
OWNER_FILE = ".ifkd.lock.pid"
"""the holder's pid (and command), for the message of a second writer"""
_HELD_ENV = "IFKD_HELD_OUTPUTS"
"""JSON ``[[pid, folder], ...]``: folders that this process or a parent holds (worker processes inherit
it, so that they may clean stale temp files in their parent's folder)"""
_held: dict[str, int] = {}
"""real path of each folder this process holds -> nesting depth"""


class FolderInUse(InputError):
    """Another process holds the output folder's lock."""


@contextmanager
def output_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the one-writer lock of the output folder ``folder`` (created if missing) while the block runs.

    Checks that the folder is writable (:func:`check_writable`), then takes the lock file in it without
    waiting: if another process holds it, raises :class:`FolderInUse` (an :class:`InputError`) with one
    line naming the folder and the holder's pid. Nested calls for the same folder in one process just
    run the block. On exit the lock file goes away; a folder this call created and nothing else wrote
    into is removed again, so a command that fails before writing leaves nothing behind.
    """
    folder = Path(folder)
    key = os.path.realpath(folder)
    if key in _held:
        _held[key] += 1
        try:
            yield folder
        finally:
            _held[key] -= 1
        return
    created = not folder.exists()
    check_writable(folder)
    lock, verified = _acquire(folder)
    _held[key] = 1
    inherited = os.environ.get(_HELD_ENV)
    os.environ[_HELD_ENV] = json.dumps([*_inherited_holds(), [os.getpid(), key]])
    try:
        with suppress(OSError):
            (folder / OWNER_FILE).write_text(f"{os.getpid()}\n{' '.join(sys.argv)}\n")
        yield folder
    finally:
        del _held[key]
        if inherited is None:
            os.environ.pop(_HELD_ENV, None)
        else:
            os.environ[_HELD_ENV] = inherited
        with suppress(OSError):
            (folder / OWNER_FILE).unlink(missing_ok=True)
        if verified:  # still ours: remove it while holding it (a waiter re-checks the inode it locked)
            with suppress(OSError):
                (folder / LOCK_FILE).unlink(missing_ok=True)
        lock.release()
        if created:
            with suppress(OSError):
                folder.rmdir()  # only if empty


def _acquire(folder: Path) -> tuple[Any, bool]:
    """Take ``folder``'s lock without waiting -> (the lock, whether its inode was verified), or raise
    :class:`FolderInUse` naming the holder."""
    lock, verified = _try_lock(folder / LOCK_FILE)
    if lock is None:
        raise FolderInUse(
            f"{folder}: in use by another ifkd process (pid {_owner_pid(folder)}); "
            "wait for it or use another --out"
        )
    return lock, verified


def _try_lock(path: Path) -> tuple[Any, bool]:
    """Lock the file ``path`` without waiting -> (the lock or None if another process holds it, whether
    the inode locked is the one at ``path``).

    A holder deletes the lock file while still holding it, so a process that opened the file before the
    deletion can lock the deleted inode just after: that lock counts for nothing, so try the file now at
    the path again.
    """
    from filelock import FileLock, Timeout

    for _ in range(50):
        lock = FileLock(str(path), timeout=0)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None, False
        fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
        if not isinstance(fd, int):
            return lock, False  # a filelock without the descriptor to check: keep the file in place
        try:
            if os.path.samestat(os.stat(path), os.fstat(fd)):
                return lock, True
        except OSError:
            pass
        lock.release()
    return None, False


def _owner_pid(folder: Path) -> str:
    """The live holder's pid from its owner file (it writes it just after locking: wait up to 1 s)."""
    for _ in range(20):
        try:
            pid = int((folder / OWNER_FILE).read_text().split()[0])
            if pid != os.getpid() and _alive(pid):
                return str(pid)
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.05)
    return "unknown"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _inherited_holds() -> list[list]:
    """[pid, folder] pairs of the environment whose holder is alive (a parent of this worker process)."""
    try:
        pairs = json.loads(os.environ.get(_HELD_ENV, "[]"))
        return [[int(pid), str(f)] for pid, f in pairs if _alive(int(pid))]
    except (ValueError, TypeError):
        return []


@contextmanager
def _cleanup_permit(folder: Path) -> Iterator[bool]:
    """Whether temp files in ``folder`` may be deleted as stale: yes under a lock this process (or its
    parent) holds, or one it can take now (held for the block); no while another process holds it."""
    real = Path(os.path.realpath(folder))
    held = set(_held) | {f for _, f in _inherited_holds()}
    for d in (real, *real.parents):
        if str(d) in held:
            yield True
            return
        if (d / LOCK_FILE).exists():
            lock, verified = _try_lock(d / LOCK_FILE)
            if lock is None:
                yield False  # a live writer's folder: its temp files are not stale
                return
            try:
                yield True
            finally:
                if verified:  # left by a killed writer (or made just now by us): nobody's
                    with suppress(OSError):
                        (d / OWNER_FILE).unlink(missing_ok=True)
                        (d / LOCK_FILE).unlink(missing_ok=True)
                lock.release()
            return
    yield True  # no ifkd writer holds this folder or one above it


def batch_exit(failed: int, total: int, what: str, where: str | Path) -> int:
    """The one exit rule of batch commands: 0 when every item succeeded; else a final line on stderr
    ("N of M <what> failed ...; the others are in <where>") and 2. Each failed item was listed before."""
    if not failed:
        return 0
    print(
        f"ifkd: {failed} of {total} {what} failed or were flagged (listed above); the others are in {where}",
        file=sys.stderr,
    )
    return 2


def not_found(path: str | Path, what: str = "file") -> str:
    """Why ``path`` cannot be opened as a file, in words: a symbolic link that loops or points nowhere is
    named as such (``Path.is_file`` says False for both, and "not found" would send a user looking for
    a file that is there), a folder is a folder; else "<what> not found"."""
    path = Path(path)
    if os.path.islink(path) and not path.exists():
        try:
            path.resolve(strict=True)
        except RuntimeError:
            return f"{path}: symbolic link loop (the {what} cannot be reached)"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return f"{path}: symbolic link loop (the {what} cannot be reached)"
        return f"{path}: dangling symbolic link (it points to {os.readlink(path)!r}, which does not exist)"
    if path.is_dir():
        return f"{path}: is a folder, not a {what}"
    return f"{path}: {what} not found"
