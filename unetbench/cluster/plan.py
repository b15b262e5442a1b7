"""run_benchmark.sh's plan: every decision and every check that needs no running job, made before
anything runs (backends, site.env, sbatch options, containers, folders, whether to prepare).

    plan = make_plan(parse(argv))          # UserError on bad input, nothing created
    plan.jobs(), plan.train_args("cuda")   # one job per results file; a job's training flags
    make_run_dir(plan, argv)               # the run folder, once the preflight has passed

unetbench/cluster/submit.py runs it (here or as a Slurm chain, cluster/slurm_chain.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

from ..core.errors import UserError
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
from .site_settings import Site, SiteError
from .submit_options import DEMO_PREPARE, DEMO_PROFILES, DEMO_TRAIN, Options, note
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

    def job_env(self) -> dict:
        """Variables the job scripts read: UNETBENCH_NSYS=1 makes lib_job.sh wrap CUDA training in nsys."""
        return {"UNETBENCH_NSYS": "1"} if self.options.nsys else {}


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
