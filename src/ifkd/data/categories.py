"""The 13 ShapeNet categories of single-view reconstruction benchmarks, and the default split.

One table shared by the procedural generator (which mimics them) and the ShapeNet importers.
"""

from __future__ import annotations

SYNSETS: dict[str, str] = {
    "airplane": "02691156",
    "bench": "02828884",
    "cabinet": "02933112",
    "car": "02958343",
    "chair": "03001627",
    "display": "03211117",
    "lamp": "03636649",
    "loudspeaker": "03691459",
    "rifle": "04090263",
    "sofa": "04256520",
    "table": "04379243",
    "telephone": "04401088",
    "vessel": "04530566",
}
"""Category name -> ShapeNet synset id (the 13 classes of the R2N2 / OccNet SVR benchmark)."""

NAMES: dict[str, str] = {v: k for k, v in SYNSETS.items()}
"""Synset id -> category name."""

SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
"""train / val / test per category: OccNet's random per-class split (PROTOCOLS.md)."""
