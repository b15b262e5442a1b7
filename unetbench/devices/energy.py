"""Energy meters: the cumulative energy of the devices one process trains on, read in process.

    meter = backend.energy_meter()       # each Backend names its meter (backends.py)
    before = meter.read()                # joules since the meter was made
    ...                                  # work, between two synchronised boundaries
    joules = meter.read() - before
    meter.source, meter.resolution, meter.absent    # recorded in the results (energy_windows.py)

Sources, each imported only when its backend asks for it:
  NVIDIA  NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ, Volta and
          newer) through NVIDIA's binding ``nvidia-ml-py`` (``pip install 'unetbench[cuda]'``),
          for this process's own GPU (matched by UUID, so CUDA_VISIBLE_DEVICES cannot mislead
          it). The counter updates every 20-100 ms: a window shorter than MIN_COUNTER_WINDOW_S
          takes the integral of NVML's power readings instead, as does a GPU without the counter.
  Gaudi   ``habana-pyhlml`` (``pip install 'unetbench[gaudi]'``): ``hlmlDeviceGetTotalEnergyConsumption``
          (mJ), else ``hlmlDeviceGetPowerUsage`` (mW) integrated, for this rank's card only
          (HABANA_VISIBLE_MODULES lists the job's cards; HLML lists every card of the node);
          without pyhlml, ``hl-smi``'s power.draw integrated.
  CPU     Linux powercap RAPL (/sys/class/powercap/intel-rapl*/energy_uj, microjoules): every
          package zone and DRAM zone, wrap-around at max_energy_range_uj handled. The counters
          are the node's, so only local rank 0 meters them. Unreadable (root only since Linux
          5.10) or missing: the meter is ``Absent`` and says why.

Counters are polled in a background thread every few seconds besides the reads at the
boundaries, so a wrap-around between two boundaries far apart is never missed.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .gaudi import bridge as gaudi

MIN_COUNTER_WINDOW_S = 1.0   # ten updates of NVML's slowest (100 ms) counter: shorter windows integrate power
NVML_WRAP = 2**64            # NVML and HLML counters are unsigned 64-bit millijoules
POWERCAP_ROOT = Path("/sys/class/powercap")


class Absent:
    """No meter for this process; ``absent`` says why (recorded in the results)."""

    source = None
    resolution = None
    devices: list = []
    min_window_s = 0.0

    def __init__(self, reason: str):
        self.absent = reason

    def read(self) -> float | None:
        return None

    def fine(self) -> float | None:
        return None

    def close(self) -> None:
        pass


def counter_delta(last: int, raw: int, wrap: int | None, may_reset: bool) -> int:
    """Counter units between two readings. A smaller reading is a wrap-around at ``wrap``; for a
    counter that restarts when its driver reloads (``may_reset``), a wrap that would imply more
    than half the range in one step is a restart from zero instead."""
    if raw >= last:
        return raw - last
    wrapped = raw + wrap - last if wrap else None
    if wrapped is None or (may_reset and wrapped > wrap // 2):
        return raw
    return wrapped


class PowerIntegral:
    """Trapezoid integral of a power reading (W) over time; a read samples power at that instant."""

    def __init__(self, power_w: Callable[[], float], clock: Callable[[], float] = time.perf_counter):
        self.power_w = power_w
        self.clock = clock
        self.joules = 0.0
        self._t, self._p = clock(), power_w()

    def sample(self) -> float:
        t, p = self.clock(), self.power_w()
        self.joules += 0.5 * (p + self._p) * (t - self._t)
        self._t, self._p = t, p
        return self.joules


class Meter:
    """Cumulative joules of one or more raw counters (``scale_j`` joules per unit), with an
    optional power integral beside them for short windows. With no counter, the integral is
    the reading itself. A daemon thread samples both every ``poll_s`` seconds."""

    absent = None

    def __init__(self, source: str, devices: Sequence[str], counters: Sequence[Callable[[], int]] = (),
                 scale_j: float = 1e-3, wrap: int | None = NVML_WRAP, may_reset: bool = True,
                 power_w: Callable[[], float] | None = None, resolution: Mapping | None = None,
                 min_window_s: float = MIN_COUNTER_WINDOW_S, poll_s: float = 5.0,
                 clock: Callable[[], float] = time.perf_counter, start_polling: bool = True):
        if not counters and power_w is None:
            raise ValueError("a meter needs a counter or a power reading")
        self.source = source
        self.devices = list(devices)
        self.resolution = dict(resolution or {})
        self.min_window_s = min_window_s if counters and power_w is not None else 0.0
        self._counters = list(counters)
        self._scale_j, self._wrap, self._may_reset = scale_j, wrap, may_reset
        self._last = [read() for read in self._counters]
        self._units = 0
        self._lock = threading.Lock()
        self._integral = PowerIntegral(power_w, clock) if power_w is not None else None
        self._stop = threading.Event()
        self._thread = None
        if start_polling:
            self._thread = threading.Thread(target=self._poll, args=(poll_s,), daemon=True, name="energy-meter")
            self._thread.start()

    def _advance(self) -> None:
        for i, read in enumerate(self._counters):
            raw = read()
            self._units += counter_delta(self._last[i], raw, self._wrap, self._may_reset)
            self._last[i] = raw
        if self._integral is not None:
            self._integral.sample()

    def _poll(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                with self._lock:
                    self._advance()
            except Exception:  # a failed poll loses nothing: the next read advances from the last good one
                continue

    def read(self) -> float:
        """Joules since the meter was made: the counters' when there are any, else the integral."""
        with self._lock:
            self._advance()
            return self._units * self._scale_j if self._counters else self._integral.joules

    def fine(self) -> float | None:
        """Joules of the power integral (sampled by the last read()), for windows shorter than
        ``min_window_s``; None where the counter is the only source."""
        return self._integral.joules if self._integral is not None and self._counters else None

    def close(self) -> None:
        self._stop.set()


