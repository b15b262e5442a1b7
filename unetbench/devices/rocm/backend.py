"""The ROCm backend: AMD Instinct GPUs through PyTorch's ROCm build, which drives them with
torch.cuda's API on HIP (PyTorch docs, notes/hip.rst): the CUDA backend's loop, streams and
events, with AMD's libraries set and recorded.

    backend = make_backend("rocm", profile="fast")     # bf16, channels_last with MIOpen's NHWC kernels, compile
    backend = make_backend("rocm", profile="parity")   # true fp32: TF32 off

What differs from CUDA, and why each is set rather than left to a default that changes between
releases: MIOpen's search (torch.backends.cudnn.benchmark=True is an exhaustive find, PyTorch PR
#145294; False a quick one), MIOpen's NHWC kernels (opt-in, PR #170780), TF32 (hipBLASLt ignores
torch's switch unless HIPBLASLT_ALLOW_TF32=1, PR #143549). Each lands in device_settings().
"""

from __future__ import annotations

import os

import torch

from ...core.errors import UserError
from ..cuda.backend import CudaBackend
from .energy import rocm_meter
from .spec import AMD_SMI, FIND_MODE_VAR, MIOPEN_DB_VARS, NHWC_VARS, SPECS, TF32_VAR, VISIBLE_VAR


class RocmBackend(CudaBackend):
    spec, = SPECS

    def __init__(self, profile: str, local_rank: int = 0, **options):
        fast = profile == "fast"
        # Before the first convolution and the first matmul, where ATen reads them. A value the
        # site exported stays (setdefault); the one in effect is recorded either way.
        if fast:
            for name in NHWC_VARS:
                os.environ.setdefault(name, "1")
        if fast or options.get("allow_tf32"):
            os.environ.setdefault(TF32_VAR, "1")
        super().__init__(profile, local_rank, **options)

    @classmethod
    def check_build(cls) -> None:
        if not getattr(torch.version, "hip", None):
            raise UserError("this torch has no ROCm build (torch.version.hip is None): install PyTorch's ROCm wheel "
                            "(pip install torch --index-url https://download.pytorch.org/whl/rocm6.4, matching the "
                            "node's ROCm) or load the site's ROCm PyTorch in ROCM_SETUP (site.env)")

    def device_settings(self):
        return {"miopen_find": "exhaustive" if torch.backends.cudnn.benchmark else "quick",
                "miopen_find_mode": os.environ.get(FIND_MODE_VAR, "default"),
                **{name.lower().removeprefix("pytorch_"): os.environ.get(name, "unset") for name in NHWC_VARS},
                "hipblaslt_allow_tf32": os.environ.get(TF32_VAR, "unset")}

    def energy_meter(self):
        return rocm_meter(pci_address(torch.cuda.get_device_properties(self.device)))

    def monitor_device_id(self):
        return None   # not CUDA's nvidia-smi index; amd-smi's GPU id is not looked up here

    def environment(self):
        props = torch.cuda.get_device_properties(self.device)
        return {**self.device_identity(), "driver": AMD_SMI.driver_version(),
                "hip": torch.version.hip, "miopen": str(torch.backends.cudnn.version()),
                "gcn_arch": str(getattr(props, "gcnArchName", "")).split(":")[0] or None,
                "pci_address": pci_address(props),
                "rocr_visible_devices": os.environ.get(VISIBLE_VAR),
                "miopen_user_db_path": os.environ.get(MIOPEN_DB_VARS[0])}

    @classmethod
    def software_check(cls) -> tuple[bool, str]:
        if not getattr(torch.version, "hip", None):
            return False, "this torch has no ROCm build here (fine if ROCM_SETUP activates another environment on the GPU node)"
        return True, f"torch built with HIP {torch.version.hip}"


def pci_address(props) -> str | None:
    """domain:bus:device.function of a GPU, as amd-smi writes it (0000:c1:00.0); None where this
    torch's device properties lack the PCI fields."""
    bus, device = getattr(props, "pci_bus_id", None), getattr(props, "pci_device_id", None)
    if bus is None or device is None:
        return None
    return f"{getattr(props, 'pci_domain_id', 0):04x}:{bus:02x}:{device:02x}.0"
