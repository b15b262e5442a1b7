"""The Intel GPU's energy meter: the counter of this rank's card, or of its stack, and of nothing else.

    meter = xpu_meter(local_rank)        # XpuBackend.energy_meter(); Absent says why there is none
    meter = xpu_meter(0, env, pyzes=standin, sysfs=tmp_tree, start_polling=False)   # the tests

Which device is this rank's: torch's device ``local_rank`` is the local_rank-th of the job's
devices (ZE_AFFINITY_MASK's entries, else every device of the node) in PCI order, the order
spec.xpu_job_env asks Level Zero for. Under COMPOSITE a device is a card; under FLAT (Level
Zero's default) each stack of a multi-stack card is a device, numbered card by card. Both
sources below list the node's physical cards whatever the mask and the hierarchy say (Sysman
is not masked: include/zes_api.h), so cards are sorted by PCI address and indexed.

A stack is metered by a counter of its own where the card has one; without one the meter is
Absent: the card's counter is shared by its stacks, and two ranks on the two stacks of a card
must not both count it.

Sources, in order:
1. Level Zero Sysman through Intel's ctypes binding ``pyzes`` (pip install pyzes; 0.1.2 and
   later have zesDevicePciGetProperties and zesPowerGetProperties). ``zesPowerGetEnergyCounter``
   is a monotonic uint64 of µJ (zes_api.h). The card's domain is the device-level one named
   CARD, else PACKAGE (as torch.xpu.power_draw prefers); a stack's is the one on that sub-device.
   Importing pyzes loads libze_loader at once and raises where it is missing.
2. The kernel's hwmon, /sys/class/drm/card*/device/hwmon/hwmon*: ``energy1_input`` in µJ of the
   hwmon named "i915" or "xe" (the card) or "i915_gt<k>" (stack k) (kernel
   Documentation/ABI/testing/sysfs-driver-intel-{i915,xe}-hwmon). i915 keeps a 64-bit sum of a
   32-bit register that wraps every 4.36 minutes at 1000 W and adds to it only when read, so it
   catches one wrap between two reads (i915_hwmon.c, hwm_energy): read every 60 s, well inside that.
Without either, the monitor's xpu-smi power samples still give the report an energy figure.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable

from ..energy import Absent, Meter, working
from .spec import COMPOSITE, MASK_VAR, hierarchy, job_cards

UJ = 1e-6                    # joules per counter unit: both sources count microjoules
SYSMAN_WRAP = 2**64          # zes_power_energy_counter_t.energy is a uint64
HWMON_POLL_S = 60.0          # i915 catches one 32-bit wrap between reads (4.36 min at 1000 W)
DRM = Path("/sys/class/drm")
GPU_DRIVERS = ("i915", "xe")
# Level Zero's zes_power_domain_t (zes_api.h), for bindings that lack the names.
DOMAIN_UNKNOWN, DOMAIN_CARD, DOMAIN_PACKAGE, DOMAIN_STACK = 0, 1, 2, 3
# Which domain counts a whole card, or one stack, best first. MEMORY and GPU domains count a part only.
CARD_DOMAINS = (DOMAIN_CARD, DOMAIN_PACKAGE, DOMAIN_UNKNOWN)
STACK_DOMAINS = (DOMAIN_STACK, DOMAIN_PACKAGE, DOMAIN_UNKNOWN)
INTEGRATED = 1 << 0          # ZE_DEVICE_PROPERTY_FLAG_INTEGRATED
ZE_DEVICE_TYPE_GPU = 1
FALLBACK = "energy from the monitor's xpu-smi power samples only"


@dataclass
class Counter:
    """One energy counter in µJ and how it is read."""
    source: str                            # the results' energy source
    read: Callable[[], int]
    detail: str                            # which domain or file, for the results' resolution
    meter_options: dict = field(default_factory=dict)


@dataclass
class Card:
    """A physical card and the counters it offers."""
    bdf: str                               # PCI address, 0000:3a:00.0: the sort key
    stacks: int                            # 1 for a single-stack card
    whole: Counter | None = None
    per_stack: dict[int, Counter] = field(default_factory=dict)


# -- which device is this rank's ------------------------------------------------------------
def level_zero_devices(stacks: Sequence[int], composite: bool) -> list[tuple[int, int | None]]:
    """Level Zero's devices before any mask, in PCI order: (card, None) for a whole card, (card,
    stack) for one stack of a multi-stack card under FLAT."""
    if composite:
        return [(card, None) for card in range(len(stacks))]
    return [(card, stack if count > 1 else None) for card, count in enumerate(stacks) for stack in range(count)]


def rank_device(local_rank: int, stacks: Sequence[int], env: Mapping[str, str]) -> tuple[int, int | None] | str:
    """(card, stack or None) of this rank's torch device, or why it cannot be told."""
    mask = env.get(MASK_VAR, "").strip()
    chosen = job_cards(env)
    if mask and chosen is None:
        return (f"{MASK_VAR}={mask!r} names sub-devices: which counter is this rank's alone is not "
                "worked out for such masks")
    every = level_zero_devices(stacks, hierarchy(env) == COMPOSITE)
    # The masked devices keep the unmasked list's order (PCI order), not the mask's.
    mine = every if chosen is None else [every[i] for i in sorted(set(chosen)) if i < len(every)]
    if local_rank >= len(mine):
        return f"no device for local rank {local_rank}: {len(mine)} in this job ({MASK_VAR}={mask or 'unset'})"
    return mine[local_rank]


