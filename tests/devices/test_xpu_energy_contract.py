"""CONTRACT TESTS for the XPU energy meter (unetbench/devices/xpu/energy.py), against stand-ins:
no Intel GPU exists here.

A pyzes binding whose functions fill the same ctypes structures the real one's C calls fill,
and a /sys/class/drm tree with i915 and xe hwmons. What is checked: each rank meters its own
card (or, in FLAT mode, its own stack) and never a counter another rank also counts.
"""

from __future__ import annotations

import ctypes
import sys
import types
from ctypes import (
    POINTER,
    c_char,
    c_int32,
    c_int64,
    c_ubyte,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)

import pytest

from unetbench.devices.energy import Absent
from unetbench.devices.xpu import energy

# ---- energy: Level Zero Sysman through a stand-in pyzes --------------------------------------

def pyzes_structures(zes: types.ModuleType) -> None:
    """The ctypes structures and handles of pyzes (level-zero bindings/sysman/python/source/pyzes.py),
    field for field, so the code under test allocates what it would allocate for the real binding."""
    class ze_device_uuid_t(ctypes.Structure):
        _fields_ = [("id", c_ubyte * 16)]

    class ze_device_properties_t(ctypes.Structure):
        _fields_ = [("stype", c_int32), ("pNext", c_void_p), ("type", c_int32), ("vendorId", c_uint32),
                    ("deviceId", c_uint32), ("flags", c_uint32), ("subdeviceId", c_uint32),
                    ("coreClockRate", c_uint32), ("maxMemAllocSize", c_uint64), ("maxHardwareContexts", c_uint32),
                    ("maxCommandQueuePriority", c_uint32), ("numThreadsPerEU", c_uint32),
                    ("physicalEUSimdWidth", c_uint32), ("numEUsPerSubslice", c_uint32),
                    ("numSubslicesPerSlice", c_uint32), ("numSlices", c_uint32), ("timerResolution", c_uint64),
                    ("timestampValidBits", c_uint32), ("kernelTimestampValidBits", c_uint32),
                    ("uuid", ze_device_uuid_t), ("name", c_char * 256)]

    class zes_device_properties_t(ctypes.Structure):
        _fields_ = [("stype", c_int32), ("pNext", c_void_p), ("core", ze_device_properties_t),
                    ("numSubdevices", c_uint32), ("serialNumber", c_char * 64), ("boardNumber", c_char * 64),
                    ("brandName", c_char * 64), ("modelName", c_char * 64), ("vendorName", c_char * 64),
                    ("driverVersion", c_char * 64)]

    class zes_pci_address_t(ctypes.Structure):
        _fields_ = [("domain", c_uint32), ("bus", c_uint32), ("device", c_uint32), ("function", c_uint32)]

    class zes_pci_speed_t(ctypes.Structure):
        _fields_ = [("gen", c_int32), ("width", c_int32), ("maxBandwidth", c_int64)]

    class zes_pci_properties_t(ctypes.Structure):
        _fields_ = [("stype", c_int32), ("pNext", c_void_p), ("address", zes_pci_address_t),
                    ("maxSpeed", zes_pci_speed_t), ("haveBandwidthCounters", c_uint8),
                    ("havePacketCounters", c_uint8), ("haveReplayCounters", c_uint8)]

    class zes_power_properties_t(ctypes.Structure):
        _fields_ = [("stype", c_int32), ("pNext", c_void_p), ("onSubdevice", c_uint8), ("subdeviceId", c_uint32),
                    ("canControl", c_uint8), ("isEnergyThresholdSupported", c_uint8), ("defaultLimit", c_int32),
                    ("minLimit", c_int32), ("maxLimit", c_int32)]

    class zes_power_limit_ext_desc_t(ctypes.Structure):
        _fields_ = [("stype", c_int32), ("pNext", c_void_p), ("level", c_int32), ("source", c_int32),
                    ("limitUnit", c_int32), ("enabledStateLocked", c_uint8), ("enabled", c_uint8),
                    ("intervalValueLocked", c_uint8), ("interval", c_int32), ("limitValueLocked", c_uint8),
                    ("limit", c_int32)]

    class zes_power_ext_properties_t(ctypes.Structure):
        _fields_ = [("stype", c_int32), ("pNext", c_void_p), ("domain", c_int32),
                    ("defaultLimit", POINTER(zes_power_limit_ext_desc_t))]

    class zes_power_energy_counter_t(ctypes.Structure):
        _fields_ = [("energy", c_uint64), ("timestamp", c_uint64)]

    for kind in ("driver", "device", "pwr"):
        setattr(zes, f"zes_{kind}_handle_t", type(f"zes_{kind}_handle_t", (c_void_p,), {}))
    for struct in (ze_device_properties_t, zes_device_properties_t, zes_pci_address_t, zes_pci_properties_t,
                   zes_power_properties_t, zes_power_ext_properties_t, zes_power_energy_counter_t):
        setattr(zes, struct.__name__, struct)
    zes.ZE_RESULT_SUCCESS, zes.ZE_RESULT_ERROR_UNSUPPORTED_FEATURE = 0, 0x78000003
    zes.ZES_STRUCTURE_TYPE_DEVICE_PROPERTIES, zes.ZES_STRUCTURE_TYPE_PCI_PROPERTIES = 0x1, 0x2
    zes.ZES_STRUCTURE_TYPE_POWER_PROPERTIES, zes.ZES_STRUCTURE_TYPE_POWER_EXT_PROPERTIES = 0xD, 0x28


