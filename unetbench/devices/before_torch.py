"""A backend's environment, set before torch is imported (torch >= 2.5 loads the Intel Gaudi
bridge at ``import torch``, and the bridge fixes its mode then; ROCm's MIOpen reads where its
databases live when it first runs).

    prepare_environment("gaudi_lazy")                      # PT_HPU_LAZY_MODE=1
    prepare_environment("rocm")                            # MIOPEN_USER_DB_PATH=/tmp/... unless the site set it
    prepare_environment_from_argv(["--backend", "gaudi_lazy", ...])   # for python3 -m unetbench.launch|bench

Imports only the registry: every entry point calls it before its first torch import.
"""

from __future__ import annotations

import os

from ..core.registry import BACKENDS


def prepare_environment(backend: str) -> None:
    spec = BACKENDS[backend]
    # Assigned, not setdefault: a lazy-mode script must run in lazy mode whatever the shell says.
    os.environ.update(spec.env_before_python)
    # Per-job defaults, computed here in each process (every node of a job gets its own
    # node-local path); a value the site's SETUP exported is its choice and stays.
    for name, value in spec.job_env(dict(os.environ)).items():
        os.environ.setdefault(name, value)


def prepare_environment_from_argv(argv: list[str]) -> None:
    """``--backend X`` / ``--backend=X`` in ``argv``: X's environment. Only an exact registered
    name counts; anything else is left to the parser, which names the choices."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--backend=") else (
            argv[i + 1] if arg == "--backend" and i + 1 < len(argv) else None)
        if value in BACKENDS:
            prepare_environment(value)
