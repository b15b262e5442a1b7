"""The Gaudi backends: Intel Gaudi cards through habana_frameworks, in lazy or in eager mode.

    backend = make_backend("gaudi_lazy", profile="fast")    # bf16, HPU graphs, FusedAdamW, pinned batches
    backend = make_backend("gaudi_eager", profile="fast")   # bf16, torch.compile(backend="hpu_backend")

``habana_frameworks`` is never imported when this module loads: bridge.load_bridge loads it
when a backend is made, after PT_HPU_LAZY_MODE is set (the bridge fixes its mode when it
loads); its hccl and fused-optimizer modules are imported where they are used, after that.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import torch

from ...core.errors import UserError
from ..base import ADAM_EPS, AcceleratorBackend, InlineStream, check_local_rank
from . import bridge
from .energy import bridge_module, gaudi_meter
from .spec import HL_SMI, SPECS, VISIBLE_MODULES_VAR, bridge_version

LAZY, EAGER = SPECS


class HpuBackend(AcceleratorBackend):
    """Intel Gaudi through habana_frameworks; the subclasses pick lazy or eager mode."""

    device_type = "hpu"
    lazy: bool
    compiles_per_shape = True  # lazy graphs, eager recipes and hpu_backend graphs: per shape

    def __init__(self, profile: str, local_rank: int = 0, **options):
        super().__init__(profile, local_rank, **options)
        # The bridge fixes its mode when it loads; where torch has not loaded it yet (autoload
        # off), setting the mode here is in time. load_bridge checks the mode the bridge reports.
        os.environ.update(self.spec.env_before_python)
        self.htcore = bridge.load_bridge(self.lazy)
        if not self.module.is_available():
            raise UserError("no Gaudi device visible on this node (torch.hpu.is_available() is False); "
                            f"run on a Gaudi node, or check {VISIBLE_MODULES_VAR} and the job's --gres")
        check_local_rank(local_rank, self.module.device_count(), "Gaudi card")
        fast = profile == "fast"
        self.precision = "bf16" if fast else "fp32"
        self.fused_optimizer = fast
        self.compiled = fast and not self.lazy  # lazy mode builds its own graphs per mark_step
        # Intel's lazy-mode training examples replay recorded graphs (HPU graphs) in place of
        # rebuilding each step's lazy graph on the host, and pin loader batches for the HPU.
        self.hpu_graphs = fast and self.lazy
        self.loader_pinning = self.device_type if fast else False
        # Lazy mode builds the step's graph on the host and runs it at mark_step: after the
        # forward nothing has been allocated yet, so the high phase is the step's peak.
        self.memory_high_phase = "step_peak" if self.lazy else "after_forward"

    @property
    def device(self) -> torch.device:
        return torch.device(self.device_type)

    def side_stream(self):
        return bridge.GraphCutStream(self.htcore) if self.lazy else InlineStream()

    def before_ddp(self, module: torch.nn.Module) -> torch.nn.Module:
        return bridge.hpu_graphs(module) if self.hpu_graphs else module

    def ddp_kwargs(self) -> dict:
        # Intel's settings in its DDP examples: one all-reduce for more of the gradients, and
        # gradients that are views into the buckets (no copy in and out of them).
        return {"bucket_cap_mb": 256, "gradient_as_bucket_view": True} if self.profile == "fast" else {}

    def init_distributed(self, dist) -> None:
        # The hccl backend registers itself with torch.distributed on import.
        importlib.import_module("habana_frameworks.torch.distributed.hccl")
        super().init_distributed(dist)

    def step_boundary(self):
        if self.lazy:
            # Lazy mode accumulates ops into a graph; mark_step cuts and launches it. Placed
            # after backward and after optimizer.step, as Intel's training examples do.
            self.htcore.mark_step()

    # synchronize: AcceleratorBackend's torch.hpu.synchronize(); mark_step(sync=True) would only
    # wait for the graph launch, not for the device to finish it.

    def compile_model(self, model):
        # Static shapes, as on CUDA: each batch shape gets its own graph, compiled in a warm-up.
        return torch.compile(model, backend="hpu_backend", dynamic=False) if self.compiled else model

    def make_optimizer(self, params, lr):
        if self.fused_optimizer:
            fused = importlib.import_module("habana_frameworks.torch.hpex.optimizers")
            # AdamW with weight decay 0 is Adam. eps given: FusedAdamW's default is 1e-6, torch's
            # Adam (every other backend, and parity) uses 1e-8; the same math needs the same eps.
            return fused.FusedAdamW(params, lr=lr, eps=ADAM_EPS, weight_decay=0.0)
        return torch.optim.Adam(params, lr=lr, eps=ADAM_EPS)

    def energy_meter(self):
        # The card the bridge took (HLS_MODULE_ID, which its hccl module set from LOCAL_RANK when
        # init_distributed imported it), not the local rank's guess: they differ under a bare srun.
        return gaudi_meter()

    def monitor_device_id(self):
        return bridge_module([])[0]   # hl-smi's rows are keyed by module id

    def profiler_activities(self):
        hpu = getattr(torch.profiler.ProfilerActivity, "HPU", None)  # in Intel's PyTorch builds
        return [hpu] if hpu is not None else []

    def memory_bytes(self):
        # Gaudi's allocator takes its whole pool (Limit) when the device opens and never grows
        # or returns it: there is no "reserved" figure comparable to CUDA's caching allocator,
        # and MaxInUse is the peak allocated, not a peak reserved. Reserved stays unknown.
        limit = self.module.memory_stats().get("Limit")
        pool = f"{limit / 1e9:.1f} GB" if limit else "unknown"
        return {"allocated": self.module.memory_allocated(), "reserved": None,
                "peak_allocated": self.module.max_memory_allocated(), "peak_reserved": None,
                "source": f"torch.hpu memory_stats: allocated = InUse, peak = MaxInUse; no reserved figure "
                          f"(the allocator holds its whole pool from the start: Limit {pool})"}

    def environment(self):
        return {**self.device_identity(), "driver": HL_SMI.driver_version(), "habana": bridge_version(),
                "habana_mode": bridge.bridge_mode(), "hpu_graphs": self.hpu_graphs,
                # which cards: the job's (Slurm / site) and this process's, as the bridge picked it
                "habana_visible_modules": os.environ.get(VISIBLE_MODULES_VAR),
                "habana_module_id": os.environ.get("HLS_MODULE_ID")}

    @classmethod
    def software_check(cls) -> tuple[bool, str]:
        # In a child process with the mode set first: importing the bridge here would fix this
        # process's mode, and the check must not depend on the caller's environment.
        env = {**os.environ, **cls.spec.env_before_python}
        try:
            subprocess.run([sys.executable, "-c", "import habana_frameworks.torch"], env=env, timeout=120,
                           capture_output=True, check=True)
        except (OSError, subprocess.SubprocessError):
            return False, ("habana_frameworks.torch not importable here (fine if GAUDI_SETUP provides it "
                           "on the Gaudi node)")
        return True, "habana_frameworks.torch importable"


class HpuLazyBackend(HpuBackend):
    spec = LAZY
    lazy = True


class HpuEagerBackend(HpuBackend):
    spec = EAGER
    lazy = False
