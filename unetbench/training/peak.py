"""The device's own ceiling: its dense matrix-product peak in the run's precision, bounded in time.

    peak = measure_peak(backend)                # {"tflops": 0.19, "dtype": "float32", "size": 1024, ...}
    peak = measure_peak(backend, budget_s=0.5)  # a smaller budget (the seconds it may take)
    section = run_peak(backend, dist, skip_reason=None)   # what a training run records (trainer.py)

Every training run measures it once per attempt, after the model is built and before warm-up
(``--no-peak`` skips it; the results then say why there is none), and the benchmark
(unetbench/training/bench.py) reads it from its end-to-end run. Achieved TFLOP/s over this
peak is the share of the chip's own ceiling the training reached, so chips of very different
size read on one scale (results.py: the ``peak`` section; the report's performance table).

Bounded by time, not by a fixed size: one 8192x8192 fp32 product takes seconds on a laptop CPU
and milliseconds on an H100, so a fixed size and count of products either never finishes or
is too short to time. Within ``budget_s`` seconds (the backend's ``peak_budget_s`` by default):

1. size: from 256, doubled while the next size's product (8x the work) would still take at
   most a tenth of the budget, up to 8192 (where GPUs reach their dense peak); each size runs
   once untimed (kernel choice, lazy-graph compilation), then the faster of two timed runs counts;
2. warm-up by time: blocks of products (each block about a tenth of the budget) until 40% of
   the budget has passed, at least one block: GPU clocks ramp up under load, and a lazy graph
   is compiled before the timed blocks repeat it;
3. timed blocks while the next one, forecast as long as the longest block so far, still fits
   in the budget, at least one: the best counts (utilisation is achieved / peak, so a peak
   measured low would overstate utilisation).

The budget is exceeded where the least work (five products of the smallest size) takes longer,
or by a last block slower than every one before it: ``within_budget`` says so. Clocks are read
after a synchronisation, on both sides of each timed block. Gaudi lazy mode runs only what is
still held when its graph is cut: each product is kept until its step boundary, so it is
computed, not dropped.
"""

from __future__ import annotations

import json
import math
import time
from typing import Callable

import torch

MIN_SIZE = 256
MAX_SIZE = 8192
SIZE_SHARE = 0.1      # the largest product may take this share of the budget
BLOCK_SHARE = 0.1     # one block of products: about this share of the budget
WARMUP_SHARE = 0.4    # continuous products until this share of the budget has passed

Product = Callable[[], None]


def peak_dtype(backend) -> torch.dtype:
    """The run's compute dtype: what its convolutions and matrix products run in."""
    return torch.bfloat16 if backend.precision == "bf16" else torch.float32


def tensor_product(backend, size: int, dtype: torch.dtype) -> Product:
    """One ``size`` x ``size`` matrix product on the device, as a call."""
    a = torch.randn(size, size, device=backend.device, dtype=dtype)
    b = torch.randn(size, size, device=backend.device, dtype=dtype)
    backend.step_boundary()  # the operands exist before the first product's graph
    held = []

    def product() -> None:
        held[:] = [a @ b]        # alive at the cut: executed, not dropped
        backend.step_boundary()
    return product


def measure_peak(backend, budget_s: float | None = None, *, clock=time.perf_counter,
                 product_for: Callable[[int], Product] | None = None,
                 min_size: int = MIN_SIZE, max_size: int = MAX_SIZE) -> dict:
    """Dense matrix-product TFLOP/s of ``backend``'s device in its profile's dtype, measured
    within ``budget_s`` seconds (see the module's docstring). ``product_for(size)``: a call
    running one product of that size (default: real tensors on the device); ``clock``: the
    seconds clock; both injectable so a test can play a device of any speed."""
    budget_s = backend.peak_budget_s if budget_s is None else budget_s
    dtype = peak_dtype(backend)
    product_for = product_for or (lambda size: tensor_product(backend, size, dtype))
    start = clock()

    def timed(product: Product, repeats: int) -> float:
        """Seconds per product over ``repeats`` of them, synchronised on both sides."""
        backend.synchronize()  # earlier queued work must not count in this block
        t0 = clock()
        for _ in range(repeats):
            product()
        backend.synchronize()  # the clock must see the work finish, not just its launch
        return (clock() - t0) / repeats

    # 1. The size: the largest doubling whose product fits its share of the budget.
    size = min_size
    while True:
        product = product_for(size)
        timed(product, 1)                  # untimed in effect: kernel choice, graph compilation
        seconds = min(timed(product, 1), timed(product, 1))   # one late wake-up stops no growth
        if size * 2 > max_size or 8 * seconds > SIZE_SHARE * budget_s:
            size_limit = "largest size" if size * 2 > max_size else "time budget"
            break
        size *= 2
    products = 3 * int(math.log2(size // min_size) + 1)

    # 2. Warm-up by time, then 3. timed blocks while they fit; the best counts.
    repeats = max(1, int(BLOCK_SHARE * budget_s / seconds)) if seconds > 0 else 1
    block_s = timed(product, repeats) * repeats   # the longest block so far: the next one's forecast
    warm_blocks = 1
    while clock() - start < WARMUP_SHARE * budget_s:
        block_s = max(block_s, timed(product, repeats) * repeats)
        warm_blocks += 1
    best, blocks = None, 0
    while blocks == 0 or clock() - start + block_s <= budget_s:
        per_product = timed(product, repeats)
        block_s = max(block_s, per_product * repeats)
        best = per_product if best is None else min(best, per_product)
        blocks += 1
    spent = clock() - start
    products += (warm_blocks + blocks) * repeats
    return {"tflops": 2 * size**3 / best / 1e12 if best > 0 else None, "dtype": str(dtype).replace("torch.", ""),
            "size": size, "size_limit": size_limit, "products_per_block": repeats, "warmup_blocks": warm_blocks,
            "timed_blocks": blocks, "products": products, "seconds": spent, "budget_s": budget_s,
            "within_budget": spent <= budget_s}


def run_peak(backend, dist, skip_reason: str | None = None, measure=measure_peak) -> dict:
    """A training run's peak: every rank measures its own device at the same time (as they will
    train: side by side, sharing the node's power and cooling); -> rank 0's measurement, with
    ``tflops`` the mean over the ranks and each rank's in ``per_rank_tflops``. With
    ``skip_reason``, nothing is measured and ``absent`` says why."""
    if skip_reason:
        return {"tflops": None, "absent": skip_reason}
    dist.barrier()   # the ranks start together, so each measures under the others' load
    own = measure(backend)
    backend.release_cached_memory()   # the operands' blocks stay out of training's memory figures
    ranks = [json.loads(text) for text in dist.gather_strings(json.dumps(own))]
    per_rank = [r["tflops"] for r in ranks]
    mean = sum(per_rank) / len(per_rank) if None not in per_rank else None
    return {**ranks[0], "tflops": mean, "per_rank_tflops": per_rank, "absent": None}


def describe(section: dict) -> str:
    """One log line for the measured peak (or why there is none)."""
    if section.get("tflops") is None:
        return f"matmul peak: not measured ({section.get('absent') or 'no result'})"
    ranks = len(section.get("per_rank_tflops") or [1])
    over = f", mean of {ranks} ranks" if ranks > 1 else ""
    return (f"matmul peak: {section['tflops']:.4g} TFLOP/s ({section['dtype']}, {section['size']}x{section['size']}"
            f"{over}; {section['seconds']:.2f} s of a {section['budget_s']:g} s budget)")
