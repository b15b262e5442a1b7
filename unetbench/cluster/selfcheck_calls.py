"""The on-device self-check's checks: every device call the benchmark makes, in order, in one process, in seconds.

    python3 -m unetbench.cluster.selfcheck --backend cuda     # the command (sets the device's environment first)
    ./verify_enhanced.sh --on-device --backends cuda          # the same as a short job per backend
    code = run_checks("cpu", "parity", DistContext.single())  # from Python (tests): 0 passed, 1 failed

Each check is one named call of the Backend interface (devices/base.py), in the order a
training makes them: the device and its mode, synchronize, events, memory statistics, the
process group (several ranks), the compiled training unit, one training step and one
evaluation step on synthetic tensors (no dataset: a tiny model at a tiny crop), the energy
counter and the device's monitoring tool. One line each: ``[ OK ] name: detail``, ``[WARN]``
(the run would work, with less: no energy meter, no monitor tool), ``[FAIL] name: call: error``
(with the fix where one is known) and ``[SKIP]`` for the checks that need a failed one. The
last line names the first failing call. Nothing here is a benchmark figure: the seconds shown
include compilation and a busy node's noise.

Several ranks (srun or torchrun launched one process per device): every rank runs the checks,
rank 0 prints its whole list and the others their failures only, prefixed with their rank.
"""

from __future__ import annotations

import math
import platform
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from ..core.errors import UserError
from ..core.registry import BACKENDS, DEFAULT_MODEL, MODELS, resolve
from ..devices.base import make_backend
from ..training.distributed import DistContext
from ..training.metrics import ConfusionMatrix
from ..training.units import eval_unit, train_unit
from .monitor import normalise
from .selfcheck_verdict import failed, passed

# A model and batch small enough for seconds on a CPU, large enough to run every layer.
WIDTH, BATCH, CROP, CLASSES = 8, 2, (32, 32), 4
MONITOR_WAIT_S = 4          # the tool's first sample comes within its interval (1 s); slack for a slow start
ENERGY_WORK_S = 0.3         # device work between the two counter reads


class CallFailed(Exception):
    """A call of a check failed: ``call`` names it, ``fix`` says what to do where known."""

    def __init__(self, call: str, error: BaseException | str, fix: str = ""):
        text = error if isinstance(error, str) else (
            str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}")
        super().__init__(f"{call}: {text}" + (f" ({fix})" if fix else ""))
        self.call = call


def call(label: str, fn: Callable, fix: str = ""):
    """``fn()``, any exception turned into CallFailed naming ``label`` (the call as the user reads it)."""
    try:
        return fn()
    except CallFailed:
        raise
    except Exception as err:  # whatever a device library raises: reported, never a traceback
        raise CallFailed(label, err, "" if isinstance(err, UserError) else fix) from err


class Warned(str):
    """A check's detail that is a warning: the run works, with less (no meter, no monitor)."""


@dataclass
class Check:
    name: str
    run: Callable[[], str]
    needs: tuple = ()


class Checklist:
    """Runs checks in order and prints one line each; remembers the first failure."""

    def __init__(self, dist: DistContext, out: Callable[[str], None] = print):
        self.dist = dist
        self.out = out
        self.state: dict[str, str] = {}
        self.first_failure: Optional[str] = None

    def say(self, mark: str, name: str, detail: str) -> None:
        if self.dist.world_size == 1:
            self.out(f"[{mark}] {name}: {detail}")
        elif self.dist.is_main or mark == "FAIL":   # other ranks: their failures only
            self.out(f"[{mark}] rank {self.dist.rank}/{self.dist.world_size} {name}: {detail}")

    def run(self, check: Check) -> None:
        missing = [n for n in check.needs if self.state.get(n) not in ("OK", "WARN")]
        if missing:
            self.state[check.name] = "SKIP"
            self.say("SKIP", check.name, f"needs {', '.join(missing)}")
            return
        try:
            detail = check.run()
        except CallFailed as err:
            self.state[check.name] = "FAIL"
            self.first_failure = self.first_failure or f"{check.name}: {err}"
            self.say("FAIL", check.name, str(err))
            return
        mark = "WARN" if isinstance(detail, Warned) else " OK "
        self.state[check.name] = mark.strip()
        self.say(mark, check.name, detail)