def meter_for(cards: Sequence[Card], local_rank: int, env: Mapping[str, str], fix: str = "",
              **options) -> Meter | Absent:
    """The meter of this rank's card or stack among ``cards`` (PCI order); ``fix`` completes the
    reason where the device has no counter at all."""
    where = rank_device(local_rank, [card.stacks for card in cards], env)
    if isinstance(where, str):
        return Absent(where)
    card, stack = cards[where[0]], where[1]
    name = f"Intel GPU {card.bdf}" + (f" stack {stack}" if stack is not None else "")
    counter = card.whole if stack is None else card.per_stack.get(stack)
    if counter is None and stack is not None:
        return Absent(f"{name}: the card's counter is shared by its {card.stacks} stacks ({hierarchy(env)} "
                      "hierarchy: one device per stack) and the stack has none of its own")
    if counter is None:
        return Absent(f"{name} has no energy counter{fix}")
    return Meter(counter.source, [name], [counter.read], scale_j=UJ,
                 resolution={"unit_j": UJ, "counter": counter.detail},
                 **{**counter.meter_options, **options})


# -- Level Zero Sysman (pyzes) --------------------------------------------------------------
class SysmanError(RuntimeError):
    pass


def _check(result: int, call: str) -> None:
    if result != 0:   # ZE_RESULT_SUCCESS
        raise SysmanError(f"{call} returned 0x{result:x}")


def _handles(get: Callable, kind, call: str) -> list:
    """The C idiom pyzes keeps: ask for the count, then for that many handles."""
    count = ctypes.c_uint32(0)
    _check(get(ctypes.byref(count), None), call)
    handles = (kind * count.value)()
    _check(get(ctypes.byref(count), handles), call)
    return list(handles)[:count.value]


def _bdf(zes: ModuleType, device) -> str:
    pci = zes.zes_pci_properties_t()
    pci.stype = zes.ZES_STRUCTURE_TYPE_PCI_PROPERTIES
    _check(zes.zesDevicePciGetProperties(device, ctypes.byref(pci)), "zesDevicePciGetProperties")
    a = pci.address
    return f"{a.domain:04x}:{a.bus:02x}:{a.device:02x}.{a.function:x}"


