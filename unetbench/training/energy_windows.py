"""Joules per window, read at the StepTimer's synchronised boundaries; the results' ``energy`` section.

    ledger = EnergyLedger(backend.energy_meter(), dist)
    timer.hooks.append(ledger.hook)      # hook(phase, now): a window opens (phase) or closes (None)
    ...
    energy_section(ledger.ranks, timer.summary(world_size))   # -> results["energy"]

The timer calls the hook right after synchronising and reading its clock, at warm-up's end,
the traced steps' ends and every epoch's ends; the trainer marks evaluation the same way. A
window's joules are the meter's difference between its opening and closing reads; its seconds
are the timer's own clock readings, so watts and joules per sample describe exactly the window
the throughput figure describes. A window shorter than the meter's ``min_window_s`` takes the
power integral instead of the coarse counter. Each rank meters its own device; whenever a
window closes the ranks exchange their totals, so rank 0 writes every rank's and their sum.
This module imports no torch.
"""

from __future__ import annotations

import json

PHASES = ("warmup", "trace", "steady", "eval", "eval_warmup")   # every window the timer and trainer mark


def _empty() -> dict:
    return {"energy_j": 0.0, "seconds": 0.0, "windows": 0, "short_windows": 0}


class EnergyLedger:
    def __init__(self, meter, dist=None):
        self.meter = meter
        self.dist = dist
        self.rank = dist.rank if dist is not None else 0
        self.totals: dict[str, dict] = {}
        self._open: tuple | None = None          # (phase, t, joules, fine joules)
        self.ranks: list[dict] = [self.state()]  # every rank's state, as of the last closed window

    def state(self) -> dict:
        m = self.meter
        return {"rank": self.rank, "source": m.source, "absent": m.absent, "resolution": m.resolution,
                "devices": list(m.devices), "windows": self.totals}

    def restore(self, saved: list | None) -> None:
        """Continue the totals a checkpoint saved (every rank's; this rank takes its own)."""
        for entry in saved or []:
            if entry.get("rank") == self.rank and entry.get("source") == self.meter.source:
                self.totals = {phase: dict(v) for phase, v in entry["windows"].items()}
        self.ranks = [self.state()]

    def hook(self, phase: str | None, now: float) -> None:
        if self.meter.absent is None:
            joules, fine = self.meter.read(), self.meter.fine()
            if self._open is not None:
                self._add(now, joules, fine)
            self._open = (phase, now, joules, fine) if phase is not None else None
        if phase is None:
            self._exchange()

    def _add(self, now: float, joules: float, fine: float | None) -> None:
        phase, t0, j0, f0 = self._open
        seconds = now - t0
        total = self.totals.setdefault(phase, _empty())
        short = seconds < self.meter.min_window_s and fine is not None and f0 is not None
        total["energy_j"] += (fine - f0) if short else (joules - j0)
        total["seconds"] += seconds
        total["windows"] += 1
        total["short_windows"] += int(short)

    def _exchange(self) -> None:
        # A collective: every rank reaches each closing boundary (epoch ends, evaluation ends).
        if self.dist is None or self.dist.world_size == 1:
            self.ranks = [self.state()]
            return
        self.ranks = [json.loads(text) for text in self.dist.gather_strings(json.dumps(self.state()))]

    def close(self) -> None:
        self.meter.close()


def _window(joules: float | None, seconds: float | None) -> dict:
    watts = joules / seconds if joules is not None and seconds else None
    return {"energy_j": joules, "seconds": seconds, "avg_power_w": watts}


def energy_section(ranks: list[dict], timing: dict) -> dict:
    """Windows summed over the ranks that metered (their devices ran side by side: joules add,
    seconds are the common window's), joules per steady sample and samples per second per watt."""
    metered = [r for r in ranks if not r.get("absent")]
    section = {"source": None, "absent": None, "resolution": None, "devices": [], "ranks_metered": len(metered),
               "energy_j": None, "avg_power_w": None, "j_per_sample": None, "samples_per_s_per_w": None,
               **{phase: None for phase in PHASES}, "per_rank": ranks}
    if not metered:
        section["absent"] = ranks[0].get("absent") if ranks else "no meter"
        return section
    sources = sorted({r["source"] for r in metered})
    section.update(source=" + ".join(sources), resolution=metered[0]["resolution"],
                   devices=[d for r in metered for d in r["devices"]])
    total_j = total_s = 0.0
    for phase in PHASES:
        seen = [r["windows"][phase] for r in metered if phase in r["windows"]]
        if not seen:
            continue
        joules = sum(w["energy_j"] for w in seen)
        seconds = max(w["seconds"] for w in seen)
        section[phase] = {**_window(joules, seconds), "windows": seen[0]["windows"],
                          "short_windows": max(w["short_windows"] for w in seen)}
        total_j += joules
        total_s += seconds
    # The whole metered time (training and evaluation windows, warm-up included), as the
    # monitor-based figure covers: the report reads energy_j and avg_power_w from here.
    section.update(energy_j=total_j, avg_power_w=total_j / total_s if total_s else None)
    steady = section["steady"]
    samples = timing.get("measured_samples")
    if steady and steady["energy_j"] and samples:
        section["j_per_sample"] = steady["energy_j"] / samples
        # samples per second per watt: the same figure as samples per joule
        section["samples_per_s_per_w"] = samples / steady["energy_j"]
    return section
