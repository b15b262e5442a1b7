"""The on-device self-check as a command: what each self-check job runs on its device(s).

    python3 -m unetbench.cluster.selfcheck --backend cuda                 # this node's first GPU
    python3 -m unetbench.cluster.selfcheck --backend gaudi_lazy --profile parity
    srun --ntasks=2 python3 -m unetbench.training.rankenv -- python3 -m unetbench.cluster.selfcheck --backend cpu

Normally started by ``./verify_enhanced.sh --on-device`` (a job per backend through
scripts/selfcheck.sh, or here with ``--local``). The checks are selfcheck_calls.py's;
this module sets the backend's environment before torch is imported (the Gaudi bridge fixes its
mode at ``import torch``), reads the ranks from the launcher, and exits 0 when every check passed,
1 when one failed, 2 for a bad flag.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from typing import Sequence

from ..core.errors import run_cli
from ..core.registry import BACKENDS, PROFILES
from ..devices.before_torch import prepare_environment
from .selfcheck_verdict import failed

DIST_TIMEOUT_S = "60"   # a self-check's ranks start together: a minute is plenty, five would waste the job
DEFAULT_PROFILE = "fast"  # it makes every call parity makes and more: compilation, autocast, fused optimizers


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m unetbench.cluster.selfcheck",
                                description="Check every device call the benchmark makes, in seconds.")
    p.add_argument("--backend", required=True, choices=list(BACKENDS))
    p.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES,
                   help=f"the profile whose calls are checked (default {DEFAULT_PROFILE})")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    prepare_environment(args.backend)
    os.environ.setdefault("UNETBENCH_DIST_TIMEOUT", DIST_TIMEOUT_S)
    try:
        from .selfcheck_calls import run_checks   # imports torch, with the environment above
        from ..training.distributed import DistContext
    except Exception as err:  # torch >= 2.5 loads device extensions at import: their failure is the finding
        print(f"[FAIL] import torch: {type(err).__name__}: {err.__cause__ or err} (python {platform.python_version()} "
              f"at {sys.executable}: install the torch the device's software names, or activate the right "
              "environment in the SETUP of site.env)", flush=True)
        print(failed(args.backend, "import torch"))
        return 1
    return run_checks(args.backend, args.profile, DistContext.from_environment(),
                      out=lambda line: print(line, flush=True))


if __name__ == "__main__":
    run_cli(main)
