#!/usr/bin/env python3
"""Compare unetbench training results: terminal tables, Markdown, CSV, JSON and PNG plots.

    python3 compare_results.py                         # reads results/results_*.json
    python3 compare_results.py results/ --report-dir results/report
    python3 compare_results.py --help

All logic lives in unetbench/report/ (see docs/compare.md).
"""

from unetbench.core.errors import run_cli
from unetbench.report.cli import main

if __name__ == "__main__":
    run_cli(main, stop_cleanly=True)
