"""The CUDA backend's registry entry and its tool, nvidia-smi (torch-free: the login node reads it)."""

from __future__ import annotations

from ..spec import BackendSpec, DeviceTool, SbatchDefaults

NVIDIA_SMI = DeviceTool(
    name="nvidia-smi",
    sample=lambda interval: ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used,power.draw,temperature.gpu",
                             "--format=csv,noheader,nounits", "-l", str(interval)],
    describe=["nvidia-smi", "--query-gpu=index,name,driver_version,memory.total", "--format=csv,noheader"],
    driver=["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
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
        dist_backend="nccl", needs_device=True, tool=NVIDIA_SMI, visible_devices_var="CUDA_VISIBLE_DEVICES",
        nsys_trace="cuda,nvtx,osrt,cudnn,cublas", software=cuda_software, color="#76b900",
        sbatch=SbatchDefaults(time="02:00:00", cpus=8, mem="64G", gres="gpu:1")),
)
