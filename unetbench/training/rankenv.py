"""A Slurm task's place in the process group, as torchrun's variables, set before Python starts.

    srun ... python3 -m unetbench.training.rankenv -- python3 unet_gaudi_eager.py ...   # what lib_job.sh runs
    rank_environment(os.environ)   # {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", ...} or {}

Why: srun gives each task SLURM_PROCID / SLURM_LOCALID / SLURM_NTASKS only. The Intel Gaudi
bridge sets up its distributed state when it loads (with torch >= 2.5: at ``import torch``)
from RANK / LOCAL_RANK / WORLD_SIZE: without them it writes WORLD_SIZE=1, MASTER_ADDR=localhost
and MASTER_PORT=12345 into the environment and never sets HLS_MODULE_ID, so ranks take
whichever card is free first. This module is the one place the srun layout is turned into
those variables: ``python3 -m unetbench.training.rankenv -- CMD`` sets them and replaces itself with CMD,
and DistContext (unetbench/training/distributed.py) assigns the same values. Imports nothing heavy.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Mapping, Sequence

from ..core.errors import UserError, run_cli

SRUN_MARK = "UNETBENCH_LAUNCHER"   # set to "srun" beside the variables: DistContext names the launcher
PORT_BASE, PORT_SPAN = 20000, 20000


def is_srun_task(env: Mapping[str, str]) -> bool:
    """One of several tasks started by srun (one process per device)."""
    return int_env(env, "SLURM_NTASKS", 1) > 1 and "SLURM_PROCID" in env


def rank_environment(env: Mapping[str, str]) -> dict[str, str]:
    """RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT of an srun task
    ({} for anything else). The master is the job's first node; the port is derived from the job
    id, so every task of a job computes the same one without talking to the others."""
    if not is_srun_task(env):
        return {}
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or ""
    host = first_host(nodelist)
    if not host:
        raise UserError("srun launch without SLURM_JOB_NODELIST: cannot find the master host")
    world, nodes = int_env(env, "SLURM_NTASKS"), int_env(env, "SLURM_NNODES", 1)
    return {"RANK": str(int_env(env, "SLURM_PROCID")), "LOCAL_RANK": str(int_env(env, "SLURM_LOCALID", 0)),
            "WORLD_SIZE": str(world), "LOCAL_WORLD_SIZE": str(max(1, world // max(1, nodes))),
            "MASTER_ADDR": host, "MASTER_PORT": str(PORT_BASE + int_env(env, "SLURM_JOB_ID", 0) % PORT_SPAN),
            SRUN_MARK: "srun"}


def first_host(nodelist: str) -> str | None:
    """First host of a Slurm node list: 'gpu[03-05,09],cpu1' -> 'gpu03'."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match:
        return None
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def int_env(env: Mapping[str, str], name: str, default: int | None = None) -> int:
    try:
        return int(env[name]) if default is None else int(env.get(name, default))
    except (KeyError, ValueError):
        raise UserError(f"environment variable {name}={env.get(name)!r} is not a valid integer") from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise UserError("usage: python3 -m unetbench.training.rankenv -- COMMAND [ARGS...]")
    # Assigned, not setdefault: the srun layout is the truth for this task, whatever an outer
    # shell or an earlier import left in the environment.
    os.environ.update(rank_environment(os.environ))
    try:
        os.execvp(argv[0], argv)
    except OSError as err:
        raise UserError(f"cannot start {argv[0]}: {err}") from None
    return 0  # not reached


if __name__ == "__main__":
    run_cli(main)
