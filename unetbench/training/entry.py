"""The start of every training entry point (unet_<backend>.py): stop handlers and environment first, torch after.

    python3 unet_gaudi_lazy.py --epochs 2        # calls run_backend("gaudi_lazy")

Why a module of its own: two things must happen before ``import torch``. The stop handlers,
because a signal may land during the imports and the model build (seconds): caught, the run
acts on it (exit 3, so a batch job still requeues). And a backend's environment
(PT_HPU_LAZY_MODE for Gaudi), because torch >= 2.5 loads the Gaudi bridge with it and the
bridge fixes its mode then. This module imports only the registry and the signal handling
before doing both; the training (unetbench.training.launch, which imports torch) comes after.
``python3 -m unetbench.launch`` does the same two things in launch.py's ``__main__`` block.
"""

from __future__ import annotations

from ..core.errors import UserError, run_cli
from ..devices.before_torch import prepare_environment
from .stop_signals import StopRequest


def run_backend(backend: str) -> None:
    stop = StopRequest.install()   # the process's one request, handed to the run
    prepare_environment(backend)
    run_cli(lambda argv: import_launch()(argv, backend_name=backend, stop=stop))


def import_launch():
    """``unetbench.training.launch.main``, importing torch only now. torch >= 2.5 loads device extensions
    (the Intel Gaudi bridge in eager mode) at import and wraps their failures in a RuntimeError
    with a traceback; the bridge's own reason (an AssertionError: built for another torch) is
    what the user needs, on one line."""
    try:
        from .launch import main
    except RuntimeError as err:
        if "backend extension" not in str(err):
            raise
        raise UserError(f"import torch failed: {err.__cause__ or err} (torch loads device extensions such as the "
                        "Intel Gaudi bridge at import): install the torch version this Intel Gaudi release names, "
                        "or run without the extension (TORCH_DEVICE_BACKEND_AUTOLOAD=0)") from None
    return main
