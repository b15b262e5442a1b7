"""The step timer with a fake clock: warm-up excluded, every boundary synchronised."""

import pytest
from fakes import FakeClock

from unetbench.devices.events import HostEvent
from unetbench.training.timing import StepTimer, percentiles


def _run_epoch(timer, clock, step_seconds, batch=4, wait=0.0):
    timer.epoch_start()
    for seconds in step_seconds:
        timer.step_start()
        clock.advance(wait)
        timer.add_data_wait(wait)
        clock.advance(seconds - wait)
        timer.step_end(batch)
    return timer.epoch_end()


def test_warmup_is_excluded_from_steady_state():
    clock = FakeClock()
    timer = StepTimer(clock.sync, clock.event, warmup_steps=2, clock=clock)
    # two slow compile steps, then six steps of 0.5 s
    _run_epoch(timer, clock, [10.0, 5.0] + [0.5] * 6)
    s = timer.summary()
    assert s["warmup_steps"] == 2 and s["warmup_s"] == pytest.approx(15.0)
    assert s["measured_steps"] == 6 and s["measured_samples"] == 24
    assert s["measured_s"] == pytest.approx(3.0)
    assert s["steady_samples_per_s"] == pytest.approx(8.0)
    assert s["step_ms"]["p50"] == pytest.approx(500.0) and s["step_ms"]["max"] == pytest.approx(500.0)


def test_warmup_spanning_epochs_and_data_wait():
    clock = FakeClock()
    timer = StepTimer(clock.sync, clock.event, warmup_steps=3, clock=clock)
    _run_epoch(timer, clock, [4.0, 4.0])                        # whole epoch in warm-up
    _run_epoch(timer, clock, [4.0, 1.0, 1.0, 1.0], wait=0.25)   # one more warm-up step
    s = timer.summary()
    assert s["warmup_steps"] == 3 and s["warmup_s"] == pytest.approx(12.0)
    assert s["measured_steps"] == 3 and s["measured_s"] == pytest.approx(3.0)
    assert s["data_wait_s"] == pytest.approx(0.75)            # warm-up waits not counted
    assert s["data_wait_fraction"] == pytest.approx(0.25)


def test_clock_read_only_after_synchronising():
    clock = FakeClock()
    timer = StepTimer(clock.sync, clock.event, warmup_steps=1, clock=clock)
    _run_epoch(timer, clock, [2.0, 1.0, 1.0])
    # synchronised at epoch start, at the end of warm-up (t=2) and at epoch end (t=4)
    assert 0.0 in clock.syncs and 2.0 in clock.syncs and 4.0 in clock.syncs


def test_global_samples_scale_with_world_size():
    clock = FakeClock()
    timer = StepTimer(clock.sync, clock.event, warmup_steps=0, clock=clock)
    _run_epoch(timer, clock, [1.0, 1.0])
    assert timer.summary(samples_scale=4)["steady_samples_per_s"] == pytest.approx(16.0)


def test_percentiles_of_nothing_are_null():
    assert percentiles([])["p50"] is None


def test_last_step_excludes_the_wait_at_the_epoch_end():
    """epoch_end synchronises and, with several ranks, waits at a barrier for the slowest rank;
    that wait belongs to no step (it was added to the last step of every epoch)."""
    clock = FakeClock()

    def slow_barrier():
        clock.sync()
        clock.advance(5.0)  # the other rank arrives 5 s later

    timer = StepTimer(slow_barrier, clock.event, warmup_steps=0, clock=clock)
    _run_epoch(timer, clock, [0.5] * 4)
    s = timer.summary()
    assert s["step_ms"]["max"] == pytest.approx(500.0) and s["step_ms"]["p99"] == pytest.approx(500.0)
    assert s["measured_s"] == pytest.approx(2.0 + 5.0)  # the window itself still ends after the barrier


def test_step_samples_hold_at_most_the_limit():
    from unetbench.training.timing import STEP_SAMPLE_LIMIT, TimingTotals
    for count in (STEP_SAMPLE_LIMIT - 1, STEP_SAMPLE_LIMIT, STEP_SAMPLE_LIMIT + 1, 2 * STEP_SAMPLE_LIMIT - 1, 10_007):
        timer = StepTimer(lambda: None, HostEvent, warmup_steps=0,
                          totals=TimingTotals(step_ms=[float(i) for i in range(count)]))
        samples = timer.summary()["step_samples_ms"]
        assert len(samples) == min(count, STEP_SAMPLE_LIMIT), count
        assert samples[0] == 0.0 and samples[-1] == count - 1 and samples == sorted(set(samples))


def test_hooks_run_outside_every_timed_window_and_the_ledger_meters_its_own_reads():
    """A slow hook (an hl-smi call per energy read: 2 s on the fake clock) at every boundary:
    no training window, nor the epoch's seconds, contains its time. The energy ledger reads
    its counter (100 W of fake power, stamped when the read completes) right after a closing
    clock reading and right before an opening one: its seconds span its own reads, so its
    average power is exact."""
    from unetbench.training.energy_windows import EnergyLedger

    clock = FakeClock()
    timer = StepTimer(clock.sync, clock.event, warmup_steps=1, clock=clock)

    class SlowMeter:
        source, absent, resolution, devices, min_window_s = "stand-in", None, "1 J", [], 0.0
        method, sample_hz, note = "counter", None, None

        def read(self):
            clock.advance(2.0)            # the read takes 2 s
            return 100.0 * clock()        # joules so far at 100 W

        def fine(self):
            return None

    ledger = EnergyLedger(SlowMeter())
    timer.hooks.append(ledger.hook)
    epoch_s = _run_epoch(timer, clock, [3.0] + [1.0] * 4)
    s = timer.summary()
    assert s["warmup_s"] == pytest.approx(3.0)
    assert s["measured_s"] == pytest.approx(4.0) and s["steady_samples_per_s"] == pytest.approx(4.0)
    assert epoch_s == pytest.approx(7.0)   # the hooks' 8 s (four reads) lie in no window
    for phase in ("warmup", "steady"):
        window = ledger.totals[phase]
        assert window["energy_j"] / window["seconds"] == pytest.approx(100.0)
    assert ledger.totals["steady"]["seconds"] == pytest.approx(4.0 + 2.0)   # the window and one read
