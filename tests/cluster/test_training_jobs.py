"""run_benchmark.sh --repeats and --profiles: the jobs a dry run would submit, and bad input.

Slurm's sbatch is the recording stand-in of tests/helpers.py; nothing is submitted.
"""

from __future__ import annotations

import shlex

import pytest
from helpers import script_env, stub_slurm, write_site

from unetbench.cluster.training_jobs import train_jobs


@pytest.fixture
def env(tmp_path):
    return script_env(stub_slurm(tmp_path / "bin", tmp_path / "calls.log"))


def _training_lines(stdout: str) -> list[list[str]]:
    lines = [shlex.split(line) for line in stdout.splitlines() if line.startswith("sbatch ")]
    return [cmd for cmd in lines if not any(a.endswith(("submit_compare.sh", "submit_prepare.sh")) for a in cmd)]


def _value(cmd: list[str], flag: str) -> str:
    # the last occurrence wins, as argparse reads it
    return cmd[len(cmd) - 1 - cmd[::-1].index(flag) + 1]


def test_repeats_dry_run_prints_n_times_backends_sbatch_lines(bench, env, tmp_path):
    site = write_site(tmp_path / "site.env")
    proc = bench(["--backends", "cuda,gaudi_lazy", "--site", site, "--run-dir", tmp_path / "run", "--data", tmp_path,
                  "--synthetic", "--repeats", "3", "--seed", "7", "--dry-run", "--skip-verify"], env)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "calls.log").exists() and not (tmp_path / "run").exists()
    lines = _training_lines(proc.stdout)
    assert len(lines) == 6
    names = [_value(cmd, "--run-name") for cmd in lines]
    assert names == ["cuda_r1", "cuda_r2", "cuda_r3", "gaudi_lazy_r1", "gaudi_lazy_r2", "gaudi_lazy_r3"]
    assert [_value(cmd, "--seed") for cmd in lines] == ["7", "8", "9"] * 2   # repeat k: the same seed on each backend
    compare = shlex.split([line for line in proc.stdout.splitlines() if "submit_compare.sh" in line][0])
    assert compare[-2:] == ["--expect", ",".join(names)]   # a lost repeat is listed as missing by name
    assert any(a.startswith("--dependency=afterany:") and a.count(":") == 6 for a in compare)   # after all six


def test_names_sit_side_by_side_and_profiles_multiply():
    jobs = train_jobs(["cpu"], lambda b: b, ["parity", "fast"], repeats=10, base_seed=42)
    assert [j.run_name for j in jobs][:2] == ["cpu_parity_r01", "cpu_parity_r02"] and len(jobs) == 20
    assert jobs[-1].flags == ("--profile", "fast", "--seed", "51")
    single = train_jobs(["cuda"], lambda b: b, [], repeats=1, base_seed=42)
    assert [(j.run_name, j.flags) for j in single] == [("cuda", ())]


def test_demo_compares_the_two_profiles(bench, env, tmp_path):
    proc = bench(["--demo", "--local", "--dry-run", "--skip-verify", "--run-dir", tmp_path / "run"], env)
    assert proc.returncode == 0, proc.stderr
    training = [shlex.split(line) for line in proc.stdout.splitlines() if "submit_cpu.sh" in line]
    assert [(_value(c, "--run-name"), _value(c, "--profile")) for c in training] == \
        [("cpu_parity", "parity"), ("cpu_fast", "fast")]
    assert all("--target-miou" in c and "--eval-every" in c for c in training)


@pytest.mark.parametrize("args,needle", [
    (["--repeats", "0"], "--repeats must be a positive whole number, not '0'"),
    (["--repeats", "two"], "--repeats must be a positive whole number"),
    (["--profiles", "parity,turbo"], "unknown profile 'turbo'"),
    (["--profiles", "fast", "--profile", "parity"], "--profile and --profiles exclude each other"),
    (["--target-miou", "2"], "target-miou is a mIoU, between 0 and 1"),
])
def test_bad_repeat_and_target_flags_are_refused_before_anything_runs(bench, env, tmp_path, args, needle):
    proc = bench(["--local", "--dry-run", "--skip-verify", "--run-dir", tmp_path / "run", *args], env)
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists()
