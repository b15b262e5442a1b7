"""Command-line entry of a training run: unet_<backend>.py and ``python3 -m unetbench.launch``.

    python3 -m unetbench.launch --backend cpu --splits data/dataset_splits.json --epochs 2
    python3 unet_cpu.py --splits data/dataset_splits.json --epochs 2   # the backend fixed (entry.py)
    torchrun --nproc_per_node=2 unet_cpu.py ...     # each process calls main(); DDP from the env

Parses settings, finds the launcher (single process, torchrun or srun), builds the backend,
forms the process group, claims the run's outputs and runs the Trainer
(unetbench/training/trainer.py). Failures are handled here: --resume without a checkpoint is
refused, and a run that fails after it started leaves status "failed" and the message in its
results file (one that never started leaves earlier results untouched). Exit codes:
docs/training.md.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

if __name__ == "__main__":  # the command: before torch loads, as entry.py does for unet_<backend>.py
    from ..devices.before_torch import prepare_environment_from_argv
    from .stop_signals import StopRequest
    COMMAND_STOP = StopRequest.install()   # a signal during the imports is the run's to act on
    prepare_environment_from_argv(sys.argv[1:])   # the Gaudi bridge loads with torch, in its mode

from ..core.errors import UserError, run_cli
from ..core.settings import Settings, parse_settings
from ..devices.base import make_backend  # noqa: E402  (imports torch)
from .distributed import DistContext
from .run_outputs import RunOutputs
from .stop_signals import StopRequest
from .trainer import Trainer

MODULE_PROG = "python3 -m unetbench.launch"
DESCRIPTION = "Train the benchmark model with the one training loop shared by every backend."


def main(argv: Sequence[str] | None = None, backend_name: str | None = None, *, stop: StopRequest) -> int:
    """Entry point shared by unet_<backend>.py (backend fixed) and ``-m unetbench.launch``;
    ``stop``: the request the command installed before importing torch."""
    prog = Path(sys.argv[0]).name if backend_name else MODULE_PROG
    settings, args = parse_settings(argv, prog=prog, description=DESCRIPTION, backend_choice=backend_name is None)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    dist = DistContext.from_environment()
    backend = make_backend(backend_name or args.backend, settings.profile, local_rank=dist.local_rank,
                           allow_tf32=settings.allow_tf32, compile_mode=settings.compile_mode)
    backend.init_distributed(dist)
    outputs = RunOutputs.of(settings, backend.name)
    clean = False
    trainer = None
    try:
        trainer = Trainer(settings, backend, dist, outputs=outputs, stop=stop)
        claim_outputs(settings, outputs, dist)  # after the data checks: a refused run writes nothing
        dist.check_same("dataset split file", trainer.splits.sha256)
        refuse_resume_without_checkpoint(settings, trainer.last_path)
        code = run_recording_failure(trainer)
        clean = True
        return code
    finally:
        stop.restore()  # the run is over: a signal now ends the process, a hung shutdown included
        if trainer is not None:
            trainer.release()  # the DDP unit holds the process group: dropped before close() destroys it
        dist.close(clean)


def claim_outputs(settings: Settings, outputs: RunOutputs, dist: DistContext) -> None:
    """Rank 0, the one claim of the run: lock OUT for this run name (one run at a time), clean
    temp files of killed writes, and refuse to start over an unfinished checkpoint without
    --auto-resume or --restart."""
    if dist.is_main:
        outputs.claim()
        outputs.refuse_unfinished(settings)
        outputs.keep_completed_checkpoints(settings)


def refuse_resume_without_checkpoint(settings: Settings, last_path: Path) -> None:
    if settings.resume and not last_path.exists():
        raise UserError(f"--resume: no checkpoint at {last_path}; run without --resume, "
                        "or use --auto-resume to start fresh when there is none")


def run_recording_failure(trainer: Trainer) -> int:
    """``trainer.run()``; a failure after the run started is recorded in its results first."""
    try:
        return trainer.run()
    except Exception as err:
        # A run that never started (bad checkpoint, say) leaves earlier results untouched.
        if trainer.started:
            trainer.write("failed", failure_message(err))
        raise


def failure_message(err: Exception) -> str:
    """A UserError already names the problem and the fix; anything else gets its type too."""
    return str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"


if __name__ == "__main__":
    run_cli(lambda argv: main(argv, stop=COMMAND_STOP))
