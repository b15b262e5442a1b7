"""The stand-in NPU's energy counter: 150 W on the host clock, in millijoules, as NVML counts."""

from __future__ import annotations

import time

from unetbench.devices.energy import Meter

WATTS = 150.0


def npu_meter(**options) -> Meter:
    return Meter("npu-standin:energy_counter", ["NPU 0"], [lambda: int(time.perf_counter() * WATTS * 1000)],
                 scale_j=1e-3, resolution={"unit_j": 1e-3}, **options)
