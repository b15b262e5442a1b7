"""STAND-IN habana_frameworks.torch (contract tests only; tensors stay on the CPU).

What it imitates of Intel's bridge (gaudi-pytorch-bridge, python_packages/habana_frameworks/torch):
- the mode is fixed when the bridge loads (``utils.internal.is_lazy`` keeps its first answer);
  with torch >= 2.5 that is at ``import torch`` unless PT_HPU_LAZY_MODE=1 was set before;
- lazy mode with stock (non-fork) torch raises AssertionError at import (set
  HABANA_STANDIN_STOCK_TORCH=1 to get it here), as does a bridge built for another torch
  major/minor version (HABANA_STANDIN_TORCH_BUILT_FOR=2.6, say);
- the distributed set-up at import (distributed/hccl: ``initialize_distributed_hpu``): OMPI_*
  mapped to RANK/WORLD_SIZE/LOCAL_RANK, MASTER_ADDR=localhost and MASTER_PORT=12345 when unset,
  WORLD_SIZE written back (1 when unset), HLS_MODULE_ID from LOCAL_RANK and HABANA_VISIBLE_MODULES;
- no ``__version__`` attribute (the real one comes from an optional version module): the
  version is the package metadata's, habana-torch-plugin (../habana_torch_plugin-*.dist-info);
- ``torch.hpu`` with allocator statistics named as the bridge names them, ``hpu.ModuleCacher``.
Every call the suite makes is recorded in ``habana_frameworks.CALLS``.
"""
import os
import sys
import time
import types

import habana_frameworks.autoload

habana_frameworks.autoload.is_loaded = True

import torch  # noqa: E402

from habana_frameworks import CALLS  # noqa: E402
from habana_frameworks.torch.utils.internal import is_lazy  # noqa: E402

_built_for = os.environ.get("HABANA_STANDIN_TORCH_BUILT_FOR")  # imitates a bridge built for another torch
if _built_for and not torch.__version__.startswith(_built_for + "."):
    raise AssertionError(f"Error: Compile-time major/minor PyTorch version {_built_for} differs from "
                         f"run-time {torch.__version__}.")
if is_lazy() and os.environ.get("HABANA_STANDIN_STOCK_TORCH") == "1":
    raise AssertionError(f"Stock PyTorch version {torch.__version__} is not supported in Lazy mode.")

CALLS.append(("import", os.environ.get("PT_HPU_LAZY_MODE"), is_lazy()))
if os.environ.get("HABANA_STANDIN_REPORT") == "1":  # for tests that start a process of their own
    print(f"habana stand-in: loaded in {'lazy' if is_lazy() else 'eager'} mode", file=sys.stderr, flush=True)


def _initialize_distributed_env():
    mpi = {"OMPI_COMM_WORLD_LOCAL_RANK": "LOCAL_RANK", "OMPI_COMM_WORLD_SIZE": "WORLD_SIZE",
           "OMPI_COMM_WORLD_RANK": "RANK"}
    if not all(v in os.environ for v in mpi.values()) and all(k in os.environ for k in mpi):
        for source, target in mpi.items():
            os.environ[target] = os.environ[source]
    os.environ.setdefault("MASTER_ADDR", "localhost")
    os.environ.setdefault("MASTER_PORT", "12345")
    os.environ["WORLD_SIZE"] = str(int(os.environ.get("WORLD_SIZE", 1)))
    local_rank = int(os.environ.get("LOCAL_RANK", -1))
    if "HLS_MODULE_ID" not in os.environ and local_rank >= 0:
        visible = os.environ.get("HABANA_VISIBLE_MODULES")
        os.environ["HLS_MODULE_ID"] = visible.split(",")[local_rank] if visible else str(local_rank)


_initialize_distributed_env()


class Event:
    def __init__(self, enable_timing=False):
        self.t = None

    def record(self):
        CALLS.append(("event.record",))
        self.t = time.perf_counter()

    def elapsed_time(self, later):
        return (later.t - self.t) * 1000.0


class ModuleCacher:
    """HPU graphs (lazy mode): records the wrapping; the module runs unchanged."""

    def __init__(self, max_graphs=10):
        self.max_graphs = max_graphs

    def __call__(self, model, inplace=True, allow_unused_input=False, **kwargs):
        CALLS.append(("ModuleCacher", type(model).__name__, self.max_graphs, inplace))
        return model


def _record(name, result=None):
    def call(*args, **kwargs):
        CALLS.append((name,) + args + tuple(sorted(kwargs.items())))
        return result
    return call


# Figures as the bridge's allocator names them: the whole pool (Limit) is taken at start,
# InUse / MaxInUse are what tensors occupy now / at most.
MEMORY_STATS = {"Limit": 94_000_000_000, "InUse": 1_000, "MaxInUse": 2_000, "NumAllocs": 7}

hpu = types.ModuleType("torch.hpu")
hpu.is_available = lambda: True
hpu.synchronize = _record("synchronize")
hpu.Event = Event
hpu.ModuleCacher = ModuleCacher
hpu.get_device_name = lambda: "Stand-in Gaudi"
hpu.device_count = lambda: 1
hpu.memory_allocated = lambda: MEMORY_STATS["InUse"]
hpu.max_memory_allocated = lambda: MEMORY_STATS["MaxInUse"]
hpu.memory_stats = lambda: dict(MEMORY_STATS)
hpu.reset_peak_memory_stats = _record("reset_peak_memory_stats")
torch.hpu = hpu
