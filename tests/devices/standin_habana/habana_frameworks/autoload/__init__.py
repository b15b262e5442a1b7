"""STAND-IN for habana_frameworks.autoload: torch >= 2.5 calls ``__autoload`` from ``import torch``
(entry point group ``torch.backends``, declared in ../habana_torch_plugin-*.dist-info).

As in Intel's bridge (gaudi-pytorch-bridge python_packages/habana_frameworks/autoload): the
bridge loads itself at ``import torch`` unless PT_HPU_AUTOLOAD=0 or lazy mode was asked for
before; this stand-in imitates the releases whose default mode is eager (1.21 on), so an
unset PT_HPU_LAZY_MODE autoloads the bridge in eager mode and fixes that mode for the process.
"""
import os

is_loaded = False


def is_autoload_enabled():
    setting = os.getenv("PT_HPU_AUTOLOAD", "-1")
    if setting in ("0", "1"):
        return setting == "1"
    return os.getenv("PT_HPU_LAZY_MODE", "0") != "1"


def __autoload():
    if is_loaded or not is_autoload_enabled():
        return
    import habana_frameworks.torch  # noqa: F401
