"""STAND-IN for habana_frameworks.torch.utils.internal: ``is_lazy()`` reads PT_HPU_LAZY_MODE once
and keeps the answer, as the bridge does since its mode is fixed when it loads. Default eager
("0"), as from release 1.21."""
import os


def is_lazy():
    if is_lazy.mode is None:
        is_lazy.mode = os.getenv("PT_HPU_LAZY_MODE", "0") != "0"
    return is_lazy.mode


is_lazy.mode = None
