"""What ./run_benchmark.sh does: preflight, dataset, one training job per backend, comparison.

    ./run_benchmark.sh --backends cuda,gaudi_lazy,gaudi_eager        # on a Slurm cluster (site.env)
    ./run_benchmark.sh --backends cuda --epochs 5 --profile fast --dry-run
    ./run_benchmark.sh --demo --local                                # a first try anywhere, ~1 minute
    python3 -m unetbench.cluster.submit --help                               # the same program

The steps: read the flags (``parse``, in submit_options.py), decide everything before anything
runs (``make_plan``, in plan.py: backends, site.env, sbatch options, containers, folders, whether
to prepare), run the preflight, then either submit the chain to Slurm (``run_slurm``, in
slurm_chain.py: sbatch with argument lists, dependencies, cancel what was submitted when a later
sbatch refuses) or run the same chain here (``run_local``). Exit status: 0 submitted (or, locally, everything finished), 2 bad input or a
refused job, 1 a local run with a failed step. docs/cluster.md is the user guide.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from ..core.errors import UserError, run_cli
from ..core.output_lock import output_lock
from . import preflight
from .plan import ROOT, Plan, check_run_dir, make_plan, make_run_dir
from .shell_flags import HelpRequested
from .slurm_chain import run_slurm
from .submit_options import note, parse, usage


# ---- running ------------------------------------------------------------------------------
def run_preflight(plan: Plan) -> None:
    data = plan.workloads[0].data_dir if plan.workloads else plan.data_dir   # --datasets: the first one
    args = ["--backends", ",".join(plan.backends), "--data", str(data),
            "--results-dir", str(plan.run_dir.parent)]
    args += ["--local"] if plan.local else ["--site", str(plan.site_path)]
    if plan.prepare:
        args.append("--no-data")
    note(f"preflight: {shlex.join([str(ROOT / 'verify_enhanced.sh'), *args])}")
    if preflight.main(args) != 0:
        raise UserError("preflight failed: fix the checks marked FAIL above (or --skip-verify)")


def _tee(cmd: list, log: Path, env: dict) -> int:
    """Run ``cmd``, its output both here and in ``log``; its exit status."""
    with open(log, "ab") as fh, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
            fh.write(line)
        return proc.wait()


def run_local(plan: Plan, argv: Sequence[str]) -> int:
    env = {**os.environ, "UNETBENCH_ROOT": str(ROOT), "UNETBENCH_SITE": "none", **plan.job_env()}
    jobs = [(j.run_name, ["bash", str(ROOT / f"submit_{j.backend}.sh"), *plan.train_args(j.backend, j)])
            for j in plan.jobs()]
    compare = ["bash", str(ROOT / "submit_compare.sh"), *plan.compare_args()]
    if plan.options.dry_run:
        if plan.prepare:
            print(shlex.join(plan.prepare_command()))
        for _, cmd in jobs:
            print(shlex.join(cmd))
        print(shlex.join(compare))
        return 0
    make_run_dir(plan, argv)
    if plan.prepare:
        note(f"preparing the dataset: {shlex.join(plan.prepare_command())}")
        if subprocess.run(plan.prepare_command(), env=env).returncode != 0:
            raise UserError("dataset preparation failed")
    failed = 0
    logs = plan.run_dir / "logs"
    for run_name, cmd in jobs:
        log = logs / f"unetbench_{run_name}_local.out"
        note(f"training {run_name} (log: {log})")
        rc = _tee(cmd, log, env)
        if rc != 0:
            note(f"training {run_name} failed (status {rc}); continuing, the report will mark it")
            failed = 1
    if _tee(compare, logs / "unetbench_compare_local.out", env) != 0:
        failed = 1
    print(f"\nResults: {plan.run_dir / 'results'}/\nReport:  {plan.run_dir / 'report' / 'report.html'} "
          f"(and report.md)\nLogs:    {logs}/")
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        options = parse(argv)
    except HelpRequested:
        print(usage())
        return 0
    plan = make_plan(options)
    if options.dry_run:
        return execute(plan, argv)
    # One run_benchmark.sh per run folder: a second one meanwhile is refused (core/output_lock.py),
    # and once it holds the lock the folder is checked again (another may have made it since).
    with output_lock(plan.run_dir, "run_benchmark.sh", "--run-dir"):
        check_run_dir(plan.run_dir, options.force)
        return execute(plan, argv)


def execute(plan: Plan, argv: Sequence[str]) -> int:
    if not plan.options.skip_verify:
        run_preflight(plan)
    return run_local(plan, argv) if plan.local else run_slurm(plan, argv)


if __name__ == "__main__":
    run_cli(main)