class SelfCheck:
    """The checks of one backend in one process; state passes from one check to the next."""

    def __init__(self, backend_name: str, profile: str, dist: DistContext):
        self.name = backend_name
        self.spec = BACKENDS[backend_name]
        self.profile = profile
        self.dist = dist
        self.backend = None
        self.model: Optional[nn.Module] = None
        self.train_unit: Optional[nn.Module] = None

    def checks(self) -> list[Check]:
        group = ("process group",) if self.dist.world_size > 1 else ()
        return [
            Check("software", self.software),
            Check("device", self.device),
            Check("environment", self.environment, ("device",)),
            Check("synchronize", self.synchronize, ("device",)),
            Check("events", self.events, ("synchronize",)),
            Check("memory", self.memory, ("synchronize",)),
            *([Check("process group", self.process_group, ("synchronize",))] if group else []),
            Check("compile", self.compile, ("synchronize", *group)),
            Check("training step", self.training_step, ("compile",)),
            Check("evaluation step", self.evaluation_step, ("synchronize",)),
            Check("energy", self.energy, ("synchronize",)),
            Check("monitor", self.monitor),
        ]

    # -- the checks: each returns its detail line or raises CallFailed -------------------------
    def software(self) -> str:
        parts = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
        if self.spec.software is not None:
            parts.append(call("the device software's version", self.spec.software) or "device software unknown")
        tool = self.spec.tool
        if tool is not None:
            found = shutil.which(tool.name) is not None
            parts.append(f"driver {(tool.driver_version() if found else None) or 'unknown'}"
                         + ("" if found else f" ({tool.name} not found)"))
        return ", ".join(parts)

    def device(self) -> str:
        self.backend = call(f"make_backend({self.name!r}, {self.profile!r})",
                            lambda: make_backend(self.name, self.profile, self.dist.local_rank))
        mode = self.backend.math_mode()
        flags = [mode["precision"]] + [k for k in ("channels_last", "compiled", "fused_optimizer") if mode.get(k)]
        settings = self.backend.device_settings()
        return (f"{self.backend.device}, profile {self.profile} ({', '.join(flags)})"
                + (f", {', '.join(f'{k}={v}' for k, v in settings.items())}" if settings else ""))

    def environment(self) -> str:
        env = call("backend.environment()", self.backend.environment)
        return ", ".join(f"{k} {v}" for k, v in env.items() if v not in (None, ""))

    def synchronize(self) -> str:
        x = torch.randn(256, 256, device=self.backend.device)
        y = x @ x
        t0 = time.perf_counter()
        call("backend.synchronize()", self.backend.synchronize)
        # The value read back after the wait must be the finished product, not garbage.
        value = call("reading a device tensor", lambda: float(y.abs().sum()))
        if not math.isfinite(value):
            raise CallFailed("backend.synchronize()", f"a 256x256 matmul read back as {value}")
        return f"a queued matmul finished and read back ({(time.perf_counter() - t0) * 1e3:.1f} ms)"

    def events(self) -> str:
        start, end = call("backend.new_event()", lambda: (self.backend.new_event(), self.backend.new_event()))
        x = torch.randn(512, 512, device=self.backend.device)
        call("event.record()", start.record)
        for _ in range(4):
            x = torch.tanh(x @ x)
        call("event.record()", end.record)
        # Events are read after a synchronisation, as the step timer reads them once per epoch.
        call("backend.synchronize()", self.backend.synchronize)
        ms = call("event.elapsed_ms()", lambda: start.elapsed_ms(end))
        if not (math.isfinite(ms) and ms >= 0):
            raise CallFailed("event.elapsed_ms()", f"4 matmuls timed as {ms} ms")
        return f"{type(start).__name__}: 4 matmuls timed {ms:.2f} ms"

    def memory(self) -> str:
        call("backend.reset_peak_memory()", self.backend.reset_peak_memory)
        keep = torch.empty(4 << 20, dtype=torch.uint8, device=self.backend.device)  # 4 MiB held while read
        stats = call("backend.memory_bytes()", self.backend.memory_bytes)
        missing = [k for k in ("allocated", "reserved", "peak_allocated", "peak_reserved", "source") if k not in stats]
        if missing:
            raise CallFailed("backend.memory_bytes()", f"no {', '.join(missing)} in {sorted(stats)}")
        del keep

        def mib(key):
            return "unknown" if stats[key] is None else f"{stats[key] / 2**20:.1f} MiB"
        return f"allocated {mib('allocated')}, peak {mib('peak_allocated')} ({stats['source']})"

    def process_group(self) -> str:
        call("backend.init_distributed()", lambda: self.backend.init_distributed(self.dist))
        total = torch.ones(1, device=self.backend.device)
        call("all_reduce", lambda: self.dist.all_reduce_sum(total))
        call("backend.synchronize()", self.backend.synchronize)
        if int(total.item()) != self.dist.world_size:
            raise CallFailed("all_reduce", f"the sum of one per rank is {total.item()}, not {self.dist.world_size}")
        call("any_rank (host group)", lambda: self.dist.any_rank(False))
        return (f"{self.dist.comm_backend}: {self.dist.world_size} ranks via {self.dist.launcher}, "
                "all-reduce and host agreement answered")

    def _new_model(self) -> nn.Module:
        torch.manual_seed(0)
        model = resolve(MODELS[DEFAULT_MODEL].builder)(3, CLASSES, WIDTH)
        return call("backend.prepare_model()", lambda: self.backend.prepare_model(model))

    def compile(self) -> str:
        self.model = self._new_model()
        # Built by the trainer's own builder (training/units.py): the device's wrapper, DDP with
        # several ranks, then the compiler.
        self.train_unit = call("train_unit() (before_ddp, DDP, compile_model)",
                               lambda: train_unit(self.model, self.backend, self.dist, CLASSES, None))
        return ("torch.compile wrapper ready: it compiles in the first step" if self.backend.compiled
                else f"no compilation in the {self.profile} profile")

    def _batch(self):
        device = self.backend.device
        x = torch.randn(BATCH, 3, *CROP, device=device).contiguous(memory_format=self.backend.memory_format)
        y = torch.randint(0, CLASSES, (BATCH, *CROP), device=device)
        return x, y

    def training_step(self) -> str:
        backend, unit = self.backend, self.train_unit
        optimizer = call("backend.make_optimizer()", lambda: backend.make_optimizer(self.model.parameters(), 1e-3))
        x, y = self._batch()
        cm = ConfusionMatrix(CLASSES, backend.device)
        fix = ("the compiler runs here: --profile parity tells a compiler problem from a device one"
               if backend.compiled else "")
        t0 = time.perf_counter()

        def step():
            # As Trainer.train_step: forward (loss and confusion counts) under autocast, the
            # counts added on the device, backward, update, a graph cut after each (lazy Gaudi).
            unit.train()
            with backend.autocast():
                loss, _, counts = unit(x, y)
            cm.add_counts(counts, y.numel())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            backend.step_boundary()
            optimizer.step()
            backend.step_boundary()
            return loss
        loss = call("training step (forward, backward, optimizer step)", step, fix)
        call("backend.synchronize()", backend.synchronize)
        value = float(loss.detach().float())
        if not math.isfinite(value):
            raise CallFailed("training step", f"the loss is {value}")
        counted = int(call("ConfusionMatrix.total()", cm.total).sum())
        return (f"loss {value:.3f}, {counted} pixels counted on the device, {time.perf_counter() - t0:.1f} s "
                f"{'with compilation' if backend.compiled else ''}".rstrip())

    def evaluation_step(self) -> str:
        backend = self.backend
        model = self.model or self._new_model()
        unit = call("eval_unit() (compile_model)", lambda: eval_unit(model, backend, None))
        x, y = self._batch()

        @torch.no_grad()
        def step():
            unit.eval()
            with backend.autocast():
                loss, prediction = unit(x, y)
            backend.step_boundary()
            return loss, prediction
        loss, prediction = call("evaluation step", step)
        call("backend.synchronize()", backend.synchronize)
        value = float(loss.float())
        if not math.isfinite(value) or tuple(prediction.shape) != (BATCH, *CROP):
            raise CallFailed("evaluation step", f"loss {value}, prediction of shape {tuple(prediction.shape)}")
        return f"loss {value:.3f}, prediction {tuple(prediction.shape)}"

    def energy(self) -> str:
        meter = call("backend.energy_meter()", self.backend.energy_meter)
        if meter.absent:
            return Warned(f"no energy counter: {meter.absent} (the results then hold no measured energy)")
        method = meter.method   # a counter rejected when the meter was made: its power is integrated
        try:
            before = call("meter.read()", meter.read)
            x = torch.randn(512, 512, device=self.backend.device)
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < ENERGY_WORK_S:
                x = torch.tanh(x @ x)
                call("backend.synchronize()", self.backend.synchronize)
            after = call("meter.read()", meter.read)
        finally:
            meter.close()
        if meter.method != method or meter.absent:
            # The meter survives a counter that fails (it integrates power instead), the run
            # would too; but a counter that answered and then stopped is a device to look at.
            raise CallFailed("meter.read()", meter.absent or meter.note)
        if before is None or after is None or not math.isfinite(after - before) or after < before:
            raise CallFailed("meter.read()", f"read {before} J, then {after} J")
        detail = (f"{meter.source} on {', '.join(map(str, meter.devices)) or 'this device'}: {after - before:.2f} J "
                  f"over {ENERGY_WORK_S} s of matmuls")
        return Warned(f"{detail}; {meter.note}") if meter.note else detail

    def monitor(self) -> str:
        tool = self.spec.tool
        if tool is None:
            return f"{self.name} has no device tool: the monitor samples nothing, as in its training jobs"
        if shutil.which(tool.name) is None:
            return Warned(f"{tool.name} not found on PATH: the monitor will sample no utilisation, memory or "
                          f"power (load the device's tools in the SETUP of site.env)")
        argv = tool.sample(1)
        rows, seen = [], []
        try:
            # stdin never a terminal, as the monitor runs it (some tools print columns to one).
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True, bufsize=1)
        except OSError as err:
            raise CallFailed(" ".join(argv), err) from err
        # A sampler prints until stopped: the first data row is enough, or the wait runs out.
        watchdog = threading.Timer(MONITOR_WAIT_S, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                seen.append(line)
                rows = [row for fields in tool.rows(seen) if (row := normalise(fields, time.time()))]
                if rows:
                    break
        finally:
            watchdog.cancel()
            proc.kill()
            proc.wait()
        if not rows:
            raise CallFailed(" ".join(argv), f"no sample row within {MONITOR_WAIT_S} s "
                             f"(first output: {seen[0].strip() if seen else 'none'!r})")
        _, index, util, mem, power, temp = rows[0]
        return f"{tool.name}: device {index}: {util or '?'} %, {mem or '?'} MiB, {power or '?'} W, {temp or '?'} C"


def run_checks(backend_name: str, profile: str, dist: DistContext, out: Callable[[str], None] = print) -> int:
    """Every check of one backend on this process's device; 0 when none failed, 1 otherwise."""
    check = SelfCheck(backend_name, profile, dist)
    checklist = Checklist(dist, out)
    try:
        for item in check.checks():
            checklist.run(item)
    finally:
        if check.backend is not None and dist.world_size > 1 and checklist.state.get("process group") == "OK":
            check.train_unit = None   # DDP holds the group; released before it is destroyed
            dist.close(clean=checklist.first_failure is None)
    states = list(checklist.state.values())
    if checklist.first_failure:
        out(failed(backend_name, checklist.first_failure, dist.rank if dist.world_size > 1 else None))
        return 1
    if dist.is_main:
        out(passed(backend_name, sum(s in ("OK", "WARN") for s in states), states.count("WARN")))
    return 0
