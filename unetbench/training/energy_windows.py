"""Joules per window, read at the StepTimer's synchronised boundaries; the results' ``energy`` section.

    ledger = EnergyLedger(backend.energy_meter(), dist, monitor_id=backend.monitor_device_id())
    ledger.rest(cooldown_s, idle_s, sync)   # model built, before warm-up: cool down, then idle watts
    timer.hooks.append(ledger.hook)      # hook(phase, now): a window opens (phase) or closes (None)
    ...
    energy_section(ledger.ranks, timer.summary(world_size))   # -> results["energy"]

The timer calls the hook right after synchronising and reading its clock, at warm-up's end,
the traced steps' ends and every epoch's ends; the trainer marks evaluation the same way. A
window's joules are the meter's difference between its opening and closing reads; its seconds
are the timer's own clock readings, so watts and joules per sample describe exactly the window
the throughput figure describes. A window shorter than the meter's ``min_window_s`` takes the
power integral instead of the coarse counter, as does a window during which the counter
failed (the meter says so in ``note``). Each rank meters its own device; whenever a window
closes the ranks exchange their totals, so rank 0 writes every rank's and their sum.

Idle baseline: ``rest`` first waits ``cooldown_s`` with the device idle (hotter silicon leaks
more: a device still warm from an earlier job would inflate the figures), then reads the
meter over ``idle_s`` seconds of idleness: that power, times the steady window's seconds, is
what the devices would have drawn doing nothing; net J/sample subtracts it. It runs after the
model is built, before any warm-up; every rank rests at once, each reading its own device.
This module imports no torch.
"""

from __future__ import annotations

import json
import time

PHASES = ("warmup", "trace", "steady", "eval", "eval_warmup")   # every window the timer and trainer mark


def _empty() -> dict:
    return {"energy_j": 0.0, "seconds": 0.0, "windows": 0, "short_windows": 0}


