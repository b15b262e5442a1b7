"""The one place that knows how CPU, CUDA and Intel Gaudi (lazy / eager) differ.

    backend = make_backend("cuda", profile="fast")
    model = backend.prepare_model(UNet(3, 13))
    optimizer = backend.make_optimizer(model.parameters(), lr=1e-4)
    with backend.autocast():
        loss = criterion(model(x), y)
    loss.backward(); backend.step_boundary()
    optimizer.step(); backend.step_boundary()
    backend.synchronize()                  # before reading any clock

Profiles: ``parity`` is the same math everywhere (fp32 without TF32, eager, plain Adam);
``fast`` is each device at its documented best (bf16 autocast, channels_last and
torch.compile on CUDA, fused optimizers, torch.compile with hpu_backend on Gaudi eager).
``habana_frameworks`` is imported only here, after PT_HPU_LAZY_MODE is set.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

import torch

from ..core.errors import UserError
from ..core.registry import BACKENDS, PROFILES, BackendSpec, lookup, resolve
from ..training.distributed import check_local_rank
from ..training.timing import HostEvent
from . import energy
from .gaudi import bridge as gaudi
from .host_facts import cpu_name, current_rss_bytes, habana_driver, nvidia_driver
from .streams import CudaSideStream, InlineStream, TorchEvent

ADAM_EPS = 1e-8   # torch.optim.Adam's default, given explicitly where an optimizer's default differs


class Backend(abc.ABC):
    """What a device must provide to the training loop, the benchmark and the results.

    A subclass sets ``spec`` (its registry entry) and implements the abstract methods; the
    defaults of the others describe a synchronous device with fp32 math, eager execution.
    """

    spec: BackendSpec
    pin_memory = False       # pinned host buffers make non_blocking copies asynchronous
    # What the loaders pin their batches for: False, True (the default accelerator) or a device
    # name (DataLoader's pin_memory_device).
    loader_pinning: bool | str = False
    # True where the first batch of a new shape costs compilation or autotuning (graph
    # compilers, cuDNN benchmark mode): evaluation's shapes are then warmed up before training,
    # outside every timed window.
    compiles_per_shape = False

    def __init__(self, profile: str, local_rank: int = 0, allow_tf32: bool = False,
                 compile_mode: str | None = None):
        if profile not in PROFILES:
            raise UserError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
        self.profile = profile
        self.local_rank = local_rank
        self.allow_tf32 = allow_tf32
        self.compile_mode = compile_mode
        self.precision = "fp32"
        self.channels_last = False
        self.compiled = False
        self.fused_optimizer = False
        self.compile_cache: str | None = None   # set by use_compile_cache(); recorded in the results

    @property
    def name(self) -> str:
        return self.spec.name

    # -- what every backend must say ------------------------------------------------------
    @property
    @abc.abstractmethod
    def device(self) -> torch.device:
        """Where tensors and the model live."""

    @abc.abstractmethod
    def synchronize(self) -> None:
        """Wait until all queued device work has finished: called before every clock read."""

    @abc.abstractmethod
    def memory_bytes(self) -> dict:
        """allocated / reserved now and their peaks in bytes (None where the device cannot
        tell), and ``source``: where the figures come from."""

    @abc.abstractmethod
    def environment(self) -> dict:
        """device_name, device_count, driver, cuda, cudnn, habana: recorded in the results."""

    @classmethod
    @abc.abstractmethod
    def software_check(cls) -> tuple[bool, str]:
        """For the preflight on a login node: is this backend's software here? (ok, message);
        must not need the device itself."""

    # -- execution ------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step_boundary(self) -> None:
        """Where lazy-mode graphs are cut; nothing on eager devices."""

    def new_event(self):
        return HostEvent()

    def side_stream(self) -> "InlineStream":
        """Where the next batch is copied and transformed while the current step computes."""
        return InlineStream()

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device, memory_format=self.memory_format)

    def compile_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Optional graph compilation (the first call of each input shape pays for it: warm-up).
        Called once for the training unit and once, apart, for the evaluation unit."""
        return model

    def use_compile_cache(self, folder: str | os.PathLike | None) -> str | None:
        """Keep the compiler's kernels in ``folder`` (reused by the next run) and return the folder
        in use, or None for a backend that does not compile.

        Assigned, not setdefault: the first optimizer or compile imports torch._dynamo, which
        sets TORCHINDUCTOR_CACHE_DIR to /tmp/torchinductor_$USER when it is unset, so by the
        time a run gets here a default has usually been filled in already; honouring it would
        compile from scratch on every node with a local /tmp. Inductor reads the variable at
        every cache access, so assigning it before the first compile is enough."""
        if not self.compiled or folder is None:
            return None
        folder = str(Path(folder).resolve())
        previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
        # Inductor derives Triton's cache from its own the first time it launches a kernel; a
        # Triton cache left under the previous folder would be reused instead of the new one.
        triton = os.environ.get("TRITON_CACHE_DIR")
        if previous and triton and Path(triton).is_relative_to(previous):
            del os.environ["TRITON_CACHE_DIR"]
        self.compile_cache = folder
        return folder

    def make_optimizer(self, params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr)

    def ddp_kwargs(self) -> dict:
        """Extra DistributedDataParallel arguments for this device."""
        return {}

    def before_ddp(self, module: torch.nn.Module) -> torch.nn.Module:
        """The training unit as the device runs it best, before DistributedDataParallel wraps it
        (Gaudi lazy mode: HPU graphs)."""
        return module

    def init_distributed(self, dist) -> None:
        dist.init(self.spec.dist_backend)

    # -- state and statistics -------------------------------------------------------------
    def rng_state(self) -> Any:
        return None

    def set_rng_state(self, state: Any) -> None:
        pass

    def reset_peak_memory(self) -> None:
        pass

    def energy_meter(self):
        """The energy counter of this process's device (unetbench/devices/energy.py; Absent says why not)."""
        return energy.Absent(f"no energy meter for the {self.name} backend")

    def profiler_activities(self) -> list:
        """torch.profiler activities of the device, beside the CPU's (unetbench/training/trace.py)."""
        return []

    def math_mode(self) -> dict:
        return {"precision": self.precision, "tf32": False, "channels_last": self.channels_last,
                "compiled": self.compiled, "fused_optimizer": self.fused_optimizer}


