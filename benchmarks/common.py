"""Shared helpers for benchmark scripts: machine description and JSON + Markdown result files."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_results(name: str, payload: dict, markdown: str) -> tuple[Path, Path]:
    """Write results/<name>.json and results/<name>.md (atomic)."""
    from ifkd.io import atomic_write_json, atomic_write_text

    RESULTS.mkdir(parents=True, exist_ok=True)
    js, md = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    atomic_write_json(js, payload)
    atomic_write_text(md, markdown)
    return js, md


def machine_line(m: dict) -> str:
    gpu = f", GPU {m['cuda']}" if m.get("cuda") else ""
    return f"{m['cpu']}, {m['cores']} cores{gpu}; torch {m['torch']}; {m['date']}"


def dumps(obj) -> str:
    return json.dumps(obj, indent=2)
