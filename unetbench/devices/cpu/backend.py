"""The CPU backend: host memory, no side stream, nothing to synchronise; the suite's baseline.

    backend = make_backend("cpu", profile="fast")    # channels_last (oneDNN's best layout), fp32
"""

from __future__ import annotations

import os
import resource

import torch

from ..base import Backend
from ..energy import Absent
from .energy import rapl_meter
from .host import cpu_name, current_rss_bytes
from .spec import SPECS


class CpuBackend(Backend):
    spec, = SPECS
    peak_budget_s = 1.0   # CPU runs are mostly short smoke runs: half the accelerators' budget

    def __init__(self, profile: str, local_rank: int = 0, **options):
        super().__init__(profile, local_rank, **options)
        if profile == "fast":
            # oneDNN convolutions run best on NHWC; bf16 autocast is only a win on CPUs with
            # AMX, so the CPU baseline stays fp32 even in the fast profile.
            self.channels_last = True

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def synchronize(self) -> None:
        """CPU work has finished when the call that queued it returns."""

    def memory_bytes(self) -> dict:
        rss = current_rss_bytes()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {"allocated": rss, "reserved": rss, "peak_allocated": peak, "peak_reserved": peak,
                "source": "process resident set size (CPU)"}

    def energy_meter(self):
        # RAPL counts the node's sockets: one rank per node meters them for all its ranks.
        if self.local_rank:
            return Absent("the node's RAPL counters are metered by local rank 0")
        return rapl_meter()

    def environment(self) -> dict:
        return {"device_name": cpu_name(), "device_count": os.cpu_count() or 1, "driver": None}

    @classmethod
    def software_check(cls) -> tuple[bool, str]:
        return True, "nothing beyond torch needed"
