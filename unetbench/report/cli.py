"""Command line of compare_results.py.

Usage::

    python3 compare_results.py                                # results/*.json, tables on the terminal
    python3 compare_results.py results/ --report-dir results/report
    python3 compare_results.py a.json b.json --baseline gaudi_lazy:fast --csv runs.csv --plots plots/

Exit status: 0 when at least one complete run was found (broken, failed or interrupted files
are listed, not fatal); 2 when none was (the outputs asked for are still written, listing why).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from ..errors import UserError
from .compare import build_comparison
from .load import load_runs
from .sections import build_tables
from .tables import render_text


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="compare_results.py", description="Compare unetbench training results: "
                                "tables on the terminal, and Markdown, CSV, JSON and PNG plots on request.")
    p.add_argument("inputs", nargs="*", default=["results"], metavar="RESULTS_DIR_OR_FILE",
                   help="folders (their results_*.json are read) or result files; default: results/")
    p.add_argument("--baseline", metavar="BACKEND[:PROFILE[:WORLD_SIZE]]",
                   help="group the speedups are measured against, e.g. cuda or cuda:fast; "
                        "default: cuda:parity if present, else the first group")
    p.add_argument("--expect", default="", metavar="BACKEND,...",
                   help="backends that should have results; an absent one is listed as missing")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report (tables, findings, plot links)")
    p.add_argument("--csv", type=Path, metavar="FILE", help="write one row per run with flat columns")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the summary as JSON")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots into DIR")
    p.add_argument("--report-dir", type=Path, metavar="DIR",
                   help="write all of the above into DIR: report.md, summary.csv, summary.json, plots/")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the tables")
    p.add_argument("-v", "--verbose", action="store_true", help="log what is loaded and written")
    args = p.parse_args(argv)
    if args.report_dir:
        args.markdown = args.markdown or args.report_dir / "report.md"
        args.csv = args.csv or args.report_dir / "summary.csv"
        args.json = args.json or args.report_dir / "summary.json"
        args.plots = args.plots or args.report_dir / "plots"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    from .export import write_csv, write_json, write_markdown  # noqa: E402  (kept off the import path of --help)

    runs = load_runs(args.inputs, expect=[b.strip() for b in args.expect.split(",") if b.strip()])
    comp = build_comparison(runs, baseline=args.baseline)
    tables = build_tables(comp)
    if not args.quiet:
        for table in tables:
            print(render_text(table))
        if comp.statements:
            print("Findings\n========")
            print("\n".join(comp.statements) + "\n")
    written: list[Path] = []
    plots = {}
    if args.plots and comp.groups:
        from .plots import write_plots
        plots = write_plots(comp, args.plots)
        written += plots.values()
    if args.markdown:
        write_markdown(args.markdown, comp, tables, plots)
        written.append(args.markdown)
    if args.csv:
        write_csv(args.csv, comp)
        written.append(args.csv)
    if args.json:
        write_json(args.json, comp, tables)
        written.append(args.json)
    for path in written:
        print(f"wrote {path}")
    if not comp.groups:
        where = ", ".join(map(str, args.inputs))
        if not runs:
            raise UserError(f"no results_*.json found in {where}; run the training first or name the results folder")
        raise UserError(f"no complete run among {len(runs)} result files in {where} (see the Runs table for why)")
    return 0
