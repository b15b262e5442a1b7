"""Plain tables rendered for the terminal (aligned text) or Markdown.

Usage::

    from unetbench.report.tables import Table, render_text, render_markdown
    t = Table("Performance", ["group", "samples/s"], [["cuda/parity", "251.3"]], notes=["median of 3 runs"])
    print(render_text(t)); md = render_markdown(t)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    key: str = ""        # short machine name (performance, memory, ...) for the JSON summary


def fmt(value: Any, digits: int = 2) -> str:
    """A number with fixed decimals; '-' for a missing value."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _numeric(cell: str) -> bool:
    if cell in ("-", "n/a"):   # a missing figure, aligned as the numbers of its column
        return True
    head = cell.split(" ")[0].rstrip("x%*")
    try:
        float(head)
        return True
    except ValueError:
        return False


def render_text(table: Table) -> str:
    widths = [len(h) for h in table.headers]
    for row in table.rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if i and _numeric(c) else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()
    out = [table.title, "=" * len(table.title), line(table.headers), line(["-" * w for w in widths])]
    out += [line(row) for row in table.rows]
    out += [f"  {n}" for n in table.notes]
    return "\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(table: Table, level: int = 2) -> str:
    out = [f"{'#' * level} {table.title}", ""]
    out.append("| " + " | ".join(_md_cell(h) for h in table.headers) + " |")
    aligns = ["---:" if i and table.rows and all(_numeric(r[i]) or r[i] == "-" for r in table.rows) else "---"
              for i in range(len(table.headers))]
    out.append("| " + " | ".join(aligns) + " |")
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        out.append("")
        out += [f"- {_md_cell(n)}" for n in table.notes]
    return "\n".join(out) + "\n"


def as_records(table: Table) -> list[dict[str, str]]:
    return [dict(zip(table.headers, row)) for row in table.rows]
