"""``--device`` strings -> a torch device: the one function every command and library entry point uses.

``auto`` picks the CUDA device of this process (``cuda:LOCAL_RANK`` under torchrun) when CUDA works,
else the CPU. Anything this machine cannot run -- CUDA on a CPU-only build, a missing GPU index, MPS off
a Mac -- or that is not a device at all is an :class:`~ifkd.io.InputError` with one line, raised before
any output is written (the CLI checks ``--device`` before it runs a command).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ifkd.io import InputError

if TYPE_CHECKING:
    import torch

CHOICES = "auto, cpu, cuda, cuda:N, mps"
_SPEC = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


def resolve_device(spec: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``'auto' | 'cpu' | 'cuda' | 'cuda:N' | 'mps'`` (any case, spaces around ignored) -> a device that
    works here. 'auto' and 'cuda' mean ``cuda:local_rank``; a ``torch.device`` is checked the same way."""
    import torch

    given = str(spec)
    text = given.strip().lower()
    match = _SPEC.match(text)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise InputError(f"--device {given}: not a device (use {CHOICES})")
    kind, index = match.group(1), match.group(2)
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError(
                f"--device {given}: MPS (Apple GPU) is not available on this machine (torch "
                f"{torch.__version__}); use --device cpu or auto"
            )
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise InputError(
            f"--device {given}: CUDA is not available on this machine (torch {torch.__version__}); "
            "use --device cpu or auto"
        )
    count = torch.cuda.device_count()
    i = local_rank if index is None else int(index)
    if i >= count:
        raise InputError(
            f"--device {given}: no CUDA device {i} on this machine ({count} found: "
            f"{', '.join(f'cuda:{k}' for k in range(count))}); use --device auto or one of those"
        )
    return torch.device("cuda", i)
