"""One self-contained HTML report: every table, finding, plot and overlay in a single file.

Usage::

    python3 compare_results.py results/ --html report.html     # or --report-dir DIR (report.html)
    write_html("report.html", comp, tables, plots)              # plots: {name: PNG path}

Generic over the report's content: every Table that sections.build_tables returns (and any
other table passed in) becomes a section, every PNG in ``plots`` a figure, images named
``overlay_*`` under "Prediction overlays". Images are embedded as data: URIs; the page has no
script, external stylesheet, font or link to fetch, so it opens offline, can be mailed as one
file, and prints (tables and figures are kept whole on a page).
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path

from ..core.atomic import atomic_write_text
from .compare import SPREAD, Comparison
from .tables import Table, _numeric

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1d1d1f; background: #fff; margin: 0 auto; max-width: 1180px; padding: 1.5rem 2rem 3rem; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 1px solid #ddd; }
.meta { color: #555; margin: 0 0 1rem; }
nav { background: #f5f5f7; padding: .6rem 1rem; border-radius: 6px; display: flex; flex-wrap: wrap; gap: .3rem 1.1rem; }
nav a { color: #0b57d0; text-decoration: none; }
.findings li { margin: .25rem 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .9rem; margin: .3rem 0; }
th, td { border: 1px solid #d0d0d5; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f0f0f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafafb; }
.notes { color: #444; font-size: .85rem; margin: .3rem 0 0; padding-left: 1.2rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .85rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  nav { display: none; }
  section, figure, table { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def table_html(table: Table) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{_e(c)}</td>' if i and _numeric(c) else f"<td>{_e(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in table.rows)
    notes = "".join(f"<li>{_e(n)}</li>" for n in table.notes)
    anchor = _e(table.key or table.title)
    return (f'<section id="{anchor}"><h2>{_e(table.title)}</h2><div class="scroll"><table><thead><tr>{head}</tr>'
            f"</thead><tbody>{body}</tbody></table></div>" + (f'<ul class="notes">{notes}</ul>' if notes else "")
            + "</section>")


def image_html(name: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    caption = name.replace("_", " ")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def html_text(comp: Comparison, tables: list[Table], plots: dict[str, Path] | None = None,
              statements: list[str] | None = None) -> str:
    plots = {k: Path(v) for k, v in (plots or {}).items() if Path(v).is_file()}
    overlays = {k: v for k, v in plots.items() if k.startswith("overlay_")}
    figures = {k: v for k, v in plots.items() if k not in overlays}
    statements = comp.statements if statements is None else statements
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    links = [("findings", "Findings")] if statements else []
    links += [(t.key or t.title, t.title) for t in tables]
    links += [("plots", "Plots")] if figures else []
    links += [("overlays", "Prediction overlays")] if overlays else []
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>unetbench comparison</title>", f"<style>{CSS}</style></head><body>",
        "<header><h1>unetbench comparison</h1>",
        f'<p class="meta">Generated {generated} from {len(comp.runs)} result files; baseline '
        f"{_e(comp.baseline.label if comp.baseline else 'none')}; spread = {_e(SPREAD)}.</p></header>",
        "<nav>" + "".join(f'<a href="#{_e(k)}">{_e(t)}</a>' for k, t in links) + "</nav>",
    ]
    if statements:
        items = "".join(f"<li>{_e(s.strip())}</li>" for s in statements)
        parts.append(f'<section id="findings"><h2>Findings</h2><ul class="findings">{items}</ul></section>')
    parts += [table_html(t) for t in tables]
    if figures:
        parts.append('<section id="plots"><h2>Plots</h2>' + "".join(image_html(k, v) for k, v in figures.items())
                     + "</section>")
    if overlays:
        parts.append('<section id="overlays"><h2>Prediction overlays</h2><p class="meta">The same test images for '
                     "every group, predicted by each run's best checkpoint at the end of training; the last "
                     "panel marks in red where the predictions differ.</p>"
                     + "".join(image_html(k, v) for k, v in overlays.items()) + "</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: str | Path, comp: Comparison, tables: list[Table], plots: dict[str, Path] | None = None,
               statements: list[str] | None = None) -> None:
    atomic_write_text(path, html_text(comp, tables, plots, statements))
