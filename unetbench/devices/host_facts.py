"""Facts of this host that torch does not give: driver versions, CPU model, resident memory.

    nvidia_driver(), habana_driver()     # None where the tool is missing or fails
    cpu_name(), current_rss_bytes()
"""

from __future__ import annotations

import os
import platform
import subprocess


def run_quiet(argv: list) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip() or None


def nvidia_driver() -> str | None:
    out = run_quiet(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    return out.splitlines()[0] if out else None


def habana_driver() -> str | None:
    out = run_quiet(["hl-smi", "-Q", "driver_version", "-f", "csv,noheader"])
    return out.splitlines()[0] if out else None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def current_rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="utf-8") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None
