"""The formats Slurm accepts for site.env's TIME, CPUS and MEM, checked in the preflight
(``Site.problems``) so a wrong one is named on the login node, not by sbatch or on a compute node.

    format_problem("CUDA_TIME", "TIME", "2h")   # -> "CUDA_TIME='2h' is not a Slurm time limit ..."
    format_problem("CUDA_MEM", "MEM", "64G")    # -> None
"""

from __future__ import annotations

import re
from typing import Optional

_TIME = re.compile(r"(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2}"
                   r"|UNLIMITED|INFINITE)", re.IGNORECASE)
RULES = {
    "TIME": (_TIME, "a Slurm time limit: MINUTES, HH:MM:SS or DAYS-HH:MM:SS (e.g. 04:00:00)"),
    "CPUS": (re.compile(r"[1-9][0-9]*"), "a positive whole number of CPU cores per task (e.g. 8)"),
    "MEM": (re.compile(r"[0-9]+[KMGTkmgt]?"), "a size like 64G or 3000M (0: the whole node)"),
}


def format_problem(name: str, key: str, value: str) -> Optional[str]:
    """The problem with ``value`` for ``key`` (TIME, CPUS, MEM), or None when Slurm takes it."""
    rule = RULES.get(key)
    if rule is None or not value or rule[0].fullmatch(value.strip()):
        return None
    return f"{name}={value!r} is not {rule[1]}"
