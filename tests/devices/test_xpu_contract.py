"""CONTRACT TESTS for the XPU backend (Intel Data Center GPUs), against stand-ins: no Intel GPU exists here.

What they check is how the suite drives Intel's stack, not that a Max GPU computes: a torch.xpu
module that records the loop's calls (with and without timing events, as torch before and
after 2.6), xpu-smi's dump CSV of both generations, and the job's variables as Slurm's
AutoDetect=oneapi sets them. The energy meter's stand-ins: test_xpu_energy_contract.py.
"""

from __future__ import annotations

import io
import os
import sys
import types
import pytest
import torch
from helpers import SMALL_SETTINGS
from torch.torch_version import TorchVersion

from unetbench.cluster import jobinfo, monitor
from unetbench.core.errors import UserError
from unetbench.core.registry import BACKENDS
from unetbench.core.settings import Settings
from unetbench.devices.base import InlineStream, SideStream, make_backend
from unetbench.devices.before_torch import prepare_environment
from unetbench.devices.energy import Absent
from unetbench.devices.events import SyncedHostEvent, TorchEvent
from unetbench.devices.xpu import backend as xpu_backend
from unetbench.devices.xpu import spec

ZE_VARS = (spec.MASK_VAR, spec.HIERARCHY_VAR, spec.PCI_ORDER_VAR)


@pytest.fixture
def clean_env(monkeypatch):
    """No Level Zero variables from the shell; whatever a test or the code sets is undone after."""
    for name in (*ZE_VARS, "SLURM_JOB_ID"):
        monkeypatch.setenv(name, "")   # recorded first, so that a later os.environ.setdefault is undone too
        monkeypatch.delenv(name)
    return monkeypatch


# ---- xpu-smi and the job's cards ------------------------------------------------------------

# xpu-smi 1.2 `dump -d -1 --metrics 1,0,3,18` (columns in the order asked for, values padded to
# four characters, N/A where a metric is unsupported); a message line before the header.
XPU_SMI_V1 = [
    "0, 1, 2, 3, 4, 5",   # no header yet: not data
    ("Timestamp, DeviceId, GPU Power (W), GPU Utilization (%), GPU Core Temperature (Celsius Degree), "
     "GPU Memory Used (MiB)"),
    "06:14:46.000,    0, 412.37, 97.51,  61.00, 40211.25",
    "06:14:46.000,    1,  N/A,  N/A,  38.00,  12.00",
    "06:14:46.000,    2, 101.20, 0.00,     , 12.00",
    "Error: Device not found",
]
# xpu-smi 2.0 `dump -d -1 --metrics 0,18,1,3` with stdin not a terminal: CSV, dot names with units.
XPU_SMI_V2 = [
    "Timestamp, DeviceId, utilization.gpu (%), memory.used (MiB), power.draw (W), temperature.gpu (C)",
    "06:14:47.000, 1, 88.0, 3900, 380.5, 55",
]


def test_xpu_smi_rows_are_read_by_column_name_in_both_generations():
    assert list(spec.xpu_smi_rows(XPU_SMI_V1)) == [
        ["0", "97.51", "40211.25", "412.37", "61.00"],
        ["1", "N/A", "12.00", "N/A", "38.00"],
        ["2", "0.00", "12.00", "101.20", ""]]
    assert list(spec.xpu_smi_rows(XPU_SMI_V2)) == [["1", "88.0", "3900", "380.5", "55"]]
    # 1.3 names metric 0 otherwise; 2.0 with --format csv,nounits drops the units
    v13 = [("Timestamp, DeviceId, Average % utilization of all GPU Engines, GPU Memory Used (MiB), GPU Power (W), "
            "GPU Core Temperature (Celsius Degree)"), "06:14:48.000, 0, 12.5, 100, 200, 40"]
    nounits = ["Timestamp, DeviceId, power.draw, utilization.gpu, memory.used, temperature.gpu", "x, 3, 1, 2, 4, 5"]
    assert list(spec.xpu_smi_rows(v13)) == [["0", "12.5", "100", "200", "40"]]
    assert list(spec.xpu_smi_rows(nounits)) == [["3", "2", "4", "1", "5"]]