class EnergyLedger:
    def __init__(self, meter, dist=None, monitor_id: int | None = None):
        self.meter = meter
        self.monitor_id = monitor_id             # the device's id in the monitor CSV (Backend.monitor_device_id)
        self.dist = dist
        self.rank = dist.rank if dist is not None else 0
        self.totals: dict[str, dict] = {}
        self.idle: dict | None = None            # {"idle_w", "idle_s", "cooldown_s"} once rest() measured
        self._open: tuple | None = None          # (phase, t, joules, fine joules, method)
        self.ranks: list[dict] = [self.state()]  # every rank's state, as of the last closed window

    def state(self) -> dict:
        m = self.meter
        return {"rank": self.rank, "source": m.source, "absent": m.absent, "resolution": m.resolution,
                "devices": list(m.devices), "windows": self.totals, "method": m.method,
                "sample_hz": m.sample_hz, "note": m.note, "idle": self.idle,
                "monitor_device": self.monitor_id}

    def rest(self, cooldown_s: float, idle_s: float, sync=None, clock=time.perf_counter, sleep=time.sleep) -> None:
        """Cool down, then measure the idle power over ``idle_s`` (only where a meter reads).
        ``sync`` (the trainer's synchronise-and-barrier, a collective: every rank calls it, metered
        or not) first: the device has finished building the model, and the ranks rest together."""
        if cooldown_s <= 0 and idle_s <= 0:
            return
        if sync is not None:
            sync()
        if cooldown_s > 0:   # also without a meter: the monitor's figures gain from it too
            sleep(cooldown_s)
        if idle_s <= 0 or self.meter.absent is not None:
            return
        t0, j0, f0, method = clock(), self.meter.read(), self.meter.fine(), self.meter.method
        sleep(idle_s)
        t1, j1, f1 = clock(), self.meter.read(), self.meter.fine()
        joules = self._joules(t1 - t0, j0, f0, method, j1, f1)
        self.idle = {"idle_w": joules / (t1 - t0) if joules is not None and t1 > t0 else None,
                     "idle_s": t1 - t0, "cooldown_s": cooldown_s}
        self.ranks = [self.state()]

    def restore(self, saved: list | None) -> None:
        """Continue the totals a checkpoint saved (every rank's; this rank takes its own)."""
        for entry in saved or []:
            if entry.get("rank") == self.rank and entry.get("source") == self.meter.source:
                self.totals = {phase: dict(v) for phase, v in entry["windows"].items()}
                self.idle = entry.get("idle")   # the earlier attempt's, until this one measures its own
        self.ranks = [self.state()]

    def hook(self, phase: str | None, now: float) -> None:
        if self.meter.absent is None:
            joules, fine = self.meter.read(), self.meter.fine()
            if self.meter.absent is not None:   # its counter failed just now, with no power to fall back on
                self._open = None
            else:
                if self._open is not None:
                    self._add(now, joules, fine)
                self._open = (phase, now, joules, fine, self.meter.method) if phase is not None else None
        if phase is None:
            self._exchange()

    def _joules(self, seconds: float, j0, f0, method: str, joules, fine) -> float | None:
        """A window's joules: the counter's difference; the power integral's where the window
        is shorter than the counter resolves or the counter failed while it was open."""
        integral = fine is not None and f0 is not None
        if joules is None or j0 is None or method != self.meter.method:
            return fine - f0 if integral else None
        if seconds < self.meter.min_window_s and integral:
            return fine - f0
        return joules - j0

    def _add(self, now: float, joules: float, fine: float | None) -> None:
        phase, t0, j0, f0, method = self._open
        seconds = now - t0
        window_j = self._joules(seconds, j0, f0, method, joules, fine)
        if window_j is None:
            return
        total = self.totals.setdefault(phase, _empty())
        short = method == self.meter.method and seconds < self.meter.min_window_s and fine is not None \
            and f0 is not None
        total["energy_j"] += window_j
        total["seconds"] += seconds
        total["windows"] += 1
        total["short_windows"] += int(short or method != self.meter.method)

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
               "method": "none", "sample_hz": None, "note": None, "idle_w": None, "idle_s": None,
               "cooldown_s": None, "energy_j": None, "avg_power_w": None, "j_per_sample": None,
               "net_j_per_sample": None, "samples_per_s_per_w": None,
               "monitor_devices": None, **{phase: None for phase in PHASES}, "per_rank": ranks}
    # The monitor CSV's rows of this run's devices (the report integrates only those): known
    # when every rank knows its own, metered or not.
    ids = [r.get("monitor_device") for r in ranks]
    if ranks and all(i is not None for i in ids):
        section["monitor_devices"] = sorted(set(ids))
    if not metered:
        section["absent"] = ranks[0].get("absent") if ranks else "no meter"
        return section
    sources = sorted({r["source"] for r in metered})
    methods = sorted({r.get("method") or "unknown" for r in metered})
    rates = [r["sample_hz"] for r in metered if r.get("sample_hz")]
    notes = sorted({r["note"] for r in metered if r.get("note")})
    section.update(source=" + ".join(sources), resolution=metered[0]["resolution"],
                   devices=[d for r in metered for d in r["devices"]], method=" + ".join(methods),
                   sample_hz=min(rates) if rates else None, note="; ".join(notes) or None)
    # The idle baseline: every metered device's idle power, summed (they idle side by side).
    idles = [r.get("idle") or {} for r in metered]
    if all(i.get("idle_w") is not None for i in idles):
        section.update(idle_w=sum(i["idle_w"] for i in idles), idle_s=min(i["idle_s"] for i in idles),
                       cooldown_s=idles[0].get("cooldown_s"))
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
        if section["idle_w"] is not None:
            # What the steady window drew above idling, per sample: the work's own energy.
            section["net_j_per_sample"] = (steady["energy_j"] - section["idle_w"] * steady["seconds"]) / samples
        # samples per second per watt: the same figure as samples per joule
        section["samples_per_s_per_w"] = samples / steady["energy_j"]
    return section
