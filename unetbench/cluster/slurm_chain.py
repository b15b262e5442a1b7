"""run_benchmark.sh on Slurm: sbatch each job of the plan with argument lists, chained by dependencies
(prepare -> trainings -> compare); when a later sbatch refuses, cancel what was submitted.

    run_slurm(plan, argv)     # 0 submitted (or printed, with --dry-run); UserError when sbatch refuses

A backend with a container (site.env <GROUP>_CONTAINER) gets it in its job's environment
(cluster/container.py); the dry run prints its exact container command.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import Optional, Sequence

from ..core.errors import UserError
from ..core.registry import BACKENDS
from . import container as containers
from .jobinfo import planned_environment
from .plan import ROOT, Plan, make_run_dir
from .submit_options import note


class SlurmChain:
    """sbatch one job after another; when one is refused, cancel those already submitted."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.submitted: list[tuple[str, str]] = []      # (name, job id)

    def submit(self, name: str, script: str, options: list, args: list, env: Optional[dict] = None) -> str:
        """sbatch SCRIPT ARGS with the site's options; ``env`` joins the job's environment
        (sbatch --export=ALL passes it on; unlike --export's list, a value may hold commas)."""
        plan = self.plan
        cmd = ["sbatch", "--parsable", f"--output={plan.run_dir}/logs/%x_%j.out", "--open-mode=append",
               f"--export=ALL,UNETBENCH_ROOT={ROOT},UNETBENCH_SITE={plan.site_path}"
               + "".join(f",{k}={v}" for k, v in plan.job_env().items()), *options,
               str(ROOT / script), *args]
        if plan.options.dry_run:
            print(shlex.join(cmd))
            return f"<{name}_jobid>"
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
        if proc.returncode != 0 or not proc.stdout.strip():
            self.cancel()
            detail = "".join(f"\n  {line}" for line in proc.stderr.splitlines())
            raise UserError(f"sbatch refused the {name} job (status {proc.returncode}):{detail}\n"
                            f"  command: {shlex.join(cmd)}")
        job_id = proc.stdout.strip().split(";")[0]    # --parsable prints "id" or "id;cluster"
        self.submitted.append((name, job_id))
        with open(plan.run_dir / "jobs.tsv", "a", encoding="utf-8") as fh:
            fh.write(f"{name}\t{job_id}\n")
        return job_id

    def cancel(self) -> None:
        if self.submitted:
            ids = [job_id for _, job_id in self.submitted]
            note(f"cancelling the jobs this run already submitted: {' '.join(ids)}")
            try:
                subprocess.run(["scancel", *ids])
            except OSError as err:
                note(f"could not run scancel ({err}); cancel them yourself: scancel {' '.join(ids)}")


def container_env(plan: Plan, backend: str, args: list) -> dict:
    """The job's container (its binds derived from the training's own flags), as environment for
    the job; the dry run prints the container's part of the command line instead."""
    container = plan.containers.get(backend)
    if container is None:
        return {}
    dry = plan.options.dry_run
    launch, env = containers.submission(container, ROOT, containers.training_folders(args), dry_run=dry)
    if dry:
        entry = str(ROOT / f"unet_{backend}.py")
        print(f"# {backend} job runs in its container ({container.runtime}): "
              + containers.shown(container, launch, [entry, *args]))
    return env


def run_slurm(plan: Plan, argv: Sequence[str]) -> int:
    chain = SlurmChain(plan)
    dry = plan.options.dry_run
    if not dry:
        make_run_dir(plan, argv)
    depend_on_prepare: list = []
    if plan.prepare and plan.prepare_job:
        job = chain.submit("prepare", "submit_prepare.sh", plan.sbatch_options["prepare"], plan.prepare_args)
        # If preparation fails, the training jobs are cancelled instead of waiting forever.
        depend_on_prepare = [f"--dependency=afterok:{job}", "--kill-on-invalid-dep=yes"]
    elif plan.prepare and dry:
        print(shlex.join(plan.prepare_command()))
    elif plan.prepare:
        note(f"preparing the dataset on this node: {shlex.join(plan.prepare_command())}")
        if subprocess.run(plan.prepare_command()).returncode != 0:
            raise UserError("dataset preparation failed; nothing submitted (or use --prepare-job to prepare in a job)")
    train_ids = []
    for job in plan.jobs():
        # One task per device; the job script starts them with srun when there is more than one.
        options = [f"--nodes={plan.nodes}", f"--ntasks-per-node={plan.devices_per_node}",
                   *plan.sbatch_options[job.backend], f"--signal=B:USR1@{plan.signal_lead_s}", "--requeue",
                   *depend_on_prepare]
        planned = planned_environment(BACKENDS[job.backend])
        if dry and planned:
            print(planned)
        args = plan.train_args(job.backend, job)
        env = container_env(plan, job.backend, args)
        train_ids.append(chain.submit(job.run_name, f"submit_{job.backend}.sh", options, args, env))
    # afterany: a failed backend still gets a report (which marks it failed).
    chain.submit("compare", "submit_compare.sh",
                 [*plan.sbatch_options["compare"], f"--dependency=afterany:{':'.join(train_ids)}"],
                 plan.compare_args())
    if dry:
        return 0
    print()
    if plan.world_size > 1:
        print(f"Each training job: {plan.nodes} node(s) x {plan.devices_per_node} device(s), one DDP run of "
              f"{plan.world_size} processes")
    print(f"Submitted (run folder {plan.run_dir}):")
    for name, job_id in chain.submitted:
        print(f"  {name:<12} {job_id}")
    ids = [job_id for _, job_id in chain.submitted]
    print(f"\nWatch:   squeue -j {','.join(ids)}")
    print(f"Logs:    tail -f {plan.run_dir}/logs/*.out")
    print(f"Results: {plan.run_dir}/results/   (monitor_<backend>.csv beside them)")
    print(f"Report:  {plan.run_dir}/report/report.html (and report.md) once job {ids[-1]} (compare) has run")
    return 0
