"""Shared helpers for benchmark scripts: machine description and JSON + Markdown result files."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """CPU, cores, versions, GPU and date: the same record the quality benchmark stores."""
    from ifkd.bench.harness import machine_info

    return machine_info()


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