def _domain(zes: ModuleType, power) -> tuple[bool, int, int]:
    """(on a sub-device, which, zes_power_domain_t) of a power domain; the domain type comes from
    the extension structure chained to the properties, where the binding has it."""
    props = zes.zes_power_properties_t()
    props.stype = zes.ZES_STRUCTURE_TYPE_POWER_PROPERTIES
    ext = None
    if hasattr(zes, "zes_power_ext_properties_t"):
        ext = zes.zes_power_ext_properties_t()
        ext.stype = zes.ZES_STRUCTURE_TYPE_POWER_EXT_PROPERTIES
        props.pNext = ctypes.cast(ctypes.pointer(ext), ctypes.c_void_p)
    _check(zes.zesPowerGetProperties(power, ctypes.byref(props)), "zesPowerGetProperties")
    return bool(props.onSubdevice), int(props.subdeviceId), int(ext.domain) if ext is not None else DOMAIN_UNKNOWN


def _energy_reader(zes: ModuleType, power) -> Callable[[], int]:
    def read() -> int:
        counter = zes.zes_power_energy_counter_t()
        _check(zes.zesPowerGetEnergyCounter(power, ctypes.byref(counter)), "zesPowerGetEnergyCounter")
        return int(counter.energy)
    return read


def _best(domains: list[tuple[int, Callable[[], int]]], preference: Sequence[int]) -> tuple[int, Callable] | None:
    ranked = [(preference.index(kind), kind, read) for kind, read in domains if kind in preference]
    return min(ranked, key=lambda r: r[0])[1:] if ranked else None


DOMAIN_NAMES = {DOMAIN_UNKNOWN: "device-level", DOMAIN_CARD: "card", DOMAIN_PACKAGE: "package", DOMAIN_STACK: "stack"}


def _sysman_counter(kind: int, read: Callable[[], int], where: str) -> Counter | None:
    if working(read, SysmanError) is None:
        return None
    return Counter("sysman:power_energy_counter", read, f"{DOMAIN_NAMES[kind]} domain{where}",
                   {"wrap": SYSMAN_WRAP})


def _sysman_card(zes: ModuleType, device) -> tuple[Card, int]:
    """The card and its zes_device_properties_t flags."""
    props = zes.zes_device_properties_t()
    props.stype = zes.ZES_STRUCTURE_TYPE_DEVICE_PROPERTIES
    _check(zes.zesDeviceGetProperties(device, ctypes.byref(props)), "zesDeviceGetProperties")
    card = Card(_bdf(zes, device), max(1, int(props.numSubdevices)))
    whole: list = []
    stacks: dict[int, list] = {}
    for power in _handles(lambda n, out: zes.zesDeviceEnumPowerDomains(device, n, out), zes.zes_pwr_handle_t,
                          "zesDeviceEnumPowerDomains"):
        on_sub, sub, kind = _domain(zes, power)
        (stacks.setdefault(sub, []) if on_sub else whole).append((kind, _energy_reader(zes, power)))
    best = _best(whole, CARD_DOMAINS)
    card.whole = _sysman_counter(*best, "") if best else None
    for sub, domains in stacks.items():
        best = _best(domains, STACK_DOMAINS)
        counter = _sysman_counter(*best, f" of sub-device {sub}") if best else None
        if counter is not None:
            card.per_stack[sub] = counter
    return card, (int(props.core.flags) if props.core.type == ZE_DEVICE_TYPE_GPU else -1)


def sysman_cards(zes: ModuleType) -> list[Card]:
    """Every GPU card Sysman lists, in PCI order; the discrete ones only where there are any
    (an integrated GPU is no device torch trains on beside them)."""
    _check(zes.zesInit(0), "zesInit")
    found: list[tuple[Card, int]] = []
    for driver in _handles(zes.zesDriverGet, zes.zes_driver_handle_t, "zesDriverGet"):
        for device in _handles(lambda n, out, driver=driver: zes.zesDeviceGet(driver, n, out),
                               zes.zes_device_handle_t, "zesDeviceGet"):
            found.append(_sysman_card(zes, device))
    gpus = [(card, flags) for card, flags in found if flags >= 0]
    discrete = [card for card, flags in gpus if not flags & INTEGRATED]
    return sorted(discrete or [card for card, _ in gpus], key=lambda card: card.bdf)


