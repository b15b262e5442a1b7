"""The device's matmul peak (unetbench/training/peak.py): bounded by time on a device of any
speed, measured by every training run, recorded with the share of it the run reached.

The bound is checked on STAND-INS of devices of any speed (a fake clock that advances by each
product's simulated duration), never by comparing real seconds with a constant; the real CPU
measurement and the training runs check structure and consistency only.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from fakes import FakeClock
from helpers import SMALL_SETTINGS

from unetbench.core.settings import Settings, parse_settings
from unetbench.devices.cpu.backend import CpuBackend
from unetbench.report.validate import load_schema
from unetbench.training import peak
from unetbench.training.trainer import Trainer

BUDGET_S = 2.0


class MatmulDeviceStandIn:
    """A device that multiplies at ``rate`` FLOP/s on a fake clock (``ramp``: how many times
    slower its first products at a size run, as GPU clocks ramp up, for ``ramp_s`` seconds);
    records its synchronisations and products in order."""

    precision = "fp32"
    peak_budget_s = BUDGET_S

    def __init__(self, rate: float, ramp: float = 1.0, ramp_s: float = 0.0):
        self.rate, self.ramp, self.ramp_s = rate, ramp, ramp_s
        self.clock = FakeClock()
        self.events: list[tuple] = []
        self.released = 0

    def seconds(self, size: int) -> float:
        return 2 * size**3 / self.rate

    def synchronize(self) -> None:
        self.events.append(("sync", self.clock()))

    def product_for(self, size: int):
        def product():
            slow = self.ramp if self.clock() < self.ramp_s else 1.0
            self.events.append(("product", size, self.clock()))
            self.clock.advance(self.seconds(size) * slow)
        return product

    def release_cached_memory(self) -> None:
        self.released += 1

    def measure(self, budget_s: float | None = None) -> dict:
        return peak.measure_peak(self, budget_s, clock=self.clock, product_for=self.product_for)


def _blocks(events: list[tuple]) -> list[list[tuple]]:
    """The products between each pair of synchronisations; fails if a product runs outside one."""
    blocks, inside = [], None
    for event in events:
        if event[0] == "sync":
            if inside is None:
                inside = []
            else:
                blocks.append(inside)
                inside = None
        else:
            assert inside is not None, "a product ran outside a synchronised block"
            inside.append(event)
    assert inside is None, "a block was opened and never closed by a synchronisation"
    return blocks


# An H100-like device (bf16 ~800 TFLOP/s), a CPU of two cores (~0.1 TFLOP/s), a slow one and
# one so slow that a single product of the smallest size takes longer than the whole budget.
@pytest.mark.parametrize("rate", [8e14, 1e11, 1e8, 1e7], ids=["gpu", "cpu", "slow", "slower-than-the-budget"])
def test_the_peak_is_bounded_by_its_time_budget_on_a_device_of_any_speed_standin(rate):
    device = MatmulDeviceStandIn(rate)
    result = device.measure()
    products = [e for e in device.events if e[0] == "product"]
    size, t = result["size"], device.seconds(result["size"])

    assert result["products"] == len(products)
    assert result["seconds"] == pytest.approx(device.clock())
    least_work = 5 * device.seconds(peak.MIN_SIZE)   # 3 in the size search, a warm-up block, a timed one
    if least_work <= BUDGET_S:
        assert result["within_budget"] and device.clock() <= BUDGET_S
    else:
        assert not result["within_budget"] and len(products) == 5
    # The size: the largest that fits a tenth of the budget, capped, never below the smallest.
    assert peak.MIN_SIZE <= size <= peak.MAX_SIZE and size & (size - 1) == 0
    assert size == peak.MIN_SIZE or t <= peak.SIZE_SHARE * BUDGET_S
    assert size == peak.MAX_SIZE or device.seconds(2 * size) > peak.SIZE_SHARE * BUDGET_S
    assert result["size_limit"] == ("largest size" if size == peak.MAX_SIZE else "time budget")
    # Timed blocks are synchronised on both sides and repeat the final size's product.
    blocks = _blocks(device.events)
    timed = blocks[-result["timed_blocks"]:]
    assert result["timed_blocks"] >= 1 and all(len(b) == result["products_per_block"] for b in timed)
    assert all(e[1] == size for b in timed for e in b)
    assert result["tflops"] == pytest.approx(rate / 1e12)
    assert result["dtype"] == "float32" and result["budget_s"] == BUDGET_S


def test_the_peak_warms_up_by_time_before_its_timed_blocks_and_keeps_the_best_standin():
    """A GPU whose products run 3x slower for its first 0.6 s (clocks ramping up under load):
    the timed blocks start after 40% of the budget, so the ramp is not the peak."""
    device = MatmulDeviceStandIn(8e14, ramp=3.0, ramp_s=0.6)
    result = device.measure()
    blocks = _blocks(device.events)
    first_timed = blocks[-result["timed_blocks"]][0][2]
    assert first_timed >= peak.WARMUP_SHARE * BUDGET_S
    assert result["warmup_blocks"] >= 1
    assert result["tflops"] == pytest.approx(8e14 / 1e12)


def test_the_peak_on_the_real_cpu_has_the_runs_dtype_and_a_size_chosen_to_fit():
    backend = CpuBackend("parity")
    result = peak.measure_peak(backend, budget_s=0.2)
    assert result["tflops"] > 0 and result["dtype"] == "float32"
    assert peak.MIN_SIZE <= result["size"] <= peak.MAX_SIZE and result["timed_blocks"] >= 1
    backend.precision = "bf16"   # a profile computing in bf16 multiplies in bf16
    assert peak.measure_peak(backend, budget_s=0.05, max_size=peak.MIN_SIZE)["dtype"] == "bfloat16"


class TwoRanksStandIn:
    """What run_peak asks of the process group, for rank 0 of two: a barrier and a gather."""

    def __init__(self, other_rank: dict):
        self.other_rank = other_rank
        self.calls: list[str] = []

    def barrier(self) -> None:
        self.calls.append("barrier")

    def gather_strings(self, text: str) -> list[str]:
        self.calls.append("gather")
        return [text, json.dumps(self.other_rank)]


def test_each_rank_measures_its_own_device_together_and_the_run_records_their_mean_standin():
    device = MatmulDeviceStandIn(4e14)
    dist = TwoRanksStandIn({**MatmulDeviceStandIn(2e14).measure(), "tflops": 200.0})
    section = peak.run_peak(device, dist, measure=lambda backend: device.measure())
    assert dist.calls == ["barrier", "gather"], "the ranks start together, then exchange their peaks"
    assert section["per_rank_tflops"] == [pytest.approx(400.0), 200.0]
    assert section["tflops"] == pytest.approx(300.0) and section["absent"] is None
    assert device.released == 1, "the operands' cached blocks go back before training"
    skipped = peak.run_peak(device, dist, "--no-peak was given")
    assert skipped == {"tflops": None, "absent": "--no-peak was given"} and dist.calls == ["barrier", "gather"]


def _train(tiny_splits, tmp_path, **settings) -> dict:
    flags = {**SMALL_SETTINGS, "epochs": 1, "max_steps_per_epoch": 3, "overlay_images": 0, **settings}
    backend = CpuBackend("parity")
    backend.peak_budget_s = 0.2   # the suite's CPU time; the bound itself is tested above
    trainer = Trainer(Settings(splits=str(tiny_splits), out=str(tmp_path), **flags), backend)
    try:
        assert trainer.run() == 0
    finally:
        trainer.release()
    results = json.loads((tmp_path / "results_cpu.json").read_text())
    jsonschema.validate(results, load_schema())
    return results


def test_a_training_run_records_its_peak_and_the_share_of_it_it_reached(tiny_splits, tmp_path):
    results = _train(tiny_splits, tmp_path, no_peak=False)
    p, t = results["peak"], results["timing"]
    assert p["tflops"] > 0 and p["absent"] is None and p["dtype"] == "float32"
    assert p["per_rank_tflops"] == [p["tflops"]] and p["budget_s"] == 0.2 and p["size"] >= peak.MIN_SIZE
    per_device = t["steady_samples_per_s"] / results["distributed"]["world_size"]
    assert p["achieved_tflops"] == pytest.approx(per_device * results["model"]["gflop_per_sample"] / 1e3)
    assert p["share"] == pytest.approx(p["achieved_tflops"] / p["tflops"])


def test_no_peak_records_why_there_is_none(tiny_splits, tmp_path):
    settings, _ = parse_settings(["--no-peak"])
    assert settings.no_peak and not Settings().no_peak
    results = _train(tiny_splits, tmp_path, no_peak=True)
    p = results["peak"]
    assert p["tflops"] is None and p["share"] is None and "--no-peak" in p["absent"]
    assert p["achieved_tflops"] > 0, "the achieved TFLOP/s needs no peak"
