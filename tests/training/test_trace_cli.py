"""--trace-steps on the benchmark and run_benchmark.sh; --nsys: checked up front, wrapped in the job."""

import json
import os
import shlex

import pytest
from fakes import calls, fake_tool
from helpers import REPO, run, run_main, run_script, script_env, write_site


@pytest.mark.slow
def test_bench_trace_steps_writes_a_trace_and_keeps_traced_steps_out_of_the_figures(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_script(["-m", "unetbench.training.bench", "--backend", "cpu", "--profile", "parity", "--crop", "32x48",
                       "--batch-size", "2", "--steps", "3", "--warmup", "1", "--model-width", "8",
                       "--workers", "0", "--no-peak", "--json", out,
                       "--trace-steps", "2", "--out", tmp_path / "run"])
    assert proc.returncode == 0, proc.stderr
    e2e = json.loads(out.read_text())["end_to_end"]
    assert e2e["measured_steps"] == 3 and e2e["trace"]["top_operations"]
    assert (tmp_path / "run" / "trace_bench_cpu.json").is_file()
    assert "trace: " in proc.stdout and "energy" in proc.stdout


def test_bench_trace_steps_needs_an_out_folder(capsys):
    from unetbench.training.bench import main
    code, _, err = run_main(main, ["--backend", "cpu", "--trace-steps", "2"], capsys)
    assert code == 2 and "--out" in err


def _sbatch(stdout: str) -> dict:
    lines = {}
    for line in stdout.splitlines():
        if line.startswith("sbatch "):
            cmd = shlex.split(line)
            lines[next(a for a in cmd if a.endswith(".sh")).rsplit("submit_", 1)[1][:-3]] = cmd
    return lines


def test_trace_steps_and_nsys_reach_every_job(stub, tmp_path):
    site = write_site(tmp_path / "site.env")
    proc = run([REPO / "run_benchmark.sh", "--backends", "cpu,cuda", "--site", site, "--run-dir", tmp_path / "r",
                "--synthetic", "--dry-run", "--skip-verify", "--trace-steps", "3", "--nsys"], env=stub["env"])
    assert proc.returncode == 0, proc.stderr
    jobs = _sbatch(proc.stdout)
    for name in ("cpu", "cuda"):
        cmd = jobs[name]
        assert cmd[cmd.index("--trace-steps") + 1] == "3"
        assert any(a.startswith("--export=") and a.endswith(",UNETBENCH_NSYS=1") for a in cmd)


@pytest.mark.parametrize("args, expected", [
    (["--backends", "cpu", "--nsys", "--trace-steps", "2"], "profiles cuda jobs only"),
    (["--backends", "cuda", "--nsys"], "add --trace-steps N"),
])
def test_nsys_without_what_it_needs_is_refused(stub, tmp_path, args, expected):
    site = write_site(tmp_path / "site.env")
    proc = run([REPO / "run_benchmark.sh", *args, "--site", site, "--run-dir", tmp_path / "r", "--synthetic",
                "--dry-run"], env=stub["env"])
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow  # a submit_cuda.sh job: two Pythons that import torch
def test_cuda_job_runs_training_inside_nsys_with_the_capture_range_standin(tiny_splits, tmp_path):
    tools, log = tmp_path / "tools", tmp_path / "nsys.log"
    # Stand-in nsys: records its arguments and the capture variable, then does not run the training.
    fake_tool(tools, "nsys", log=log, then=f'echo "$UNETBENCH_NSYS_CAPTURE" > {shlex.quote(str(tmp_path / "capture"))}')
    env = script_env(tools, UNETBENCH_NSYS="1", UNETBENCH_SITE="none", UNETBENCH_ROOT=REPO)
    env.pop("SLURM_JOB_ID", None)
    proc = run(["bash", REPO / "submit_cuda.sh", "--splits", tiny_splits, "--out", tmp_path / "out",
                "--trace-steps", "2"], env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [args] = calls(log, "nsys")
    assert args[:3] == ["profile", "--capture-range=cudaProfilerApi", "--capture-range-end=stop"]
    assert f"--output={tmp_path / 'out'}/nsys_cuda" in args
    assert (tmp_path / "capture").read_text() == "1\n"
    assert args[args.index(f"--output={tmp_path / 'out'}/nsys_cuda") + 2].endswith("unet_cuda.py")


@pytest.mark.slow  # a submit_cuda.sh job: two Pythons that import torch
def test_cuda_job_with_nsys_missing_says_where_to_load_it(tiny_splits, tmp_path):
    env = script_env(None, UNETBENCH_NSYS="1", UNETBENCH_SITE="none", UNETBENCH_ROOT=REPO)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not (p and os.path.exists(f"{p}/nsys")))
    proc = run(["bash", REPO / "submit_cuda.sh", "--splits", tiny_splits, "--out", tmp_path / "out",
                "--trace-steps", "2"], env=env)
    assert proc.returncode == 2 and "nsys (Nsight Systems) not found" in proc.stderr
