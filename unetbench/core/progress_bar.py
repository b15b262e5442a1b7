"""Progress output: a tqdm bar on a terminal, plain lines in a batch log.

Training (a line every 50 steps and at the end, on stdout)::

    progress = Progress(total=len(loader), desc="epoch 1/20", log_every=50)
    progress.update(samples=16)
    progress.close()

Dataset preparation (a log line every 10% or 15 seconds, none for small runs)::

    with Progress(5000, "images", stream=sys.stderr, unit=" images", every_fraction=0.1, every_s=15,
                  min_total=200, line=PREPARE_LINE, log=logging.getLogger("unetbench.data.prepare")) as bar:
        bar.update()

The bar goes to ``stream`` when it is a terminal; otherwise lines are written there, or to
``log`` at INFO when given (so that prepare's --quiet and logging setup apply to them).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Optional

# Fields: desc, steps, total, percent, rate (samples per second since the start).
STEP_LINE = "{desc}: step {steps}/{total}, ~{rate:.1f} samples/s (host clock)"
PREPARE_LINE = "progress: {steps}/{total} {desc} ({percent:.0f}%), {rate:.1f} {desc}/s"


class Progress:
    def __init__(self, total: int, desc: str, log_every: int = 0, stream=None, enabled: bool = True, *,
                 unit: str = "step", every_fraction: float = 0.0, every_s: float = 0.0, min_total: int = 0,
                 line: str = STEP_LINE, log: Optional[logging.Logger] = None):
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.total = total
        self.desc = desc
        self.log_every = log_every
        self.every_fraction = every_fraction
        self.every_s = every_s
        self.line = line
        self.log = log
        self.steps = 0
        self.samples = 0
        self.t0 = self.last = time.perf_counter()
        self.next_fraction = every_fraction
        # A run shorter than min_total gets no lines: its caller's summary line says enough.
        self.lines = enabled and total >= min_total
        self.bar = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, file=self.stream)

    def update(self, samples: int = 1) -> None:
        """One step done, holding ``samples`` samples (training: a batch; prepare: one image)."""
        self.steps += 1
        self.samples += samples
        if self.bar is not None:
            self.bar.update(1)
        elif self.lines and self._due():
            self._write()

    def _due(self) -> bool:
        fraction = self.steps / self.total if self.total else 1.0
        due = (self.steps == self.total
               or (self.log_every > 0 and self.steps % self.log_every == 0)
               or (self.every_fraction > 0 and fraction >= self.next_fraction)
               or (self.every_s > 0 and time.perf_counter() - self.last >= self.every_s))
        if due and self.every_fraction > 0:
            while self.next_fraction <= fraction:   # one line per crossed mark, even after a jump
                self.next_fraction += self.every_fraction
        return due

    def _write(self) -> None:
        now = time.perf_counter()
        self.last = now
        # Host-side rate (no device sync): indicative only; training results hold the
        # synchronised figures.
        elapsed = now - self.t0
        text = self.line.format(desc=self.desc, steps=self.steps, total=self.total,
                                percent=100 * self.steps / self.total if self.total else 100.0,
                                rate=self.samples / elapsed if elapsed > 0 else 0.0)
        if self.log is not None:
            self.log.info("%s", text)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
