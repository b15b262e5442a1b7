"""The NVIDIA GPU's energy meter: NVML's total-energy counter for this process's own GPU.

    meter = nvml_meter("GPU-<uuid>")     # CudaBackend.energy_meter(); Absent says why there is none

``nvmlDeviceGetTotalEnergyConsumption`` (mJ, Volta and newer) through NVIDIA's binding
``nvidia-ml-py`` (``pip install 'unetbench[cuda]'``), for this process's GPU matched by UUID,
so CUDA_VISIBLE_DEVICES cannot mislead it. The counter updates every 20-100 ms: a window
shorter than MIN_COUNTER_WINDOW_S takes the integral of NVML's power readings instead, as does a
GPU without the counter.
"""

from __future__ import annotations

import importlib

from ..energy import MIN_COUNTER_WINDOW_S, Absent, Meter, working


def nvml_meter(uuid: str | None, index: int = 0, nvml=None, **options) -> Meter | Absent:
    """This process's GPU (by UUID; by NVML index when the UUID is unknown)."""
    if nvml is None:
        try:
            nvml = importlib.import_module("pynvml")   # the module of NVIDIA's nvidia-ml-py
        except ImportError:
            return Absent("nvidia-ml-py is not installed (pip install 'unetbench[cuda]'); "
                          "energy from the monitor's power samples only")
    try:
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByUUID(uuid) if uuid else nvml.nvmlDeviceGetHandleByIndex(index)
    except nvml.NVMLError as err:
        return Absent(f"NVML cannot open the GPU ({err})")
    name = f"GPU {uuid or index}"
    power = working(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0, nvml.NVMLError)
    counter = working(lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle), nvml.NVMLError)
    if counter is not None:
        return Meter("nvml:total_energy_consumption", [name], [counter], scale_j=1e-3, power_w=power,
                     resolution={"unit_j": 1e-3, "update_period_s": 0.1, "short_window_s": MIN_COUNTER_WINDOW_S,
                                 "short_window_source": "nvml:power_usage integrated" if power else None},
                     **options)
    if power is not None:  # GPUs older than Volta: no counter
        return Meter("nvml:power_usage integrated", [name], power_w=power,
                     resolution={"unit_j": None, "sample_period_s": options.get("poll_s", 0.05)},
                     **{"poll_s": 0.05, **options})
    return Absent("NVML reports neither an energy counter nor power for this GPU")
