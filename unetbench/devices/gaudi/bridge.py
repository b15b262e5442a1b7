"""The Intel Gaudi bridge (habana_frameworks) behind the HPU backends (backend.py): loading it in
the mode asked for, HPU graphs, the lazy-mode graph cut of the input pipeline.

    htcore = load_bridge(lazy=True)   # UserError: bridge missing, stock torch in lazy mode, wrong mode
    bridge_mode()                     # "lazy" / "eager": what the loaded bridge reports
    GraphCutStream(htcore)            # lazy mode: the next batch's transform is a graph of its own

Each rule, and the Intel source it comes from: docs/training.md, "Gaudi". This module imports
neither torch nor the bridge at import time: the bridge is loaded by ``load_bridge`` only.
"""

from __future__ import annotations

import importlib

from ...core.errors import UserError
from .spec import MODE_VAR

# Intel's training examples keep up to 10 graphs per module (ModuleCacher(max_graphs=10)):
# training and evaluation shapes of one run fit in that.
HPU_GRAPHS_MAX = 10


def load_bridge(lazy: bool):
    """``habana_frameworks.torch.core`` with the bridge running in the mode asked for.

    The bridge fixes its mode once, when it loads: with torch >= 2.5 that is at ``import torch``
    (autoload) unless PT_HPU_LAZY_MODE=1 was in the environment before, so setting the
    variable later changes nothing. The mode the bridge reports is checked, not assumed."""
    try:
        htcore = importlib.import_module("habana_frameworks.torch.core")
    except ImportError as err:
        raise UserError(f"Intel Gaudi software not found (import habana_frameworks failed: {err}); "
                        "run on a Gaudi node inside the Intel Gaudi PyTorch environment") from None
    except AssertionError as err:
        # The bridge asserts on a torch it was not built for: stock torch in lazy mode, or
        # another major/minor version than it was compiled against.
        hint = ("lazy mode needs Intel's PyTorch build; with stock torch use gaudi_eager" if lazy
                else "install the torch version this Intel Gaudi release names")
        raise UserError(f"the Intel Gaudi bridge refused this torch: {err} ({hint}; Intel Gaudi support "
                        "matrix: https://docs.habana.ai/en/latest/Support_Matrix/Support_Matrix.html)") from None
    actual = bridge_mode()
    wanted = "lazy" if lazy else "eager"
    if actual != wanted:
        raise UserError(
            f"the Intel Gaudi bridge runs in {actual} mode, but gaudi_{wanted} needs {wanted} mode. The bridge "
            f"fixes its mode when it loads, which torch >= 2.5 does at `import torch`, so {MODE_VAR}="
            f"{'1' if lazy else '0'} must be set before Python imports torch: start python3 unet_gaudi_{wanted}.py "
            f"(it sets it first), or export {MODE_VAR}={'1' if lazy else '0'} before python3")
    return htcore


def bridge_mode() -> str:
    """The mode the loaded bridge reports (``habana_frameworks.torch.utils.internal.is_lazy``)."""
    internal = importlib.import_module("habana_frameworks.torch.utils.internal")
    return "lazy" if internal.is_lazy() else "eager"


def hpu_graphs(module):
    """Lazy mode: record the module's graph once and replay it (HPU graphs), instead of
    rebuilding the lazy graph on the host every step. Intel wraps the model this way in its
    training examples, before DistributedDataParallel."""
    hpu = importlib.import_module("habana_frameworks.torch").hpu
    return hpu.ModuleCacher(max_graphs=HPU_GRAPHS_MAX)(model=module, inplace=True)


class GraphCutStream:
    """The input pipeline's stream in lazy mode: the next batch's copy and transform become a
    graph of their own (mark_step right after them, their results held).

    Without the cut the transform of batch i+1 is recorded into step i's graph; the epoch's
    last step has no next batch, so its graph differs and is compiled inside the timed epoch."""

    def __init__(self, htcore):
        self.htcore = htcore

    def run(self, fn):
        result = fn()
        self.htcore.mark_step()   # executes the transform: its outputs are alive (held here)
        return result

    def hand_over(self, *tensors) -> None:
        """One device queue: nothing to hand over."""
