"""What ./run_benchmark.sh does: preflight, dataset, one training job per backend, comparison.

    ./run_benchmark.sh --backends cuda,gaudi_lazy,gaudi_eager        # on a Slurm cluster (site.env)
    ./run_benchmark.sh --backends cuda --epochs 5 --profile fast --dry-run
    ./run_benchmark.sh --demo --local                                # a first try anywhere, ~1 minute
    python3 -m unetbench.cluster.submit --help                               # the same program

The steps: read the flags (``parse``, in submit_options.py), decide everything before anything runs (``make_plan``:
backends, site.env, sbatch options, folders, whether to prepare), run the preflight, then
either submit the chain to Slurm (``SlurmChain``: sbatch with argument lists, dependencies,
cancel what was submitted when a later sbatch refuses) or run the same chain here
(``run_local``). Exit status: 0 submitted (or, locally, everything finished), 2 bad input or a
refused job, 1 a local run with a failed step. docs/cluster.md is the user guide.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

from ..core.errors import UserError, run_cli
from ..core.output_lock import output_lock
from ..core.parsing import parse_names, positive_int
from ..core.paths import REPO_ROOT
from ..core.registry import (
    BACKENDS,
    DEFAULT_SIGNAL_LEAD_S,
    JOBS,
    cluster_default_backends,
    local_backends,
)
from ..core.settings import parse_settings
from ..data.prepare.cli import check_args as check_prepare_args
from ..data.prepared import SPLITS_FILE
from . import container as containers
from . import preflight
from .jobinfo import planned_environment
from .shell_flags import HelpRequested
from .site_settings import Site, SiteError
from .submit_options import (
    DEMO_PREPARE,
    DEMO_PROFILES,
    DEMO_TRAIN,
    Options,
    note,
    parse,
    usage,
)
from .training_jobs import TrainJob, parse_profiles, train_jobs
from .workloads import Workload, check_crops, check_dependencies, plan_workloads

ROOT = Path(os.environ.get("UNETBENCH_ROOT") or REPO_ROOT)
RUN_MARKER = ".unetbench-run"


# ---- the plan -----------------------------------------------------------------------------
@dataclass
class Plan:
    options: Options
    backends: list
    nodes: int
    devices_per_node: int
    local: bool
    site_path: Path
    site: Optional[Site]
    data_dir: Path
    run_dir: Path
    prepare: bool                  # prepare the dataset at all
    prepare_job: bool              # ... as a Slurm job
    prepare_args: list
    train_flags: list
    sbatch_options: dict = field(default_factory=dict)   # job kind -> site options
    signal_lead_s: int = DEFAULT_SIGNAL_LEAD_S
    repeats: int = 1
    profiles: list = field(default_factory=list)         # empty: the --profile of the training flags
    base_seed: int = 42                                  # repeat k trains with base_seed + k - 1
    workloads: list = field(default_factory=list)        # --models x --datasets (workloads.py)
    containers: dict = field(default_factory=dict)       # backend -> its site.env container (container.py)

    def jobs(self) -> list[TrainJob]:
        """One per results file: workloads x backends x profiles x repeats (training_jobs.py)."""
        return [TrainJob(j.backend, j.run_name, (*w.flags(), *j.flags))
                for w in self.workloads or [Workload(None, None, self.data_dir)]
                for j in train_jobs(self.backends, lambda b, w=w: self.run_name(b) + w.suffix(), self.profiles,
                                    self.repeats, self.base_seed)]

    @property
    def world_size(self) -> int:
        return self.nodes * self.devices_per_node

    @property
    def splits(self) -> Path:
        return self.data_dir / SPLITS_FILE

    def run_name(self, backend: str) -> str:
        # <backend>_<N>x<G> for a multi-device run, so that single- and multi-device results of
        # one backend can share a results folder (results_cuda_2x4.json).
        return f"{backend}_{self.nodes}x{self.devices_per_node}" if self.world_size > 1 else backend

    def train_args(self, backend: str, job: TrainJob | None = None) -> list:
        # Compiled kernels (fast profile) are cached beside the run folders, so the next
        # invocation's warm-up reuses them; a --compile-cache in the training flags wins.
        # A job's own flags (profile, repeat seed) come last: the last occurrence wins.
        return ["--splits", str(self.splits), "--out", str(self.run_dir / "results"),
                "--run-name", job.run_name if job else self.run_name(backend),
                "--compile-cache", str(self.run_dir.parent / "compile_cache"),
                *self.train_flags, *(job.flags if job else ())]

    def compare_args(self) -> list:
        # --expect: a backend whose job died before writing results is listed as missing; with
        # repeats or several profiles each run is expected by name, so one lost repeat shows too.
        jobs = self.jobs()
        expected = self.backends if len(jobs) == len(self.backends) else [j.run_name for j in jobs]
        return [str(self.run_dir / "results"), "--report-dir", str(self.run_dir / "report"),
                "--expect", ",".join(expected)]

    def prepare_command(self) -> list:
        return [python(), str(ROOT / "prepare_dataset.py"), *self.prepare_args]


def python() -> str:
    return os.environ.get("UNETBENCH_PYTHON") or "python3"


def _absolute(path: str) -> Path:
    # Absolute but not resolved: the user's spelling of symlinked scratch folders is kept.
    return Path(path) if os.path.isabs(path) else Path(os.getcwd()) / path


def parse_backends(text: str) -> list:
    backends = parse_names(text, BACKENDS, "backend")
    if not backends:
        raise UserError(f"--backends is empty; valid backends: {' '.join(BACKENDS)}")
    return backends


def make_plan(o: Options) -> Plan:
    """Every decision and every check that needs no running job, before anything runs."""
    nodes = positive_int(o.nodes, "--nodes")
    devices = positive_int(o.devices_per_node, "--devices-per-node")
    if o.prepare_job and o.no_prepare:
        raise UserError("--prepare-job and --no-prepare exclude each other")
    chosen = "--profile" in o.train_flags  # one profile chosen by the user: the demo keeps to it
    if o.profiles and chosen:
        raise UserError("--profile and --profiles exclude each other; e.g. --profiles parity,fast")
    backends = parse_backends(o.backends or ",".join(local_backends() if o.demo or o.local else cluster_default_backends()))

    # Where it runs.
    site_path = _absolute(o.site) if o.site else ROOT / "site.env"
    local, prepare_job = o.local, o.prepare_job
    if not local and not shutil.which("sbatch"):
        if not o.demo:   # a cluster run asked for: never quietly trained on the login node instead
            raise UserError("sbatch not found on PATH: submitting to Slurm needs its commands on this machine; "
                            "load them (e.g. `module load slurm`) or add --local to run every job here")
        note("notice: sbatch not found on this machine; the demo runs locally (--local)")
        local = True
    if not local and o.demo and not site_path.is_file():
        note(f"notice: --demo without {site_path}; running locally (--local)")
        local = True
    site, sbatch_options, images = None, {}, {}
    if not local:
        site = _load_site(site_path)
        kinds = backends + ["compare"] + (["prepare"] if prepare_job else [])
        problems = site.problems(kinds)
        if problems:
            raise UserError(f"{site_path} is incomplete:\n" + "\n".join(f"  {p}" for p in problems))
        try:
            # GRES and MEM scaled to the devices per node: refuse a value that cannot be, now.
            sbatch_options = {b: site.sbatch_options(b, devices) for b in backends}
            sbatch_options.update({kind: site.sbatch_options(kind) for kind in JOBS})
        except UserError as err:
            raise UserError(f"{site_path}: {err}") from None
        images = {b: box for b in backends if (box := site.container(b)) is not None}
    elif nodes * devices > 1:
        raise UserError("--nodes/--devices-per-node above 1 need Slurm (srun starts one process per device); "
                        "without it use torchrun by hand (docs/training.md)")
    elif prepare_job:
        note("notice: --prepare-job has no effect with --local; preparing here")
        prepare_job = False

    # Demo settings, data, results folder.
    prepare_flags, train_flags = list(o.prepare_flags), list(o.train_flags)
    data_dir, run_dir = o.data, o.run_dir
    if o.demo:
        data_dir = data_dir or str(ROOT / "demo" / "data")
        run_dir = run_dir or str(ROOT / "demo" / "run")
        prepare_flags = prepare_flags or list(DEMO_PREPARE)
        train_flags = DEMO_TRAIN + train_flags
    data = _absolute(data_dir or str(ROOT / "data"))
    run = _absolute(run_dir or str(ROOT / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")))
    for p in (ROOT, data, run, site_path):
        if "," in str(p):
            raise UserError(f"paths with commas cannot pass through sbatch --export: {p}")
    check_run_dir(run, o.force)

    # Prepare unless the dataset is there and no preparation flags ask for a specific one.
    splits = data / SPLITS_FILE
    if o.models and "--model" in o.train_flags:
        raise UserError("--model and --models exclude each other; e.g. --models unet,resunetpp")
    workloads = plan_workloads(o.models, o.datasets, data)
    if o.datasets and prepare_flags:
        raise UserError("--datasets trains on datasets prepared in DATA/<name>; prepare each with "
                        "prepare_dataset.py --dataset NAME --out DATA/NAME, not with preparation flags here")
    check_crops(workloads)
    check_dependencies(workloads)
    prepare = (bool(prepare_flags) or not splits.is_file()) and not o.datasets
    if o.no_prepare and not o.datasets:
        prepare = False
        if not splits.is_file():
            raise UserError(f"dataset missing: {splits} not found (prepare it with prepare_dataset.py, "
                            "or drop --no-prepare)")

    plan = Plan(options=o, backends=backends, nodes=nodes, devices_per_node=devices, local=local,
                site_path=site_path, site=site, data_dir=data, run_dir=run, prepare=prepare,
                prepare_job=prepare_job, prepare_args=["--out", str(data), *prepare_flags],
                train_flags=train_flags, sbatch_options=sbatch_options,
                repeats=positive_int(o.repeats, "--repeats"),
                profiles=parse_profiles(o.profiles or (",".join(DEMO_PROFILES) if o.demo and not chosen else "")),
                workloads=workloads, containers=images)
    # The flags of the other tools are checked here, with their own parsers, rather than on a
    # compute node after a wait in the queue.
    try:
        plan.base_seed = parse_settings(plan.train_args(backends[0]), prog="training flags", raising=True)[0].seed
        for job in plan.jobs()[:len(plan.profiles) or 1]:   # each profile's flags once
            parse_settings(plan.train_args(job.backend, job), prog="training flags", raising=True)
    except UserError as err:
        raise UserError(f"training flags: {err}") from None
    check_nsys(o.nsys, backends, plan.train_args(backends[0]))
    if prepare:
        try:
            check_prepare_args(plan.prepare_args)
        except UserError as err:
            raise UserError(f"dataset preparation flags: {err}") from None
    if site is not None:
        plan.signal_lead_s = _signal_lead(site, site_path)
    return plan


def check_nsys(nsys: bool, backends: list, train_args: list) -> None:
    """--nsys wraps the jobs of backends Nsight Systems can capture, capturing the traced steps:
    it needs one of those and traced steps."""
    if not nsys:
        return
    capable = [name for name, spec in BACKENDS.items() if spec.nsys_trace]
    if not set(capable) & set(backends):
        raise UserError(f"--nsys profiles {' or '.join(capable)} jobs only (Nsight Systems); "
                        f"add {' or '.join(capable)} to --backends or drop --nsys")
    if not parse_settings(train_args, prog="training flags", raising=True)[0].trace_steps:
        raise UserError("--nsys captures the traced steps: add --trace-steps N (e.g. --trace-steps 5)")


def _load_site(path: Path) -> Site:
    if not path.is_file():
        if path == ROOT / "site.env":
            raise UserError(f"site settings {path} not found: create it from the example (cp {ROOT}/site.env.example "
                            f"{path}) and fill in your partition, account, QOS and time limits; or run with --local")
        raise UserError(f"site settings {path} not found (copy {ROOT}/site.env.example and fill it in)")
    try:
        return Site.load(path)
    except SiteError as err:
        raise UserError(f"cannot read {path}: {err}") from None


def _signal_lead(site: Site, path: Path) -> int:
    lead = site.scalar("SIGNAL_LEAD_S") or os.environ.get("SIGNAL_LEAD_S") or str(DEFAULT_SIGNAL_LEAD_S)
    if not lead.isdigit():
        raise UserError(f"SIGNAL_LEAD_S in {path} must be whole seconds, not '{lead}'")
    return int(lead)


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


def check_run_dir(run: Path, force: bool) -> None:
    """A run folder is new or empty; with --force, one that run_benchmark.sh made."""
    if run.exists() and any(run.iterdir()):
        if not force:
            raise UserError(f"results folder {run} already exists; choose another --run-dir or add --force to replace it")
        if not (run / RUN_MARKER).is_file():
            raise UserError(f"{run} was not made by run_benchmark.sh; refusing to replace it even with --force")


def make_run_dir(plan: Plan, argv: Sequence[str]) -> None:
    if plan.options.force and (plan.run_dir / RUN_MARKER).is_file():
        shutil.rmtree(plan.run_dir)
    for sub in ("results", "logs", "report"):
        (plan.run_dir / sub).mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    (plan.run_dir / RUN_MARKER).write_text(
        f"# made by run_benchmark.sh on {stamp}\n{shlex.join([str(ROOT / 'run_benchmark.sh'), *argv])}\n")


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


def job_env(plan: Plan) -> dict:
    """Variables the job scripts read: UNETBENCH_NSYS=1 makes lib_job.sh wrap CUDA training in nsys."""
    return {"UNETBENCH_NSYS": "1"} if plan.options.nsys else {}


def run_local(plan: Plan, argv: Sequence[str]) -> int:
    env = {**os.environ, "UNETBENCH_ROOT": str(ROOT), "UNETBENCH_SITE": "none", **job_env(plan)}
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
               + "".join(f",{k}={v}" for k, v in job_env(plan).items()), *options,
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