def _import_pyzes() -> ModuleType | str:
    try:
        return importlib.import_module("pyzes")
    except Exception as err:  # noqa: BLE001  ImportError, or OSError when libze_loader is missing
        return f"pyzes not importable ({type(err).__name__}: {err}); pip install pyzes"


def sysman_meter(local_rank: int, env: Mapping[str, str], zes: ModuleType | None = None, **options) -> Meter | Absent:
    zes = zes if zes is not None else _import_pyzes()
    if isinstance(zes, str):
        return Absent(zes)
    try:
        cards = sysman_cards(zes)
    except (SysmanError, AttributeError, ctypes.ArgumentError) as err:   # a failed call, an older binding
        return Absent(f"Level Zero Sysman: {err}")
    if not cards:
        return Absent("Level Zero Sysman lists no GPU")
    return meter_for(cards, local_rank, env, fix=" in Level Zero Sysman", **options)


# -- the kernel's hwmon ---------------------------------------------------------------------
def _text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _file_counter(monitor: Path) -> Counter | None:
    """A hwmon's energy counter: energy1_input (i915's device or GT, xe's card), else xe's
    energy2_input (package)."""
    name = _text(monitor / "name")
    for file in ("energy1_input", "energy2_input"):
        path = monitor / file
        read = working(lambda path=path: int(path.read_text()), (OSError, ValueError))
        if read is not None:
            # A smaller reading is a driver reload (the sum restarts), not a wrap: 63 bits of µJ.
            return Counter(f"hwmon:{name}:{file}", read, str(path),
                           {"wrap": None, "may_reset": True, "poll_s": HWMON_POLL_S})
    return None


def _hwmon_card(card: Path) -> Card:
    device = card / "device"
    monitors = {_text(h / "name"): h for h in sorted((device / "hwmon").glob("hwmon*"))}
    per_stack = {}
    for name, monitor in monitors.items():
        gt = re.fullmatch(r"i915_gt(\d+)", name)
        counter = _file_counter(monitor) if gt else None
        if counter is not None:
            per_stack[int(gt.group(1))] = counter
    whole = next((monitors[name] for name in GPU_DRIVERS if name in monitors), None)
    # Stacks: i915's per-GT folders and hwmons, xe's tiles; where none tells, one.
    stacks = max([1, len(list((card / "gt").glob("gt[0-9]*"))), len(list(device.glob("tile[0-9]*"))),
                  *(k + 1 for k in per_stack)])
    return Card(device.resolve().name, stacks, _file_counter(whole) if whole else None, per_stack)


def hwmon_cards(sysfs: Path = DRM) -> list[Card]:
    """The node's Intel GPU cards (driver i915 or xe; not the BMC's display chip), in PCI order."""
    cards = [path for path in sysfs.glob("card[0-9]*") if "-" not in path.name]   # card0-DP-1: a connector
    ours = [path for path in cards if (path / "device" / "driver").resolve().name in GPU_DRIVERS]
    return sorted((_hwmon_card(path) for path in ours), key=lambda card: card.bdf)


def hwmon_meter(local_rank: int, env: Mapping[str, str], sysfs: Path = DRM, **options) -> Meter | Absent:
    cards = hwmon_cards(sysfs)
    if not cards:
        return Absent(f"no i915 or xe GPU under {sysfs} (hwmon energy needs kernel 6.2 or later)")
    return meter_for(cards, local_rank, env, fix=" in hwmon (a kernel whose i915 or xe driver has hwmon energy: 6.2 or later)",
                     **options)


def xpu_meter(local_rank: int, env: Mapping[str, str] = os.environ, pyzes: ModuleType | None = None,
              sysfs: Path = DRM, **options) -> Meter | Absent:
    """This rank's card or stack: Sysman's counter, else hwmon's; Absent with every reason."""
    sysman = sysman_meter(local_rank, env, pyzes, **options)
    if not isinstance(sysman, Absent):
        return sysman
    hwmon = hwmon_meter(local_rank, env, sysfs, **options)
    if not isinstance(hwmon, Absent):
        return hwmon
    return Absent(f"{sysman.absent}; {hwmon.absent}; {FALLBACK}")
