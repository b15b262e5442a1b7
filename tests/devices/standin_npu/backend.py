"""The stand-in NPU backend: an AcceleratorBackend whose device module is a recording stand-in."""

from __future__ import annotations

import atexit
import json
import os
import time
import types

import torch

from unetbench.core.errors import UserError
from unetbench.devices.base import AcceleratorBackend

from .energy import npu_meter
from .spec import NPU_SMI, SPECS

CALLS: dict[str, int] = {}   # what the suite asked of torch.npu, by function


def _counted(name, fn):
    def call(*args, **kwargs):
        CALLS[name] = CALLS.get(name, 0) + 1
        return fn(*args, **kwargs)
    return call


class _Event:
    """torch.npu.Event: the host clock at record()."""

    def __init__(self, enable_timing=False):
        self.t = 0.0

    def record(self):
        self.t = time.perf_counter()

    def elapsed_time(self, later):
        return (later.t - self.t) * 1000.0


def install_device_module() -> types.ModuleType:
    """torch.npu, as a vendor's extension registers its module when it loads."""
    module = types.ModuleType("torch.npu")
    for name, fn in {
        "synchronize": lambda device=None: None,
        "Event": _Event,
        "get_rng_state": lambda device=None: torch.get_rng_state(),
        "set_rng_state": lambda state, device=None: torch.set_rng_state(state),
        "reset_peak_memory_stats": lambda device=None: None,
        "memory_allocated": lambda device=None: 1 << 20,
        "memory_reserved": lambda device=None: 2 << 20,
        "max_memory_allocated": lambda device=None: 3 << 20,
        "max_memory_reserved": lambda device=None: 4 << 20,
        "get_device_name": lambda device=None: "Stand-in NPU",
        "device_count": lambda: 1,
    }.items():
        setattr(module, name, _counted(name, fn))
    torch.npu = module
    if os.environ.get("NPU_STANDIN_CALLS"):   # the test reads what the run asked of the device
        atexit.register(lambda: open(os.environ["NPU_STANDIN_CALLS"], "w").write(json.dumps(CALLS)))
    return module


class NpuBackend(AcceleratorBackend):
    spec, = SPECS
    device_type = "npu"

    def __init__(self, profile: str, local_rank: int = 0, **options):
        super().__init__(profile, local_rank, **options)
        if os.environ.get("NPU_STANDIN_MODE") != "graph":
            raise UserError("NPU_STANDIN_MODE was not set before Python started")
        install_device_module()

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")   # a stand-in: the tensors stay on the host

    def energy_meter(self):
        return npu_meter()

    def environment(self) -> dict:
        return {**self.device_identity(), "driver": NPU_SMI.driver_version()}

    @classmethod
    def software_check(cls) -> tuple[bool, str]:
        return True, "stand-in: nothing to check"