def test_the_monitor_keeps_only_the_jobs_cards():
    out = io.StringIO()
    keep = set(spec.job_cards({"ZE_AFFINITY_MASK": "1,2"}))
    rows = monitor.record(XPU_SMI_V1, out, clock=lambda: 7.0, keep=keep, rows_of=spec.XPU_SMI.rows)
    assert rows == 2
    # N/A and a blank value stay empty, never 0
    assert out.getvalue().splitlines() == ["7.000,1,,12.00,,38.00", "7.000,2,0.00,12.00,101.20,"]


def test_the_sample_command_uses_the_options_both_xpu_smi_generations_accept():
    assert spec.XPU_SMI.sample(1) == ["xpu-smi", "dump", "-d", "-1", "--metrics", "0,18,1,3"]
    assert spec.XPU_SMI.sample(5)[-2:] == ["-i", "5"]
    assert BACKENDS["xpu"].tool is spec.XPU_SMI and BACKENDS["xpu"].dist_backend == "xccl"


def test_the_mask_is_the_jobs_cards_only_when_it_lists_cards():
    assert spec.job_cards({"ZE_AFFINITY_MASK": "3, 1"}) == [3, 1]
    assert spec.job_cards({"ZE_AFFINITY_MASK": "0.1"}) is None    # stack 1 of card 0
    assert spec.job_cards({}) is None
    assert spec.hierarchy({}) == "FLAT" and spec.hierarchy({"ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE"}) == "COMPOSITE"


def test_a_job_with_a_card_mask_gets_whole_cards_in_pci_order():
    assert spec.xpu_job_env({"SLURM_JOB_ID": "42", "ZE_AFFINITY_MASK": "1"}) == {
        "ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE", "ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"}
    assert spec.xpu_job_env({"ZE_AFFINITY_MASK": "1"}) == {}, "outside a job Level Zero's defaults apply"
    assert spec.xpu_job_env({"SLURM_JOB_ID": "42"}) == {}, "no mask: nothing was counted in cards"
    # the job header shows them as the training will see them
    assert jobinfo.job_variables(BACKENDS["xpu"], {"SLURM_JOB_ID": "42", "ZE_AFFINITY_MASK": "1"}) == {
        "ZE_AFFINITY_MASK": "1", "ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE", "ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"}


def test_before_torch_sets_composite_unless_the_site_exported_a_hierarchy(clean_env):
    clean_env.setenv("SLURM_JOB_ID", "42")
    clean_env.setenv("ZE_AFFINITY_MASK", "1")
    prepare_environment("xpu")
    assert os.environ["ZE_FLAT_DEVICE_HIERARCHY"] == "COMPOSITE" and os.environ["ZE_ENABLE_PCI_ID_DEVICE_ORDER"] == "1"
    clean_env.setenv("ZE_FLAT_DEVICE_HIERARCHY", "FLAT")   # the site's SETUP chose stacks
    prepare_environment("xpu")
    assert os.environ["ZE_FLAT_DEVICE_HIERARCHY"] == "FLAT"


def test_the_job_header_names_the_xpu_build(monkeypatch):
    monkeypatch.setattr(torch.version, "xpu", "20250101", raising=False)
    assert spec.xpu_software() == "xpu 20250101"
    monkeypatch.setattr(torch.version, "xpu", None, raising=False)
    assert spec.xpu_software() is None


# ---- the backend over a stand-in torch.xpu ---------------------------------------------------

