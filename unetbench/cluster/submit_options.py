"""run_benchmark.sh's command line: its flags, its help text and the demo's settings.

    options = parse(["--backends", "cuda", "--epochs", "5", "--dry-run"])   # -> Options
    print(usage())                                                       # --help

Training flags are not listed here: they are every Settings field (core/settings.py) but those the
chain sets itself (CHAIN_SETTINGS), so a new training flag reaches run_benchmark.sh unasked.
plan.py turns the Options into a plan; submit.py runs it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field, fields
from typing import Sequence

from ..core.registry import (
    BACKENDS,
    DATASETS,
    MODELS,
    cluster_default_backends,
    local_backends,
)
from ..core.settings import Settings, flag
from .shell_flags import FlagReader

PROG = "./run_benchmark.sh"

# The demo: about a minute on two CPU cores, long enough to see validation mIoU climb. A narrow
# UNet (--model-width 16; the benchmark model is 64) on 120 synthetic scenes; user flags win.
DEMO_PREPARE = ["--synthetic", "--num-images", "120", "--crop", "64x96", "--seed", "0"]
DEMO_TRAIN = ["--epochs", "5", "--model-width", "16", "--batch-size", "8", "--lr", "3e-3", "--workers", "0",
              "--warmup-steps", "2", "--log-every", "5"]
# Two configurations that differ for real on a laptop CPU (NCHW vs channels_last oneDNN
# convolutions), each validated every 5 steps (twice an epoch) for its time to 0.3 validation mIoU.
DEMO_PROFILES = ("parity", "fast")
DEMO_TRAIN += ["--target-miou", "0.3", "--eval-every", "5"]
PREPARE_VALUE_FLAGS = ("--num-images", "--crop", "--source-dir")
# Training settings the chain sets itself for every job; everything else passes straight on.
CHAIN_SETTINGS = {"splits", "out", "run_name", "resume", "auto_resume"}


def train_flag_names() -> tuple[list[str], list[str]]:
    """(flags with a value, switches) of the training settings a user may pass directly."""
    valued, switches = ["--config"], []
    for f in fields(Settings):
        if f.name not in CHAIN_SETTINGS:
            (switches if f.type in ("bool", bool) else valued).append(flag(f.name))
    return valued, switches


def _wrap(text: str, indent: int) -> str:
    return textwrap.fill(text, width=96, initial_indent=" " * indent, subsequent_indent=" " * indent)


def usage() -> str:
    valued, switches = train_flag_names()
    demo = _wrap(f"(prepare: {' '.join(DEMO_PREPARE)}; training: {' '.join(DEMO_TRAIN)})", 23)
    flags = _wrap(" ".join(valued + switches), 2)
    return f"""usage: {PROG} [options] [training flags] [-- more training flags]

