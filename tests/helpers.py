"""Helpers every test module shares: the checkout's path, small-training flags, subprocess runs,
a site.env for the test cluster and stand-in Slurm tools. Fixtures live in conftest.py.

Use::

    from helpers import REPO, SMALL_TRAINING, run_script, read_results
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from fakes import fake_tool

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"

# ---- a small training ---------------------------------------------------------------------
# A narrow UNet (width 8) keeps CPU trainings at a few seconds; the full width (64) is the seed's
# model, checked by test_model_matches_the_seed_parameter_count. A progress line every step:
# tests wait for lines such as "epoch 1/2: step 2/" before they signal a run. No matmul peak:
# its second (the CPU's budget) in each of hundreds of runs would cost the suite minutes; the
# tests of the peak (tests/training/test_peak.py) measure it. No idle baseline either (where a
# meter reads, RAPL as root, each run would otherwise idle 2 s before warm-up).
SMALL_SETTINGS = {"model_width": 8, "batch_size": 4, "workers": 0, "warmup_steps": 1, "log_every": 1, "no_peak": True,
                  "idle_s": 0}
"""The small training as Settings(...) keywords (for in-process Trainer runs)."""

SMALL_TRAINING = [arg for key, value in SMALL_SETTINGS.items()
                  for arg in ((f"--{key.replace('_', '-')}",) if value is True else (f"--{key.replace('_', '-')}", str(value)))]
"""The same as command-line flags, for unet_*.py, submit_*.sh and run_benchmark.sh alike; a test
that needs another value appends the flag after these (the last one wins)."""


# ---- Python scripts -----------------------------------------------------------------------
def run_script(args, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    """Run `python ARGS...` in the checkout (this interpreter, the checkout on PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **kwargs.pop("env", {})}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env, **kwargs)


def read_results(folder: Path, run: str = "cpu") -> dict:
    return json.loads((Path(folder) / f"results_{run}.json").read_text())


# ---- shell scripts ------------------------------------------------------------------------
def script_env(extra_path: Path | None = None, **env) -> dict:
    """The environment a user would have: the venv's python first on PATH (as `make test` does)."""
    path = os.environ.get("PATH", "/usr/bin:/bin")
    if VENV_BIN.is_dir():
        path = f"{VENV_BIN}:{path}"
    if extra_path is not None:
        path = f"{extra_path}:{path}"
    return {**os.environ, "PATH": path, **{k: str(v) for k, v in env.items()}}


def wait_for(predicate, timeout: float, what: str, every: float = 0.5):
    """Poll ``predicate`` every ``every`` seconds until it returns something true (returned), or
    fail after ``timeout`` seconds naming ``what``. A bound on a wait, never a measured time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def signal_mid_run(cmd, env, cwd, log: Path, marker: str, sig=signal.SIGUSR1, timeout: float = 120) -> int:
    """Start ``cmd`` with its output in ``log``, send ``sig`` to it (only) once ``marker`` shows in the
    log, as Slurm's --signal=B:USR1 reaches the batch shell; its exit status."""
    with open(log, "w") as fh:
        proc = subprocess.Popen([str(c) for c in cmd], stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        wait_for(lambda: marker in log.read_text() or proc.poll() is not None, timeout, f"'{marker}' in {log}", 0.1)
        assert proc.poll() is None, log.read_text()
        os.kill(proc.pid, sig)
        return proc.wait(timeout=timeout)


def run(cmd, env=None, timeout=300, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env or script_env())


def write_site(path: Path, partition: str = "debug", drop=(), **overrides) -> Path:
    """A complete site.env for the test cluster (no account, no QOS, one CPU per job)."""
    from unetbench.core.registry import BACKENDS
    values = {}
    groups = {spec.site_group: spec.needs_device for spec in BACKENDS.values()}   # every device's group
    for group, needs_device in groups.items():
        values.update({f"{group}_PARTITION": partition, f"{group}_ACCOUNT": "", f"{group}_QOS": "",
                       f"{group}_GRES": "gpu:1" if needs_device else "", f"{group}_CPUS": "1",
                       f"{group}_MEM": "3000M", f"{group}_TIME": "00:30:00", f"{group}_SETUP": ""})
    values.update({"COMPARE_MEM": "2000M", "PREPARE_MEM": "2000M"})
    values.update({k: str(v) for k, v in overrides.items()})
    for key in drop:
        values.pop(key)
    path.write_text("".join(f"{k}='{v}'\n" for k, v in values.items()))
    return path


# ---- stand-in Slurm tools -----------------------------------------------------------------
# sbatch fails on its call number $SBATCH_FAIL_AT like a refusing sbatch; otherwise it prints a job id.
STUB_SBATCH = """n=$(grep -c '^sbatch ' {log})
if [ "$n" = "${{SBATCH_FAIL_AT:-0}}" ]; then
  echo "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified" >&2
  exit 1
fi
echo "$((100 + n))"
"""


def stub_slurm(bin_dir: Path, log: Path) -> Path:
    """sbatch/scancel/squeue/scontrol stand-ins (tests/fakes.py) that log their calls to `log`, one
    line a call: the tool's name and its arguments."""
    for tool in ("scancel", "squeue", "scontrol"):
        fake_tool(bin_dir, tool, log=log)
    fake_tool(bin_dir, "sbatch", log=log, then=STUB_SBATCH.format(log=shlex.quote(str(log))))
    return bin_dir


def run_prepare_cli(argv, capsys):
    """prepare_dataset.py in-process, one job, quiet: -> (exit code, stdout, stderr); never a traceback."""
    import pytest

    from unetbench.core.errors import run_cli
    from unetbench.data.prepare.cli import main
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [str(a) for a in argv] + ["--jobs", "1", "--quiet"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return exc.value.code, out, err


def run_main(main, argv, capsys):
    """A command's ``main(argv)`` in this process, through run_cli as its script runs it (a
    UserError: one line and its exit code): -> (exit code, stdout, stderr). Saves the 2-3 s a
    subprocess spends importing torch where the test is about the command's logic, not its start."""
    import pytest

    from unetbench.core.errors import run_cli
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def in_process(main, capfd, monkeypatch):
    """A stand-in for ``run([script, *args], env=env)`` where the script only hands over to a Python
    ``main`` (run_benchmark.sh: unetbench.cluster.submit): ``main(args)`` runs in this process, under
    exactly ``env`` (os.environ, set back after the test) with UNETBENCH_ROOT as the script exports
    it, and its exit code and output (children's included) come back as a CompletedProcess. Keep
    one test per script through the script itself."""
    def call(args, env=None, **_):
        env = {**(env or script_env()), "UNETBENCH_ROOT": str(REPO)}
        for key in [k for k in os.environ if k not in env]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        code, out, err = run_main(main, args, capfd)
        return subprocess.CompletedProcess(args, code, out, err)
    return call
