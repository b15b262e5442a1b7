"""The Backend interface: what a device must provide to the training loop, the benchmark and the results.

    backend = make_backend("cuda", profile="fast")
    model = backend.prepare_model(UNet(3, 13))
    optimizer = backend.make_optimizer(model.parameters(), lr=1e-4)
    with backend.autocast():
        loss = criterion(model(x), y)
    loss.backward(); backend.step_boundary()
    optimizer.step(); backend.step_boundary()
    backend.synchronize()                  # before reading any clock

Each device is one folder beside this file (cpu/, cuda/, gaudi/): its spec.py says what the
login node must know, its backend.py holds a ``Backend`` subclass (``AcceleratorBackend`` for a
device with its own torch module), which registers itself by naming its spec. The loop asks
only this interface; no code outside a device's folder asks which device it runs on.

Profiles: ``parity`` is the same math everywhere (fp32 without TF32, eager, plain Adam);
``fast`` is each device at its documented best (bf16 autocast, channels_last, torch.compile,
fused optimizers, as each device's class says).
"""

from __future__ import annotations

import abc
import contextlib
import functools
import importlib
import os
from pathlib import Path
from typing import Any, Iterable

import torch

from ..core.errors import UserError
from ..core.registry import BACKENDS, PROFILES, lookup
from .energy import Absent
from .events import HostEvent, TorchEvent
from .spec import BackendSpec

ADAM_EPS = 1e-8   # torch.optim.Adam's default, given explicitly where an optimizer's default differs


class Backend(abc.ABC):
    """What a device must provide to the training loop, the benchmark and the results.

    A device's class sets ``spec`` (its entry from its own folder's spec.py), which registers
    it here, and implements the abstract methods; the defaults of the others describe a
    synchronous device with fp32 math, eager execution.
    """

    spec: BackendSpec
    registered: dict[str, type["Backend"]] = {}   # backend name -> class, filled as device modules load

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # The class of one backend, defined in its device folder's backend.py: not an
        # intermediate base, nor a subclass made elsewhere (a test's, say) with the same spec.
        if "spec" in cls.__dict__ and cls.__module__ == f"{cls.spec.package}.backend":
            Backend.registered[cls.spec.name] = cls
    # What the loaders pin their batches for: False, True (the default accelerator) or a device
    # name (DataLoader's pin_memory_device). Pinned batches are copied to the device with
    # non_blocking=True (DeviceTransform): the copy then overlaps the previous step's work.
    loader_pinning: bool | str = False
    # True where the first batch of a new shape costs compilation or autotuning (graph
    # compilers, cuDNN benchmark mode): evaluation's shapes are then warmed up before training,
    # outside every timed window.
    compiles_per_shape = False
    # Seconds the run's matrix-product peak may take (unetbench/training/peak.py): enough for
    # GPU clocks to ramp up and several timed blocks, little beside a training run.
    peak_budget_s = 2.0
    # How a training step's high phase (its activations held) is observed in memory: read
    # "after_forward" on the host, where the allocator has booked the forward's tensors when
    # the forward returns (CUDA/ROCm/XPU caching allocators book at launch; the CPU runs it
    # then), or as the "step_peak", the device's peak over the step, reset before it and read
    # once the step has run (lazy-mode Gaudi: nothing runs before the graph is cut, so memory
    # read after the forward would describe the previous step). training/memory_phases.py.
    memory_high_phase = "after_forward"

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

    def release_cached_memory(self) -> None:
        """Hand blocks the allocator keeps cached but no tensor uses back to the device."""

    def energy_meter(self):
        """The energy counter of this process's device (devices/<device>/energy.py; Absent says why not)."""
        return Absent(f"no energy meter for the {self.name} backend")

    def monitor_device_id(self) -> int | None:
        """This process's device as the id in the first column of its tool's rows (the monitor
        CSV's device_index: nvidia-smi index, hl-smi module id); None where unknown. The report
        integrates only the run's own devices' rows (report/energy.py)."""
        return None

    def profiler_activities(self) -> list:
        """torch.profiler activities of the device, beside the CPU's (unetbench/training/trace.py)."""
        return []

    def capture_range(self, on: bool) -> None:
        """Open (on) or close the capture range of the vendor's external profiler around the
        traced steps; only backends whose spec has an ``nsys_trace`` have one."""
        raise NotImplementedError(f"the {self.name} backend has no external profiler capture range")

    def math_mode(self) -> dict:
        return {"precision": self.precision, "tf32": False, "channels_last": self.channels_last,
                "compiled": self.compiled, "fused_optimizer": self.fused_optimizer}

    def device_settings(self) -> dict:
        """The device's own facts that decide a figure beyond math_mode (its libraries' search
        modes and layout switches, how its steps are timed, what one "device" is), as flat
        name -> value pairs. Recorded in the results' environment and shown in the report's
        setup table: runs of one backend that differ in one are never compared silently."""
        return {}


