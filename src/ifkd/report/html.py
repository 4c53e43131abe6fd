"""Render a report :class:`~ifkd.report.document.Document` as one self-contained HTML page (index.html).

Figures are embedded as base64 PNG data URIs, so the page opens offline on its own; included Markdown
(a benchmark's RESULTS.md) goes through a small converter that knows what our tools write: headings,
pipe tables, lists, fenced code and paragraphs.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from ifkd.io import atomic_write_text
from ifkd.report.document import Document, Figure, Heading, Markdown, Table, Text
from ifkd.report.markdown import IMAGE, is_relative_link, shift_headings

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1600px; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ccc; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .15em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .3em; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 14px; color: #555; margin-top: .3em; }
code { background: #f4f4f4; padding: 0 3px; border-radius: 3px; }
pre { background: #f4f4f4; padding: .6em; overflow-x: auto; }
"""


def inline(text: str, base: Path | None = None) -> str:
    """Escape HTML, then turn inline Markdown (`code`, **bold**, *em*, [text](url), ![alt](src)) into
    tags; relative images under ``base`` are embedded as data URIs (the page stays self-contained)."""
    # Code spans first, kept aside so their contents are not touched by the other rules.
    spans: list[str] = []

    def keep(m: re.Match) -> str:
        spans.append(f"<code>{html.escape(m.group(1))}</code>")
        return f"\x00{len(spans) - 1}\x00"

    def image(m: re.Match) -> str:
        alt, src = m.group(1), m.group(2)
        path = Path(base) / src if base is not None and is_relative_link(src) else None
        if path is not None and path.suffix.lower() == ".png" and path.is_file():
            src = png_data_uri(path)
        spans.append(f'<img src="{html.escape(src, quote=True)}" alt="{html.escape(alt, quote=True)}">')
        return f"\x00{len(spans) - 1}\x00"

    text = re.sub(r"`([^`]+)`", keep, text)
    text = IMAGE.sub(image, text)
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", text)
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)


def table_to_html(headers: list[str], rows: list[list[str]], numeric: list[bool], caption: str = "") -> str:
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{inline(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{inline(h)}</th>" for h in headers) + "</tr></thead><tbody>")
    for row in rows:
        cells = list(row) + [""] * (len(headers) - len(row))
        tds = "".join(
            f'<td class="num">{inline(str(c))}</td>' if numeric[i] else f"<td>{inline(str(c))}</td>"
            for i, c in enumerate(cells)
        )
        out.append(f"<tr>{tds}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _split_row(line: str) -> list[str]:
    body = line.strip().strip("|")
    cells = re.split(r"(?<!\\)\|", body)
    return [c.strip().replace("\\|", "|") for c in cells]


def markdown_to_html(text: str, base: Path | None = None) -> str:
    """A Markdown subset -> HTML: ATX headings, pipe tables, -/* and 1. lists, ``` fences, paragraphs."""
    lines = text.splitlines()
    out: list[str] = []
    para: list[str] = []
    i = 0

    def flush() -> None:
        if para:
            out.append("<p>" + inline(" ".join(para), base) + "</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            out.append("<pre>" + html.escape("\n".join(lines[i + 1 : j])) + "</pre>")
            i = j + 1
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif stripped.startswith("|") and i + 1 < len(lines) and re.match(r"^\|?[\s:|-]+\|?$", lines[i + 1]):
            flush()
            headers = _split_row(stripped)
            numeric = [s.endswith(":") and not s.startswith(":") for s in _split_row(lines[i + 1])]
            numeric += [False] * (len(headers) - len(numeric))
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(_split_row(lines[i]))
                i += 1
            out.append(table_to_html(headers, rows, numeric))
            continue
        elif re.match(r"^([-*]|\d+\.)\s+", stripped):
            flush()
            tag = "ol" if stripped[0].isdigit() else "ul"
            items = []
            while i < len(lines) and re.match(r"^([-*]|\d+\.)\s+", lines[i].strip()):
                item = re.sub(r"^([-*]|\d+\.)\s+", "", lines[i].strip())
                items.append("<li>" + inline(item, base) + "</li>")
                i += 1
            out.append(f"<{tag}>" + "".join(items) + f"</{tag}>")
            continue
        elif not stripped:
            flush()
        else:
            para.append(stripped)
        i += 1
    flush()
    return "\n".join(out)


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def to_html(doc: Document) -> str:
    body = [f"<h1>{inline(doc.title)}</h1>"]
    for block in doc.blocks:
        if isinstance(block, Heading):
            level = min(6, max(2, block.level))
            body.append(f"<h{level}>{inline(block.text)}</h{level}>")
        elif isinstance(block, Text):
            body.append(f"<p>{inline(block.text)}</p>")
        elif isinstance(block, Table):
            numeric = [i >= block.align_left for i in range(len(block.headers))]
            body.append(table_to_html(block.headers, block.rows, numeric, block.caption))
        elif isinstance(block, Figure):
            alt = html.escape(block.caption or block.path.name, quote=True)
            cap = f"<figcaption>{inline(block.caption)}</figcaption>" if block.caption else ""
            body.append(f'<figure><img src="{png_data_uri(block.path)}" alt="{alt}">{cap}</figure>')
        elif isinstance(block, Markdown):
            body.append(markdown_to_html(shift_headings(block.text, 1), block.base))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"<title>{html.escape(doc.title)}</title>\n<style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_html(doc: Document, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, to_html(doc))
    return path
