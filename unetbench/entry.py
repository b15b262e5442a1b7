"""The start of every training entry point (unet_<backend>.py): environment first, torch after.

    python3 unet_gaudi_lazy.py --epochs 2        # calls run_backend("gaudi_lazy")

Why a module of its own: a backend's environment (PT_HPU_LAZY_MODE for Gaudi) must be in
place before ``import torch``, because torch >= 2.5 loads the Gaudi bridge with it and the
bridge fixes its mode then. This module imports only the registry before setting it; the
training (unetbench.launch, which imports torch) comes after.
"""

from __future__ import annotations

import os

from .errors import run_cli
from .registry import BACKENDS


def prepare_environment(backend: str) -> None:
    # Assigned, not setdefault: a lazy-mode script must run in lazy mode whatever the shell says.
    os.environ.update(BACKENDS[backend].env_before_python)


def run_backend(backend: str) -> None:
    prepare_environment(backend)
    from .launch import main  # imports torch: only now
    run_cli(lambda argv: main(argv, backend_name=backend))
