"""Stand-in habana_frameworks.torch.core: mark_step is recorded, with its arguments; under a
``habana_frameworks.lazy_trace.LazyTrace`` it also cuts the imitated lazy graph."""
import habana_frameworks.torch  # noqa: F401  (the real core imports the bridge too)
from habana_frameworks import CALLS
from habana_frameworks.lazy_trace import current


def mark_step(device_str="", sync=False):
    CALLS.append(("mark_step", sync))
    trace = current()
    if trace is not None:
        trace.cut()
