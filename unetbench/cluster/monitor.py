"""Device monitor: sample utilisation, memory, power and temperature once a second to a CSV.

Usage (the batch scripts start it in the background and stop it with SIGTERM)::

    python3 -m unetbench.monitor --backend cuda --out results/ --run-name cuda
    # -> results/monitor_cuda.csv:
    # timestamp,device_index,utilization_pct,memory_used_mib,power_w,temperature_c
    # 1732440000.512,0,97,40211,612.3,64

It runs the backend's device tool (each device folder's spec.py says which, how, and how to read
its output: nvidia-smi for CUDA, amd-smi for ROCm, xpu-smi for Intel GPUs, hl-smi for Gaudi) and
normalises its rows to the header above (the compare step reads exactly this header to
integrate power into energy). Only the job's devices are written (each tool's job_devices:
CUDA_VISIBLE_DEVICES, HABANA_VISIBLE_MODULES, ...): the tools list every device of the node,
and a 2-GPU job on an 8-GPU node must not be reported as the node. The
timestamp is this host's clock in unix seconds when the row arrived: both tools print their
own timestamps in different formats, and the host clock is the one the results use too.
A value the tool reports as ``[N/A]`` is left empty. When neither tool is present (a CPU
run, a laptop) it logs one line and exits 0. An existing CSV is appended to, so a requeued
job's samples continue in the same file.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence, TextIO

from ..core.registry import BACKENDS
from ..devices.spec import comma_rows

log = logging.getLogger("unetbench.cluster.monitor")

HEADER = ["timestamp", "device_index", "utilization_pct", "memory_used_mib", "power_w", "temperature_c"]

# Every device's tool (devices/<device>/spec.py), by executable name.
TOOLS = {spec.tool.name: spec.tool for spec in BACKENDS.values() if spec.tool is not None}
# Which tool each backend samples; "auto" tries every known tool.
PREFERRED = {name: [spec.tool.name] if spec.tool else [] for name, spec in BACKENDS.items()}
PREFERRED["auto"] = list(TOOLS)


def job_devices(tool: str, env=os.environ) -> Optional[set[int]]:
    """The device ids (as the tool's first column) this job may use; None: every listed one.
    Where a tool lists every device of the node, rows of other devices are dropped, or a
    1-card job on an 8-card node would report the node's energy."""
    ids = TOOLS[tool].job_devices(env)
    return set(ids) if ids is not None else None


def pick_tool(backend: str) -> Optional[str]:
    for tool in PREFERRED.get(backend, PREFERRED["auto"]):
        if shutil.which(tool):
            return tool
    return None


def _number(text: str) -> str:
    """'97 %' / '612.30 W' / '[N/A]' -> '97' / '612.30' / ''."""
    text = text.strip()
    if not text:
        return ""
    token = text.split()[0]
    try:
        float(token)
    except ValueError:
        return ""
    return token


def normalise(fields: Sequence[str], now: float) -> Optional[list[str]]:
    """One row of a tool's five fields -> one CSV row in HEADER order, or None for no data."""
    if len(fields) != len(HEADER) - 1 or not _number(fields[0]):
        return None
    return [f"{now:.3f}", str(int(float(_number(fields[0]))))] + [_number(f) for f in fields[1:]]


def record(lines: Iterable[str], out: TextIO, clock=time.time, keep: Optional[set[int]] = None,
           rows_of=comma_rows) -> int:
    """Write normalised rows as they arrive (flushed, so a killed job keeps what it sampled);
    with ``keep``, only the rows of those devices. ``rows_of``: the tool's reader of its output."""
    writer = csv.writer(out, lineterminator="\n")
    rows = 0
    for fields in rows_of(lines):
        row = normalise(fields, clock())
        if row is not None and (keep is None or int(row[1]) in keep):
            writer.writerow(row)
            out.flush()
            rows += 1
    return rows


def monitor(csv_path: Path, tool: str, interval: int = 1) -> int:
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    new_file = not csv_path.exists() or csv_path.stat().st_size == 0
    stopping = []

    def stop(signum, _frame):
        # Stop the tool; its stdout then ends and the loop below finishes cleanly.
        stopping.append(signum)
        if procs:
            procs[0].terminate()

    # Handlers first: a job that ends at once must still stop us cleanly, not kill us mid-row.
    procs: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The time-limit warning (scancel --signal=USR1 --full reaches every process of the job) is
    # the training's to act on; ignored here and, inherited through exec, by the device tool.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    # stdin never a terminal: some tools (xpu-smi 2.0) print aligned columns instead of CSV to one.
    proc = subprocess.Popen(TOOLS[tool].sample(interval), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, bufsize=1)
    procs.append(proc)
    if stopping:
        proc.terminate()
    keep = job_devices(tool)
    var = TOOLS[tool].job_devices_var
    scope = (f"the job's devices {','.join(map(str, sorted(keep)))} ({var})" if keep
             else f"no device: {var}={os.environ.get(var)!r} names none the tool lists" if keep is not None
             else f"every device the tool lists{f' ({var} unset)' if var else ''}")
    log.info("monitor: %s -> %s; sampling %s", tool, csv_path, scope)
    with open(csv_path, "a", encoding="ascii", newline="") as out:
        if new_file:
            out.write(",".join(HEADER) + "\n")
            out.flush()
        assert proc.stdout is not None
        rows = record(proc.stdout, out, keep=keep, rows_of=TOOLS[tool].rows)
    code = proc.wait()
    log.info("monitor: %s ended (code %s) after %d rows", tool, code, rows)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sample device utilisation, memory, power and temperature to CSV.")
    parser.add_argument("--backend", default="auto", choices=sorted(PREFERRED), help="which tool to look for")
    parser.add_argument("--out", default="results", help="folder of the results; the CSV goes beside them")
    parser.add_argument("--run-name", default=None, help="run name (default: the backend)")
    parser.add_argument("--interval", type=int, default=1, help="seconds between samples")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    run_name = args.run_name or (args.backend if args.backend != "auto" else "device")
    tool = pick_tool(args.backend)
    if tool is None:
        wanted = PREFERRED[args.backend]
        if wanted:
            log.info("monitor: %s not found on this node; not sampling", " or ".join(wanted))
        else:
            log.info("monitor: backend %s has no device tool to sample; not sampling", args.backend)
        return 0
    return monitor(Path(args.out) / f"monitor_{run_name}.csv", tool, args.interval)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
