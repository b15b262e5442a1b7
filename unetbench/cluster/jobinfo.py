"""What a batch job (scripts/lib_job.sh) asks Python once its environment is set up.

    python3 -m unetbench.cluster.jobinfo header cuda             # software and device lines of the job log
    python3 -m unetbench.cluster.jobinfo train-args cuda --epochs 2 --out res
    # -> NUL-separated: the output folder, the run name, the resumable checkpoint, then the
    #    arguments to train with
    python3 -m unetbench.cluster.jobinfo container cuda --splits data/dataset_splits.json --out res
    # -> NUL-separated: runtime, image, digest, then the container's launch words; nothing when
    #    the backend's group names no container (asked by a hand-submitted job, on the host)

``train-args`` reads the flags with the training's own parser (config files included), so the
batch shell knows where the checkpoint and the monitor CSV go without parsing flags itself,
and adds --auto-resume so that a requeued job continues instead of starting over.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from ..core.errors import UserError, run_cli
from ..core.paths import REPO_ROOT
from ..core.registry import BACKENDS
from ..core.settings import parse_settings


def software_line(kind: str) -> str:
    """torch's version, then the device's own stack as its spec reports it (spec.software)."""
    parts = []
    try:
        import torch
        parts.append(f"torch {torch.__version__}")
    except Exception as err:  # a broken install must not stop the job header
        parts.append(f"torch not importable: {err}")
    spec = BACKENDS.get(kind)
    if spec is not None and spec.software is not None:
        try:  # the job's environment variables (set before any Python) are already exported
            stack = spec.software()
        except Exception as err:  # nor must a broken device stack
            stack = f"{spec.name} software not readable: {err}"
        if stack:
            parts.append(stack)
    return ";".join(parts)


def job_variables(spec, env) -> dict[str, str]:
    """The variables that decide where and how a job of ``spec`` computes, as its training will
    see them: the job's devices, the values set before Python, the per-job defaults (which a
    value already in ``env`` overrides) and the ones the device names to show."""
    defaults = spec.job_env(dict(env))
    names = [*spec.env_before_python, *([spec.visible_devices_var] if spec.visible_devices_var else []),
             *defaults, *spec.shown_vars]
    return {name: env.get(name, defaults.get(name, "<unset>")) for name in dict.fromkeys(names)}


# The job's identity as the dry run shows per-job values: the names, since no job exists yet.
PLANNED_JOB = {"SLURM_JOB_ID": "$SLURM_JOB_ID", "SLURM_NODEID": "$SLURM_NODEID", "USER": "$USER"}


def planned_environment(spec) -> str | None:
    """One comment line for run_benchmark.sh --dry-run: what a job of ``spec`` sets or reads
    besides its sbatch options; None for a backend with nothing of the kind."""
    parts = ([f"devices from {spec.visible_devices_var} (set from the allocation)"] if spec.visible_devices_var else [])
    parts += [f"{name}={value}" for name, value in spec.env_before_python.items()]
    # A job as Slurm starts it: its device variable set from the allocation.
    job = {**PLANNED_JOB, **({spec.visible_devices_var: f"${spec.visible_devices_var}"} if spec.visible_devices_var else {})}
    defaults = spec.job_env(job)
    parts += [f"{name}={value} (unless SETUP exports it)" for name, value in defaults.items()]
    shown = [name for name in spec.shown_vars if name not in defaults]
    parts += [f"the job log shows {', '.join(shown)}"] if shown else []
    return f"# {spec.name} job: " + "; ".join(parts) if parts else None


def header(kind: str) -> list[str]:
    lines = [f"software  : {software_line(kind)}"]
    spec = BACKENDS.get(kind)
    if spec is None or spec.tool is None:
        return lines + ["devices   : CPU only"]
    lines.append(" ".join(f"{name}={value}" for name, value in job_variables(spec, os.environ).items()))
    tool = spec.tool
    if shutil.which(tool.name) is None:
        return lines + [f"devices   : {tool.name} not found on this node"]
    try:
        out = subprocess.run(list(tool.describe), capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as err:
        out = f"devices   : {tool.name} failed: {err}"
    return lines + out.rstrip("\n").splitlines()


def train_args(backend: str, argv: Sequence[str]) -> list[str]:
    if backend not in BACKENDS:
        raise UserError(f"unknown backend '{backend}'; valid backends: {' '.join(BACKENDS)}")
    settings, _ = parse_settings(list(argv), prog=f"unet_{backend}.py", raising=True)
    args = list(argv)
    # --restart starts the job's first run over; its requeued runs continue what that one saved.
    restarting = settings.restart and os.environ.get("SLURM_RESTART_COUNT", "0") in ("", "0")
    if settings.restart and not restarting:
        args = [a for a in args if a != "--restart"]
    if not (settings.resume or settings.auto_resume or restarting):
        # A requeued job must continue, not start over: --auto-resume picks up last_<run>.pth.
        args.append("--auto-resume")
    from ..training.checkpoint import (
        checkpoint_paths,  # imports torch: only for this command
    )
    run = settings.run_name or backend
    _, last = checkpoint_paths(settings.out, run)
    return [settings.out, run, str(last), *args]


def container_words(backend: str, args: Sequence[str]) -> list[str]:
    """The job's container, derived here on the node as run_benchmark.sh derives it on the login
    node (cluster/container.py); the folders to bind are created."""
    from . import container as containers
    from .site_settings import Site
    if backend not in BACKENDS:
        raise UserError(f"unknown backend '{backend}'; valid backends: {' '.join(BACKENDS)}")
    root = Path(os.environ.get("UNETBENCH_ROOT") or REPO_ROOT)
    site_path = Path(os.environ.get("UNETBENCH_SITE") or root / "site.env")
    site = Site.load(site_path)
    box = site.container(backend)
    if box is None:
        return []
    problems = site.container_problems(backend)
    if problems:
        raise UserError(f"{site_path}: " + "; ".join(problems))
    launch, env = containers.submission(box, root, containers.training_folders(args))
    return [box.runtime, box.image, env[containers.ENV_DIGEST], *launch]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) >= 2 and args[0] == "header":
        print("\n".join(header(args[1])), flush=True)
        return 0
    if len(args) >= 2 and args[0] == "train-args":
        sys.stdout.write("".join(f"{part}\0" for part in train_args(args[1], args[2:])))
        return 0
    if len(args) >= 2 and args[0] == "container":
        sys.stdout.write("".join(f"{word}\0" for word in container_words(args[1], args[2:])))
        return 0
    raise UserError("usage: python3 -m unetbench.cluster.jobinfo header KIND | train-args BACKEND [training flags]"
                    " | container BACKEND [training flags]")


if __name__ == "__main__":
    run_cli(main)
