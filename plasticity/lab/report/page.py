"""HTML building blocks for the report: one self-contained page, escaped text, tables, figures.

The page carries its own stylesheet and refers only to image files next to it, so the
report folder opens in any browser offline, can be zipped or copied, and loads nothing
from the network.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

CODE = re.compile(r"`([^`]+)`")

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1240px;
       padding: 1.5em 2em 4em; color: #1d1d1f; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2.2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { margin-top: 1.6em; }
p.note, figcaption { color: #555; font-size: 0.92em; }
code { background: #f3f3f5; padding: 0.05em 0.3em; border-radius: 3px; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #d8d8dc; padding: 0.3em 0.65em; text-align: left; vertical-align: top; }
th { background: #f3f3f5; }
table.wide { width: 100%; table-layout: fixed; overflow-wrap: anywhere; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
nav ul { columns: 2; }
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def paragraph(text: str, note: bool = False) -> str:
    """A paragraph of text, escaped, with `backticked` spans set as code; `note` mutes it."""
    attributes = ' class="note"' if note else ""
    body = CODE.sub(r"<code>\1</code>", esc(text))
    return f"<p{attributes}>{body}</p>"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = (), wide: bool = False) -> str:
    """An HTML table of plain-text cells; columns listed in `numeric` are right-aligned.

    wide: spread over the page width in equal columns, wrapping long cells, for tables with a
    column per rule that would otherwise run off the page.
    """
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    cells = ['<td class="num">' if i in numeric else "<td>" for i in range(len(headers))]
    body = "".join("<tr>" + "".join(f"{cells[i]}{esc(cell)}</td>" for i, cell in enumerate(row)) + "</tr>" for row in rows)
    opening = '<table class="wide">' if wide else "<table>"
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(src: str, caption: str) -> str:
    """An image file next to the page, with a caption that says what it shows."""
    return f'<figure><img src="{esc(src)}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def section(anchor: str, heading: str, parts: Sequence[str]) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(heading)}</h2>' + "\n".join(parts) + "</section>"


def subsection(heading: str, parts: Sequence[str]) -> str:
    return f"<h3>{esc(heading)}</h3>" + "\n".join(parts)


def page(title: str, intro: Sequence[str], sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document: title, intro paragraphs, a contents list, then (anchor, heading, html) sections."""
    contents = "".join(f'<li><a href="#{esc(anchor)}">{esc(heading)}</a></li>' for anchor, heading, _ in sections)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n<h1>{esc(title)}</h1>\n"
        + "\n".join(intro)
        + f"\n<nav><ul>{contents}</ul></nav>\n"
        + "\n".join(body for _, _, body in sections)
        + "\n</body></html>\n"
    )
