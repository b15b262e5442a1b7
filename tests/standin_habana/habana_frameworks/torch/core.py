"""Stand-in habana_frameworks.torch.core: mark_step is recorded, with its arguments."""
import habana_frameworks.torch  # noqa: F401  (the real core imports the bridge too)
from habana_frameworks import CALLS


def mark_step(sync=False):
    CALLS.append(("mark_step", sync))
