"""./verify_enhanced.sh --on-device: the on-device self-check of each backend, as a short job or here.

    ./verify_enhanced.sh --on-device --backends cuda,gaudi_lazy            # one job per backend, waits, prints
    ./verify_enhanced.sh --on-device --backends cuda --devices 4           # 4 ranks: the process group too
    ./verify_enhanced.sh --on-device --backends cpu --local                # here, no Slurm
    failed = run_on_device(SelfCheckPlan(backends=["cpu"], local=True, ...), report)   # from preflight.py

Each job is scripts/selfcheck.sh (scripts/lib_job.sh's ``selfcheck_job``): the backend's SETUP
from site.env, the job header (node, devices, software), then ``python3 -m unetbench.cluster.selfcheck``
on each of its devices (srun with several). The jobs are submitted together with the site's
partition, account, QOS, GRES (scaled to --devices) and MEM, but the time limit of the job
script (minutes), and waited for with ``sbatch --wait``; then each job's log is printed whole
and its verdict becomes one line of the preflight's report. With ``--local`` the same command
runs here, in as many processes as --devices (gloo or the device's own process group on this
machine's devices). Logs: RESULTS_DIR/selfcheck-<time>-<random>/.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional

from ..core.errors import UserError
from ..core.registry import BACKENDS
from . import container as containers
from .selfcheck_verdict import read_verdict
from .site_settings import Site, SiteError

JOB_SCRIPT = "scripts/selfcheck.sh"   # its #SBATCH --time is the self-check's time limit


@dataclass
class SelfCheckPlan:
    backends: list
    local: bool
    root: Path                  # the checkout
    log_root: Path              # the results folder: a selfcheck-* folder is made in it
    site_path: Optional[Path] = None
    devices: int = 1            # devices (ranks) per job
    profile: Optional[str] = None


def python() -> str:
    return os.environ.get("UNETBENCH_PYTHON") or sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flags(plan: SelfCheckPlan) -> list:
    """The self-check command's flags besides --backend."""
    return ["--profile", plan.profile] if plan.profile else []


def command(plan: SelfCheckPlan, backend: str) -> list:
    return [python(), "-m", "unetbench.cluster.selfcheck", "--backend", backend, *flags(plan)]


def run_here(plan: SelfCheckPlan, backend: str, log: Path) -> int:
    """The self-check in plan.devices processes on this machine, as torchrun would start them;
    their output, rank 0's first, in ``log`` and here. The exit status: the worst rank's."""
    port = str(_free_port())
    env = {**os.environ, "PYTHONPATH": f"{plan.root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}".rstrip(os.pathsep)}
    # Not srun's tasks (a --local run inside an allocation): the ranks are ours.
    env = {k: v for k, v in env.items() if not k.startswith("SLURM_")}
    if plan.devices > 1:
        # As torchrun and the batch job do: each rank's thread pool its share of the cores, or
        # the ranks' threads fight over them and a step takes ten times longer.
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // plan.devices)))
    procs = []
    with open(log, "w", encoding="utf-8") as out:
        for rank in range(plan.devices):
            ranks = {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(plan.devices),
                     "LOCAL_WORLD_SIZE": str(plan.devices), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port} \
                if plan.devices > 1 else {}
            procs.append(subprocess.Popen(command(plan, backend), env={**env, **ranks}, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True, cwd=plan.root))
        codes = []
        for proc in procs:
            text, _ = proc.communicate()
            out.write(text)
            codes.append(proc.returncode)
    return max(codes, key=lambda c: (c != 0, abs(c)))


def sbatch_command(plan: SelfCheckPlan, site: Site, backend: str, log_dir: Path) -> list:
    try:
        options = site.sbatch_options(backend, plan.devices)
    except UserError as err:
        raise UserError(f"{plan.site_path}: {err}") from None
    # The site's time limit is a training's: left out, so that the job script's own (minutes)
    # applies, which also gets the job through the queue sooner on most sites (backfill).
    options = [o for o in options if not o.startswith("--time=")]
    return ["sbatch", "--parsable", "--wait", f"--job-name=unetbench_selfcheck_{backend}",
            f"--output={log_dir}/%x_%j.out", "--nodes=1", f"--ntasks-per-node={plan.devices}", *options,
            f"--export=ALL,UNETBENCH_ROOT={plan.root},UNETBENCH_SITE={plan.site_path}",
            str(plan.root / JOB_SCRIPT), backend, *flags(plan)]


