"""Render a report :class:`~ifkd.report.document.Document` as Markdown: report.md, figures linked by
relative path."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ifkd.io import atomic_write_text
from ifkd.report.document import Document, Figure, Heading, Markdown, Table, Text


def table_to_markdown(table: Table) -> str:
    """A GitHub pipe table; label columns left-aligned, number columns right-aligned."""
    ncol = len(table.headers)
    seps = ["---" if i < table.align_left else "---:" for i in range(ncol)]
    lines = [
        "| " + " | ".join(_cell(h) for h in table.headers) + " |",
        "|" + "|".join(seps) + "|",
    ]
    for row in table.rows:
        cells = list(row) + [""] * (ncol - len(row))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    text = "\n".join(lines) + "\n"
    return (f"*{table.caption}*\n\n" + text) if table.caption else text


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document, base: Path) -> str:
    """The document as Markdown; figure paths are written relative to ``base`` (the .md file's folder)."""
    parts = [f"# {doc.title}\n"]
    for block in doc.blocks:
        if isinstance(block, Heading):
            parts.append("#" * max(2, block.level) + f" {block.text}\n")
        elif isinstance(block, Text):
            parts.append(block.text.strip() + "\n")
        elif isinstance(block, Table):
            parts.append(table_to_markdown(block))
        elif isinstance(block, Figure):
            rel = Path(os.path.relpath(block.path, base)).as_posix()
            parts.append(f"![{block.path.stem}]({rel})\n")
            if block.caption:
                parts.append(f"*{block.caption}*\n")
        elif isinstance(block, Markdown):
            text = shift_headings(block.text, 1)
            if block.base is not None:
                text = relink_images(text, Path(block.base), base)
            parts.append(text.strip() + "\n")
    return "\n".join(parts)


IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
"""A Markdown image ``![alt](src)``."""


def is_relative_link(src: str) -> bool:
    return not re.match(r"^([a-z][a-z0-9+.-]*:|/|#)", src, re.IGNORECASE)


def relink_images(text: str, source: Path, target: Path) -> str:
    """Re-point relative image links of Markdown written in folder ``source`` for a file in ``target``."""

    def fix(m: re.Match) -> str:
        src = m.group(2)
        if not is_relative_link(src):
            return m.group(0)
        return f"![{m.group(1)}]({Path(os.path.relpath(source / src, target)).as_posix()})"

    return IMAGE.sub(fix, text)


def shift_headings(text: str, by: int) -> str:
    """Demote Markdown ATX headings by ``by`` levels (outside code fences), so an included document's
    ``# Title`` sits under the report's own title."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            hashes = len(line) - len(line.lstrip("#"))
            if line[hashes : hashes + 1] in (" ", ""):
                line = "#" * min(6, hashes + by) + line[hashes:]
        out.append(line)
    return "\n".join(out)


def write_markdown(doc: Document, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, to_markdown(doc, path.parent))
    return path
