"""The stand-in NPU's registry entry and its tool npu-smi (torch-free, as every spec)."""

from __future__ import annotations

from typing import Mapping

from unetbench.devices.spec import BackendSpec, DeviceTool, SbatchDefaults

VISIBLE_VAR = "NPU_VISIBLE_DEVICES"


def visible_devices(env: Mapping[str, str]) -> list[int] | None:
    ids = [part.strip() for part in env.get(VISIBLE_VAR, "").split(",") if part.strip()]
    return [int(i) for i in ids] if ids and all(i.isdigit() for i in ids) else None


NPU_SMI = DeviceTool(
    name="npu-smi",
    sample=lambda interval: ["npu-smi", "sample", "--every", str(interval)],
    describe=["npu-smi", "describe"],
    driver=["npu-smi", "driver"],
    job_devices=visible_devices, job_devices_var=VISIBLE_VAR,
)

SPECS = (
    BackendSpec(
        name="npu", title="Stand-in NPU (tests only)", package=__package__, order=50, site_group="NPU",
        dist_backend="gloo", needs_device=True, tool=NPU_SMI, visible_devices_var=VISIBLE_VAR,
        env_before_python={"NPU_STANDIN_MODE": "graph"}, color="#123456",
        software=lambda: "npu-runtime 0.1 (stand-in)",
        sbatch=SbatchDefaults(time="00:10:00", cpus=2, mem="4G", gres="npu:1")),
)