class InlineStream:
    """Runs a batch's transfer in line, on the compute queue (every device without a side stream)."""

    def run(self, fn):
        return fn()

    def hand_over(self, *tensors) -> None:
        pass


class SideStream:
    """A second stream of a device's torch module (``torch.cuda``, ``torch.xpu``): the copy and
    augmentation of batch i+1 overlap the kernels of step i instead of queueing in front of them."""

    def __init__(self, module, device: torch.device):
        self.module = module
        self.device = device
        self.stream = module.Stream(device)

    def run(self, fn):
        with self.module.stream(self.stream):
            return fn()

    def hand_over(self, *tensors) -> None:
        # The compute stream must wait for the copy, and the allocator must not recycle the
        # tensors' memory while the compute stream still reads them.
        current = self.module.current_stream(self.device)
        current.wait_stream(self.stream)
        for t in tensors:
            t.record_stream(current)


class AcceleratorBackend(Backend):
    """A device with a torch module of its own (``torch.cuda``, ``torch.hpu``, ...): synchronise,
    events, random-number state, peak memory and device identity are the same calls on each,
    so they are made once here. A subclass names its ``device_type``."""

    device_type: str

    @functools.cached_property
    def module(self):
        """``torch.<device_type>``, looked up at first use: after the device's extension has loaded."""
        return device_module(self.device_type)

    def synchronize(self) -> None:
        # Waits for the device to finish all queued work, not only for the launch: called
        # before every clock read (the current device is this rank's).
        self.module.synchronize()

    def new_event(self):
        return TorchEvent(self.module.Event(enable_timing=True))

    def rng_state(self):
        get = getattr(self.module, "get_rng_state", None)
        return get() if get is not None else None

    def set_rng_state(self, state):
        set_state = getattr(self.module, "set_rng_state", None)
        if state is not None and set_state is not None:
            set_state(state.cpu())

    def reset_peak_memory(self):
        reset = getattr(self.module, "reset_peak_memory_stats", None)   # torch.xpu has it from 2.5
        if reset is not None:
            reset()

    def release_cached_memory(self):
        empty = getattr(self.module, "empty_cache", None)
        if empty is not None:
            empty()

    def memory_bytes(self) -> dict:
        def stat(name):   # None where this device module lacks the figure (torch.xpu before 2.5)
            read = getattr(self.module, name, None)
            return read() if read is not None else None
        return {"allocated": stat("memory_allocated"), "reserved": stat("memory_reserved"),
                "peak_allocated": stat("max_memory_allocated"), "peak_reserved": stat("max_memory_reserved"),
                "source": f"torch.{self.device_type} caching allocator"}

    def device_identity(self) -> dict:
        """device_name and device_count, as the environment records them."""
        return {"device_name": self.module.get_device_name(), "device_count": self.module.device_count()}


def check_local_rank(local_rank: int, devices: int, kind: str) -> None:
    """More processes on a node than devices would share a device and distort every figure."""
    if local_rank >= devices:
        raise UserError(f"local rank {local_rank} has no {kind} of its own: only {devices} visible on this node; "
                        f"start at most {devices} process(es) per node")


def device_module(device_type: str):
    """``torch.<device_type>``, looked up when the backend is made. ``torch.get_device_module``
    does the same lookup but caches it for the life of the process, while a device extension
    (the Gaudi bridge, or its test stand-in) registers its module only when it loads."""
    module = getattr(torch, device_type, None)
    if module is None:
        raise UserError(f"this torch has no torch.{device_type} module: the {device_type} device's "
                        "PyTorch extension is not loaded")
    return module


def backend_class(name: str) -> type[Backend]:
    """The class of a registered backend: its device folder's backend.py, imported now."""
    spec = lookup(BACKENDS, name, "backend")
    importlib.import_module(f"{spec.package}.backend")
    if name not in Backend.registered:
        raise LookupError(f"{spec.package}.backend defines no Backend subclass whose spec is {name!r}")
    return Backend.registered[name]


def make_backend(name: str, profile: str = "parity", local_rank: int = 0, allow_tf32: bool = False,
                 compile_mode: str | None = None) -> Backend:
    return backend_class(name)(profile, local_rank, allow_tf32=allow_tf32, compile_mode=compile_mode)