class StandinXpu:
    """torch.xpu as PyTorch's XPU build answers it on a node of ``devices`` devices; records the
    loop's calls. ``timing``: whether Event.elapsed_time works (torch >= 2.6)."""

    def __init__(self, monkeypatch, timing: bool = True, devices: int = 2, peak_reserved: bool = True):
        self.calls: list[str] = []
        self.timing = timing
        self.props = types.SimpleNamespace(name="Intel(R) Data Center GPU Max 1550", driver_version="1.3.29735")
        module = types.ModuleType("torch.xpu")
        # What the loop does not ask (torch._dynamo's _is_compiled, say) is the real module's
        # answer; what an older build lacks stays missing.
        real, missing = torch.xpu, set() if peak_reserved else {"max_memory_reserved"}

        def fallback(name):
            if name in missing:
                raise AttributeError(f"module 'torch.xpu' has no attribute {name!r}")
            return getattr(real, name)
        module.__getattr__ = fallback
        functions = {
            "is_available": lambda: True, "device_count": lambda: devices,
            "set_device": lambda device: self.calls.append(f"set_device {device}"),
            "synchronize": self._count("synchronize"), "Event": self._event, "Stream": self._stream,
            "memory_allocated": lambda d=None: 1 << 20, "memory_reserved": lambda d=None: 2 << 20,
            "max_memory_allocated": lambda d=None: 3 << 20,
            "reset_peak_memory_stats": self._count("reset_peak_memory_stats"),
            "empty_cache": self._count("empty_cache"),
            "get_rng_state": lambda d=None: torch.get_rng_state(), "set_rng_state": lambda s, d=None: None,
            "get_device_name": lambda d=None: self.props.name, "get_device_properties": lambda d=None: self.props,
        }
        if peak_reserved:
            functions["max_memory_reserved"] = lambda d=None: 4 << 20
        for name, value in functions.items():
            setattr(module, name, value)
        self.module = module
        monkeypatch.setattr(torch, "xpu", module, raising=False)
        monkeypatch.setattr(torch.version, "xpu", "20250101", raising=False)
        # oneDNN's TF32 switch is process-wide: a stand-in keeps the real one untouched
        self.mkldnn = types.SimpleNamespace(allow_tf32=None, is_available=lambda: False)
        monkeypatch.setattr(torch.backends, "mkldnn", self.mkldnn)

    def _count(self, name):
        return lambda *a, **k: self.calls.append(name)

    def _stream(self, device=None):
        self.calls.append("Stream")
        return types.SimpleNamespace(device=device)

    def _event(self, enable_timing=False):
        calls, timing = self.calls, self.timing

        class Event:
            def record(self):
                calls.append("event.record")

            def elapsed_time(self, later):
                if not timing:
                    raise NotImplementedError("elapsed_time is not supported by XPUEvent.")
                return 1.5
        return Event()


@pytest.fixture
def xpu(clean_env):
    return StandinXpu(clean_env)


@pytest.fixture
def old_xpu(clean_env):
    """torch 2.5's XPU build: no elapsed_time, no max_memory_reserved, no fused Adam or record_stream kernels."""
    clean_env.setattr(torch, "__version__", TorchVersion("2.5.1+xpu"))
    return StandinXpu(clean_env, timing=False, peak_reserved=False)


def test_without_timing_events_each_record_synchronises_and_the_results_say_so(old_xpu):
    backend = make_backend("xpu", "parity")
    start, end = backend.new_event(), backend.new_event()
    assert isinstance(start, SyncedHostEvent)
    before = old_xpu.calls.count("synchronize")
    start.record()
    end.record()
    assert old_xpu.calls.count("synchronize") - before == 2
    assert "event.record" not in old_xpu.calls[-2:]
    assert backend.device_settings()["event_timing"] == "synchronize + host clock"


def test_with_timing_events_steps_are_timed_on_the_device_without_a_wait(xpu):
    backend = make_backend("xpu", "parity")
    event = backend.new_event()
    assert isinstance(event, TorchEvent)
    before = list(xpu.calls)
    event.record()
    assert xpu.calls[len(before):] == ["event.record"]
    assert backend.device_settings()["event_timing"] == "torch.xpu.Event"


def test_the_matmul_peaks_cached_blocks_are_handed_back_through_the_device_module_standin(xpu):
    """After the run's matmul peak (training/peak.py), before the memory peaks are reset: the
    operands' blocks must not stay reserved through training's figures."""
    make_backend("xpu", "parity").release_cached_memory()
    assert xpu.calls.count("empty_cache") == 1


