"""Progress: a tqdm bar on a terminal, plain log lines in a batch log.

Use::

    with Progress(total=5000, what="pairs") as bar:
        bar.update(1)
"""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("unetbench.prepare")


class Progress:
    def __init__(self, total: int, what: str = "images", enabled: bool = True,
                 every_s: float = 15.0):
        self.total, self.what, self.done = total, what, 0
        self.start = self.last = time.perf_counter()
        self.every_s = every_s
        self.next_fraction = 0.1
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit=" " + what, file=sys.stderr, dynamic_ncols=True)
        self.enabled = enabled

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        if not self.enabled or self.total < 200:  # small runs: the summary line is enough
            return
        now = time.perf_counter()
        fraction = self.done / self.total
        if fraction >= self.next_fraction or now - self.last >= self.every_s:
            while self.next_fraction <= fraction:
                self.next_fraction += 0.1
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            log.info("progress: %d/%d %s (%.0f%%), %.1f %s/s", self.done, self.total, self.what,
                     100 * fraction, rate, self.what)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
