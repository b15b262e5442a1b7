"""Energy meters (unetbench/devices/energy.py and each device's energy.py) and the ledger at the step timer's boundaries (energy_windows.py).

NVML and HLML cannot run here: their bindings are replaced by stand-ins with the same calls,
named so. RAPL reads a fake /sys/class/powercap tree in a temporary folder: real files, real
parsing, the wrap-around at max_energy_range_uj included.
"""

import sys
import types

import pytest
from fakes import FakeClock

from unetbench.devices import energy
from unetbench.devices.cpu.energy import rapl_meter
from unetbench.devices.cuda.energy import nvml_meter
from unetbench.devices.energy import Absent, Meter, counter_delta
from unetbench.devices.gaudi.energy import gaudi_meter, hl_smi_meter
from unetbench.training.energy_windows import EnergyLedger, energy_section
from unetbench.training.timing import StepTimer


@pytest.fixture(autouse=True)
def _instant_probe(monkeypatch):
    """The meters' counter probe waits PROBE_S of real time between its reads; the stand-ins'
    counters move only when a test moves them, so the wait would only cost time here."""
    monkeypatch.setattr(energy, "PROBE_S", 0.0, raising=False)   # (absent before the probe existed)


class Device(FakeClock):
    """A fake device: time moves only when it works, its energy counter (mJ) with it. The
    counter starts where a real one would be, well above 0 (it counts since the driver loaded)."""

    def __init__(self, watts=100.0, start_mj=5_000_000):
        super().__init__()
        self.watts = watts
        self.mj = start_mj

    def work(self, seconds, watts=None):
        self.mj += int(round((watts or self.watts) * seconds * 1000))
        self.advance(seconds)


class NVMLError(Exception):
    pass


def nvml_standin(dev, counter=True, power=True):
    """The calls of nvidia-ml-py's pynvml that the meter makes, answered from ``dev``."""
    def energy_mj(handle):
        if not counter:
            raise NVMLError("Not Supported")
        return dev.mj

    def power_mw(handle):
        if not power:
            raise NVMLError("Not Supported")
        return int(dev.watts * 1000)

    return types.SimpleNamespace(
        NVMLError=NVMLError, nvmlInit=lambda: None, opened=[],
        nvmlDeviceGetHandleByUUID=lambda uuid: ("handle", uuid),
        nvmlDeviceGetHandleByIndex=lambda i: ("handle", i),
        nvmlDeviceGetTotalEnergyConsumption=energy_mj, nvmlDeviceGetPowerUsage=power_mw)


def _epoch(timer, dev, steps, seconds=0.5, watts=None):
    timer.epoch_start()
    for _ in range(steps):
        timer.step_start()
        dev.work(seconds, watts)
        timer.step_end(4)
    return timer.epoch_end()


def test_window_joules_are_the_counter_difference_at_the_timers_boundaries_nvml_standin():
    dev = Device()
    meter = nvml_meter("GPU-1234", nvml=nvml_standin(dev), clock=dev, start_polling=False)
    assert meter.source == "nvml:total_energy_consumption" and meter.resolution["unit_j"] == 1e-3
    ledger = EnergyLedger(meter)
    timer = StepTimer(dev.sync, dev.event, warmup_steps=2, clock=dev)
    seen = []  # (phase, clock reading, raw counter) at every boundary, as the timer saw them
    timer.hooks += [ledger.hook, lambda phase, now: seen.append((phase, now, dev.mj, len(dev.syncs)))]

    timer.epoch_start()
    for step in range(8):
        timer.step_start()
        dev.work(3.0 if step < 2 else 0.5, watts=150.0 if step < 2 else 300.0)  # compile, then steady
        timer.step_end(4)
    timer.epoch_end()
    dev.work(2.0, watts=50.0)  # between the boundaries (checkpointing): in no window

    # Every boundary came right after a synchronisation, at the same clock reading the timer used.
    assert [p for p, *_ in seen] == ["warmup", None, "steady", None]
    assert all(syncs >= 1 and dev.syncs[syncs - 1] == now for _, now, _, syncs in seen)
    steady_raw = seen[3][2] - seen[2][2]
    s = ledger.totals["steady"]
    assert s["energy_j"] == pytest.approx(steady_raw / 1000) == pytest.approx(300.0 * 3.0)
    assert s["seconds"] == pytest.approx(timer.summary()["measured_s"]) == pytest.approx(3.0)
    assert ledger.totals["warmup"]["energy_j"] == pytest.approx(150.0 * 6.0)

    section = energy_section(ledger.ranks, timer.summary())
    assert section["j_per_sample"] == pytest.approx(900.0 / 24)
    assert section["steady"]["avg_power_w"] == pytest.approx(300.0)
    assert section["samples_per_s_per_w"] == pytest.approx(24 / 3.0 / 300.0)


