"""Command-line entry shared by unet_<backend>.py and ``python3 -m unetbench.train``.

    python3 unet_cpu.py --splits data/dataset_splits.json --epochs 2
    torchrun --nproc_per_node=2 unet_cpu.py ...     # each process calls main(); DDP from the env

Parses settings, finds the launcher (single process, torchrun or srun), builds the backend,
forms the process group and runs the Trainer; records a failure in the results once the
run has started.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

from .backends import make_backend
from .config import parse_settings
from .distributed import DistContext
from .errors import UserError
from .train import Trainer
from . import train as train_module


def main(argv: Sequence[str] | None = None, backend_name: str | None = None) -> int:
    """Entry point shared by unet_<backend>.py (backend fixed) and ``-m unetbench.train``."""
    prog = Path(sys.argv[0]).name if backend_name else "python3 -m unetbench.train"
    settings, args = parse_settings(argv, prog=prog, description=train_module.__doc__.split("\n\n")[0],
                                    backend_choice=backend_name is None)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    dist = DistContext.from_environment()
    backend = make_backend(backend_name or args.backend, settings.profile, local_rank=dist.local_rank,
                           allow_tf32=settings.allow_tf32, compile_mode=settings.compile_mode)
    backend.init_distributed(dist)
    clean = False
    try:
        trainer = Trainer(settings, backend, dist)
        dist.check_same("dataset split file", trainer.splits.sha256)
        if settings.resume and not trainer.last_path.exists():
            raise UserError(f"--resume: no checkpoint at {trainer.last_path}; run without --resume, "
                            "or use --auto-resume to start fresh when there is none")
        try:
            code = trainer.run()
        except Exception as err:
            # A run that never started (bad checkpoint, say) leaves earlier results untouched.
            if trainer.started:
                trainer.write("failed", str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}")
            raise
        clean = True
        return code
    finally:
        dist.close(clean)
