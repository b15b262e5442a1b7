#!/usr/bin/env python3
"""How long compare_results.py takes on many result files (target: 100 files in under 5 s).

    python3 bench/compare_speed.py                 # 100 files, tables + CSV + JSON + Markdown + plots
    python3 bench/compare_speed.py --files 500 --no-plots

Writes synthetic schema-valid results (4 backends x 2 profiles, repeated runs, some broken)
into a temporary folder and times the real command in a fresh process, interpreter start-up
and imports included. Prints one line per configuration; the figure is the best of --repeat.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from results_fixtures import make_result, write_result  # noqa: E402

from unetbench.core.registry import BACKENDS, PROFILES  # noqa: E402


def make_files(folder: Path, count: int) -> None:
    combos = [(b, p) for b in BACKENDS for p in PROFILES]
    # Made-up speeds: only their spread matters, so that the report has something to rank.
    base = {b: 250.0 / (1 + 2 * i) for i, b in enumerate(BACKENDS)}
    for i in range(count):
        backend, profile = combos[i % len(combos)]
        seed = i // len(combos)
        status = "failed" if i % 50 == 49 else "completed"
        speed = base[backend] * (1.5 if profile == "fast" else 1.0) * (1 + 0.01 * (seed % 5))
        write_result(folder, make_result(backend, profile, seed=seed, status=status, samples_per_s=speed,
                                         epochs=10, step_samples=200))


def time_command(args: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "compare_results.py"), *args], check=True,
                       stdout=subprocess.DEVNULL, cwd=ROOT)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "results", Path(tmp) / "report"
        make_files(folder, args.files)
        print(f"{args.files} result files; python {platform.python_version()} on {platform.machine()}, "
              f"{platform.node()}; best of {args.repeat}")
        t = time_command([str(folder), "-q"], args.repeat)
        print(f"tables only                        {t:6.2f} s")
        t = time_command([str(folder), "-q", "--markdown", str(out / "r.md"), "--csv", str(out / "s.csv"),
                          "--json", str(out / "s.json")], args.repeat)
        print(f"tables + Markdown + CSV + JSON     {t:6.2f} s")
        if not args.no_plots:
            t = time_command([str(folder), "-q", "--report-dir", str(out)], args.repeat)
            print(f"--report-dir (all of it, plots)    {t:6.2f} s")


if __name__ == "__main__":
    main()