def test_memory_without_a_peak_reserved_figure_reports_none(old_xpu):
    memory = make_backend("xpu", "parity").memory_bytes()
    assert memory == {"allocated": 1 << 20, "reserved": 2 << 20, "peak_allocated": 3 << 20, "peak_reserved": None,
                      "source": "torch.xpu caching allocator"}


def test_each_rank_takes_its_own_device_and_no_more_ranks_than_devices(xpu):
    backend = make_backend("xpu", "parity", local_rank=1)
    assert "set_device 1" in xpu.calls and backend.device == torch.device("xpu", 1)
    assert backend.ddp_kwargs() == {"device_ids": [1]}
    with pytest.raises(UserError, match="local rank 2 has no Intel GPU of its own: only 2 visible"):
        make_backend("xpu", "parity", local_rank=2)


def test_a_torch_without_xpu_is_a_user_error_naming_the_fix(xpu, monkeypatch):
    monkeypatch.setattr(xpu.module, "is_available", lambda: False)
    with pytest.raises(UserError, match="download.pytorch.org/whl/xpu.*XPU_SETUP.*ZE_AFFINITY_MASK"):
        make_backend("xpu", "parity")
    monkeypatch.delattr(torch, "xpu")
    with pytest.raises(UserError, match="PyTorch's XPU build"):
        make_backend("xpu", "parity")


def test_the_fast_profile_on_torch_2_6_compiles_statically_and_fuses_adam(xpu, monkeypatch):
    monkeypatch.setattr(torch, "__version__", TorchVersion("2.6.0+xpu"))
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compiled.append(kw) or model)
    backend = make_backend("xpu", "fast", compile_mode="max-autotune")
    assert (backend.precision, backend.channels_last, backend.compiled, backend.fused_optimizer) == ("bf16", True, True, True)
    model = torch.nn.Linear(2, 2)
    backend.compile_model(model)
    assert compiled == [{"mode": "max-autotune", "dynamic": False}]
    assert backend.make_optimizer(model.parameters(), lr=1e-4).defaults["fused"] is True
    assert isinstance(backend.side_stream(), SideStream) and "Stream" in xpu.calls


def test_before_torch_2_6_adam_is_not_fused_and_batches_are_copied_in_line(old_xpu):
    backend = make_backend("xpu", "fast")
    assert backend.compiled and not backend.fused_optimizer and not backend.math_mode()["fused_optimizer"]
    assert backend.make_optimizer(torch.nn.Linear(2, 2).parameters(), lr=1e-4).defaults["fused"] is None
    assert isinstance(backend.side_stream(), InlineStream)
    assert backend.math_mode()["tf32"] is False, "before torch 2.7 XPU convolutions ignore oneDNN's TF32 switch"


def test_parity_is_strict_fp32_and_tf32_is_what_onednn_reports(xpu, monkeypatch):
    xpu.mkldnn.allow_tf32 = True   # left on by something earlier in the process
    backend = make_backend("xpu", "parity")
    assert xpu.mkldnn.allow_tf32 is False and backend.math_mode()["tf32"] is False
    assert make_backend("xpu", "parity", allow_tf32=True).math_mode()["tf32"] is True and xpu.mkldnn.allow_tf32
    monkeypatch.delattr(xpu.mkldnn, "allow_tf32")   # a torch without oneDNN's switch: strict fp32 only
    assert make_backend("xpu", "parity", allow_tf32=True).math_mode()["tf32"] is False


def test_device_settings_say_what_one_device_is(xpu, monkeypatch):
    monkeypatch.setenv("ZE_FLAT_DEVICE_HIERARCHY", "COMPOSITE")
    monkeypatch.setenv("ZE_AFFINITY_MASK", "1")
    settings = make_backend("xpu", "parity").device_settings()
    assert settings == {"event_timing": "torch.xpu.Event", "device_hierarchy": "COMPOSITE", "device_unit": "card",
                        "affinity_mask": "1"}
    monkeypatch.delenv("ZE_FLAT_DEVICE_HIERARCHY")
    assert make_backend("xpu", "parity").device_settings()["device_unit"] == "stack"