def test_traced_steps_get_their_own_energy_window_nvml_standin():
    dev = Device()
    ledger = EnergyLedger(nvml_meter(None, 0, nvml=nvml_standin(dev), clock=dev, start_polling=False))
    timer = StepTimer(dev.sync, dev.event, warmup_steps=1, clock=dev, trace_steps=2)
    timer.hooks.append(ledger.hook)
    timer.epoch_start()
    for watts in (100.0, 400.0, 400.0, 200.0, 200.0):
        timer.step_start()
        dev.work(1.0, watts)
        timer.step_end(4)
    timer.epoch_end()
    assert ledger.totals["trace"]["energy_j"] == pytest.approx(800.0)
    assert ledger.totals["steady"]["energy_j"] == pytest.approx(400.0)
    assert timer.summary()["measured_steps"] == 2 and timer.summary()["traced_steps"] == 2


def test_counter_wrap_and_driver_reload_nvml_standin():
    dev = Device(start_mj=2**64 - 500)
    meter = nvml_meter("GPU-1", nvml=nvml_standin(dev), clock=dev, start_polling=False)
    before = meter.read()
    dev.mj = 700  # wrapped past 2**64: 500 + 700 mJ
    assert meter.read() - before == pytest.approx(1.2)
    dev.mj = 50   # driver reloaded: the counter restarted from zero
    assert meter.read() - before == pytest.approx(1.25)
    assert counter_delta(10, 4, 16, may_reset=False) == 10  # RAPL-style: always a wrap


def test_without_a_counter_power_is_integrated_nvml_standin():
    dev = Device(watts=250.0)
    meter = nvml_meter("GPU-1", nvml=nvml_standin(dev, counter=False), clock=dev, start_polling=False)
    assert meter.source == "nvml:power_usage integrated" and meter.resolution["sample_period_s"] > 0
    before = meter.read()
    dev.work(2.0)
    assert meter.read() - before == pytest.approx(500.0)


def test_a_window_shorter_than_the_counter_resolves_takes_the_power_integral_nvml_standin():
    dev = Device(watts=200.0)
    meter = nvml_meter("GPU-1", nvml=nvml_standin(dev), clock=dev, start_polling=False)
    ledger = EnergyLedger(meter)
    ledger.hook("eval", dev.now)
    dev.now += 0.25   # the counter has not updated yet: it says 0 J for this window
    ledger.hook(None, dev.now)
    ev = ledger.totals["eval"]
    assert ev["short_windows"] == 1 and ev["energy_j"] == pytest.approx(50.0)


def test_without_nvidia_ml_py_the_meter_is_absent_and_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    meter = nvml_meter("GPU-1")
    assert isinstance(meter, Absent) and "nvidia-ml-py" in meter.absent
    section = energy_section([EnergyLedger(meter).state()], {"measured_samples": 10})
    assert section["energy_j"] is None and "nvidia-ml-py" in section["absent"]


