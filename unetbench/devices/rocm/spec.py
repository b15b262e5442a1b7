"""The ROCm backend's registry entry, its tool amd-smi and the job's GPUs (torch-free).

    job_gpus({"ROCR_VISIBLE_DEVICES": "4,5,6", "HIP_VISIBLE_DEVICES": "1"})   # [5]
    miopen_job_env({"SLURM_JOB_ID": "42", "USER": "ada"})   # MIOpen's databases under /tmp for job 42

Facts this file relies on (each decides a figure or where a job runs):
- Slurm's ``AutoDetect=rsmi`` with ``Flags=amd_gpu_env`` gives a job ``ROCR_VISIBLE_DEVICES``
  (gres.conf(5)); the ROCr runtime applies it first and HIP_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES
  then index into what is left (ROCm's GPU isolation guide; torch/cuda/__init__.py).
- amd-smi numbers GPUs in PCI order, ROCr in KFD order; they agree on most nodes but not all
  (Zeus, zeus/device/gpu/amd.py). The monitor keeps amd-smi rows by those indices; the energy
  meter (energy.py) matches its GPU by PCI address instead.
- MIOpen keeps its find database and kernel cache under $HOME by default; on Lustre its file
  locks fail. LUMI and Frontier put both on node-local /tmp per job (LUMI user guide,
  pytorch.md; OLCF user docs, pytorch_frontier.rst); MIOpen reads the variables once, at its
  first database access, and creates the folders itself (MIOpen src/db_path.cpp.in).
- ``amd-smi metric --csv -w N`` prints a CSV header (repeated each interval) and columns in its
  own order, so rows are read by column name (ROCm/amdsmi amdsmi_cli).
"""

from __future__ import annotations

import csv
from typing import Iterable, Iterator, Mapping

from ..spec import BackendSpec, DeviceTool, SbatchDefaults, id_list

VISIBLE_VAR = "ROCR_VISIBLE_DEVICES"   # the job's GPUs, as Slurm (amd_gpu_env) or the site sets them
HIP_VAR = "HIP_VISIBLE_DEVICES"        # a further choice among those (relative indices)
MIOPEN_DB_VARS = ("MIOPEN_USER_DB_PATH", "MIOPEN_CUSTOM_CACHE_DIR")
# MIOpen's NHWC (channels_last) kernels are opt-in in most releases (PyTorch PR #170780): the
# fast profile turns them on, and both values are recorded with the results.
NHWC_VARS = ("PYTORCH_MIOPEN_SUGGEST_NHWC", "PYTORCH_MIOPEN_SUGGEST_NHWC_BATCHNORM")
TF32_VAR = "HIPBLASLT_ALLOW_TF32"      # without it, torch's TF32 switch is ignored on ROCm (PR #143549)
FIND_MODE_VAR = "MIOPEN_FIND_MODE"


def job_gpus(env: Mapping[str, str]) -> list[int] | None:
    """The node's indices of the job's GPUs, in the order ranks take them; None where they
    cannot be told (unset, or given as GPU-<uuid>): every GPU of the node is then the job's."""
    rocr = id_list(env.get(VISIBLE_VAR, ""))
    chosen = id_list(env.get(HIP_VAR, ""))
    if rocr is None or chosen is None:
        return rocr
    return [rocr[i] for i in chosen if i < len(rocr)]


def miopen_job_env(env: Mapping[str, str]) -> dict[str, str]:
    """MIOpen's user database and kernel cache on node-local /tmp, one folder per user and job
    (each node of a job its own /tmp); nothing outside a Slurm job, where MIOpen's default
    (and its own network-filesystem check) applies."""
    job = env.get("SLURM_JOB_ID")
    if not job:
        return {}
    folder = f"/tmp/{env.get('USER', 'user')}-unetbench-miopen-{job}"
    return {name: folder for name in MIOPEN_DB_VARS}


# amd-smi's CSV columns for the monitor's five fields; the first present one is taken.
AMD_SMI_COLUMNS = (("gpu",), ("gfx_activity",), ("used_vram",), ("socket_power", "power"),
                   ("hotspot", "edge"))


def amd_smi_rows(lines: Iterable[str]) -> Iterator[list[str]]:
    """``amd-smi metric -u -m -p -t --csv -w N`` -> [gpu, gfx %, VRAM used MB, power W, temperature C]
    per data line, columns found by name in the latest header (watch mode repeats it)."""
    where: list[int | None] | None = None
    for line in lines:
        fields = next(csv.reader([line.strip()]), [])
        names = [f.strip().lower() for f in fields]
        if "gpu" in names:
            where = [next((names.index(c) for c in choice if c in names), None) for choice in AMD_SMI_COLUMNS]
            continue
        if where is None or not fields:
            continue
        yield [fields[i].strip() if i is not None and i < len(fields) else "" for i in where]


AMD_SMI = DeviceTool(
    name="amd-smi",
    sample=lambda interval: ["amd-smi", "metric", "--usage", "--mem-usage", "--power", "--temperature",
                             "--csv", "--watch", str(interval)],
    describe=["amd-smi", "static", "--asic", "--bus", "--driver", "--csv"],
    driver=["amd-smi", "version"],   # one line: the amd-smi tool, its library and the ROCm version
    job_devices=job_gpus, job_devices_var=VISIBLE_VAR, rows=amd_smi_rows,
)


def rocm_software() -> str | None:
    """The HIP version this torch was built with (inside a job, where torch is there)."""
    try:
        import torch
    except ImportError:
        return None
    hip = getattr(torch.version, "hip", None)
    return f"hip {hip}" if hip else "torch has no ROCm build (torch.version.hip is None)"


SPECS = (
    BackendSpec(
        name="rocm", title="AMD Instinct GPUs (ROCm)", package=__package__, order=11, site_group="ROCM",
        # PyTorch's ROCm build keeps torch.distributed's name "nccl" for RCCL, AMD's port of it.
        dist_backend="nccl", needs_device=True, tool=AMD_SMI, visible_devices_var=VISIBLE_VAR,
        job_env=miopen_job_env, shown_vars=(HIP_VAR, *NHWC_VARS, TF32_VAR, FIND_MODE_VAR),
        software=rocm_software, color="#ed1c24",
        # --rocm: /dev/kfd, /dev/dri and the host's ROCm libraries behind the image's own (rocmliblist.conf).
        # Pyxis: enroot binds all of /dev by default; the ROCm user space is the image's.
        container_devices={"apptainer": ("--rocm",)},
        # Asked for by name (--backends rocm): a site without AMD GPUs keeps its default run.
        in_cluster_default=False,
        note="Slurm: AutoDetect=rsmi with Flags=amd_gpu_env sets ROCR_VISIBLE_DEVICES only (gres.conf(5)).",
        sbatch=SbatchDefaults(time="02:00:00", cpus=8, mem="64G", gres="gpu:1")),
)
