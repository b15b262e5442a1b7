"""The Gaudi card's energy meter: HLML's counter for the card this process uses, else hl-smi's power.

    meter = gaudi_meter()                # HpuBackend.energy_meter(); Absent says why there is none

``habana-pyhlml`` (``pip install 'unetbench[gaudi]'``): ``hlmlDeviceGetTotalEnergyConsumption``
(mJ, probed once: one that raises, reads 0 or goes backwards is not trusted), else
``hlmlDeviceGetPowerUsage`` (mW) integrated, for this process's card only (HLML lists every
card of the node); without pyhlml, ``hl-smi``'s power.draw integrated.

Which card: the one the bridge took (bridge_module). The bridge's
distributed/hccl/__init__.py (``_setup_module_id``) sets HLS_MODULE_ID, when unset, to
HABANA_VISIBLE_MODULES[LOCAL_RANK] (else LOCAL_RANK) only when LOCAL_RANK is set and
WORLD_SIZE > 1; otherwise (one process, or a bare srun without LOCAL_RANK) it acquires the
first free card by type. So HLS_MODULE_ID names the card when set; else the card is known
only when the job has one; else the meter is Absent and says why, rather than metering a
neighbour's card.
"""

from __future__ import annotations

import importlib
import os
import subprocess
from typing import Callable, Mapping, Sequence

from ..energy import Absent, Meter, counter_or_power, run_text, working
from .spec import MODULE_ID_VAR, visible_modules


def bridge_module(all_modules: Sequence[int], env: Mapping[str, str] = os.environ) -> tuple[int | None, str]:
    """(module id of the card the bridge took for this process, how that is known); the id is
    None where it cannot be told, and the text then says why."""
    chosen = env.get(MODULE_ID_VAR, "").strip()
    if chosen.isdigit():
        return int(chosen), f"{MODULE_ID_VAR}={chosen}"
    modules = visible_modules(env) or sorted(all_modules)
    if len(modules) == 1:
        return modules[0], "the job's only card"
    return None, (f"{MODULE_ID_VAR} is unset, so the bridge took the first free of the cards {modules} "
                  f"and which one is unknown; launch with LOCAL_RANK and WORLD_SIZE set (run_benchmark.sh "
                  f"does, through unetbench.training.rankenv) or set {MODULE_ID_VAR}")


def gaudi_meter(env: Mapping[str, str] = os.environ, hlml=None, hl_smi=None, **options) -> Meter | Absent:
    if hlml is None:
        try:
            hlml = importlib.import_module("pyhlml")   # the module of Intel's habana-pyhlml
        except ImportError:
            return hl_smi_meter(env, hl_smi, **options)
    try:
        hlml.hlmlInit()
        handles = [hlml.hlmlDeviceGetHandleByIndex(i) for i in range(hlml.hlmlDeviceGetCount())]
        by_module = {hlml.hlmlDeviceGetModuleID(h): h for h in handles}
    except Exception as err:  # HLMLError and its many subclasses
        return Absent(f"HLML cannot list the Gaudi cards ({err})")
    module, how = bridge_module(list(by_module), env)
    if module is None:
        return Absent(f"no energy meter: {how}")
    if module not in by_module:
        return Absent(f"HLML lists no Gaudi module {module} ({how}) among modules {sorted(by_module)}")
    handle, name = by_module[module], f"Gaudi module {module}"
    power = working(lambda: hlml.hlmlDeviceGetPowerUsage(handle) / 1000.0, Exception)
    return counter_or_power("hlml:total_energy_consumption", [name],
                            lambda: hlml.hlmlDeviceGetTotalEnergyConsumption(handle), power,
                            "hlml:power_usage", 0.1, {"unit_j": 1e-3}, **options)


def hl_smi_power(module: int, run: Callable[[list], str] | None = None) -> float:
    """power.draw (W) of one card, from ``hl-smi``."""
    run = run or run_text
    text = run(["hl-smi", "-Q", "module_id,power.draw", "-f", "csv,noheader,nounits"])
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0] == str(module):
            return float(parts[1].split()[0])
    raise LookupError(f"hl-smi lists no module {module}")


def hl_smi_meter(env: Mapping[str, str] = os.environ, run=None, **options) -> Meter | Absent:
    run = run or run_text
    options.pop("probe_wait", None)   # no counter to probe: hl-smi reports power only
    try:
        listed = run(["hl-smi", "-Q", "module_id", "-f", "csv,noheader,nounits"])
        modules = [int(line.strip()) for line in listed.splitlines() if line.strip()]
        module, how = bridge_module(modules, env)
        if module is None:
            return Absent(f"no energy meter: {how}")
        if module not in modules:
            return Absent(f"hl-smi lists no Gaudi module {module} ({how}) among modules {sorted(modules)}")
        power = lambda: hl_smi_power(module, run)  # noqa: E731
        power()
    except (OSError, subprocess.SubprocessError, ValueError, LookupError) as err:
        return Absent(f"neither habana-pyhlml nor a working hl-smi here ({err}); "
                      "pip install 'unetbench[gaudi]'")
    return Meter("hl-smi:power.draw integrated", [f"Gaudi module {module}"], power_w=power,
                 resolution={"unit_j": None, "sample_period_s": 1.0}, **{"poll_s": 1.0, **options})
