"""The XPU backend: Intel Data Center GPUs (Max series) through PyTorch's XPU build, one device per process.

    backend = make_backend("xpu", profile="fast")     # bf16, channels_last, torch.compile, fused Adam (torch >= 2.6)
    backend = make_backend("xpu", profile="parity")   # strict fp32: oneDNN's TF32 off

What one device is depends on Level Zero's hierarchy (spec.py): a card under COMPOSITE, which a
Slurm job with a card mask gets, or a stack of a multi-stack card under FLAT. Facts that decide
behaviour here (pytorch/pytorch and intel/torch-xpu-ops sources, release branches):
- torch.xpu.Event.elapsed_time raises NotImplementedError before torch 2.6 (pytorch #131840,
  fixed by #140873), so the backend probes it once and otherwise times steps by synchronising
  (events.SyncedHostEvent); which one ran is recorded in device_settings.
- XPU kernels for fused Adam and for Tensor.record_stream arrived in torch 2.6 (torch-xpu-ops
  #879 and #1047: in release/2.6, not release/2.5). Older torch passes the Python checks for
  "xpu" and fails at dispatch, so both are decided by the torch version.
- Eager XPU convolution and matmul read oneDNN's TF32 switch, torch.backends.mkldnn.allow_tf32
  (off by default: strict fp32; ATen mkldnn/xpu/detail/Matmul.cpp), convolutions from torch 2.7
  (pytorch #137570), matmul from 2.8 (#144240); torch.backends.cuda's switches do not reach them.
  Before 2.7 XPU computes strict fp32 whatever the switch says, and the results say so.
- torch.distributed's "xccl" backend ships in XPU wheels from torch 2.8 (pytorch #154963);
  before, Intel's oneccl_bindings_for_pytorch registers "ccl" when imported (intel/torch-ccl).
"""

from __future__ import annotations

import importlib
import os

import torch
from torch.torch_version import TorchVersion

from ...core.errors import UserError
from ..base import AcceleratorBackend, InlineStream, SideStream, check_local_rank
from ..events import SyncedHostEvent, TorchEvent
from .energy import xpu_meter
from .spec import COMPOSITE, MASK_VAR, SPECS, XPU_SMI, hierarchy

FUSED_ADAM_SINCE = (2, 6)    # torch-xpu-ops #879: _fused_adam_ for XPU
TF32_SINCE = (2, 7)          # pytorch #137570: XPU convolutions honour oneDNN's TF32 switch
RECORD_STREAM_SINCE = (2, 6)  # torch-xpu-ops #1047: Tensor.record_stream for XPU
XPU_INDEX_URL = "https://download.pytorch.org/whl/xpu"
NO_XPU = ("no Intel GPU visible to torch here (torch.xpu is missing or torch.xpu.is_available() is False): "
          "run on an Intel GPU node with PyTorch's XPU build (pip install torch --index-url "
          f"{XPU_INDEX_URL}, or the site's module loaded by XPU_SETUP in site.env); "
          f"check {MASK_VAR} and the job's --gres")


def torch_at_least(release: tuple[int, int]) -> bool:
    """torch's version >= ``release`` (a pre-release of that version counts as older)."""
    return TorchVersion(str(torch.__version__)) >= release


def build_has_xpu() -> bool:
    """This torch was built with XPU support (checkable without a GPU)."""
    return hasattr(torch, "xpu") and bool(getattr(torch.version, "xpu", None) or getattr(torch._C, "_has_xpu", False))


def set_onednn_tf32(on: bool) -> bool:
    """oneDNN's TF32 switch, which XPU's matmul and convolution read; returns what it now says
    (False where this torch lacks the switch: XPU then computes in strict fp32)."""
    mkldnn = torch.backends.mkldnn
    if not hasattr(mkldnn, "allow_tf32"):
        return False
    mkldnn.allow_tf32 = on
    return bool(mkldnn.allow_tf32)


def events_time(module) -> bool:
    """Whether this torch's XPU events measure time (elapsed_time exists from torch 2.6)."""
    try:
        start, end = module.Event(enable_timing=True), module.Event(enable_timing=True)
        start.record()
        end.record()
        module.synchronize()
        start.elapsed_time(end)
    except (NotImplementedError, RuntimeError):
        return False
    return True


def xccl_available() -> bool:
    dist = torch.distributed
    check = getattr(dist, "is_xccl_available", None)
    if check is not None and check():
        return True
    available = getattr(dist, "is_backend_available", None)
    return bool(available is not None and available("xccl"))


