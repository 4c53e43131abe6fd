"""The report as data: a title and a list of blocks (headings, text, tables, figures, raw Markdown).

The builders (:mod:`ifkd.report.build`) fill a :class:`Document`; :mod:`ifkd.report.markdown` and
:mod:`ifkd.report.html` render the same document, so the two outputs never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    """One paragraph; inline Markdown (`code`, **bold**, [link](url)) is allowed."""

    text: str


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    align_left: int = 1
    """the first ``align_left`` columns are labels (left-aligned); the rest are numbers (right-aligned)"""


@dataclass(frozen=True)
class Figure:
    path: Path
    """a PNG inside the report folder (normally ``figures/``)"""
    caption: str = ""


@dataclass(frozen=True)
class Markdown:
    """Raw Markdown written by another tool (e.g. a benchmark's RESULTS.md), included as is."""

    text: str
    base: Path | None = None
    """the folder its relative image links are relative to (they are re-pointed or embedded)"""


Block = Heading | Text | Table | Figure | Markdown


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    @property
    def figures(self) -> list[Path]:
        return [b.path for b in self.blocks if isinstance(b, Figure)]
