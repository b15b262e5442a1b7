"""Where a run ran: host, device, software and job identity, recorded with every result.

    from unetbench.training.environment import environment
    env = environment(backend)      # {"host": ..., "device_name": ..., "torch": ..., "git_commit": ...}

Kept apart from results.py because it needs torch (its version) and the backend: the results
module itself stays torch-free for the report, which reads results on machines without a device.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys

import torch

from ..core.container_record import recorded as container_record
from ..core.paths import REPO_ROOT


def git_commit() -> str | None:
    """The checked-out commit of this suite, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def environment(backend) -> dict:
    """Host, device and software identity recorded with every result (collect it once: it
    runs git, and the backend may run nvidia-smi or hl-smi)."""
    return {
        "host": socket.gethostname(),
        **backend.environment(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "slurm_restart_count": int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0),
        "git_commit": git_commit(),
        "math_mode": backend.math_mode(),
        "device_settings": backend.device_settings(),
        # The folder the run itself put in place (Backend.use_compile_cache), not whatever the
        # environment held before: torch._dynamo fills in a /tmp default on import.
        "compile_cache": backend.compile_cache,
        # The image the job ran in, as the job shell names it (cluster/container.py); null: the host's software.
        "container": container_record(),
    }
