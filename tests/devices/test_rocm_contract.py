"""CONTRACT TESTS for the ROCm backend, against stand-ins: no AMD GPU exists here.

What they check is how the suite drives AMD's stack, not that an Instinct GPU computes: a torch
whose ``torch.version.hip`` is set and whose ``torch.cuda`` calls are recorded (PyTorch's ROCm
build answers through torch.cuda), an ``amdsmi`` binding with an MI250X's two dies, amd-smi's
watch-mode CSV, and the job's variables as Slurm sets them.
"""

from __future__ import annotations

import io
import os
import types

import pytest
import torch
from fakes import fake_tool
from helpers import SMALL_SETTINGS

from unetbench.cluster import monitor
from unetbench.core.errors import UserError
from unetbench.core.settings import Settings
from unetbench.devices.base import InlineStream, make_backend
from unetbench.devices.before_torch import prepare_environment
from unetbench.devices.energy import Absent
from unetbench.devices.events import TorchEvent
from unetbench.devices.rocm import energy, spec
from unetbench.training.trainer import Trainer

# amd-smi metric -u -m -p -t --csv -w 1 (ROCm 6.x column order: usage, power, temperature, memory);
# the header comes again at every interval.
AMD_SMI_WATCH = [
    "timestamp,gpu,gfx_activity,umc_activity,mm_activity,vcn_activity,jpeg_activity,socket_power,gfx_voltage,"
    "soc_voltage,mem_voltage,throttle_status,power_management,edge,hotspot,mem,total_vram,used_vram,free_vram",
    '1733260000,0,97,40,N/A,"[0, 0, 0, 0]","[0, 0]",512,N/A,N/A,N/A,UNTHROTTLED,ENABLED,45,61,58,65520,40211,25309',
    '1733260000,1,0,0,N/A,"[0, 0, 0, 0]","[0, 0]",N/A,N/A,N/A,N/A,UNTHROTTLED,ENABLED,40,44,42,65520,12,65508',
    "timestamp,gpu,gfx_activity,umc_activity,mm_activity,vcn_activity,jpeg_activity,socket_power,gfx_voltage,"
    "soc_voltage,mem_voltage,throttle_status,power_management,edge,hotspot,mem,total_vram,used_vram,free_vram",
    '1733260001,0,98,41,N/A,"[0, 0, 0, 0]","[0, 0]",530,N/A,N/A,N/A,UNTHROTTLED,ENABLED,45,62,58,65520,40300,25220',
]


def test_amd_smi_rows_are_read_by_column_name_and_only_the_jobs_gpus_kept():
    out = io.StringIO()
    rows = monitor.record(AMD_SMI_WATCH, out, clock=lambda: 7.0, keep={0}, rows_of=spec.AMD_SMI.rows)
    assert rows == 2
    assert out.getvalue().splitlines() == ["7.000,0,97,40211,512,61", "7.000,0,98,40300,530,62"]
    # a secondary die reports no power: the field stays empty, never 0 W
    assert list(spec.amd_smi_rows(AMD_SMI_WATCH[:3]))[1] == ["1", "0", "12", "N/A", "44"]


def test_the_jobs_gpus_are_rocr_visible_devices_then_hips_choice_among_them():
    assert spec.job_gpus({"ROCR_VISIBLE_DEVICES": "4,5,6"}) == [4, 5, 6]
    assert spec.job_gpus({"ROCR_VISIBLE_DEVICES": "4,5,6", "HIP_VISIBLE_DEVICES": "2,0"}) == [6, 4]
    assert spec.job_gpus({"ROCR_VISIBLE_DEVICES": "GPU-9f2c"}) is None
    assert spec.job_gpus({}) is None


def test_miopen_databases_go_to_node_local_tmp_per_job_unless_the_site_chose(monkeypatch):
    assert spec.miopen_job_env({}) == {}, "outside a job MIOpen's own default applies"
    assert spec.miopen_job_env({"SLURM_JOB_ID": "42", "USER": "ada"}) == {
        "MIOPEN_USER_DB_PATH": "/tmp/ada-unetbench-miopen-42", "MIOPEN_CUSTOM_CACHE_DIR": "/tmp/ada-unetbench-miopen-42"}
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("USER", "ada")
    monkeypatch.setenv("MIOPEN_CUSTOM_CACHE_DIR", "/local/scratch/miopen")   # the site's SETUP exported it
    monkeypatch.delenv("MIOPEN_USER_DB_PATH", raising=False)
    prepare_environment("rocm")
    assert os.environ["MIOPEN_USER_DB_PATH"] == "/tmp/ada-unetbench-miopen-42"
    assert os.environ["MIOPEN_CUSTOM_CACHE_DIR"] == "/local/scratch/miopen"


# ---- the backend over a ROCm torch ---------------------------------------------------------

