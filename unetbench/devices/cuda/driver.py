"""Does this node's NVIDIA driver run the CUDA this torch was built for? (torch-free)

    driver_problem("13.0", "550.54.15")   # -> "the NVIDIA driver here is 550.54.15, ... fix"
    driver_problem("12.6", "550.54.15")   # -> None: a 12.x build runs on any 525+ driver

Asked when ``torch.cuda.is_available()`` is False (CudaBackend, the self-check): the commonest
cause on a cluster is a torch from the registry built for a newer CUDA than the nodes' driver
runs, and torch then says only "no device". The PyPI torch of the README (2.14.1) is a CUDA 13.0
build.

Minimum drivers per CUDA major release, from NVIDIA's "CUDA Compatibility" guide, section
"Minor Version Compatibility", table 1 (docs.nvidia.com/deploy/cuda-compatibility/
minor-version-compatibility.html): CUDA 13.x needs driver >= 580, 12.x >= 525, 11.x >= 450;
any newer driver runs an older build. NVIDIA's data-center driver matrix says the same per
branch: R535 and R570 run CUDA 12.x, R580 runs CUDA 13.x.
"""

from __future__ import annotations

from typing import Optional

# CUDA major version -> the driver branch it needs at least (Linux).
MIN_DRIVER_BRANCH = {11: 450, 12: 525, 13: 580}
# PyTorch's own wheel index, one per CUDA build (cuXYZ), and the build per CUDA major the fix
# names as an example (which builds a release offers is on PyTorch's install page).
WHEEL_INDEX = "https://download.pytorch.org/whl/cu{tag}"
EXAMPLE_BUILD = {12: "126", 11: "118"}


def _major(version: str) -> Optional[int]:
    head = version.strip().split(".")[0]
    return int(head) if head.isdigit() else None


def newest_cuda_for(driver: str) -> Optional[int]:
    """The newest CUDA major a driver runs (550.54.15 -> 12); None when unknown or too old."""
    branch = _major(driver)
    if branch is None:
        return None
    fitting = [cuda for cuda, least in MIN_DRIVER_BRANCH.items() if branch >= least]
    return max(fitting) if fitting else None


def driver_problem(torch_cuda: Optional[str], driver: Optional[str]) -> Optional[str]:
    """Why a torch built for ``torch_cuda`` cannot use a node whose driver is ``driver``, with the
    fix; None when the driver is recent enough, or either version is unknown."""
    cuda = _major(torch_cuda or "")
    branch = _major(driver or "")
    if cuda is None or branch is None or cuda not in MIN_DRIVER_BRANCH:
        return None
    needed = MIN_DRIVER_BRANCH[cuda]
    if branch >= needed:
        return None
    runs = newest_cuda_for(driver or "")
    instead = (f"install a torch built for CUDA {runs}.x, which driver {driver} runs (e.g. make venv "
               f"TORCH=\"torch==<version> torchvision==<its pair> --index-url {WHEEL_INDEX.format(tag=EXAMPLE_BUILD[runs])}\"; "
               "PyTorch's install page lists each release's CUDA builds)") if runs in EXAMPLE_BUILD else \
        "install a torch built for the CUDA this driver runs"
    return (f"the NVIDIA driver on this node is {driver}, but this torch is built for CUDA {torch_cuda}, "
            f"which needs driver {needed} or newer (NVIDIA's CUDA minor-version compatibility); "
            f"{instead}, or load the site's PyTorch module in CUDA_SETUP (site.env), or ask for a "
            f"{needed}+ driver")