class XpuBackend(AcceleratorBackend):
    spec, = SPECS
    device_type = "xpu"
    loader_pinning = True      # pin for the current accelerator (pin_memory_device is deprecated)
    compiles_per_shape = True  # torch.compile per shape in the fast profile

    def __init__(self, profile: str, local_rank: int = 0, **options):
        module = getattr(torch, "xpu", None)
        if module is None or not module.is_available():
            raise UserError(NO_XPU)
        check_local_rank(local_rank, module.device_count(), "Intel GPU")
        super().__init__(profile, local_rank, **options)
        # This rank's device becomes the current one: every call without a device argument
        # (synchronize, events, peak memory, RNG state) then means it.
        module.set_device(local_rank)
        self._device = torch.device(self.device_type, local_rank)
        fast = profile == "fast"
        self.precision = "bf16" if fast else "fp32"
        self.channels_last = fast
        self.compiled = fast
        self.fused_optimizer = fast and torch_at_least(FUSED_ADAM_SINCE)
        # Parity is strict fp32 (oneDNN's default on XPU), set explicitly; TF32 where allowed and
        # where this torch's XPU kernels read the switch.
        self.tf32 = set_onednn_tf32((fast or self.allow_tf32) and torch_at_least(TF32_SINCE))
        self.event_timing = events_time(module)

    @property
    def device(self) -> torch.device:
        return self._device

    def new_event(self):
        if self.event_timing:
            return TorchEvent(self.module.Event(enable_timing=True))
        return SyncedHostEvent(self.synchronize)

    def side_stream(self):
        # Before torch 2.6 record_stream has no XPU kernel: the batch is then copied in line.
        return SideStream(self.module, self.device) if torch_at_least(RECORD_STREAM_SINCE) else InlineStream()

    def ddp_kwargs(self):
        return {"device_ids": [self.local_rank]}

    def init_distributed(self, dist) -> None:
        dist.init(comm_backend())

    def compile_model(self, model):
        # Static shapes, one graph per batch shape, each compiled during a warm-up (as on CUDA).
        return torch.compile(model, mode=self.compile_mode, dynamic=False) if self.compiled else model

    def make_optimizer(self, params, lr):
        return torch.optim.Adam(params, lr=lr, fused=True if self.fused_optimizer else None)

    def energy_meter(self):
        return xpu_meter(self.local_rank)

    def profiler_activities(self):
        activity = getattr(torch.profiler.ProfilerActivity, "XPU", None)
        return [activity] if activity is not None else []

    def math_mode(self):
        return {**super().math_mode(), "tf32": self.tf32}

    def device_settings(self):
        level = hierarchy(os.environ)
        return {"event_timing": f"torch.{self.device_type}.Event" if self.event_timing else "synchronize + host clock",
                "device_hierarchy": level,
                # FLAT and COMBINED: one device per stack (on a single-stack card, the card).
                "device_unit": "card" if level == COMPOSITE else "stack",
                "affinity_mask": os.environ.get(MASK_VAR)}

    def environment(self):
        props = self.module.get_device_properties(self.local_rank)
        return {**self.device_identity(),
                "driver": getattr(props, "driver_version", None) or XPU_SMI.driver_version(),
                "xpu": getattr(torch.version, "xpu", None)}

    @classmethod
    def software_check(cls) -> tuple[bool, str]:
        if not build_has_xpu():
            return False, ("this torch has no XPU build here (fine if XPU_SETUP provides it on the GPU node; "
                           f"pip install torch --index-url {XPU_INDEX_URL})")
        return True, f"torch built with XPU support ({getattr(torch.version, 'xpu', None) or 'version unknown'})"


def comm_backend() -> str:
    """torch.distributed's backend for Intel GPUs: native xccl, else Intel's ccl bindings."""
    if xccl_available():
        return "xccl"
    try:
        importlib.import_module("oneccl_bindings_for_pytorch")   # registers "ccl" on import
    except ImportError:
        raise UserError("this torch has no xccl backend (torch.distributed.is_xccl_available() is False; native "
                        "from torch 2.8's XPU wheels) and oneccl_bindings_for_pytorch is not installed: install "
                        f"torch >= 2.8 from {XPU_INDEX_URL}, or Intel's oneccl_bind_pt matching this torch") from None
    return "ccl"
