"""The NVIDIA GPU's energy meter: NVML's total-energy counter for this process's own GPU.

    meter = nvml_meter("GPU-<uuid>", pci_bus_id="00000000:3B:00.0", ordinal=0)  # CudaBackend.energy_meter()

``nvmlDeviceGetTotalEnergyConsumption`` (mJ, Volta and newer; NOT_SUPPORTED elsewhere even
where power reads work) through NVIDIA's binding ``nvidia-ml-py`` (``pip install
'unetbench[cuda]'``). The GPU is the physical one this process computes on: by the UUID torch
reports, else by its PCI bus id, else by this process's entry of CUDA_VISIBLE_DEVICES (a UUID,
or an index, which NVML counts in PCI bus order as CUDA does under CUDA_DEVICE_ORDER=PCI_BUS_ID);
never by the CUDA ordinal alone, which under CUDA_VISIBLE_DEVICES=2,3 would name GPU 0 of
the node. The counter is probed once (devices/energy.py: counter_or_power): one that raises,
reads 0 or goes backwards gives way to NVML's power readings integrated at 20 Hz, and the
results say so. The counter updates every 20-100 ms: a window shorter than
MIN_COUNTER_WINDOW_S takes the power integral. NVML's power is a 1 s average on Ampere (but
GA100) and newer, instantaneous on GA100 and older.
"""

from __future__ import annotations

import importlib
import os
from typing import Mapping

from ..energy import Absent, Meter, counter_or_power, working

POWER_POLL_S = 0.05      # 20 Hz: the power integral of a GPU without a usable counter


def physical_gpu(nvml, uuid: str | None, pci_bus_id: str | None, ordinal: int, env: Mapping[str, str]):
    """(NVML handle, name) of this process's GPU. Raises LookupError where it cannot be told."""
    if uuid:
        return nvml.nvmlDeviceGetHandleByUUID(uuid), f"GPU {uuid}"
    if pci_bus_id:
        return nvml.nvmlDeviceGetHandleByPciBusId_v2(pci_bus_id), f"GPU {pci_bus_id}"
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:   # every GPU of the node is visible: CUDA ordinals are NVML's indices
        return nvml.nvmlDeviceGetHandleByIndex(ordinal), f"GPU {ordinal}"
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if ordinal >= len(entries):
        raise LookupError(f"CUDA device {ordinal} is not among CUDA_VISIBLE_DEVICES={visible!r}")
    entry = entries[ordinal]
    if entry.startswith("MIG-"):
        raise LookupError(f"{entry} is a MIG instance: NVML's energy is the whole GPU's, shared with "
                          "other instances; not metered")
    if entry.startswith("GPU-"):
        return nvml.nvmlDeviceGetHandleByUUID(entry), f"GPU {entry}"
    if entry.isdigit():
        return nvml.nvmlDeviceGetHandleByIndex(int(entry)), f"GPU {entry} (CUDA_VISIBLE_DEVICES)"
    raise LookupError(f"CUDA_VISIBLE_DEVICES entry {entry!r} names no GPU NVML can open")


def nvml_meter(uuid: str | None, ordinal: int = 0, nvml=None, pci_bus_id: str | None = None,
               env: Mapping[str, str] = os.environ, probe_wait=None, **options) -> Meter | Absent:
    """This process's GPU (see physical_gpu); ``ordinal``: its CUDA device index in this process."""
    if nvml is None:
        try:
            nvml = importlib.import_module("pynvml")   # the module of NVIDIA's nvidia-ml-py
        except ImportError:
            return Absent("nvidia-ml-py is not installed (pip install 'unetbench[cuda]'); "
                          "energy from the monitor's power samples only")
    try:
        nvml.nvmlInit()
        handle, name = physical_gpu(nvml, uuid, pci_bus_id, ordinal, env)
    except nvml.NVMLError as err:
        return Absent(f"NVML cannot open the GPU ({err})")
    except LookupError as err:
        return Absent(str(err))
    power = working(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0, nvml.NVMLError)
    return counter_or_power("nvml:total_energy_consumption", [name],
                            lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle), power,
                            "nvml:power_usage", POWER_POLL_S, {"unit_j": 1e-3, "update_period_s": 0.1},
                            probe_wait, **options)