# zes_power_domain_t
CARD, PACKAGE, STACK, MEMORY = 1, 2, 3, 4


class StandinPyzes:
    """pyzes over a node of two Max 1550s (two stacks each) that Sysman lists out of PCI order.
    Each card has a device-level MEMORY domain (listed first: never the card's), a device-level
    PACKAGE domain and, with ``stack_domains``, one STACK domain per stack. ``uj`` holds every
    domain's counter in µJ by (PCI bus, domain index); tests move them."""

    BUSES = (0x9A, 0x3A)   # zesDeviceGet's order; PCI order is 0x3a (card 0), then 0x9a (card 1)

    def __init__(self, stack_domains: bool = True):
        self.domains = [(False, 0, MEMORY), (False, 0, PACKAGE)]
        if stack_domains:
            self.domains += [(True, 0, STACK), (True, 1, STACK)]
        self.uj = {(bus, i): 1_000_000 * (i + 1) for bus in self.BUSES for i in range(len(self.domains))}
        zes = types.ModuleType("pyzes")
        pyzes_structures(zes)
        for name in ("zesInit", "zesDriverGet", "zesDeviceGet", "zesDeviceGetProperties", "zesDevicePciGetProperties",
                     "zesDeviceEnumPowerDomains", "zesPowerGetProperties", "zesPowerGetEnergyCounter"):
            setattr(zes, name, getattr(self, name))
        self.zes = zes

    @staticmethod
    def _fill(pCount, handles, values, kind):
        """The C idiom: with no array, say how many; with one, fill up to *pCount of them."""
        count = pCount._obj
        if handles is None:
            count.value = len(values)
            return 0
        for i, value in enumerate(values[:count.value]):
            handles[i] = kind(value)
        return 0

    def zesInit(self, flags):
        return 0

    def zesDriverGet(self, pCount, phDrivers):
        return self._fill(pCount, phDrivers, [7], self.zes.zes_driver_handle_t)

    def zesDeviceGet(self, hDriver, pCount, phDevices):
        assert hDriver.value == 7
        return self._fill(pCount, phDevices, list(self.BUSES), self.zes.zes_device_handle_t)

    def zesDeviceGetProperties(self, hDevice, pProperties):
        props = pProperties._obj
        assert props.stype == self.zes.ZES_STRUCTURE_TYPE_DEVICE_PROPERTIES
        props.core.type, props.core.flags, props.numSubdevices = 1, 0, 2   # a discrete GPU of two stacks
        return 0

    def zesDevicePciGetProperties(self, hDevice, pProperties):
        props = pProperties._obj
        assert props.stype == self.zes.ZES_STRUCTURE_TYPE_PCI_PROPERTIES
        props.address.domain, props.address.bus, props.address.device, props.address.function = 0, hDevice.value, 0, 0
        return 0

    def zesDeviceEnumPowerDomains(self, hDevice, pCount, phPower):
        handles = [hDevice.value * 100 + i for i in range(len(self.domains))]
        return self._fill(pCount, phPower, handles, self.zes.zes_pwr_handle_t)

    def zesPowerGetProperties(self, hPower, pProperties):
        props = pProperties._obj
        assert props.stype == self.zes.ZES_STRUCTURE_TYPE_POWER_PROPERTIES
        props.onSubdevice, props.subdeviceId, domain = self.domains[hPower.value % 100]
        if props.pNext:   # the extension structure chained to it, as the driver fills it
            ext = ctypes.cast(props.pNext, POINTER(self.zes.zes_power_ext_properties_t)).contents
            assert ext.stype == self.zes.ZES_STRUCTURE_TYPE_POWER_EXT_PROPERTIES
            ext.domain = domain
        return 0

    def zesPowerGetEnergyCounter(self, hPower, pEnergy):
        pEnergy._obj.energy = self.uj[(hPower.value // 100, hPower.value % 100)]
        return 0

    def add(self, bus: int, domain: int, uj: int) -> None:
        self.uj[(bus, domain)] += uj


def _every_domain_works(node: StandinPyzes) -> None:
    """Every counter of the node moves, each by its own amount (µJ): only one of them is this rank's."""
    for bus, domain in node.uj:
        node.add(bus, domain, 1_000_000 * (bus % 7 + 1) + 250_000 * domain)


def test_composite_meters_the_jobs_card_by_its_package_domain_pyzes_standin(tmp_path):
    node = StandinPyzes()
    env = {"ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE", "ZE_AFFINITY_MASK": "1"}
    meter = energy.xpu_meter(0, env, pyzes=node.zes, sysfs=tmp_path, start_polling=False)
    assert meter.devices == ["Intel GPU 0000:9a:00.0"]   # card 1 in PCI order, listed first by Sysman
    assert meter.source == "sysman:power_energy_counter" and meter.resolution["counter"] == "package domain"
    before = meter.read()
    _every_domain_works(node)
    assert meter.read() - before == pytest.approx(1e-6 * (1_000_000 * (0x9A % 7 + 1) + 250_000 * 1))
    # Level Zero lists the masked cards in PCI order, not in the mask's: rank 0 of "1,0" has card 0
    env["ZE_AFFINITY_MASK"] = "1,0"
    assert energy.xpu_meter(0, env, pyzes=node.zes, sysfs=tmp_path, start_polling=False).devices == [
        "Intel GPU 0000:3a:00.0"]


def test_flat_meters_a_stack_by_its_own_domain_pyzes_standin(tmp_path):
    node = StandinPyzes()
    meter = energy.xpu_meter(1, {}, pyzes=node.zes, sysfs=tmp_path, start_polling=False)   # FLAT, no mask
    assert meter.devices == ["Intel GPU 0000:3a:00.0 stack 1"]   # device 1: card 0's second stack
    assert meter.resolution["counter"] == "stack domain of sub-device 1"
    before = meter.read()
    node.add(0x3A, 3, 2_500_000)
    node.add(0x3A, 1, 9_000_000)   # the card's package: not this rank's alone
    assert meter.read() - before == pytest.approx(2.5)
    masked = energy.xpu_meter(0, {"ZE_AFFINITY_MASK": "2"}, pyzes=node.zes, sysfs=tmp_path, start_polling=False)
    assert masked.devices == ["Intel GPU 0000:9a:00.0 stack 0"]   # flat device 2: card 1's first stack


def test_flat_without_stack_domains_is_absent_never_the_shared_card_pyzes_standin(tmp_path):
    meter = energy.xpu_meter(1, {}, pyzes=StandinPyzes(stack_domains=False).zes, sysfs=tmp_path)
    assert isinstance(meter, Absent) and "shared by its 2 stacks" in meter.absent


def test_the_sysman_counter_wraps_at_64_bits_pyzes_standin(tmp_path):
    node = StandinPyzes()
    node.uj[(0x3A, 1)] = 2**64 - 1_000_000
    meter = energy.xpu_meter(0, {"ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE"}, pyzes=node.zes, sysfs=tmp_path,
                             start_polling=False)
    before = meter.read()
    node.uj[(0x3A, 1)] = 500_000
    assert meter.read() - before == pytest.approx(1.5)


def test_a_stack_mask_and_too_many_ranks_are_absent_with_the_reason_pyzes_standin(tmp_path):
    node = StandinPyzes()
    stacked = energy.xpu_meter(0, {"ZE_AFFINITY_MASK": "0.1"}, pyzes=node.zes, sysfs=tmp_path)
    assert isinstance(stacked, Absent) and "names sub-devices" in stacked.absent
    beyond = energy.xpu_meter(2, {"ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE"}, pyzes=node.zes, sysfs=tmp_path)
    assert isinstance(beyond, Absent) and "no device for local rank 2" in beyond.absent


# ---- energy: the kernel's hwmon in a temporary /sys/class/drm --------------------------------

def _hwmon(device, index: int, name: str, uj: int | None):
    folder = device / "hwmon" / f"hwmon{index}"
    folder.mkdir(parents=True)
    (folder / "name").write_text(name + "\n")
    if uj is not None:
        (folder / "energy1_input").write_text(f"{uj}\n")
    return folder


def _card(root, card: str, bdf: str, driver: str, monitors=()):
    """/sys/class/drm/<card>/device -> the PCI device <bdf>, bound to <driver>, with hwmons (name, µJ)."""
    device = root / "devices" / bdf
    (root / "drivers" / driver).mkdir(parents=True, exist_ok=True)
    device.mkdir(parents=True)
    (device / "driver").symlink_to(root / "drivers" / driver)
    (root / "drm" / card).mkdir(parents=True)
    (root / "drm" / card / "device").symlink_to(device)
    return {name: _hwmon(device, i, name, uj) for i, (name, uj) in enumerate(monitors)}


@pytest.fixture
def drm(tmp_path, monkeypatch):
    """Two Max 1550s on i915 (card0 is the higher PCI address), the BMC's display chip and a connector."""
    monkeypatch.setitem(sys.modules, "pyzes", None)   # no Sysman: the hwmon source is the one left
    stacks = [("i915", 5_000_000), ("i915_gt0", 2_000_000), ("i915_gt1", 3_000_000)]
    cards = {"0000:9a:00.0": _card(tmp_path, "card0", "0000:9a:00.0", "i915", stacks),
             "0000:3a:00.0": _card(tmp_path, "card1", "0000:3a:00.0", "i915", stacks)}
    _card(tmp_path, "card2", "0000:02:00.0", "ast")
    (tmp_path / "drm" / "card0-DP-1").mkdir()
    return tmp_path / "drm", cards


def _add(monitor, uj: int) -> None:
    file = monitor / "energy1_input"
    file.write_text(f"{int(file.read_text()) + uj}\n")


def test_composite_meters_the_jobs_card_by_its_i915_hwmon_sysfs_tree(drm):
    root, cards = drm
    meter = energy.xpu_meter(0, {"ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE", "ZE_AFFINITY_MASK": "1"}, sysfs=root,
                             start_polling=False)
    assert meter.devices == ["Intel GPU 0000:9a:00.0"] and meter.source == "hwmon:i915:energy1_input"
    before = meter.read()
    _add(cards["0000:9a:00.0"]["i915"], 7_000_000)
    _add(cards["0000:3a:00.0"]["i915"], 1_000_000)   # the other card
    assert meter.read() - before == pytest.approx(7.0)
    assert [card.bdf for card in energy.hwmon_cards(root)] == ["0000:3a:00.0", "0000:9a:00.0"]   # not the BMC's
    assert energy.hwmon_cards(root)[0].whole.meter_options["poll_s"] == energy.HWMON_POLL_S == 60.0


def test_flat_meters_a_stack_by_its_i915_gt_hwmon_sysfs_tree(drm):
    root, cards = drm
    meter = energy.xpu_meter(1, {}, sysfs=root, start_polling=False)
    assert meter.devices == ["Intel GPU 0000:3a:00.0 stack 1"] and meter.source == "hwmon:i915_gt1:energy1_input"
    before = meter.read()
    _add(cards["0000:3a:00.0"]["i915_gt1"], 1_250_000)
    _add(cards["0000:3a:00.0"]["i915_gt0"], 4_000_000)
    assert meter.read() - before == pytest.approx(1.25)


def test_a_reloaded_driver_restarts_the_hwmon_sum_and_is_not_a_wrap_sysfs_tree(drm):
    root, cards = drm
    meter = energy.xpu_meter(0, {"ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE"}, sysfs=root, start_polling=False)
    before = meter.read()
    (cards["0000:3a:00.0"]["i915"] / "energy1_input").write_text("300000\n")   # smaller: the sum began again
    assert meter.read() - before == pytest.approx(0.3)


def test_an_xe_card_with_two_tiles_in_flat_mode_is_absent_sysfs_tree(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyzes", None)
    monitors = _card(tmp_path, "card0", "0000:3a:00.0", "xe", [("xe", 1_000_000)])
    device = monitors["xe"].parent.parent
    (device / "tile0").mkdir()
    (device / "tile1").mkdir()
    meter = energy.xpu_meter(0, {}, sysfs=tmp_path / "drm")
    assert isinstance(meter, Absent) and "shared by its 2 stacks" in meter.absent
    whole = energy.xpu_meter(0, {"ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE"}, sysfs=tmp_path / "drm", start_polling=False)
    assert whole.source == "hwmon:xe:energy1_input"


def test_without_pyzes_or_hwmon_the_meter_is_absent_and_names_both_fixes(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyzes", None)
    meter = energy.xpu_meter(0, {}, sysfs=tmp_path)
    assert isinstance(meter, Absent)
    assert "pip install pyzes" in meter.absent and "6.2" in meter.absent and "xpu-smi" in meter.absent
    _card(tmp_path, "card0", "0000:3a:00.0", "i915", [("i915", None)])   # hwmon without an energy file
    no_counter = energy.xpu_meter(0, {}, sysfs=tmp_path / "drm")
    assert isinstance(no_counter, Absent) and "has no energy counter in hwmon" in no_counter.absent
