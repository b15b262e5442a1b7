"""The CUDA backend: NVIDIA GPUs, one per process, with a side stream for the input pipeline.

    backend = make_backend("cuda", profile="fast", local_rank=0)   # bf16, channels_last, torch.compile, fused Adam
    backend = make_backend("cuda", profile="parity")               # true fp32: TF32 off
"""

from __future__ import annotations

import torch

from ...core.errors import UserError
from ..base import AcceleratorBackend, SideStream, check_local_rank
from .driver import driver_problem
from .energy import nvml_meter
from .spec import NVIDIA_SMI, SPECS, nvidia_smi_list


def no_device_message() -> str:
    """Why torch sees no GPU: a driver too old for this torch's CUDA (named, with the fix) when
    nvidia-smi says so, else no GPU granted to this job."""
    problem = driver_problem(torch.version.cuda, NVIDIA_SMI.driver_version())
    if problem:
        return f"no CUDA device usable (torch.cuda.is_available() is False): {problem} (torch {torch.__version__})"
    return ("no CUDA device visible on this node (torch.cuda.is_available() is False); "
            "run on a GPU node, or check CUDA_VISIBLE_DEVICES and the job's --gres")


class CudaBackend(AcceleratorBackend):
    spec, = SPECS
    device_type = "cuda"
    loader_pinning = True
    compiles_per_shape = True  # cudnn.benchmark autotunes per shape; torch.compile per shape

    def __init__(self, profile: str, local_rank: int = 0, **options):
        self.check_build()
        if not torch.cuda.is_available():
            raise UserError(no_device_message())
        check_local_rank(local_rank, torch.cuda.device_count(), "GPU")
        super().__init__(profile, local_rank, **options)
        # This rank's GPU becomes the current device: every call without a device argument
        # (synchronize, events, peak memory, RNG state) then means this GPU.
        torch.cuda.set_device(local_rank)
        self._device = torch.device("cuda", local_rank)
        fast = profile == "fast"
        self.precision = "bf16" if fast else "fp32"
        self.channels_last = fast
        self.compiled = fast
        self.fused_optimizer = fast
        # Parity means true fp32: TF32 convolutions (PyTorch's default for cuDNN) would change
        # the math relative to the other devices. The fast profile computes in bf16 anyway.
        tf32 = fast or self.allow_tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        # Read back, not assumed: a build may ignore the switch (ROCm's does without its variable).
        self.tf32 = bool(torch.backends.cuda.matmul.allow_tf32)
        # Fixed shapes: autotune once, during warm-up. Set, never left to the default, which
        # differs between builds and releases.
        torch.backends.cudnn.benchmark = True

    @classmethod
    def check_build(cls) -> None:
        """This torch must drive the device the way this class does."""
        hip = getattr(torch.version, "hip", None)
        if hip:
            raise UserError(f"this torch is built for AMD GPUs (HIP {hip}), which it drives through torch.cuda too: "
                            "run the AMD Instinct backend's script instead (python3 -m unetbench.launch --help lists them)")

    @property
    def device(self) -> torch.device:
        return self._device

    def side_stream(self):
        return SideStream(torch.cuda, self.device)

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

    def energy_meter(self):
        # The physical GPU, by what torch knows of it (UUID, else PCI bus id): never by the CUDA
        # ordinal, which CUDA_VISIBLE_DEVICES renumbers (devices/cuda/energy.py).
        props = torch.cuda.get_device_properties(self.device)
        uuid = getattr(props, "uuid", None)
        bus = getattr(props, "pci_bus_id", None)
        pci = f"{props.pci_domain_id:08X}:{bus:02X}:{props.pci_device_id:02X}.0" if bus is not None else None
        return nvml_meter(f"GPU-{uuid}" if uuid else None, self.device.index, pci_bus_id=pci)

    def monitor_device_id(self):
        # nvidia-smi's index of this physical GPU, by UUID: the CUDA ordinal is renumbered by
        # CUDA_VISIBLE_DEVICES, nvidia-smi's index is not.
        uuid = getattr(torch.cuda.get_device_properties(self.device), "uuid", None)
        return nvidia_smi_list().get(f"GPU-{uuid}") if uuid else None

    def profiler_activities(self):
        return [torch.profiler.ProfilerActivity.CUDA]

    def capture_range(self, on: bool) -> None:
        # cudaProfilerStart/Stop: Nsight Systems runs with --capture-range=cudaProfilerApi.
        if on:
            torch.cuda.profiler.start()
        else:
            torch.cuda.profiler.stop()

    def math_mode(self):
        return {**super().math_mode(), "tf32": self.tf32}

    def device_settings(self):
        # cuDNN's autotuner picks each convolution's algorithm by timing them: on or off changes speed.
        return {"cudnn_benchmark": torch.backends.cudnn.benchmark}

    def environment(self):
        return {**self.device_identity(), "driver": NVIDIA_SMI.driver_version(),
                "cuda": torch.version.cuda, "cudnn": str(torch.backends.cudnn.version())}

    @classmethod
    def software_check(cls) -> tuple[bool, str]:
        if torch.version.cuda is None:
            return False, ("this torch has no CUDA build here (fine if CUDA_SETUP activates another "
                           "environment on the GPU node)")
        return True, f"torch built with CUDA {torch.version.cuda}"