Where it runs
  --backends LIST      comma-separated, from: {' '.join(BACKENDS)}
                       (default: {','.join(cluster_default_backends())}; {','.join(local_backends())} with --local or --demo)
  --local              run the same chain on this machine, without Slurm (chosen, with a
                       notice, when sbatch is missing)
  --dry-run            print the exact commands (sbatch lines, and each container's command)
                       and submit nothing
  --repeats N          N training runs per backend (default 1), seeds S..S+N-1 from --seed S,
                       named <backend>_r1..rN; the report gives MLPerf-style time to target
                       (N >= 5) and 95% intervals, and says "within noise" when they overlap
  --profiles LIST      train each backend once per profile (e.g. parity,fast), named
                       <backend>_<profile>; the demo compares parity and fast on the CPU
  --models LIST        the benchmark matrix: each backend trains each model, from:
                       {' '.join(MODELS)}; runs named <backend>_<model>, one
                       comparison after all of them with a workload x backend matrix
  --datasets LIST      ... on each of these prepared datasets (DATA/<name>, made with
                       prepare_dataset.py --dataset NAME --out DATA/NAME), from: {' '.join(DATASETS)};
                       runs named <backend>[_<model>]_<dataset>
  --site FILE          site settings (default: site.env beside this script); a backend whose
                       <GROUP>_CONTAINER names an image runs in it (docs/cluster.md, Containers)
  --nodes N            nodes per training job (default 1; Slurm only)
  --devices-per-node G devices (GPUs, HPUs; CPU: processes) per node (default 1; Slurm only).
                       With N x G > 1 each training job is one DDP run: sbatch gets
                       --nodes=N --ntasks-per-node=G, and G times the GRES count and MEM
                       of site.env, which describes one device (gpu:a100:1 -> gpu:a100:G,
                       16G -> 64G for G=4; CPUS stays per task). The job starts one process
                       per device with srun. The run is named <backend>_<N>x<G>
                       (results_cuda_2x4.json), so it can sit beside single-device results;
                       --batch-size stays per device. See docs/cluster.md.

Data
  --data DIR           prepared dataset folder (default: data/, demo: demo/data/)
  --synthetic, --num-images N, --crop HxW, --source-dir PATH
                       passed to prepare_dataset.py (default source: Kaggle, needs credentials)
  --prepare-job        prepare the dataset in a CPU job; training jobs depend on it (afterok)
  --no-prepare         never prepare; fail if the dataset is missing

Results
  --run-dir DIR        results folder of this invocation (default: runs/<date>-<time>,
                       demo: demo/run); it must not exist yet unless --force
  --force              replace a results folder an earlier {PROG} made
  --skip-verify        skip the preflight (verify_enhanced.sh)
  --nsys               CUDA jobs run under Nsight Systems (nsys profile), capturing only the
                       steps traced by --trace-steps N (training flag, needed): OUT/nsys_<run>.nsys-rep
  --demo               small synthetic dataset and short settings: a first try anywhere
{demo}

Training flags, passed to every training job and checked before anything runs
(python3 unet_cpu.py --help describes each):
{flags}

Exit status: 0 submitted (or, with --local, everything finished), 2 bad input or a refused
job (jobs already submitted by this run are cancelled), 1 a local run with a failed step.
"""


def note(line: str) -> None:
    print(f"run_benchmark: {line}", flush=True)


# ---- arguments ----------------------------------------------------------------------------
@dataclass
class Options:
    backends: str = ""
    site: str = ""
    data: str = ""
    run_dir: str = ""
    nodes: str = "1"
    devices_per_node: str = "1"
    local: bool = False
    dry_run: bool = False
    demo: bool = False
    force: bool = False
    prepare_job: bool = False
    no_prepare: bool = False
    skip_verify: bool = False
    nsys: bool = False
    repeats: str = "1"
    profiles: str = ""
    models: str = ""
    datasets: str = ""
    prepare_flags: list = field(default_factory=list)
    train_flags: list = field(default_factory=list)


def parse(argv: Sequence[str]) -> Options:
    reader = FlagReader(PROG, f"see {PROG} --help; training flags after -- pass through")
    for name in ("--backends", "--site", "--data", "--nodes", "--devices-per-node"):
        reader.value(name, name[2:].replace("-", "_"))
    reader.value("--run-dir", "run_dir")
    reader.value("--out", "run_dir")
    reader.value("--repeats", "repeats")
    reader.value("--profiles", "profiles")
    reader.value("--models", "models")
    reader.value("--datasets", "datasets")
    for name in ("--local", "--dry-run", "--demo", "--force", "--prepare-job", "--no-prepare", "--skip-verify",
                 "--nsys"):
        reader.switch(name, name[2:].replace("-", "_"))
    reader.switch("--synthetic", "prepare_flags", collect=True)
    for name in PREPARE_VALUE_FLAGS:
        reader.value(name, "prepare_flags", collect=True)
    valued, switches = train_flag_names()
    for name in valued:
        reader.value(name, "train_flags", collect=True)
    for name in switches:
        reader.switch(name, "train_flags", collect=True)
    values, rest = reader.read(argv)
    options = Options(**values)
    options.train_flags += rest
    return options