# -- NVIDIA -----------------------------------------------------------------------------------
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
    power = _working(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0, nvml.NVMLError)
    counter = _working(lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle), nvml.NVMLError)
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


def _working(read: Callable[[], float], error: type) -> Callable[[], float] | None:
    """``read`` if one call succeeds (the device supports it), else None."""
    try:
        read()
    except error:
        return None
    return read


# -- Intel Gaudi ------------------------------------------------------------------------------
def job_module(local_rank: int, all_modules: Sequence[int], env: Mapping[str, str] = os.environ) -> int | None:
    """The module id of this rank's card: the local_rank-th of the job's cards
    (HABANA_VISIBLE_MODULES, else every card of the node, in id order)."""
    modules = gaudi.visible_modules(env) or sorted(all_modules)
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
    power = _working(lambda: hlml.hlmlDeviceGetPowerUsage(handle) / 1000.0, Exception)
    counter = _working(lambda: hlml.hlmlDeviceGetTotalEnergyConsumption(handle), Exception)
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
    run = run or _run_text
    text = run(["hl-smi", "-Q", "module_id,power.draw", "-f", "csv,noheader,nounits"])
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0] == str(module):
            return float(parts[1].split()[0])
    raise LookupError(f"hl-smi lists no module {module}")


def hl_smi_meter(local_rank: int, env: Mapping[str, str] = os.environ, run=None, **options) -> Meter | Absent:
    run = run or _run_text
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


def _run_text(argv: list) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout


# -- CPU (RAPL) -------------------------------------------------------------------------------
def rapl_zones(root: Path = POWERCAP_ROOT) -> list[Path]:
    """Package zones (intel-rapl:N) and their DRAM subzones: together the energy of the sockets
    and their memory, nothing counted twice (core/uncore are inside the package; psys, on
    laptops, would contain everything)."""
    zones = []
    for zone in sorted(Path(root).glob("intel-rapl:*")):
        name = _text(zone / "name")
        parts = zone.name.split(":")
        if len(parts) == 2 and name != "psys":
            zones.append(zone)
        elif len(parts) == 3 and name == "dram":
            zones.append(zone)
    # Subzones also appear nested (intel-rapl:0/intel-rapl:0:2) on some kernels.
    for package in [z for z in zones if len(z.name.split(":")) == 2]:
        for sub in sorted(package.glob("intel-rapl:*:*")):
            if _text(sub / "name") == "dram" and sub.name not in {z.name for z in zones}:
                zones.append(sub)
    return zones


def rapl_meter(root: Path = POWERCAP_ROOT, **options) -> Meter | Absent:
    zones = rapl_zones(root)
    if not zones:
        return Absent(f"no RAPL zones under {root} (not a Linux host with the intel_rapl powercap driver)")
    counters, ranges = [], set()
    for zone in zones:
        try:
            int((zone / "energy_uj").read_text())
            ranges.add(int((zone / "max_energy_range_uj").read_text()))
        except PermissionError:
            return Absent(f"{zone / 'energy_uj'} is not readable (root only since Linux 5.10); "
                          "ask the administrators for read access to the RAPL counters")
        except (OSError, ValueError) as err:
            return Absent(f"cannot read {zone / 'energy_uj'} ({err})")
        counters.append(lambda path=zone / "energy_uj": int(path.read_text()))
    if len(ranges) != 1:  # one wrap for all: rare mixed ranges are handled zone by zone
        return _MultiRangeMeter(zones, counters, **options)
    names = [f"{_text(z / 'name') or z.name} ({z.name})" for z in zones]
    return Meter("rapl:" + "+".join(_text(z / "name") or z.name for z in zones), names, counters, scale_j=1e-6,
                 wrap=ranges.pop(), may_reset=False, resolution={"unit_j": 1e-6, "update_period_s": 0.001},
                 **{"poll_s": 5.0, **options})


class _MultiRangeMeter:
    """RAPL zones whose wrap-around ranges differ: one Meter per zone, read together."""

    absent = None
    min_window_s = 0.0

    def __init__(self, zones: list[Path], counters: list, **options):
        self.parts = [Meter(f"rapl:{_text(z / 'name')}", [z.name], [c], scale_j=1e-6,
                            wrap=int((z / "max_energy_range_uj").read_text()), may_reset=False,
                            **{"poll_s": 5.0, **options}) for z, c in zip(zones, counters)]
        self.source = "rapl:" + "+".join(p.source.split(":", 1)[1] for p in self.parts)
        self.devices = [d for p in self.parts for d in p.devices]
        self.resolution = {"unit_j": 1e-6, "update_period_s": 0.001}

    def read(self) -> float:
        return sum(p.read() for p in self.parts)

    def fine(self) -> None:
        return None

    def close(self) -> None:
        for p in self.parts:
            p.close()


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