def test_the_environment_records_driver_and_xpu_build_and_the_profiler_traces_xpu(xpu):
    backend = make_backend("xpu", "parity")
    assert backend.environment() == {"device_name": "Intel(R) Data Center GPU Max 1550", "device_count": 2,
                                     "driver": "1.3.29735", "xpu": "20250101"}
    assert backend.profiler_activities() == [torch.profiler.ProfilerActivity.XPU]


def test_software_check_asks_only_whether_torch_was_built_for_xpu(monkeypatch):
    monkeypatch.setattr(torch.version, "xpu", None, raising=False)
    monkeypatch.setattr(torch._C, "_has_xpu", False, raising=False)
    ok, message = xpu_backend.XpuBackend.software_check()
    assert not ok and "XPU_SETUP" in message
    monkeypatch.setattr(torch.version, "xpu", "20250101", raising=False)
    assert xpu_backend.XpuBackend.software_check() == (True, "torch built with XPU support (20250101)")


def test_two_training_steps_run_through_the_loop_with_synchronised_host_timing(old_xpu, tiny_splits, tmp_path,
                                                                              monkeypatch):
    from unetbench.training.trainer import Trainer
    backend = make_backend("xpu", "parity")
    # The stand-in computes on the CPU: no device tensors, so no side stream or pinned batches either.
    monkeypatch.setattr(type(backend), "device", property(lambda self: torch.device("cpu")))
    monkeypatch.setattr(backend, "loader_pinning", False)
    monkeypatch.setattr(type(backend), "energy_meter", lambda self: Absent("stand-in"))
    settings = Settings(splits=str(tiny_splits), out=str(tmp_path), epochs=1, max_steps_per_epoch=3, **SMALL_SETTINGS)
    trainer = Trainer(settings, backend)
    old_xpu.calls.clear()
    assert trainer.run() == 0
    results = trainer.results("completed")
    assert results["environment"]["device_settings"]["event_timing"] == "synchronize + host clock"
    assert results["environment"]["xpu"] == "20250101"
    assert results["memory"]["peak_reserved_gb"] is None
    assert "event.record" not in old_xpu.calls   # the device's events cannot time: never asked
    # every measured step's events waited for the device: more waits than steps
    assert old_xpu.calls.count("synchronize") > results["timing"]["measured_steps"] >= 1


# ---- distributed ---------------------------------------------------------------------------

class RecordingDist:
    def __init__(self):
        self.backends: list[str] = []

    def init(self, comm_backend, timeout_s=None):
        self.backends.append(comm_backend)


def test_distributed_takes_xccl_then_intels_ccl_bindings_else_says_what_to_install(xpu, monkeypatch):
    backend = make_backend("xpu", "parity")
    dist = RecordingDist()
    monkeypatch.setattr(torch.distributed, "is_xccl_available", lambda: True, raising=False)
    backend.init_distributed(dist)
    monkeypatch.setattr(torch.distributed, "is_xccl_available", lambda: False, raising=False)
    monkeypatch.setattr(torch.distributed, "is_backend_available", lambda name: name == "xccl", raising=False)
    backend.init_distributed(dist)
    monkeypatch.setattr(torch.distributed, "is_backend_available", lambda name: False, raising=False)
    monkeypatch.setitem(sys.modules, "oneccl_bindings_for_pytorch", types.ModuleType("oneccl_bindings_for_pytorch"))
    backend.init_distributed(dist)
    assert dist.backends == ["xccl", "xccl", "ccl"]
    monkeypatch.setitem(sys.modules, "oneccl_bindings_for_pytorch", None)   # import fails
    with pytest.raises(UserError, match="torch >= 2.8.*oneccl_bind_pt"):
        backend.init_distributed(dist)
    assert dist.backends == ["xccl", "xccl", "ccl"]
