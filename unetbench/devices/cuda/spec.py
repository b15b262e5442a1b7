"""The CUDA backend's registry entry and its tool, nvidia-smi (torch-free: the login node reads it).

    job_gpus({"CUDA_VISIBLE_DEVICES": "2,3"})   # [2, 3]: the nvidia-smi indices of the job's GPUs
    nvidia_smi_list()["GPU-<uuid>"]              # a GPU's nvidia-smi index (the monitor CSV's device_index)
"""

from __future__ import annotations

import re
import subprocess
from typing import Callable, Mapping, Optional

from ..spec import BackendSpec, DeviceTool, SbatchDefaults, id_list

VISIBLE_VAR = "CUDA_VISIBLE_DEVICES"
_GPU_LINE = re.compile(r"^GPU (\d+):.*\(UUID: (GPU-[^)]+)\)")
_MIG_LINE = re.compile(r"^\s+MIG .*\(UUID: (MIG-[^)]+)\)")


def nvidia_smi_list(run: Optional[Callable[[list], str]] = None) -> dict[str, int]:
    """UUID (GPU-..., and MIG-... of each MIG instance) -> nvidia-smi index of its GPU, from
    ``nvidia-smi -L``; {} where the tool is missing or fails."""
    try:
        text = (run or _run)(["nvidia-smi", "-L"])
    except (OSError, subprocess.SubprocessError):
        return {}
    uuids: dict[str, int] = {}
    index = None
    for line in text.splitlines():
        gpu, mig = _GPU_LINE.match(line), _MIG_LINE.match(line)
        if gpu:
            index = int(gpu.group(1))
            uuids[gpu.group(2)] = index
        elif mig and index is not None:
            uuids[mig.group(1)] = index   # a MIG instance draws from its GPU's power
    return uuids


def job_gpus(env: Mapping[str, str], run: Optional[Callable[[list], str]] = None) -> Optional[list[int]]:
    """The nvidia-smi indices of the job's GPUs (CUDA_VISIBLE_DEVICES); None when it is unset
    (every GPU of the node is the job's). Indices are taken as nvidia-smi's (PCI bus order,
    CUDA's own on a node of one GPU model or under CUDA_DEVICE_ORDER=PCI_BUS_ID); UUIDs (full
    or a unique prefix, as CUDA takes them; MIG-... counts its GPU) are looked up in
    ``nvidia-smi -L``. What cannot be told (NoDevFiles, an unknown UUID) is left out, so a
    job is never metered as the node."""
    text = env.get(VISIBLE_VAR)
    if text is None:
        return None
    ids = id_list(text)
    if ids is not None:
        return ids
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not any(e.startswith(("GPU-", "MIG-")) for e in entries):
        return []
    listed = nvidia_smi_list(run)
    found = []
    for entry in entries:
        matches = {i for uuid, i in listed.items() if uuid.startswith(entry)}
        if len(matches) == 1:
            found += [i for i in matches if i not in found]
    return found


def _run(argv: list) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout


NVIDIA_SMI = DeviceTool(
    name="nvidia-smi",
    sample=lambda interval: ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used,power.draw,temperature.gpu",
                             "--format=csv,noheader,nounits", "-l", str(interval)],
    describe=["nvidia-smi", "--query-gpu=index,name,driver_version,memory.total", "--format=csv,noheader"],
    driver=["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
    job_devices=job_gpus, job_devices_var=VISIBLE_VAR,
)


def cuda_software() -> str | None:
    """The CUDA version this torch was built with (inside a job, where torch is there)."""
    try:
        import torch
    except ImportError:
        return None
    return f"cuda {torch.version.cuda}"


SPECS = (
    BackendSpec(
        name="cuda", title="NVIDIA GPUs (CUDA)", package=__package__, order=10, site_group="CUDA",
        dist_backend="nccl", needs_device=True, tool=NVIDIA_SMI, visible_devices_var=VISIBLE_VAR,
        nsys_trace="cuda,nvtx,osrt,cudnn,cublas", software=cuda_software, color="#76b900",
        # --nv: the host driver's libraries, nvidia-smi and /dev/nvidia* (Apptainer's nvliblist.conf). Pyxis:
        # enroot's NVIDIA hook does it, for images that set NVIDIA_VISIBLE_DEVICES (NGC's do).
        container_devices={"apptainer": ("--nv",)},
        sbatch=SbatchDefaults(time="02:00:00", cpus=8, mem="64G", gres="gpu:1")),
)
