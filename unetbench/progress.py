"""Progress output: a tqdm bar on a terminal, plain lines every N steps in a batch log.

    progress = Progress(total=len(loader), desc="epoch 1/20", log_every=50)
    progress.update(samples=16)
    progress.close()
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, desc: str, log_every: int, stream=None, enabled: bool = True):
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.total = total
        self.desc = desc
        self.log_every = log_every
        self.steps = 0
        self.samples = 0
        self.t0 = time.perf_counter()
        self.bar = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, file=self.stream)

    def update(self, samples: int) -> None:
        self.steps += 1
        self.samples += samples
        if self.bar is not None:
            self.bar.update(1)
        elif self.enabled and (self.steps % self.log_every == 0 or self.steps == self.total):
            # Host-side rate (no device sync): indicative only; the results hold the
            # synchronised figures.
            elapsed = time.perf_counter() - self.t0
            rate = self.samples / elapsed if elapsed > 0 else 0.0
            print(f"{self.desc}: step {self.steps}/{self.total}, ~{rate:.1f} samples/s (host clock)",
                  file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
