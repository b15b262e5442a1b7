"""The Gaudi card's energy meter: HLML's counter for this rank's card, else hl-smi's power.

    meter = gaudi_meter(local_rank)      # HpuBackend.energy_meter(); Absent says why there is none

``habana-pyhlml`` (``pip install 'unetbench[gaudi]'``): ``hlmlDeviceGetTotalEnergyConsumption``
(mJ), else ``hlmlDeviceGetPowerUsage`` (mW) integrated, for this rank's card only
(HABANA_VISIBLE_MODULES lists the job's cards; HLML lists every card of the node); without
pyhlml, ``hl-smi``'s power.draw integrated.
"""

from __future__ import annotations

import importlib
import os
import subprocess
from typing import Callable, Mapping, Sequence

from ..energy import MIN_COUNTER_WINDOW_S, Absent, Meter, run_text, working
from .spec import visible_modules


def job_module(local_rank: int, all_modules: Sequence[int], env: Mapping[str, str] = os.environ) -> int | None:
    """The module id of this rank's card: the local_rank-th of the job's cards
    (HABANA_VISIBLE_MODULES, else every card of the node, in id order)."""
    modules = visible_modules(env) or sorted(all_modules)
    return modules[local_rank] if local_rank < len(modules) else None


def gaudi_meter(local_rank: int, env: Mapping[str, str] = os.environ, hlml=None, hl_smi=None,
                **options) -> Meter | Absent:
    if hlml is None:
        try:
            hlml = importlib.import_module("pyhlml")   # the module of Intel's habana-pyhlml
        except ImportError:
            return hl_smi_meter(local_rank, env, hl_smi, **options)
    try:
        hlml.hlmlInit()
        handles = [hlml.hlmlDeviceGetHandleByIndex(i) for i in range(hlml.hlmlDeviceGetCount())]
        by_module = {hlml.hlmlDeviceGetModuleID(h): h for h in handles}
    except Exception as err:  # HLMLError and its many subclasses
        return Absent(f"HLML cannot list the Gaudi cards ({err})")
    module = job_module(local_rank, list(by_module), env)
    if module not in by_module:
        return Absent(f"no Gaudi card for local rank {local_rank} among modules {sorted(by_module)} "
                      f"(HABANA_VISIBLE_MODULES={env.get('HABANA_VISIBLE_MODULES')!r})")
    handle, name = by_module[module], f"Gaudi module {module}"
    power = working(lambda: hlml.hlmlDeviceGetPowerUsage(handle) / 1000.0, Exception)
    counter = working(lambda: hlml.hlmlDeviceGetTotalEnergyConsumption(handle), Exception)
    if counter is not None:
        return Meter("hlml:total_energy_consumption", [name], [counter], scale_j=1e-3, power_w=power,
                     resolution={"unit_j": 1e-3, "short_window_s": MIN_COUNTER_WINDOW_S,
                                 "short_window_source": "hlml:power_usage integrated" if power else None},
                     **options)
    if power is not None:
        return Meter("hlml:power_usage integrated", [name], power_w=power,
                     resolution={"unit_j": None, "sample_period_s": 0.1}, **{"poll_s": 0.1, **options})
    return Absent(f"HLML reports neither energy nor power for Gaudi module {module}")


def hl_smi_power(module: int, run: Callable[[list], str] | None = None) -> float:
    """power.draw (W) of one card, from ``hl-smi``."""
    run = run or run_text
    text = run(["hl-smi", "-Q", "module_id,power.draw", "-f", "csv,noheader,nounits"])
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0] == str(module):
            return float(parts[1].split()[0])
    raise LookupError(f"hl-smi lists no module {module}")


def hl_smi_meter(local_rank: int, env: Mapping[str, str] = os.environ, run=None, **options) -> Meter | Absent:
    run = run or run_text
    try:
        listed = run(["hl-smi", "-Q", "module_id", "-f", "csv,noheader,nounits"])
        modules = [int(line.strip()) for line in listed.splitlines() if line.strip()]
        module = job_module(local_rank, modules, env)
        if module is None:
            return Absent(f"no Gaudi card for local rank {local_rank} among modules {sorted(modules)}")
        power = lambda: hl_smi_power(module, run)  # noqa: E731
        power()
    except (OSError, subprocess.SubprocessError, ValueError, LookupError) as err:
        return Absent(f"neither habana-pyhlml nor a working hl-smi here ({err}); "
                      "pip install 'unetbench[gaudi]'")
    return Meter("hl-smi:power.draw integrated", [f"Gaudi module {module}"], power_w=power,
                 resolution={"unit_j": None, "sample_period_s": 1.0}, **{"poll_s": 1.0, **options})
