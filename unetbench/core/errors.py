"""Expected failures and the exit codes the batch scripts act on.

Usage in an entry point::

    from unetbench.core.errors import run_cli
    run_cli(main)          # main(argv) -> int

A ``UserError`` is a failure the user can fix (missing file, bad flag, no device):
it is printed as one line naming the thing and the fix, with no traceback.
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

# Exit codes are part of the interface with the Slurm scripts: scripts/lib_job.sh requeues on
# EXIT_INTERRUPTED; scripts/registry.sh (generated) carries these values to Bash.
EXIT_OK = 0
EXIT_FAILED = 1          # an unexpected error; traceback printed
EXIT_USAGE = 2           # bad input, missing file or device: nothing to retry
EXIT_INTERRUPTED = 3     # SIGUSR1/SIGTERM/SIGINT: checkpoint saved (or nothing yet to save), rerun with --auto-resume


class UserError(Exception):
    """An expected failure with a message that names the problem and the fix."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None, *,
            stop_cleanly: bool = False) -> None:
    """Run ``main`` and turn expected failures into a message and an exit code.
    ``stop_cleanly``: SIGTERM ends it as Ctrl-C does, cleanup included (core/interrupts.py);
    for tools with no stop handling of their own (the training has its own)."""
    if stop_cleanly:
        from .interrupts import stop_cleanly_on_signals
        stop_cleanly_on_signals()
    try:
        code = main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        code = err.exit_code
    except KeyboardInterrupt as err:
        name = getattr(err, "signal_name", "SIGINT")
        print(f"stopped by {name}: what it was writing was removed, earlier outputs are as they were; "
              "run it again to finish", file=sys.stderr)
        code = 130
    sys.exit(code)
