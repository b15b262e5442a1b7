"""The AMD GPU's energy meter: amdsmi's energy accumulator for this process's own GPU, matched
by PCI address; else amd-smi's total_energy_consumption.

    meter = rocm_meter("0000:c1:00.0")     # RocmBackend.energy_meter(); Absent says why there is none

``amdsmi`` (AMD's binding, ``pip install 'unetbench[rocm]'`` or the one under /opt/rocm/share/amd_smi):
``amdsmi_get_energy_count`` gives ``energy_accumulator`` ticks of ``counter_resolution`` µJ,
a 64-bit count since the driver loaded (amdsmi.h; py-interface README). Power, for windows
too short for the counter, from ``amdsmi_get_power_info``: ``current_socket_power`` on MI300
and later, ``average_socket_power`` on MI200 and earlier, "N/A" where unsupported.

An MI250X is two GCDs (two torch devices) in one package, and only the primary die reports:
the secondary's counter stays at 0 and its power is "N/A"; the primary's figures are the whole
package's (rocm_smi.py, "Secondary die"; Zeus PR #203). So the rank on a secondary die meters
nothing (Absent, saying so), and the rank on the primary names both dies as its devices: the
job's energy then counts the package once, whichever of its dies the job holds.
"""

from __future__ import annotations

import importlib
import subprocess
from typing import Callable

from ..energy import MIN_COUNTER_WINDOW_S, Absent, Meter, run_text, working

UJ = 1e-6
PACKAGE_NOTE = ("this GCD's figures are its package's: both dies of the MI250X-style package, "
                "whether or not the other die is this job's")


def _import_amdsmi():
    try:
        return importlib.import_module("amdsmi")
    # The binding loads libamd_smi.so at import: missing or mismatched, it fails in several ways.
    except (ImportError, OSError, AttributeError, KeyError):
        return None


def _watts(info: dict) -> float:
    """The first socket power amdsmi reports as a number (W); "N/A" fields are skipped."""
    for key in ("current_socket_power", "socket_power", "average_socket_power"):
        value = info.get(key)
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    raise LookupError("no socket power reported")


def rocm_meter(bdf: str | None, amdsmi=None, run: Callable[[list], str] | None = None, **options) -> Meter | Absent:
    """This process's GPU, by PCI address (amd-smi and HIP may number GPUs differently)."""
    if bdf is None:
        return Absent("this torch does not report the GPU's PCI address, so its amdsmi handle cannot be found")
    amdsmi = amdsmi or _import_amdsmi()
    if amdsmi is None:
        return amd_smi_meter(bdf, run, **options)
    error = amdsmi.AmdSmiException
    try:
        amdsmi.amdsmi_init()
        handles = {amdsmi.amdsmi_get_gpu_device_bdf(h).lower(): h for h in amdsmi.amdsmi_get_processor_handles()}
    except error as err:
        return Absent(f"amdsmi cannot list the GPUs ({err})")
    handle = handles.get(bdf.lower())
    if handle is None:
        return Absent(f"amdsmi lists no GPU at {bdf} (it lists {', '.join(sorted(handles))})")
    name = f"GPU {bdf}"
    counter = working(lambda: int(amdsmi.amdsmi_get_energy_count(handle)["energy_accumulator"]), (error, KeyError))
    power = working(lambda: _watts(amdsmi.amdsmi_get_power_info(handle)), (error, LookupError))
    if counter is not None and counter() == 0 and power is None:
        return Absent(f"{name} is the secondary die of a two-die package (its counter stays at 0, its power is N/A): "
                      "the package's primary die reports both, and the rank there meters them")
    market = _market_name(amdsmi, handle, error)
    shared = "MI250" in market
    devices = [f"{name} ({market}, the package of two GCDs)" if shared else name]
    resolution_note = {"package": PACKAGE_NOTE} if shared else {}
    if counter is not None:
        unit_uj = float(amdsmi.amdsmi_get_energy_count(handle).get("counter_resolution", 15.3))
        return Meter("amdsmi:energy_accumulator", devices, [counter], scale_j=unit_uj * UJ, power_w=power,
                     resolution={"unit_j": unit_uj * UJ, "short_window_s": MIN_COUNTER_WINDOW_S,
                                 "short_window_source": "amdsmi:socket_power integrated" if power else None,
                                 **resolution_note},
                     **options)
    if power is not None:
        return Meter("amdsmi:socket_power integrated", devices, power_w=power,
                     resolution={"unit_j": None, "sample_period_s": 0.1, **resolution_note},
                     **{"poll_s": 0.1, **options})
    return Absent(f"amdsmi reports neither an energy counter nor power for {name}")


def _market_name(amdsmi, handle, error) -> str:
    try:
        return str(amdsmi.amdsmi_get_gpu_asic_info(handle).get("market_name", ""))
    except error:
        return ""


def amd_smi_energy_mj(bdf: str, run: Callable[[list], str] | None = None) -> int:
    """total_energy_consumption of one GPU from ``amd-smi metric --energy --csv`` (J with three
    decimals), in millijoules."""
    text = (run or run_text)(["amd-smi", "metric", "--energy", "--csv", "--gpu", bdf])
    rows = [line.split(",") for line in text.strip().splitlines() if line.strip()]
    if len(rows) < 2 or "total_energy_consumption" not in rows[0]:
        raise LookupError(f"amd-smi printed no total_energy_consumption for {bdf}")
    value = rows[1][rows[0].index("total_energy_consumption")].strip()
    return round(float(value) * 1000)


def amd_smi_meter(bdf: str, run=None, **options) -> Meter | Absent:
    """Without the binding: amd-smi's cumulative energy, one subprocess per read (reads happen at
    the window boundaries and every few seconds, not per step)."""
    try:
        amd_smi_energy_mj(bdf, run)
    except (OSError, subprocess.SubprocessError, ValueError, LookupError) as err:
        return Absent(f"neither the amdsmi binding nor a working amd-smi here ({err}); pip install 'unetbench[rocm]' "
                      "or put ROCm's amd-smi on PATH in ROCM_SETUP")
    return Meter("amd-smi:total_energy_consumption", [f"GPU {bdf}"], [lambda: amd_smi_energy_mj(bdf, run)],
                 scale_j=1e-3, resolution={"unit_j": 1e-3}, **options)
