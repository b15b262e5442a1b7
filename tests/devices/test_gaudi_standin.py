"""CONTRACT TESTS for the Intel Gaudi rules of docs/training.md ("Gaudi"), against the stand-in
bridge in tests/devices/standin_habana (no Gaudi exists here).

The stand-in imitates what these rules are about: the autoload at ``import torch`` and the mode
fixed then, the distributed set-up at import, FusedAdamW's eps default, the allocator's figures,
stock torch refused in lazy mode, the version in package metadata, lazy graphs that run only
what is held at the cut (habana_frameworks.lazy_trace), int64 kept to 32 bits in lazy mode, and
an hl-smi listing eight cards. Each test fails on the code before the rule was applied.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import REPO, SMALL_SETTINGS

from unetbench.core.settings import Settings

STANDIN = Path(__file__).parent / "standin_habana"
BRIDGE_ENV = ("PT_HPU_LAZY_MODE", "PT_HPU_AUTOLOAD", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK",
              "LOCAL_RANK", "HLS_MODULE_ID", "HABANA_VISIBLE_MODULES", "HABANA_STANDIN_STOCK_TORCH")


# -- in-process: the stand-in on sys.path, loaded fresh for each backend ---------------------
@pytest.fixture
def bridge(monkeypatch):
    """A loader of the stand-in bridge; the environment it writes is undone after the test."""
    monkeypatch.syspath_prepend(str(STANDIN))
    for name in BRIDGE_ENV:
        monkeypatch.delenv(name, raising=False)

    def fresh():
        for name in [m for m in sys.modules if m.startswith("habana_frameworks")]:
            monkeypatch.delitem(sys.modules, name)
        import habana_frameworks
        habana_frameworks.CALLS.clear()
        return habana_frameworks
    yield fresh
    if hasattr(torch, "hpu"):
        del torch.hpu


def _backend(bridge, name, profile="parity", monkeypatch=None):
    from unetbench.devices.base import make_backend
    calls = bridge().CALLS
    backend = make_backend(name, profile)
    if monkeypatch is not None:  # tensors of the stand-in live on the CPU
        monkeypatch.setattr(type(backend), "device", property(lambda self: torch.device("cpu")))
    return backend, calls


# -- subprocesses: torch imported the way a user's process imports it ------------------------
def _python(code_or_args, env_extra=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in BRIDGE_ENV and not k.startswith("SLURM_")}
    env.update({"PYTHONPATH": os.pathsep.join([str(STANDIN), str(REPO)]), "HABANA_STANDIN_REPORT": "1",
                **(env_extra or {})})
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else list(map(str, code_or_args))
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow  # Pythons that import torch
def test_import_torch_autoloads_the_bridge_and_fixes_eager_mode_standin():
    # The stand-in's own contract: what the rules below defend against.
    proc = _python("import os, torch, habana_frameworks as h; os.environ['PT_HPU_LAZY_MODE'] = '1'; "
                   "from habana_frameworks.torch.utils.internal import is_lazy; print(h.CALLS[0], is_lazy())")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["('import',", "None,", "False)", "False"]
    lazy = _python("import torch, sys; print('habana_frameworks.torch' in sys.modules)", {"PT_HPU_LAZY_MODE": "1"})
    assert lazy.stdout.strip() == "False", "with lazy mode asked for first, torch does not load the bridge"


@pytest.mark.slow  # Pythons that import torch
def test_a_lazy_backend_refuses_a_bridge_already_loaded_in_eager_mode_standin():
    proc = _python("import torch\nfrom unetbench.core.errors import run_cli\nfrom unetbench.devices.base import make_backend\n"
                   "run_cli(lambda argv: make_backend('gaudi_lazy') and 0)")
    assert proc.returncode == 2, proc.stderr
    assert "runs in eager mode, but gaudi_lazy needs lazy mode" in proc.stderr
    assert "PT_HPU_LAZY_MODE=1" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow  # Pythons that import torch
@pytest.mark.parametrize("launch", [["unet_gaudi_lazy.py"], ["-m", "unetbench.training.launch", "--backend", "gaudi_lazy"],
                                    ["-m", "unetbench.training.launch", "--backend=gaudi_lazy"]])
def test_lazy_entry_points_load_the_bridge_in_lazy_mode_standin(launch, tmp_path):
    # Stops at the missing split file, after the backend (and its mode check) was built.
    proc = _python([*launch, "--splits", tmp_path / "none.json", "--out", tmp_path])
    assert "habana stand-in: loaded in lazy mode" in proc.stderr, proc.stderr
    assert proc.returncode == 2 and "none.json" in proc.stderr, proc.stderr


@pytest.mark.slow  # Pythons that import torch
def test_bench_children_load_the_bridge_in_the_mode_of_their_backend_standin(tmp_path):
    proc = _python(["-m", "unetbench.training.bench", "--backend", "gaudi_lazy", "--part", "compute_only", "--splits",
                    tmp_path / "none.json", "--part-json", tmp_path / "p.json"])
    assert "habana stand-in: loaded in lazy mode" in proc.stderr, proc.stderr


def test_stock_torch_in_lazy_mode_is_one_clear_message_standin(bridge, monkeypatch):
    from unetbench.core.errors import UserError
    monkeypatch.setenv("HABANA_STANDIN_STOCK_TORCH", "1")
    with pytest.raises(UserError, match="refused this torch: Stock PyTorch .* use gaudi_eager"):
        _backend(bridge, "gaudi_lazy")


def test_results_record_the_version_from_package_metadata_and_the_mode_the_bridge_reports_standin(bridge):
    backend, _ = _backend(bridge, "gaudi_lazy")
    env = backend.environment()
    assert env["habana"] == "1.21.0+standin"   # habana_frameworks.torch has no __version__
    assert env["habana_mode"] == "lazy"
    eager, _ = _backend(bridge, "gaudi_eager")
    assert eager.environment()["habana_mode"] == "eager"


def test_fused_adamw_uses_torch_adams_eps_standin(bridge):
    backend, calls = _backend(bridge, "gaudi_eager", "fast")
    optimizer = backend.make_optimizer(torch.nn.Linear(2, 2).parameters(), lr=1e-4)
    assert ("FusedAdamW", 1e-4, 0.0, 1e-8) in calls
    assert optimizer.param_groups[0]["eps"] == torch.optim.Adam([torch.zeros(1)]).defaults["eps"]


def test_memory_figures_do_not_pass_the_pool_or_the_peak_off_as_reserved_standin(bridge):
    backend, _ = _backend(bridge, "gaudi_eager")
    memory = backend.memory_bytes()
    assert (memory["allocated"], memory["peak_allocated"]) == (1_000, 2_000)   # InUse, MaxInUse
    assert memory["reserved"] is None and memory["peak_reserved"] is None
    assert "Limit 94.0 GB" in memory["source"]


def test_fast_lazy_training_unit_gets_hpu_graphs_before_ddp_and_intels_ddp_and_loader_settings_standin(
        bridge, tiny_splits, tmp_path, monkeypatch):
    from unetbench.training.distributed import DistContext
    from unetbench.training.trainer import Trainer
    backend, calls = _backend(bridge, "gaudi_lazy", "fast", monkeypatch)
    wrapped = []
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel",
                        lambda module, **kwargs: wrapped.append((module, kwargs, list(calls))) or module)
    trainer = Trainer(Settings(splits=str(tiny_splits), out=str(tmp_path), profile="fast", **SMALL_SETTINGS), backend)
    trainer.dist = DistContext(world_size=2)  # only to build the DDP unit; no process group is formed
    trainer._train_forward()
    (module, kwargs, calls_then), = wrapped
    assert ("ModuleCacher", "TrainForward", 10, True) in calls_then, "HPU graphs wrap the unit before DDP"
    assert kwargs == {"broadcast_buffers": False, "bucket_cap_mb": 256, "gradient_as_bucket_view": True}
    _, train, evals = trainer._loaders()
    assert (train.pin_memory, train.pin_memory_device) == (True, "hpu")
    assert evals["val"].pin_memory_device == "hpu"
    # and the pinned batches are copied as Intel's training scripts copy them: without blocking
    assert trainer.transform.non_blocking is True

    parity, calls = _backend(bridge, "gaudi_lazy", "parity")
    assert parity.ddp_kwargs() == {} and parity.loader_pinning is False
    parity.before_ddp(torch.nn.Linear(2, 2))
    assert not [c for c in calls if c[0] == "ModuleCacher"], "parity keeps plain settings"


def _training_calls(bridge, tmp_path, splits, monkeypatch, steps, warmup):
    """One lazy-mode epoch under the imitated graph builder; CALLS with step markers."""
    from unetbench.training.trainer import Trainer
    backend, calls = _backend(bridge, "gaudi_lazy", "parity", monkeypatch)
    from habana_frameworks.lazy_trace import (
        LazyTrace,  # the module of the bridge just loaded
    )
    settings = Settings(splits=str(splits), out=str(tmp_path), epochs=1, max_steps_per_epoch=steps,
                        **{**SMALL_SETTINGS, "warmup_steps": warmup})
    trainer = Trainer(settings, backend)
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda *a, **k: calls.append(("optimizer.step",)) or step(*a, **k)
    with LazyTrace():
        assert trainer.run() == 0
    return calls


@pytest.mark.slow
def test_no_graph_is_compiled_in_the_measured_steps_not_even_the_epochs_last_standin(
        bridge, tiny_splits, tmp_path, monkeypatch):
    calls = _training_calls(bridge, tmp_path, tiny_splits, monkeypatch, steps=5, warmup=2)
    marks = [i for i, c in enumerate(calls) if c == ("optimizer.step",)]
    assert len(marks) == 5
    graph_after = lambda i: next(j for j in range(i, len(calls)) if calls[j][0] == "graph")  # noqa: E731
    window = calls[graph_after(marks[1]) + 1:graph_after(marks[-1]) + 1]   # steps 3..5: measured
    compiled = [c for c in window if c[0] == "graph" and c[1]]
    assert not compiled, f"graphs compiled inside the measured steps: {compiled}"


def test_matmul_peak_products_are_computed_and_compiled_in_the_warm_up_standin(bridge, monkeypatch):
    from unetbench.training.peak import measure_peak
    backend, _ = _backend(bridge, "gaudi_lazy", "parity", monkeypatch)
    from habana_frameworks.lazy_trace import (
        LazyTrace,  # the module of the bridge just loaded
    )
    with LazyTrace() as trace:
        peak = measure_peak(backend, budget_s=0.05, min_size=8, max_size=8)
    assert peak["tflops"] > 0
    block = peak["products_per_block"]
    timed = trace.graphs[-block * peak["timed_blocks"]:]
    assert len(trace.graphs) >= len(timed) + 3 + block, "the size's first products and a warm-up block come first"
    assert all(g["executed_names"] == ["matmul"] for g in timed), "every timed product is computed"
    assert not any(g["new"] for g in timed), "compilation happens in the warm-up"


def test_int64_is_kept_to_32_bits_in_imitated_lazy_mode_standin(bridge):
    bridge()
    from habana_frameworks.lazy_trace import LazyTrace
    with LazyTrace(wrap_int64=True):
        wrapped = torch.tensor([2**31 - 1]) + 1
    assert wrapped.item() == -2**31


# -- srun tasks: the distributed environment before the bridge loads ------------------------
SRUN_TASK = {"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_NNODES": "1",
             "SLURM_JOB_NODELIST": "gnode[07-08]", "SLURM_JOB_ID": "77"}
SHOWN = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "HLS_MODULE_ID")
SHOW = f"import os, torch; print(*[os.environ.get(k) for k in {SHOWN!r}])"


@pytest.mark.slow  # Pythons that import torch
def test_srun_tasks_get_rank_variables_before_python_so_the_bridge_sees_them_standin():
    # Without them the bridge, autoloaded by torch, writes its single-node defaults.
    bare = _python(SHOW, SRUN_TASK)
    assert bare.stdout.split() == ["None", "None", "1", "localhost", "12345", "None"], bare.stderr
    wrapped = _python(["-m", "unetbench.training.rankenv", "--", sys.executable, "-c", SHOW], SRUN_TASK)
    assert wrapped.stdout.split() == ["1", "1", "2", "gnode07", "20077", "1"], wrapped.stderr


@pytest.mark.slow  # Pythons that import torch
def test_dist_context_assigns_the_srun_layout_over_the_bridges_defaults_standin():
    code = ("import os, torch; from unetbench.training.distributed import DistContext; c = DistContext.from_environment(); "
            "print(c.master, c.launcher, os.environ['MASTER_ADDR'], os.environ['WORLD_SIZE'])")
    proc = _python(code, SRUN_TASK)
    assert proc.stdout.split() == ["gnode07:20077", "srun", "gnode07", "2"], proc.stderr


def test_the_batch_job_starts_srun_tasks_through_rankenv():
    text = (REPO / "scripts" / "lib_job.sh").read_text()
    assert '"$UB_PYTHON" -m unetbench.training.rankenv --)' in text


# -- the device monitor: the job's cards only -----------------------------------------------
def test_the_monitor_keeps_only_the_jobs_cards_of_an_eight_card_node_standin(tmp_path):
    env = {**os.environ, "PATH": f"{STANDIN / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(REPO),
           "HABANA_VISIBLE_MODULES": "3,5", "HL_SMI_ARGS_FILE": str(tmp_path / "args")}
    proc = subprocess.Popen([sys.executable, "-m", "unetbench.cluster.monitor", "--backend", "gaudi_lazy", "--out",
                             str(tmp_path), "--run-name", "g"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    path = tmp_path / "monitor_g.csv"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not path.exists() or len(path.read_text().splitlines()) < 5):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) >= 4, out
    assert {row["device_index"] for row in rows} == {"3", "5"}
    assert {row["power_w"] for row in rows} == {"103.5", "105.5"}
    assert "the job's devices 3,5 (HABANA_VISIBLE_MODULES)" in out
    assert (tmp_path / "args").read_text().split()[1].startswith("module_id,")


@pytest.mark.slow  # Pythons that import torch
def test_a_bridge_built_for_another_torch_is_one_clear_message_at_import_standin(tmp_path):
    # Eager mode: torch loads the bridge at import and wraps its AssertionError in a RuntimeError.
    proc = _python(["unet_gaudi_eager.py", "--splits", tmp_path / "none.json"],
                   {"HABANA_STANDIN_TORCH_BUILT_FOR": "2.6"})
    assert proc.returncode == 2, proc.stderr
    assert "Compile-time major/minor PyTorch version 2.6 differs" in proc.stderr
    assert "install the torch version" in proc.stderr and "Traceback" not in proc.stderr