class CpuBackend(Backend):
    spec = BACKENDS["cpu"]

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
            return energy.Absent("the node's RAPL counters are metered by local rank 0")
        return energy.rapl_meter()

    def environment(self) -> dict:
        return {"device_name": cpu_name(), "device_count": os.cpu_count() or 1,
                "driver": None, "cuda": None, "cudnn": None, "habana": None}

    @classmethod
    def software_check(cls) -> tuple[bool, str]:
        return True, "nothing beyond torch needed"


class CudaBackend(Backend):
    spec = BACKENDS["cuda"]
    pin_memory = True
    loader_pinning = True
    compiles_per_shape = True  # cudnn.benchmark autotunes per shape; torch.compile per shape

    def __init__(self, profile: str, local_rank: int = 0, **options):
        super().__init__(profile, local_rank, **options)
        if not torch.cuda.is_available():
            raise UserError("no CUDA device visible on this node (torch.cuda.is_available() is False); "
                            "run on a GPU node, or check CUDA_VISIBLE_DEVICES and the job's --gres")
        check_local_rank(local_rank, torch.cuda.device_count(), "GPU")
        torch.cuda.set_device(local_rank)
        self._device = torch.device("cuda", local_rank)
        fast = profile == "fast"
        self.precision = "bf16" if fast else "fp32"
        self.channels_last = fast
        self.compiled = fast
        self.fused_optimizer = fast
        # Parity means true fp32: TF32 convolutions (PyTorch's default for cuDNN) would change
        # the math relative to the other devices. The fast profile computes in bf16 anyway.
        self.tf32 = fast or self.allow_tf32
        torch.backends.cudnn.allow_tf32 = self.tf32
        torch.backends.cuda.matmul.allow_tf32 = self.tf32
        torch.backends.cudnn.benchmark = True  # fixed shapes: autotune once, during warm-up

    @property
    def device(self) -> torch.device:
        return self._device

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    def new_event(self):
        return TorchEvent(torch.cuda.Event(enable_timing=True))

    def side_stream(self):
        return CudaSideStream(self.device)

    def ddp_kwargs(self):
        return {"device_ids": [self.device.index]}

    def compile_model(self, model):
        # Static shapes: training has one (drop_last), evaluation at most three (full batch, the
        # validation and test remainders), each compiled during a warm-up. With automatic
        # dynamic shapes the second shape would replace the full batch's graph by a slower
        # symbolic one.
        return torch.compile(model, mode=self.compile_mode, dynamic=False) if self.compiled else model

    def make_optimizer(self, params, lr):
        return torch.optim.Adam(params, lr=lr, fused=self.fused_optimizer or None)

    def rng_state(self):
        return torch.cuda.get_rng_state(self.device)

    def set_rng_state(self, state):
        if state is not None:
            torch.cuda.set_rng_state(state.cpu(), self.device)

    def reset_peak_memory(self):
        torch.cuda.reset_peak_memory_stats(self.device)

    def memory_bytes(self):
        return {"allocated": torch.cuda.memory_allocated(self.device),
                "reserved": torch.cuda.memory_reserved(self.device),
                "peak_allocated": torch.cuda.max_memory_allocated(self.device),
                "peak_reserved": torch.cuda.max_memory_reserved(self.device),
                "source": "torch.cuda caching allocator"}

    def energy_meter(self):
        uuid = getattr(torch.cuda.get_device_properties(self.device), "uuid", None)
        return energy.nvml_meter(f"GPU-{uuid}" if uuid else None, self.device.index)

    def profiler_activities(self):
        return [torch.profiler.ProfilerActivity.CUDA]

    def math_mode(self):
        return {**super().math_mode(), "tf32": self.tf32}

    def environment(self):
        return {"device_name": torch.cuda.get_device_name(self.device),
                "device_count": torch.cuda.device_count(),
                "driver": nvidia_driver(),
                "cuda": torch.version.cuda,
                "cudnn": str(torch.backends.cudnn.version()),
                "habana": None}

    @classmethod
    def software_check(cls) -> tuple[bool, str]:
        if torch.version.cuda is None:
            return False, ("this torch has no CUDA build here (fine if CUDA_SETUP activates another "
                           "environment on the GPU node)")
        return True, f"torch built with CUDA {torch.version.cuda}"


