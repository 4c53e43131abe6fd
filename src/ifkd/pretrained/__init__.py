"""Shipped weights: ``--model pretrained`` resolves to the run folder packaged here (no downloads)."""

from __future__ import annotations

from pathlib import Path

from ifkd.io import InputError

PRETRAINED_DIR = Path(__file__).resolve().parent
DEFAULT_NAME = "ifkd-cpu"
FRAMED_NAME = "ifkd-frame-cpu"
"""the shipped weights trained on pictures in the inference framing (``data.aug_frame`` = 1): every framing
of one picture gives the same mesh (benchmarks/results/framing_frame.md); the default reads the size a
well-framed render shows instead, and is better on R2N2-style renders"""


def available() -> list[str]:
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / "config.json").is_file())


def resolve_run(run: str | Path) -> Path:
    """'pretrained' or 'pretrained:<name>' -> the packaged run folder; any other value is a path."""
    text = str(run)
    if text == "pretrained" or text.startswith("pretrained:"):
        name = text.split(":", 1)[1] if ":" in text else DEFAULT_NAME
        folder = PRETRAINED_DIR / name
        if not (folder / "config.json").is_file():
            raise InputError(
                f"{folder}: no shipped weights named {name!r} (available: {available() or 'none'})"
            )
        return folder
    path = Path(run)
    if not path.is_dir():
        raise InputError(f"{path}: model run folder not found")
    return path
