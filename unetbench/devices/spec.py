"""What a device is to the login node: its registry entry and its monitoring tool, without torch.

    from unetbench.core.registry import BACKENDS
    spec = BACKENDS["cuda"]
    spec.site_group, spec.sbatch.gres          # "CUDA", "gpu:1": site.env and the generated submit script
    spec.tool.sample(1)                        # the monitor's command: one CSV row per device per second

Each device folder (unetbench/devices/<device>/spec.py) defines ``SPECS``, a tuple of these;
unetbench/devices/catalog.py collects them. Nothing here imports torch or a vendor library:
the login node reads every spec to plan, check and report.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Optional, Sequence


def id_list(text: str) -> list[int] | None:
    """A device variable's ids ("2,3" or "2 3" -> [2, 3]); None when it is empty or holds
    anything else (GPU-<uuid>, a stack "0.1"): the job's devices cannot then be told by index."""
    parts = text.replace(",", " ").split()
    return [int(part) for part in parts] if parts and all(part.isdigit() for part in parts) else None


def comma_rows(lines: Iterable[str]) -> Iterator[list[str]]:
    """A tool that prints the five fields in order, comma separated, one device a line."""
    for line in lines:
        yield [part.strip() for part in line.strip().split(",")]


@dataclass(frozen=True)
class SbatchDefaults:
    """The #SBATCH defaults of a generated submit script (site.env values override them)."""
    time: str
    cpus: int
    mem: str
    gres: Optional[str] = None


@dataclass(frozen=True)
class DeviceTool:
    """A vendor's command-line tool: the monitor samples it, the job header and the results ask
    it what the node has. Its sampled rows must be, in order: device id, utilisation %, memory
    used MiB, power W, temperature C (unetbench/cluster/monitor.py normalises them)."""
    name: str                                        # the executable, looked up on PATH
    sample: Callable[[int], list]                    # interval s -> argv printing those rows every interval
    describe: Sequence[str]                          # argv: one line per device (index, name, driver, memory)
    driver: Sequence[str]                            # argv whose first output line is the driver version
    # The job's own devices, as ids of the rows' first column, from the job's environment; None:
    # every device the tool lists is the job's. A tool that lists the whole node without it
    # would report a 1-device job on an 8-device node as the node.
    job_devices: Callable[[Mapping[str, str]], Optional[list[int]]] = lambda env: None
    job_devices_var: Optional[str] = None            # the variable job_devices reads, for log lines
    # The sampled output, line by line -> rows of the five fields above (a tool that prints a
    # header, more columns or another order brings its own reader). Lines that are no data may
    # come through: the monitor skips rows whose first field is not a number.
    rows: Callable[[Iterable[str]], Iterator[list[str]]] = comma_rows

    def driver_version(self) -> Optional[str]:
        """The driver version the tool reports; None where the tool is missing or fails."""
        try:
            out = subprocess.run(list(self.driver), capture_output=True, text=True, timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        lines = out.strip().splitlines()
        return lines[0].strip() if lines else None


@dataclass(frozen=True)
class BackendSpec:
    """One backend: a device in one way of running it (Gaudi has two, lazy and eager)."""
    name: str                     # the run name, results_<name>.json, unet_<name>.py, submit_<name>.sh
    title: str                    # for help texts and generated docstrings
    site_group: str               # site.env prefix: <GROUP>_PARTITION, <GROUP>_GRES, ...
    dist_backend: str             # torch.distributed backend for DDP
    needs_device: bool            # GRES must be set in site.env and scales with devices per node
    sbatch: SbatchDefaults
    order: int                    # place in listings, default --backends and the report (lower first)
    package: str                  # the device folder (its __package__): backend.py there holds the class
    tool: Optional[DeviceTool] = None             # monitor, job header and driver; None: nothing to sample
    visible_devices_var: Optional[str] = None     # the job's devices, shown in the job header
    env_before_python: Mapping[str, str] = field(default_factory=dict)  # exported before any Python starts
    # Defaults each training process sets before torch, from its job's environment (SLURM_JOB_ID,
    # SLURM_NODEID, USER): per-job paths such as ROCm's MIOpen databases on node-local storage.
    # A value the site already set wins (devices/before_torch.py).
    job_env: Callable[[Mapping[str, str]], Mapping[str, str]] = lambda env: {}
    # More variables that decide where or how the job computes, shown in the job header and in
    # run_benchmark.sh --dry-run (Slurm's device variables, a device hierarchy).
    shown_vars: Sequence[str] = ()
    in_cluster_default: bool = True               # part of run_benchmark.sh's default --backends on Slurm
    runs_anywhere: bool = False                   # needs no device: the backend of --local and --demo
    # Nsight Systems' --trace list for its jobs (run_benchmark.sh --nsys); None: nsys cannot capture it.
    nsys_trace: Optional[str] = None
    # One line of the job header naming the device's software stack, asked only inside a job.
    software: Optional[Callable[[], Optional[str]]] = None
    # How the device reaches a container, per runtime family (unetbench/cluster/container.py):
    # "apptainer" (Apptainer and Singularity): options of `apptainer exec`; "pyxis": extra
    # --container-mounts entries (SRC:DST). Missing: nothing beyond the runtime's defaults.
    container_devices: Mapping[str, Sequence[str]] = field(default_factory=dict)
    color: str = "#9467bd"                        # plots
    note: str = ""                                # one extra comment line in the generated submit script
