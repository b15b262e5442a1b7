"""Stand-in habana_frameworks.torch: registers a recording ``torch.hpu`` module."""
import os
import time
import types

import torch

from habana_frameworks import CALLS

__version__ = "0.0.0-standin"
CALLS.append(("import", os.environ.get("PT_HPU_LAZY_MODE")))


class Event:
    def __init__(self, enable_timing=False):
        self.t = None

    def record(self):
        CALLS.append(("event.record",))
        self.t = time.perf_counter()

    def elapsed_time(self, later):
        return (later.t - self.t) * 1000.0


def _record(name, result=None):
    def call(*args, **kwargs):
        CALLS.append((name,) + args + tuple(sorted(kwargs.items())))
        return result
    return call


hpu = types.ModuleType("torch.hpu")
hpu.is_available = lambda: True
hpu.synchronize = _record("synchronize")
hpu.Event = Event
hpu.get_device_name = lambda: "Stand-in Gaudi"
hpu.device_count = lambda: 1
hpu.memory_allocated = lambda: 1_000
hpu.max_memory_allocated = lambda: 2_000
hpu.memory_stats = lambda: {"Limit": 4_000, "MaxInUse": 3_000}
hpu.reset_peak_memory_stats = _record("reset_peak_memory_stats")
torch.hpu = hpu
