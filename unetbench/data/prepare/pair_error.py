"""The error one bad source pair raises in a worker.

Use::

    raise PairError(f"{name}: empty file (0 bytes); re-copy it or remove the pair")

decode.py and encodings.py raise it, pipeline.py turns it into a result the parent reports (one
error line, or a skipped entry with --skip-bad). It has its own module so that none of them
imports another only for it.
"""


class PairError(Exception):
    """A bad source pair: the reason says what is wrong with which file."""


class UnreadableImage(PairError):
    """The image of a pair cannot be decoded: for a dataset known to ship such files (Oxford-IIIT
    Pet), the pair is skipped and reported instead of failing the run."""
