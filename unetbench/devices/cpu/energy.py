"""The CPU's energy meter: Linux powercap RAPL, the node's package and DRAM zones.

    meter = rapl_meter()                 # CpuBackend.energy_meter() on local rank 0; Absent says why not

/sys/class/powercap/intel-rapl*/energy_uj (microjoules): every package zone and DRAM zone,
wrap-around at max_energy_range_uj handled. The counters are the node's, so only local rank 0
meters them. Unreadable (root only since Linux 5.10) or missing: the meter is ``Absent`` and
says why.
"""

from __future__ import annotations

from pathlib import Path

from ..energy import Absent, Meter

POWERCAP_ROOT = Path("/sys/class/powercap")


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
    method = "counter"
    sample_hz = None
    note = None

    def __init__(self, zones: list[Path], counters: list, **options):
        self.parts = [Meter(f"rapl:{_text(z / 'name')}", [z.name], [c], scale_j=1e-6,
                            wrap=int((z / "max_energy_range_uj").read_text()), may_reset=False,
                            **{"poll_s": 5.0, **options}) for z, c in zip(zones, counters)]
        self.source = "rapl:" + "+".join(p.source.split(":", 1)[1] for p in self.parts)
        self.devices = [d for p in self.parts for d in p.devices]
        self.resolution = {"unit_j": 1e-6, "update_period_s": 0.001}

    def read(self) -> float | None:
        """The zones' joules summed; None once one of them failed (its file vanished or holds
        garbage mid-run): RAPL has no power reading to fall back on, so the meter is absent."""
        readings = [p.read() for p in self.parts]
        failed = next((p for p in self.parts if p.absent is not None), None)
        if failed is not None:
            self.absent = self.note = failed.absent
            self.method = "none"
            return None
        return sum(readings)

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