class HpuBackend(Backend):
    """Intel Gaudi through habana_frameworks; the subclasses pick lazy or eager mode."""

    lazy: bool
    compiles_per_shape = True  # lazy graphs, eager recipes and hpu_backend graphs: per shape

    def __init__(self, profile: str, local_rank: int = 0, **options):
        super().__init__(profile, local_rank, **options)
        # The bridge fixes its mode when it loads; where torch has not loaded it yet (autoload
        # off), setting the mode here is in time. load_bridge checks the mode the bridge reports.
        os.environ.update(self.spec.env_before_python)
        self.htcore = gaudi.load_bridge(self.lazy)
        self.hpu = torch.hpu
        if not self.hpu.is_available():
            raise UserError("no Gaudi device visible on this node (torch.hpu.is_available() is False); "
                            "run on a Gaudi node, or check HABANA_VISIBLE_MODULES and the job's --gres")
        check_local_rank(local_rank, self.hpu.device_count(), "Gaudi card")
        fast = profile == "fast"
        self.precision = "bf16" if fast else "fp32"
        self.fused_optimizer = fast
        self.compiled = fast and not self.lazy  # lazy mode builds its own graphs per mark_step
        # Intel's lazy-mode training examples replay recorded graphs (HPU graphs) in place of
        # rebuilding each step's lazy graph on the host, and pin loader batches for the HPU.
        self.hpu_graphs = fast and self.lazy
        self.loader_pinning = "hpu" if fast else False

    @property
    def device(self) -> torch.device:
        return torch.device("hpu")

    def side_stream(self):
        return gaudi.GraphCutStream(self.htcore) if self.lazy else InlineStream()

    def before_ddp(self, module: torch.nn.Module) -> torch.nn.Module:
        return gaudi.hpu_graphs(module) if self.hpu_graphs else module

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

    def synchronize(self):
        # mark_step(sync=True) only waits for the graph launch, not device completion.
        self.hpu.synchronize()

    def new_event(self):
        return TorchEvent(self.hpu.Event(enable_timing=True))

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

    def rng_state(self):
        return self.hpu.get_rng_state() if hasattr(self.hpu, "get_rng_state") else None

    def set_rng_state(self, state):
        if state is not None and hasattr(self.hpu, "set_rng_state"):
            self.hpu.set_rng_state(state)

    def reset_peak_memory(self):
        self.hpu.reset_peak_memory_stats()

    def energy_meter(self):
        return energy.gaudi_meter(self.local_rank)

    def profiler_activities(self):
        hpu = getattr(torch.profiler.ProfilerActivity, "HPU", None)  # in Intel's PyTorch builds
        return [hpu] if hpu is not None else []

    def memory_bytes(self):
        # Gaudi's allocator takes its whole pool (Limit) when the device opens and never grows
        # or returns it: there is no "reserved" figure comparable to CUDA's caching allocator,
        # and MaxInUse is the peak allocated, not a peak reserved. Reserved stays unknown.
        limit = self.hpu.memory_stats().get("Limit")
        pool = f"{limit / 1e9:.1f} GB" if limit else "unknown"
        return {"allocated": self.hpu.memory_allocated(), "reserved": None,
                "peak_allocated": self.hpu.max_memory_allocated(), "peak_reserved": None,
                "source": f"torch.hpu memory_stats: allocated = InUse, peak = MaxInUse; no reserved figure "
                          f"(the allocator holds its whole pool from the start: Limit {pool})"}

    def environment(self):
        return {"device_name": self.hpu.get_device_name(), "device_count": self.hpu.device_count(),
                "driver": habana_driver(), "cuda": None, "cudnn": None, "habana": gaudi.bridge_version(),
                "habana_mode": gaudi.bridge_mode(), "hpu_graphs": self.hpu_graphs,
                # which cards: the job's (Slurm / site) and this process's, as the bridge picked it
                "habana_visible_modules": os.environ.get("HABANA_VISIBLE_MODULES"),
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
    spec = BACKENDS["gaudi_lazy"]
    lazy = True


class HpuEagerBackend(HpuBackend):
    spec = BACKENDS["gaudi_eager"]
    lazy = False


def backend_class(name: str) -> type[Backend]:
    """The class registered for ``name`` (unetbench/core/registry.py)."""
    return resolve(lookup(BACKENDS, name, "backend").backend_class)


def make_backend(name: str, profile: str = "parity", local_rank: int = 0, allow_tf32: bool = False,
                 compile_mode: str | None = None) -> Backend:
    return backend_class(name)(profile, local_rank, allow_tf32=allow_tf32, compile_mode=compile_mode)