def _load_site(path: Path, backends: list) -> Site:
    try:
        site = Site.load(path)
    except SiteError as err:
        raise UserError(f"--on-device: {err}; fix it, or run the self-check here with --local") from None
    problems = site.problems(backends)
    if problems:
        raise UserError(f"--on-device: {path} is incomplete: {'; '.join(problems)}")
    return site


def job_environment(plan: SelfCheckPlan, site: Site, backend: str, log_dir: Path) -> dict:
    """The backend's container, when site.env names one: the self-check then runs where its
    training would, in the image, and sees the device through it (cluster/container.py)."""
    container = site.container(backend)
    if container is None:
        return {}
    launch, env = containers.submission(container, plan.root, [log_dir])
    shown = containers.shown(container, launch, ["-m", "unetbench.cluster.selfcheck"])
    print(f"on-device: {backend} in its container: {shown}", flush=True)
    return env


def run_jobs(plan: SelfCheckPlan, log_dir: Path) -> dict:
    """Submit one job per backend, all at once, and wait for every one: backend -> (status, log or None, sbatch's words)."""
    site = _load_site(plan.site_path, plan.backends)
    commands = {b: sbatch_command(plan, site, b, log_dir) for b in plan.backends}
    procs = {}
    for backend, cmd in commands.items():
        env = {**os.environ, **job_environment(plan, site, backend, log_dir)}
        print(f"on-device: submitting {shlex.join(cmd)}", flush=True)
        procs[backend] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    print(f"on-device: waiting for {len(procs)} job(s) (squeue -u $USER -n "
          f"{','.join(f'unetbench_selfcheck_{b}' for b in procs)}); logs in {log_dir}/", flush=True)
    outcome = {}
    try:
        for backend, proc in procs.items():
            out, err = proc.communicate()
            job = out.strip().split(";")[0].splitlines()[0] if out.strip() else None
            log = log_dir / f"unetbench_selfcheck_{backend}_{job}.out" if job else None
            outcome[backend] = (proc.returncode, log if log and log.is_file() else None, err.strip(), job)
    except KeyboardInterrupt:
        for proc in procs.values():
            proc.terminate()
        raise UserError(f"interrupted: self-check jobs may still be queued (squeue -u $USER; logs in {log_dir})")
    return outcome


def run_on_device(plan: SelfCheckPlan, report) -> None:
    """Run the self-check of every backend (jobs, or here with plan.local), print each log, and add
    one line per backend to ``report`` (preflight.Report: ok / fail)."""
    for name in plan.backends:
        if name not in BACKENDS:
            raise UserError(f"unknown backend '{name}'")
    plan.log_root.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix=f"selfcheck-{datetime.now():%Y%m%d-%H%M%S}-", dir=plan.log_root))
    if plan.local:
        outcome = {}
        for backend in plan.backends:
            log = log_dir / f"unetbench_selfcheck_{backend}_local.out"
            print(f"on-device: {backend} here, {plan.devices} process(es): {shlex.join(command(plan, backend))}",
                  flush=True)
            outcome[backend] = (run_here(plan, backend, log), log, "", None)
    else:
        outcome = run_jobs(plan, log_dir)
    for backend, (code, log, sbatch_words, job) in outcome.items():
        where = f"job {job}" if job else "here" if plan.local else "no job"
        text = log.read_text(errors="replace") if log else ""
        if log:
            print(f"\n---- self-check {backend} ({where}, log {log}) ----")
            print(text.rstrip() or "(no output)", flush=True)
            print("----")
        verdict = read_verdict(text)
        if code == 0 and verdict and verdict[0]:
            report.ok(f"on-device {backend}: {verdict[1]} ({where})")
        elif log is None and job:
            report.fail(f"on-device {backend}: job {job} ended with status {code} but left no log in {log_dir} "
                        "(the results folder must be reachable from the compute node: --results-dir)")
        elif log is None:
            report.fail(f"on-device {backend}: sbatch refused the job (status {code}): "
                        f"{sbatch_words.splitlines()[-1] if sbatch_words else 'no message'}")
        else:
            # The first failing call, else the log's last line (a job that died before the
            # checks: SETUP failed, python missing, out of memory).
            last = verdict[1] if verdict else next(
                (line for line in reversed(text.splitlines()) if line.strip()), "no output")
            report.fail(f"on-device {backend}: {last} (exit status {code}; {where}, log {log})")
