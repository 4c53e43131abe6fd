"""Safe file writing and user-facing errors shared by every module.

Writers go through a temp file + fsync + rename so a crash never leaves a half-written file under the
final name; errors about user input are :class:`InputError` so the CLI can print one line and exit 2.
"""

from __future__ import annotations

import glob
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
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

    Only for files that one process writes at a time (a shape's files, a run's checkpoints).
    """
    path = Path(path)
    if path.parent.is_dir():
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
        raise InputError(f"{path}: file not found")
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