class StandinHip:
    """torch.cuda as PyTorch's ROCm build answers it, on two GCDs; records the loop's calls."""

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        self.props = types.SimpleNamespace(name="AMD Instinct MI250X", gcnArchName="gfx90a:sramecc+:xnack-",
                                           pci_domain_id=0, pci_bus_id=0xC1, pci_device_id=0)
        monkeypatch.setattr(torch.version, "hip", "6.4.43482", raising=False)
        for name, value in {
            "is_available": lambda: True, "device_count": lambda: 2, "set_device": lambda d: None,
            "synchronize": self._count("synchronize"), "Event": self._event,
            "memory_allocated": lambda d=None: 1 << 20, "memory_reserved": lambda d=None: 2 << 20,
            "max_memory_allocated": lambda d=None: 3 << 20, "max_memory_reserved": lambda d=None: 4 << 20,
            "reset_peak_memory_stats": self._count("reset_peak_memory_stats"),
            "get_rng_state": lambda d=None: torch.get_rng_state(), "set_rng_state": lambda s, d=None: None,
            "get_device_name": lambda d=None: self.props.name, "get_device_properties": lambda d=None: self.props,
        }.items():
            monkeypatch.setattr(torch.cuda, name, value)

    SWITCHES = ((torch.backends.cudnn, "benchmark"), (torch.backends.cudnn, "allow_tf32"),
                (torch.backends.cuda.matmul, "allow_tf32"))

    def _count(self, name):
        return lambda *a, **k: self.calls.append(name)

    def _event(self, enable_timing=False):
        calls = self.calls

        class Event:
            def record(self):
                calls.append("event.record")

            def elapsed_time(self, later):
                return 1.5
        return Event()


@pytest.fixture
def hip(monkeypatch):
    for name in (*spec.NHWC_VARS, spec.TF32_VAR):
        monkeypatch.delenv(name, raising=False)
    # The backend sets torch's global switches; put them back by hand (torch.backends.cuda.matmul
    # is no plain module: monkeypatch cannot undo an attribute there).
    saved = [(module, flag, getattr(module, flag)) for module, flag in StandinHip.SWITCHES]
    yield StandinHip(monkeypatch)
    for module, flag, value in saved:
        setattr(module, flag, value)


def test_the_fast_profile_sets_and_records_miopen_nhwc_tf32_and_an_exhaustive_find(hip):
    backend = make_backend("rocm", "fast")
    assert os.environ["PYTORCH_MIOPEN_SUGGEST_NHWC"] == os.environ["PYTORCH_MIOPEN_SUGGEST_NHWC_BATCHNORM"] == "1"
    assert os.environ["HIPBLASLT_ALLOW_TF32"] == "1"
    assert torch.backends.cudnn.benchmark is True
    assert backend.channels_last and backend.precision == "bf16"
    assert backend.device_settings() == {"miopen_find": "exhaustive", "miopen_find_mode": "default",
                                         "miopen_suggest_nhwc": "1", "miopen_suggest_nhwc_batchnorm": "1",
                                         "hipblaslt_allow_tf32": "1"}


def test_parity_is_true_fp32_and_leaves_the_layout_switches_unset(hip):
    backend = make_backend("rocm", "parity")
    assert backend.math_mode()["tf32"] is False and not torch.backends.cuda.matmul.allow_tf32
    assert backend.device_settings()["miopen_suggest_nhwc"] == "unset"
    assert backend.device_settings()["hipblaslt_allow_tf32"] == "unset"


def test_each_build_refuses_the_other_devices_backend(hip, monkeypatch):
    with pytest.raises(UserError, match="built for AMD GPUs"):
        make_backend("cuda", "parity")
    monkeypatch.setattr(torch.version, "hip", None)
    with pytest.raises(UserError, match=r"no ROCm build .*ROCM_SETUP"):
        make_backend("rocm", "parity")


def test_the_environment_names_the_gpu_its_arch_and_address(hip, monkeypatch):
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "2")
    env = make_backend("rocm", "parity").environment()
    assert env["gcn_arch"] == "gfx90a" and env["pci_address"] == "0000:c1:00.0"
    assert env["hip"] == "6.4.43482" and env["rocr_visible_devices"] == "2"


