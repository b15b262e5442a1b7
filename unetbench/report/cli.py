"""Command line of compare_results.py.

Usage::

    python3 compare_results.py                                # results/*.json, tables on the terminal
    python3 compare_results.py results/ --report-dir results/report
    python3 compare_results.py a.json b.json --baseline gaudi_lazy:fast --csv runs.csv --plots plots/
    python3 compare_results.py results/ --html report.html        # one self-contained file
    python3 compare_results.py runs/new/results --baseline-dir runs/old/results   # what changed

Exit status: 0 when at least one complete run was found (broken, failed or interrupted files
are listed, not fatal); 2 when none was (the outputs asked for are still written, listing why).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from ..core.errors import UserError
from ..core.output_lock import output_lock
from ..core.registry import BACKENDS, first_backend
from .baseline import baseline_statements, baseline_table, load_baseline
from .compare import build_comparison
from .energy_cost import apply_prices, default_site, top_operations_table
from .energy_plots import write_energy_plot
from .load import load_runs
from .matrix import matrix_table
from .sections import build_tables
from .staging import StagedDir
from .tables import render_text


# What --report-dir holds: the option each file answers to, and its name there.
REPORT_FILES = {"markdown": "report.md", "html": "report.html", "csv": "summary.csv", "json": "summary.json",
                "plots": "plots"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="compare_results.py", description="Compare unetbench training results: "
                                "tables on the terminal, and Markdown, CSV, JSON and PNG plots on request.")
    p.add_argument("inputs", nargs="*", default=["results"], metavar="RESULTS_DIR_OR_FILE",
                   help="folders (their results_*.json are read) or result files; default: results/")
    p.add_argument("--baseline", metavar="BACKEND[:PROFILE[:WORLD_SIZE]]",
                   help=f"group the speedups are measured against, e.g. {first_backend()} or "
                        f"{first_backend()}:fast; default: {first_backend()}:parity if present, else the first group")
    p.add_argument("--expect", default="", metavar="BACKEND,...", type=_expected,
                   help="backends that should have results; an absent one is listed as missing")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report (tables, findings, plot links)")
    p.add_argument("--csv", type=Path, metavar="FILE", help="write one row per run with flat columns")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the summary as JSON")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots into DIR")
    p.add_argument("--html", type=Path, metavar="FILE",
                   help="write one self-contained HTML report (tables, plots, prediction overlays inline)")
    p.add_argument("--baseline-dir", type=Path, metavar="DIR",
                   help="an earlier run's results folder: changes per group, flagged when outside the noise")
    p.add_argument("--baseline-tolerance", type=_percent, default=5.0, metavar="PCT",
                   help="with fewer than 3 runs a side (noise unknown), flag changes beyond PCT%% (default 5)")
    p.add_argument("--report-dir", type=Path, metavar="DIR",
                   help="write all of the above into DIR: report.md, report.html, summary.csv, summary.json, plots/")
    p.add_argument("--site", type=Path, default=default_site(), metavar="FILE",
                   help="site.env whose <GROUP>_PRICE_PER_HOUR gives cost columns (default: $UNETBENCH_SITE)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the tables")
    p.add_argument("-v", "--verbose", action="store_true", help="log what is loaded and written")
    args = p.parse_args(argv)
    if args.report_dir:
        for option, name in REPORT_FILES.items():
            setattr(args, option, getattr(args, option) or args.report_dir / name)
    return args


def _expected(text: str) -> list:
    """--expect: registered backends, or run names of theirs (<backend>_...), checked here so a
    typo is refused rather than reported as a backend that has no results."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in BACKENDS and not any(name.startswith(f"{b}_") for b in BACKENDS):
            raise argparse.ArgumentTypeError(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)} "
                                             f"(or run names that start with one, e.g. {next(iter(BACKENDS))}_fast)")
    return names


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def draw_all(comp, folder: Path) -> dict[str, Path]:
    """Every plot of the report: the standard ones, time to quality, prediction overlays."""
    from .overlay_figures import write_overlay_figures
    from .plots import write_plots
    from .timetotarget import write_quality_plot
    return {**write_plots(comp, folder), **write_quality_plot(comp, folder), **write_overlay_figures(comp, folder),
            **write_energy_plot(comp, folder)}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_dir is None:
        return compare(args)
    # One comparison per report folder at a time: two would delete each other's staged work.
    with output_lock(Path(args.report_dir), "compare_results.py", "--report-dir"):
        return compare(args)


def compare(args) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    from .export import write_csv, write_json, write_markdown  # noqa: E402  (kept off the import path of --help)

    before = load_baseline(args.baseline_dir) if args.baseline_dir else None  # checked before anything is written
    runs = load_runs(args.inputs, expect=args.expect)
    apply_prices(runs, args.site)
    comp = build_comparison(runs, baseline=args.baseline)
    tables = build_tables(comp)
    tables += [t for t in [top_operations_table(comp)] if t is not None]
    matrix = matrix_table(comp, args.baseline)     # runs of several workloads: one row each
    if matrix is not None:
        tables.insert(1, matrix)
    if before is not None and comp.groups:
        tables.append(baseline_table(comp, before, args.baseline_tolerance / 100))
        comp.statements += baseline_statements(tables[-1])
    if not args.quiet:
        for table in tables:
            print(render_text(table))
        if comp.statements:
            print("Findings\n========")
            print("\n".join(comp.statements) + "\n")
    # --report-dir replaced whole, once all is written (staging.py), if it holds only what we write
    stage = StagedDir(args.report_dir, owned=set(REPORT_FILES.values()))
    for name in ("markdown", "html", "csv", "json", "plots"):
        setattr(args, name, stage.redirect(getattr(args, name)))
    written: list[Path] = []
    plots = {}
    with tempfile.TemporaryDirectory(prefix="unetbench-plots-") as scratch:
        if (args.plots or args.html) and comp.groups:
            plots = draw_all(comp, args.plots or Path(scratch))  # --html alone: the PNGs only go inline
            written += plots.values() if args.plots else []
        if args.html:
            from .html import write_html
            write_html(args.html, comp, tables, plots)
            written.append(args.html)
    if args.markdown:
        write_markdown(args.markdown, comp, tables, plots if args.plots else {})
        written.append(args.markdown)
    if args.csv:
        write_csv(args.csv, comp)
        written.append(args.csv)
    if args.json:
        write_json(args.json, comp, tables)
        written.append(args.json)
    written = [stage.shown(path) for path in written]
    stage.commit()
    for path in written:
        print(f"wrote {path}")
    if not comp.groups:
        where = ", ".join(map(str, args.inputs))
        if not runs:
            raise UserError(f"no results_*.json found in {where}; run the training first or name the results folder")
        raise UserError(f"no complete run among {len(runs)} result files in {where} (see the Runs table for why)")
    return 0