def nvml_opened(dev):
    """A stand-in pynvml that records which GPU the meter opened, and how."""
    nvml = nvml_standin(dev)
    opened = []
    nvml.nvmlDeviceGetHandleByIndex = lambda i: opened.append(("index", i)) or ("handle", i)
    nvml.nvmlDeviceGetHandleByUUID = lambda uuid: opened.append(("uuid", uuid)) or ("handle", uuid)
    nvml.nvmlDeviceGetHandleByPciBusId_v2 = lambda bus: opened.append(("pci", bus)) or ("handle", bus)
    return nvml, opened


@pytest.mark.parametrize("visible, ordinal, expected", [
    ("2,3", 0, ("index", 2)),                  # Slurm gave the job GPUs 2 and 3: CUDA's device 0 is GPU 2
    ("2,3", 1, ("index", 3)),
    ("GPU-aaaa,GPU-bbbb", 1, ("uuid", "GPU-bbbb")),
])
def test_without_a_uuid_the_gpu_is_the_cuda_visible_devices_entry_not_the_cuda_ordinal_nvml_standin(
        monkeypatch, visible, ordinal, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    nvml, opened = nvml_opened(Device())
    meter = nvml_meter(None, ordinal, nvml=nvml, start_polling=False)
    assert opened == [expected] and meter.absent is None


def test_the_gpu_is_found_by_uuid_then_pci_bus_id_and_a_mig_slice_is_not_metered_nvml_standin():
    nvml, opened = nvml_opened(Device())
    nvml_meter("GPU-1234", 0, nvml=nvml, pci_bus_id="00000000:3B:00.0", env={}, start_polling=False)
    nvml_meter(None, 0, nvml=nvml, pci_bus_id="00000000:3B:00.0", env={"CUDA_VISIBLE_DEVICES": "5"},
               start_polling=False)
    assert opened == [("uuid", "GPU-1234"), ("pci", "00000000:3B:00.0")]
    mig = nvml_meter(None, 0, nvml=nvml, env={"CUDA_VISIBLE_DEVICES": "MIG-abcd"}, start_polling=False)
    assert isinstance(mig, Absent) and "MIG" in mig.absent


@pytest.mark.parametrize("broken, why", [
    ("zero", "reads 0"),               # pre-Volta GPUs through some bindings: 0 J, always
    ("backwards", "goes backwards"),
    ("raises", "raises"),              # NVML_ERROR_NOT_SUPPORTED where power reads still work
])
def test_a_counter_that_reads_0_goes_backwards_or_raises_is_never_0_joules_power_is_integrated_nvml_standin(
        broken, why):
    dev = Device(watts=250.0)
    nvml = nvml_standin(dev)
    reads = iter([9_000, 8_000])
    nvml.nvmlDeviceGetTotalEnergyConsumption = {
        "zero": lambda h: 0, "backwards": lambda h: next(reads, 7_000),
        "raises": lambda h: (_ for _ in ()).throw(NVMLError("Not Supported"))}[broken]
    meter = nvml_meter("GPU-1", nvml=nvml, clock=dev, start_polling=False)
    ledger = EnergyLedger(meter)
    ledger.hook("steady", dev.now)
    dev.work(2.0)
    ledger.hook(None, dev.now)
    assert ledger.totals["steady"]["energy_j"] == pytest.approx(500.0)   # 250 W x 2 s, not 0 J
    assert (meter.method, meter.source, meter.sample_hz) == ("power_integration", "nvml:power_usage integrated", 20.0)
    assert why in meter.note and "power integrated instead" in meter.note
    section = energy_section(ledger.ranks, {"measured_samples": 10})
    assert section["method"] == "power_integration" and section["sample_hz"] == 20.0 and why in section["note"]


def test_a_counter_without_power_that_reads_0_is_absent_not_0_joules_nvml_standin():
    dev = Device()
    nvml = nvml_standin(dev, power=False)
    nvml.nvmlDeviceGetTotalEnergyConsumption = lambda h: 0
    meter = nvml_meter("GPU-1", nvml=nvml, clock=dev, start_polling=False)
    assert isinstance(meter, Absent) and "reads 0" in meter.absent
    section = energy_section([EnergyLedger(meter).state()], {"measured_samples": 10})
    assert section["method"] == "none" and section["j_per_sample"] is None and "reads 0" in section["absent"]


def test_a_counter_that_raises_mid_run_gives_way_to_the_power_integral_for_the_open_window_nvml_standin():
    dev = Device(watts=200.0)
    nvml = nvml_standin(dev)
    failing = []

    def energy_mj(handle):
        if failing:
            raise NVMLError("GPU is lost")
        return dev.mj
    nvml.nvmlDeviceGetTotalEnergyConsumption = energy_mj
    meter = nvml_meter("GPU-1", nvml=nvml, clock=dev, start_polling=False)
    ledger = EnergyLedger(meter)
    ledger.hook("steady", dev.now)
    dev.work(3.0)
    ledger.hook(None, dev.now)
    ledger.hook("steady", dev.now)
    dev.work(2.0)
    failing.append(True)   # the counter fails while the second window is open
    ledger.hook(None, dev.now)
    ledger.hook("steady", dev.now)
    dev.work(1.5)
    ledger.hook(None, dev.now)
    assert ledger.totals["steady"]["energy_j"] == pytest.approx(200.0 * 6.5)   # no window read as 0 J
    assert ledger.totals["steady"]["windows"] == 3
    assert meter.method == "power_integration" and "raised mid-run" in meter.note and meter.sample_hz == 0.2


def test_the_idle_baseline_is_read_after_the_cooldown_and_gives_net_joules_per_sample_nvml_standin():
    dev = Device()
    meter = nvml_meter("GPU-1", nvml=nvml_standin(dev), clock=dev, start_polling=False)
    ledger = EnergyLedger(meter)
    syncs, rested = [], []

    def sleep(seconds):   # the device idles: hot (120 W) in the cool-down, then settled at 50 W
        rested.append(seconds)
        dev.work(seconds, watts=120.0 if len(rested) == 1 else 50.0)

    ledger.rest(cooldown_s=30.0, idle_s=2.0, sync=lambda: syncs.append(dev.now), clock=dev, sleep=sleep)
    assert rested == [30.0, 2.0] and syncs == [0.0]
    assert ledger.idle == {"idle_w": pytest.approx(50.0), "idle_s": pytest.approx(2.0), "cooldown_s": 30.0}
    timer = StepTimer(dev.sync, dev.event, warmup_steps=1, clock=dev)
    timer.hooks.append(ledger.hook)
    _epoch(timer, dev, 5, seconds=1.0, watts=300.0)
    section = energy_section(ledger.ranks, timer.summary())
    assert section["j_per_sample"] == pytest.approx(300.0 * 4 / 16)
    assert section["idle_w"] == pytest.approx(50.0) and section["idle_s"] == pytest.approx(2.0)
    assert section["net_j_per_sample"] == pytest.approx((300.0 - 50.0) * 4 / 16)


def test_no_meter_no_idle_reading_and_no_rest_at_all_when_both_are_0():
    ledger = EnergyLedger(Absent("no meter here"))
    syncs, slept = [], []
    ledger.rest(0.0, 0.0, sync=lambda: syncs.append(1), sleep=slept.append)
    assert syncs == [] and slept == []
    ledger.rest(5.0, 2.0, sync=lambda: syncs.append(1), sleep=slept.append)
    assert syncs == [1] and slept == [5.0] and ledger.idle is None   # cooled down; nothing to read


def test_ranks_idle_baselines_add_and_old_ranks_without_the_new_fields_still_make_a_section():
    def rank(r, idle):
        return {"rank": r, "source": "nvml:total_energy_consumption", "absent": None, "resolution": {},
                "devices": [f"GPU {r}"], "method": "counter", "sample_hz": None, "note": None, "idle": idle,
                "windows": {"steady": {"energy_j": 600.0, "seconds": 2.0, "windows": 2, "short_windows": 0}}}
    section = energy_section([rank(0, {"idle_w": 60.0, "idle_s": 2.0, "cooldown_s": 0.0}),
                              rank(1, {"idle_w": 70.0, "idle_s": 2.0, "cooldown_s": 0.0})], {"measured_samples": 40})
    assert section["idle_w"] == pytest.approx(130.0)
    assert section["net_j_per_sample"] == pytest.approx((1200.0 - 130.0 * 2.0) / 40)
    old = {k: v for k, v in rank(0, None).items() if k not in ("method", "sample_hz", "note", "idle")}
    section = energy_section([old], {"measured_samples": 40})   # a checkpoint written before these fields
    assert section["j_per_sample"] == pytest.approx(15.0) and section["net_j_per_sample"] is None
    assert section["method"] == "unknown" and section["idle_w"] is None


def test_the_section_names_the_runs_devices_in_the_monitor_csv_when_every_rank_knows_its_own():
    ranks = [EnergyLedger(Absent("no nvidia-ml-py"), monitor_id=i).state() for i in (3, 1)]
    for r, state in enumerate(ranks):
        state["rank"] = r
    assert energy_section(ranks, {})["monitor_devices"] == [1, 3]
    ranks[1]["monitor_device"] = None
    assert energy_section(ranks, {})["monitor_devices"] is None


@pytest.mark.parametrize("argv, needle", [(["--cooldown-s", "-1"], "cooldown-s must not be negative"),
                                          (["--idle-s", "-0.5"], "idle-s must not be negative")])
def test_the_rest_flags_are_training_settings_and_refuse_negative_seconds(argv, needle):
    from unetbench.core.errors import UserError
    from unetbench.core.settings import parse_settings
    settings, _ = parse_settings(["--cooldown-s", "60", "--idle-s", "0.5"], raising=True)
    assert (settings.cooldown_s, settings.idle_s) == (60.0, 0.5)
    with pytest.raises(UserError, match=needle):
        parse_settings(argv, raising=True)


def hlml_standin(cards):
    """pyhlml's calls over ``cards``: {module_id: [energy mJ]} (a list, so tests can change it)."""
    order = sorted(cards, reverse=True)  # HLML's index order need not be the module order
    return types.SimpleNamespace(
        hlmlInit=lambda: None, hlmlDeviceGetCount=lambda: len(order),
        hlmlDeviceGetHandleByIndex=lambda i: order[i], hlmlDeviceGetModuleID=lambda h: h,
        hlmlDeviceGetTotalEnergyConsumption=lambda h: cards[h][0],
        hlmlDeviceGetPowerUsage=lambda h: 400_000)


def test_only_the_card_the_bridge_took_is_counted_of_the_nodes_cards_hlml_standin():
    cards = {m: [1_000_000 * (m + 1)] for m in range(8)}  # eight cards on the node
    env = {"HABANA_VISIBLE_MODULES": "5,6", "HLS_MODULE_ID": "6"}   # rank 1: the bridge took module 6
    meter = gaudi_meter(env=env, hlml=hlml_standin(cards), start_polling=False)
    assert meter.devices == ["Gaudi module 6"] and meter.source == "hlml:total_energy_consumption"
    assert meter.method == "counter"
    before = meter.read()
    for m in cards:
        cards[m][0] += 10_000 * (m + 1)   # every card works, each at its own rate
    assert meter.read() - before == pytest.approx(70.0)   # module 6 only: 70 000 mJ


def test_without_hls_module_id_the_card_is_known_only_when_the_job_has_one_hlml_standin():
    cards = {m: [1_000_000] for m in (3, 1, 2)}
    # One process, HLS_MODULE_ID unset: the bridge acquired the first free card by type.
    assert gaudi_meter(env={"HABANA_VISIBLE_MODULES": "2"}, hlml=hlml_standin(cards),
                       start_polling=False).devices == ["Gaudi module 2"]
    unknown = gaudi_meter(env={}, hlml=hlml_standin(cards), start_polling=False)
    assert isinstance(unknown, Absent) and "HLS_MODULE_ID is unset" in unknown.absent
    assert "lists no Gaudi module 7" in gaudi_meter(env={"HLS_MODULE_ID": "7"}, hlml=hlml_standin(cards),
                                                    start_polling=False).absent


STANDIN_BRIDGE = __import__("pathlib").Path(__file__).parent / "standin_habana"


@pytest.mark.parametrize("env, expected", [
    # The site pins the process to module 5 of the job's two cards: the bridge takes module 5.
    ({"HABANA_VISIBLE_MODULES": "4,5", "HLS_MODULE_ID": "5"}, "Gaudi module 5"),
    # A bare srun task (LOCAL_RANK unset, WORLD_SIZE 1): the bridge took the first free card.
    ({"HABANA_VISIBLE_MODULES": "4,5"}, None),
])
def test_the_gaudi_backend_meters_the_card_the_bridge_took_not_the_local_ranks_standin(monkeypatch, env, expected):
    """CONTRACT TEST (stand-in bridge, tests/devices/standin_habana, and a stand-in pyhlml): the
    bridge's hccl set-up names the card in HLS_MODULE_ID; the meter follows it, where the local
    rank (0 here, in both cases) would name module 4."""
    import torch

    from unetbench.devices.base import make_backend
    monkeypatch.syspath_prepend(str(STANDIN_BRIDGE))
    for name in ("PT_HPU_LAZY_MODE", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK",
                 "HLS_MODULE_ID", "HABANA_VISIBLE_MODULES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in [m for m in sys.modules if m.startswith("habana_frameworks")]:
        monkeypatch.delitem(sys.modules, name)
    hlml = types.ModuleType("pyhlml")
    vars(hlml).update(vars(hlml_standin({m: [1_000_000 * (m + 1)] for m in range(8)})))
    monkeypatch.setitem(sys.modules, "pyhlml", hlml)
    try:
        backend = make_backend("gaudi_eager", "parity", local_rank=0)
        meter = backend.energy_meter()
        try:
            assert (meter.devices[0] if meter.absent is None else None) == expected
            # the monitor CSV's row id (hl-smi's module id) of the same card
            assert backend.monitor_device_id() == (5 if expected else None)
            if expected is None:
                assert "HLS_MODULE_ID is unset" in meter.absent
        finally:
            meter.close()
    finally:
        if hasattr(torch, "hpu"):
            del torch.hpu


def test_without_pyhlml_hl_smi_power_draw_is_integrated_for_this_ranks_card_standin(monkeypatch):
    dev = Device()
    calls = []

    def hl_smi(argv):  # stand-in hl-smi: four cards, 100 W apart
        calls.append(argv)
        if "module_id,power.draw" in argv:
            return "".join(f"{m}, {100 * (m + 1)}\n" for m in range(4))
        return "".join(f"{m}\n" for m in range(4))

    monkeypatch.setitem(sys.modules, "pyhlml", None)
    meter = gaudi_meter(env={"HABANA_VISIBLE_MODULES": "2"}, hl_smi=hl_smi, clock=dev, start_polling=False)
    assert meter.source == "hl-smi:power.draw integrated" and meter.devices == ["Gaudi module 2"]
    before = meter.read()
    dev.now += 10.0
    assert meter.read() - before == pytest.approx(3000.0)   # module 2 draws 300 W
    assert isinstance(hl_smi_meter({}, run=lambda argv: (_ for _ in ()).throw(FileNotFoundError("hl-smi"))),
                      Absent)


def _zone(root, name, kind, uj, max_uj=1_000_000):
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(kind + "\n")
    (zone / "energy_uj").write_text(f"{uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return zone


def test_rapl_counts_packages_and_dram_once_and_handles_wrap_around_powercap_tree(tmp_path):
    p0 = _zone(tmp_path, "intel-rapl:0", "package-0", 900_000)
    _zone(tmp_path, "intel-rapl:0:0", "core", 5)            # inside the package: not added
    dram = _zone(tmp_path, "intel-rapl:0:1", "dram", 100)
    p1 = _zone(tmp_path, "intel-rapl:1", "package-1", 10)
    _zone(tmp_path, "intel-rapl:2", "psys", 7)              # the whole platform: would count twice
    meter = rapl_meter(tmp_path, start_polling=False)
    assert meter.source == "rapl:package-0+dram+package-1"
    assert len(meter.devices) == 3
    before = meter.read()
    (p0 / "energy_uj").write_text("200000\n")   # wrapped at 1 000 000: +300 000 uJ
    (dram / "energy_uj").write_text("50100\n")  # +50 000
    (p1 / "energy_uj").write_text("1000010\n")  # +1 000 000 (a counter at its maximum)
    assert meter.read() - before == pytest.approx(1.35)


def test_rapl_absent_says_why_powercap_tree(tmp_path):
    assert "no RAPL zones" in rapl_meter(tmp_path / "none", start_polling=False).absent
    _zone(tmp_path, "intel-rapl:0", "package-0", 0)
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("not a number\n")
    assert "cannot read" in rapl_meter(tmp_path, start_polling=False).absent


def test_cpu_backend_meters_rapl_on_local_rank_0_only():
    from unetbench.devices.base import make_backend
    assert "local rank 0" in make_backend("cpu", local_rank=1).energy_meter().absent


def test_ranks_are_summed_and_kept_apart():
    def rank(r, steady_j, seconds):
        return {"rank": r, "source": "nvml:total_energy_consumption", "absent": None, "resolution": {"unit_j": 1e-3},
                "devices": [f"GPU {r}"], "windows": {"steady": {"energy_j": steady_j, "seconds": seconds,
                                                                "windows": 2, "short_windows": 0}}}
    section = energy_section([rank(0, 600.0, 2.0), rank(1, 580.0, 2.01)],
                             {"measured_samples": 64, "steady_samples_per_s": 32.0})
    assert section["steady"]["energy_j"] == pytest.approx(1180.0) and section["ranks_metered"] == 2
    assert section["steady"]["seconds"] == pytest.approx(2.01)
    assert section["j_per_sample"] == pytest.approx(1180.0 / 64)
    assert [r["rank"] for r in section["per_rank"]] == [0, 1] and section["devices"] == ["GPU 0", "GPU 1"]


def test_a_polling_meter_reads_between_boundaries_and_stops():
    counts = []

    def counter():
        counts.append(1)
        return len(counts)

    meter = Meter("test", ["x"], [counter], poll_s=0.01)
    try:
        deadline = 200
        while len(counts) < 5 and deadline:
            import time
            time.sleep(0.01)
            deadline -= 1
        assert len(counts) >= 5   # the thread polled without any read()
    finally:
        meter.close()
    assert energy.MIN_COUNTER_WINDOW_S > 0.1   # above NVML's slowest counter update


class MeteredCpu:
    """The CPU backend with a stand-in meter: a counter (mJ) that grows 100 W of host time."""

    @staticmethod
    def make():
        import time as _time

        from unetbench.devices.cpu.backend import CpuBackend

        class _Backend(CpuBackend):
            def energy_meter(self):
                t0 = _time.perf_counter()
                return Meter("standin:counter", ["cpu"], [lambda: int((_time.perf_counter() - t0) * 100_000)],
                             start_polling=False)
        return _Backend("parity")


@pytest.mark.slow
def test_a_real_cpu_run_meters_every_window_and_a_resume_continues_the_totals_standin(tiny_splits, tmp_path):
    from helpers import SMALL_SETTINGS

    from unetbench.core.settings import Settings
    from unetbench.training.trainer import Trainer

    settings = Settings(splits=str(tiny_splits), out=str(tmp_path), epochs=2, max_steps_per_epoch=4,
                        **{**SMALL_SETTINGS, "warmup_steps": 1, "idle_s": 0.2})
    trainer = Trainer(settings, MeteredCpu.make())
    assert trainer.run() == 0
    e = trainer.results("completed")["energy"]
    t = trainer.results("completed")["timing"]
    assert e["source"] == "standin:counter" and e["absent"] is None and e["method"] == "counter"
    # The idle baseline was read before warm-up (100 W of wall time, idle or not): net ~ 0 J/sample.
    assert e["idle_s"] >= 0.2 and e["idle_w"] == pytest.approx(100.0, rel=0.02)
    assert e["net_j_per_sample"] == pytest.approx(0.0, abs=0.02 * e["j_per_sample"])
    # 100 W of wall time: each window's joules are 100 x its seconds. The ledger's seconds are its
    # own reads' (timing.py, mark): the timer's window and the ledger's read at its opening edge,
    # never less than the timer's window.
    assert e["steady"]["seconds"] >= t["measured_s"] and e["steady"]["windows"] == 2
    assert e["steady"]["energy_j"] == pytest.approx(100.0 * e["steady"]["seconds"], rel=0.02, abs=0.05)
    assert e["warmup"]["seconds"] >= t["warmup_s"]
    assert e["eval"]["windows"] == 3 and e["eval"]["seconds"] >= t["eval_s"]  # 2 val + test
    assert e["j_per_sample"] == pytest.approx(e["steady"]["energy_j"] / t["measured_samples"])
    saved = torch_load(tmp_path / "last_cpu.pth")["energy"]
    assert saved[0]["windows"]["steady"]["windows"] == 2

    # A resumed process continues its rank's totals from the checkpoint (same source only).
    ledger = EnergyLedger(MeteredCpu.make().energy_meter())
    ledger.restore(saved)
    assert ledger.totals == saved[0]["windows"]
    other = EnergyLedger(Absent("no meter"))
    other.restore(saved)
    assert other.totals == {}


def torch_load(path):
    from unetbench.training.checkpoint import load_checkpoint
    return load_checkpoint(path)


@pytest.mark.parametrize("ranges", [(1_000_000, 1_000_000), (1_000_000, 2_000_000)], ids=["one-range", "multi-range"])
@pytest.mark.parametrize("damage", ["vanished", "garbage"])
def test_a_rapl_file_that_vanishes_or_turns_to_garbage_mid_run_ends_the_metering_not_the_run(tmp_path, ranges, damage):
    from unetbench.training.energy_windows import EnergyLedger
    p0 = _zone(tmp_path, "intel-rapl:0", "package-0", 1000, max_uj=ranges[0])
    _zone(tmp_path, "intel-rapl:1", "package-1", 1000, max_uj=ranges[1])
    meter = rapl_meter(tmp_path, start_polling=False)
    ledger = EnergyLedger(meter)
    ledger.hook("warmup", 0.0)
    (p0 / "energy_uj").write_text("5000\n")
    ledger.hook("steady", 2.0)                    # warm-up metered
    if damage == "vanished":
        (p0 / "energy_uj").unlink()
    else:
        (p0 / "energy_uj").write_text("not a number\n")
    ledger.hook(None, 4.0)                        # the boundary read fails: no exception, no figure
    assert meter.read() is None and meter.absent and "rapl" in meter.absent
    assert ledger.totals["warmup"]["energy_j"] == pytest.approx(0.004)
    assert "steady" not in ledger.totals


def test_a_counter_that_fails_as_the_meter_opens_falls_back_instead_of_raising():
    from unetbench.devices.energy import Meter

    def broken():
        raise RuntimeError("NVML_ERROR_GPU_IS_LOST")

    with_power = Meter("nvml:total_energy_consumption", ["GPU 0"], [broken], power_w=lambda: 100.0,
                       power_source="nvml:power_usage", start_polling=False)
    assert with_power.method == "power_integration" and "NVML_ERROR_GPU_IS_LOST" in with_power.note
    assert with_power.read() is not None
    alone = Meter("rapl:package-0", ["intel-rapl:0"], [broken], start_polling=False)
    assert alone.method == "none" and alone.read() is None and "NVML_ERROR_GPU_IS_LOST" in alone.absent