def test_the_loop_synchronises_at_boundaries_and_times_steps_with_hip_events(hip, tiny_splits, tmp_path, monkeypatch):
    backend = make_backend("rocm", "parity")
    assert isinstance(backend.new_event(), TorchEvent)
    # The stand-in computes on the CPU: no device tensors, so no HIP side stream or pinned batches either.
    monkeypatch.setattr(type(backend), "device", property(lambda self: torch.device("cpu")))
    monkeypatch.setattr(type(backend), "side_stream", lambda self: InlineStream())
    monkeypatch.setattr(backend, "loader_pinning", False)
    # and torch's own optimizers must not take the host for a GPU once the backend is made
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(type(backend), "energy_meter", lambda self: Absent("stand-in"))
    hip.calls.clear()
    settings = Settings(splits=str(tiny_splits), out=str(tmp_path), epochs=1, max_steps_per_epoch=5, **SMALL_SETTINGS)
    trainer = Trainer(settings, backend)
    assert trainer.run() == 0
    # From the synchronisation that opens the steady window (the peak restarts there).
    reset = hip.calls.index("reset_peak_memory_stats")
    calls = hip.calls[reset - hip.calls[reset::-1].index("synchronize"):]
    first, last = calls.index("event.record"), len(calls) - 1 - calls[::-1].index("event.record")
    # The measured steps (all but the one warm-up step) are timed by HIP events recorded into
    # the stream, with no synchronisation between them; the clock is read after one.
    assert calls[first:last + 1] == ["event.record"] * 5
    assert "synchronize" in calls[:first] and calls[last + 1] == "synchronize"
    results = trainer.results("completed")
    assert results["environment"]["device_settings"]["miopen_find"] == "exhaustive"
    assert results["memory"]["peak_allocated_gb"] == pytest.approx((3 << 20) / 1e9)


# ---- energy ---------------------------------------------------------------------------------

class StandinAmdsmi(types.SimpleNamespace):
    """amdsmi over one MI250X package: GCD 0000:c1 is the primary die, 0000:c6 the secondary
    (counter 0, power N/A), as rocm_smi.py and Zeus describe it."""

    class AmdSmiException(Exception):
        pass

    def __init__(self, market="AMD Instinct MI250X"):
        super().__init__()
        self.ticks = {"0000:c1:00.0": 1000, "0000:c6:00.0": 0}
        self.market = market

    def amdsmi_init(self):
        pass

    def amdsmi_get_processor_handles(self):
        return ["h-c6", "h-c1"]

    def amdsmi_get_gpu_device_bdf(self, handle):
        return {"h-c1": "0000:C1:00.0", "h-c6": "0000:c6:00.0"}[handle]

    def amdsmi_get_energy_count(self, handle):
        return {"energy_accumulator": self.ticks[self.amdsmi_get_gpu_device_bdf(handle).lower()],
                "counter_resolution": 15.3, "timestamp": 0}

    def amdsmi_get_power_info(self, handle):
        primary = handle == "h-c1"
        return {"current_socket_power": "N/A", "average_socket_power": 400 if primary else "N/A"}

    def amdsmi_get_gpu_asic_info(self, handle):
        return {"market_name": self.market}


def test_the_primary_die_meters_its_package_in_15_3_microjoule_ticks():
    smi = StandinAmdsmi()
    meter = energy.rocm_meter("0000:c1:00.0", amdsmi=smi, start_polling=False)
    assert meter.source == "amdsmi:energy_accumulator"
    assert "package of two GCDs" in meter.devices[0] and "package" in meter.resolution
    smi.ticks["0000:c1:00.0"] += 1_000_000
    assert meter.read() == pytest.approx(15.3)


def test_the_secondary_die_meters_nothing_and_says_why():
    meter = energy.rocm_meter("0000:c6:00.0", amdsmi=StandinAmdsmi())
    assert isinstance(meter, Absent) and "secondary die" in meter.absent


def test_a_single_die_gpu_is_not_labelled_a_package_and_an_unknown_address_is_named():
    smi = StandinAmdsmi(market="AMD Instinct MI300X")
    assert energy.rocm_meter("0000:c1:00.0", amdsmi=smi, start_polling=False).devices == ["GPU 0000:c1:00.0"]
    missing = energy.rocm_meter("0000:99:00.0", amdsmi=smi)
    assert isinstance(missing, Absent) and "0000:c1:00.0, 0000:c6:00.0" in missing.absent


def test_without_the_binding_amd_smi_energy_is_the_counter(tmp_path, monkeypatch):
    tool = fake_tool(tmp_path, "amd-smi", lines=["gpu,total_energy_consumption", "0,123456.789"])
    runs = []

    def run(argv):
        runs.append(argv)
        return os.popen(str(tool)).read()
    meter = energy.amd_smi_meter("0000:c1:00.0", run=run, start_polling=False)
    assert meter.source == "amd-smi:total_energy_consumption"
    assert ["amd-smi", "metric", "--energy", "--csv", "--gpu", "0000:c1:00.0"] in runs
    assert meter.read() == 0.0   # the same reading: nothing consumed between them
    broken = energy.amd_smi_meter("0000:c1:00.0", run=lambda argv: "gpu,power\n0,12\n")
    assert isinstance(broken, Absent) and "amd-smi" in broken.absent
