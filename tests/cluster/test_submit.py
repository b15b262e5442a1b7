"""run_benchmark.sh and verify_enhanced.sh without a cluster: bad input, --dry-run, refusals.

Slurm's tools are stand-ins here (tests/helpers.py) that record their calls, so these
tests check exactly what would be submitted; tests/cluster/test_slurm_cluster.py runs the real thing.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, run, run_main, script_env, write_site

from unetbench.cluster import preflight
from unetbench.core.registry import BACKENDS


def calls(stub) -> list[str]:
    return stub["log"].read_text().splitlines() if stub["log"].exists() else []


def script(args, env):
    return run([REPO / "run_benchmark.sh", *args], env=env)


@pytest.mark.slow  # about 3 s of shellcheck; make lint runs the same check
def test_every_script_is_shellcheck_clean():
    shellcheck = shutil.which("shellcheck") or str(REPO / ".venv" / "bin" / "shellcheck")
    scripts = sorted(REPO.glob("*.sh")) + sorted((REPO / "scripts").glob("*.sh")) + sorted((REPO / "tests").glob("*.sh"))
    scripts += [REPO / ".ci" / "run", REPO / "site.env.example"]
    assert len(scripts) >= 10
    proc = subprocess.run([shellcheck, "-x", "-S", "style", *map(str, scripts)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unknown_backend_lists_the_valid_ones(stub):
    proc = script(["--backends", "cpu,tpu", "--dry-run"], stub["env"])
    assert proc.returncode == 2
    assert "unknown backend 'tpu'" in proc.stderr
    assert f"valid backends: {' '.join(BACKENDS)}" in proc.stderr
    assert calls(stub) == []


def test_missing_site_env_says_which_file_to_create(stub, tmp_path):
    proc = script(["--backends", "cpu", "--site", tmp_path / "site.env", "--dry-run"], stub["env"])
    assert proc.returncode == 2
    assert str(tmp_path / "site.env") in proc.stderr and "site.env.example" in proc.stderr
    if not (REPO / "site.env").exists():
        proc = script(["--backends", "cpu"], stub["env"])
        assert proc.returncode == 2 and "cp " in proc.stderr and "site.env.example" in proc.stderr
    assert calls(stub) == []


@pytest.mark.parametrize("problem, expected", [
    ({"drop": ["CPU_TIME"]}, "CPU_TIME is not set"),
    ({"CPU_PARTITION": ""}, "CPU_PARTITION is empty"),
    ({"CPU_ACCOUNT": "<your-account>"}, "CPU_ACCOUNT still holds a placeholder"),
    ({"drop": ["CUDA_GRES"]}, "CUDA_GRES is not set"),
])
def test_incomplete_site_env_names_the_variable(bench, stub, tmp_path, problem, expected):
    site = write_site(tmp_path / "site.env", **problem)
    proc = bench(["--backends", "cpu,cuda", "--site", site, "--dry-run", "--skip-verify", "--synthetic"], stub["env"])
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert calls(stub) == []


def test_dry_run_shows_each_accelerators_request_and_job_environment(bench, stub, tmp_path):
    site = write_site(tmp_path / "site.env", CUDA_GRES="gpu:h100:1", ROCM_GRES="gpu:mi250:1", ROCM_PARTITION="amd",
                      XPU_GRES="gpu:max1550:1", XPU_PARTITION="pvc", GAUDI_GRES="hpu:1", GAUDI_PARTITION="gaudi")
    proc = bench(["--backends", "cuda,rocm,xpu,gaudi_lazy,gaudi_eager", "--site", site, "--synthetic",
                  "--devices-per-node", "2", "--dry-run", "--skip-verify"], stub["env"])
    assert proc.returncode == 0, proc.stderr
    assert calls(stub) == []
    lines = proc.stdout.splitlines()
    sbatch = {Path(next(a for a in cmd if a.endswith(".sh"))).stem.removeprefix("submit_"): cmd
              for cmd in (shlex.split(line) for line in lines if line.startswith("sbatch "))}
    wanted = {"cuda": ("debug", "gpu:h100:2"), "rocm": ("amd", "gpu:mi250:2"), "xpu": ("pvc", "gpu:max1550:2"),
              "gaudi_lazy": ("gaudi", "hpu:2"), "gaudi_eager": ("gaudi", "hpu:2")}
    for backend, (partition, gres) in wanted.items():
        assert {f"--partition={partition}", f"--gres={gres}", "--ntasks-per-node=2"} <= set(sbatch[backend]), backend
    # what each job sets or reads besides its sbatch options, one comment line before its sbatch line
    planned = {line.split()[1]: line for line in lines if re.match(r"# \S+ job: ", line)}
    assert "ROCR_VISIBLE_DEVICES" in planned["rocm"]
    assert "MIOPEN_USER_DB_PATH=/tmp/$USER-unetbench-miopen-$SLURM_JOB_ID (unless SETUP exports it)" in planned["rocm"]
    assert "ZE_AFFINITY_MASK" in planned["xpu"] and "ZE_FLAT_DEVICE_HIERARCHY=COMPOSITE" in planned["xpu"]
    assert "PT_HPU_LAZY_MODE=1" in planned["gaudi_lazy"] and "PT_HPU_LAZY_MODE=0" in planned["gaudi_eager"]
    assert "CUDA_VISIBLE_DEVICES" in planned["cuda"]
    for backend in wanted:   # each comment comes right before its job's sbatch line
        at = lines.index(planned[backend])
        assert f"submit_{backend}.sh" in lines[at + 1]


def test_the_example_site_env_is_reported_as_incomplete(bench, stub):
    proc = bench(["--backends", "cuda", "--site", REPO / "site.env.example", "--dry-run"], stub["env"])
    assert proc.returncode == 2
    assert "CUDA_PARTITION still holds a placeholder" in proc.stderr
    assert "CPU_ACCOUNT still holds a placeholder" in proc.stderr   # the compare job's, via CPU_*


def test_dry_run_prints_the_exact_sbatch_lines_and_submits_nothing(bench, stub, tmp_path):
    site = write_site(tmp_path / "site.env", CUDA_PARTITION="gpu", CUDA_ACCOUNT="proj42", CUDA_QOS="normal",
                      COMPARE_PARTITION="batch", SIGNAL_LEAD_S=120)
    run_dir = tmp_path / "run1"
    proc = bench(["--backends", "cpu,cuda", "--site", site, "--run-dir", run_dir, "--prepare-job", "--synthetic",
                  "--num-images", "40", "--crop", "64x96", "--epochs", "3", "--profile", "fast", "--dry-run",
                  "--", "--model-width", "8"], stub["env"])
    assert proc.returncode == 0, proc.stderr
    assert "run_benchmark: preflight: " in proc.stdout and "verify: all checks passed" in proc.stdout
    assert calls(stub) == [], "a dry run must not call Slurm"
    assert not run_dir.exists(), "a dry run must not create the results folder"
    lines = [shlex.split(line) for line in proc.stdout.splitlines() if line.startswith("sbatch ")]
    assert [Path(cmd[[i for i, a in enumerate(cmd) if a.endswith(".sh")][0]]).name for cmd in lines] == \
        ["submit_prepare.sh", "submit_cpu.sh", "submit_cuda.sh", "submit_compare.sh"]
    prepare, cpu, cuda, compare = lines
    for cmd in lines:
        assert "--parsable" in cmd and f"--output={run_dir}/logs/%x_%j.out" in cmd and "--open-mode=append" in cmd
        assert f"--export=ALL,UNETBENCH_ROOT={REPO},UNETBENCH_SITE={site}" in cmd
    assert prepare[-7:] == ["--out", str(REPO / "data"), "--synthetic", "--num-images", "40", "--crop", "64x96"]
    for cmd in (cpu, cuda):
        assert "--dependency=afterok:<prepare_jobid>" in cmd and "--kill-on-invalid-dep=yes" in cmd
        assert "--signal=B:USR1@120" in cmd and "--requeue" in cmd
        tail = cmd[[i for i, a in enumerate(cmd) if a.endswith(".sh")][0] + 1:]
        assert tail[:2] == ["--splits", str(REPO / "data" / "dataset_splits.json")]
        assert ["--epochs", "3"] == tail[tail.index("--epochs"):tail.index("--epochs") + 2]
        assert "--model-width" in tail and "--profile" in tail
    assert {"--partition=gpu", "--account=proj42", "--qos=normal", "--gres=gpu:1", "--cpus-per-task=1",
            "--mem=3000M", "--time=00:30:00"} <= set(cuda)
    assert "--partition=debug" in cpu and not any(a.startswith(("--account", "--qos", "--gres")) for a in cpu)
    assert "--partition=batch" in compare and "--mem=2000M" in compare
    assert "--dependency=afterany:<cpu_jobid>:<cuda_jobid>" in compare
    assert compare[-5:] == [str(run_dir / "results"), "--report-dir", str(run_dir / "report"), "--expect", "cpu,cuda"]


def test_sbatch_refusal_shows_its_message_and_cancels_the_chain(bench, stub, tmp_path):
    site = write_site(tmp_path / "site.env")
    env = {**stub["env"], "SBATCH_FAIL_AT": "3"}   # prepare=101, cpu=102, then cuda is refused
    run_dir = tmp_path / "run"
    proc = bench(["--backends", "cpu,cuda", "--site", site, "--run-dir", run_dir, "--prepare-job", "--synthetic",
                  "--skip-verify"], env)
    assert proc.returncode == 2
    assert "sbatch refused the cuda job" in proc.stderr
    assert "Invalid account or account/partition combination" in proc.stderr
    log = calls(stub)
    assert sum(line.startswith("sbatch ") for line in log) == 3
    assert log[-1] == "scancel 101 102"
    assert (run_dir / "jobs.tsv").read_text() == "prepare\t101\ncpu\t102\n"


def test_a_second_run_over_an_existing_results_folder_is_refused(bench, stub, tmp_path):
    site = write_site(tmp_path / "site.env")
    run_dir = tmp_path / "run"
    args = ["--backends", "cpu", "--site", site, "--run-dir", run_dir, "--prepare-job", "--synthetic", "--skip-verify"]
    assert bench(args, stub["env"]).returncode == 0
    (run_dir / "results" / "results_cpu.json").write_text("{}")
    proc = bench(args, stub["env"])
    assert proc.returncode == 2 and "already exists" in proc.stderr and "--force" in proc.stderr
    assert (run_dir / "results" / "results_cpu.json").exists()
    proc = bench(args + ["--force"], stub["env"])
    assert proc.returncode == 0, proc.stderr
    assert not (run_dir / "results" / "results_cpu.json").exists()
    # --force never empties a folder run_benchmark.sh did not make.
    foreign = tmp_path / "mine"
    (foreign / "keep.txt").parent.mkdir()
    (foreign / "keep.txt").write_text("x")
    proc = bench(["--backends", "cpu", "--site", site, "--run-dir", foreign, "--force", "--skip-verify", "--synthetic"],
                 stub["env"])
    assert proc.returncode == 2 and "not made by run_benchmark.sh" in proc.stderr
    assert (foreign / "keep.txt").exists()


def test_dataset_missing_when_jobs_would_run(bench, stub, tmp_path):
    site = write_site(tmp_path / "site.env")
    proc = bench(["--backends", "cpu", "--site", site, "--data", tmp_path / "nodata", "--no-prepare",
                  "--run-dir", tmp_path / "run"], stub["env"])
    assert proc.returncode == 2
    assert f"dataset missing: {tmp_path / 'nodata' / 'dataset_splits.json'} not found" in proc.stderr
    assert calls(stub) == []


def _sbatch_lines(stdout: str) -> dict[str, list[str]]:
    """The dry run's sbatch lines by submit script name (cpu, cuda, compare, ...)."""
    lines = {}
    for line in stdout.splitlines():
        if line.startswith("sbatch "):
            cmd = shlex.split(line)
            script = next(a for a in cmd if a.endswith(".sh"))
            lines[Path(script).stem.removeprefix("submit_")] = cmd
    return lines


def test_dry_run_of_a_multi_device_run_scales_tasks_gres_and_memory(bench, stub, tmp_path):
    site = write_site(tmp_path / "site.env", CUDA_GRES="gpu:a100:1", CUDA_MEM="64G", CUDA_CPUS=8,
                      GAUDI_GRES="hpu", CPU_GRES="tmpdisk:10", CPU_MEM="3000M")
    run_dir = tmp_path / "run"
    proc = bench(["--backends", "cuda,gaudi_lazy,cpu", "--site", site, "--run-dir", run_dir, "--data", tmp_path,
                  "--synthetic", "--nodes", "2", "--devices-per-node=4", "--dry-run", "--skip-verify"], stub["env"])
    assert proc.returncode == 0, proc.stderr
    assert calls(stub) == [] and not run_dir.exists()
    lines = _sbatch_lines(proc.stdout)
    assert list(lines) == ["cuda", "gaudi_lazy", "cpu", "compare"]
    for backend in ("cuda", "gaudi_lazy", "cpu"):
        cmd = lines[backend]
        assert "--nodes=2" in cmd and "--ntasks-per-node=4" in cmd
        # run-name <backend>_<nodes>x<devices>: beside single-device results in one folder
        tail = cmd[cmd.index(str(REPO / f"submit_{backend}.sh")) + 1:]
        assert tail[tail.index("--run-name") + 1] == f"{backend}_2x4"
    cuda, gaudi, cpu = lines["cuda"], lines["gaudi_lazy"], lines["cpu"]
    assert {"--gres=gpu:a100:4", "--mem=256G", "--cpus-per-task=8"} <= set(cuda)   # one device's share x 4
    assert {"--gres=hpu:4", "--mem=12000M"} <= set(gaudi)                            # no count means one
    assert {"--gres=tmpdisk:10", "--mem=12000M", "--cpus-per-task=1"} <= set(cpu)    # CPU GRES is not a device
    compare = lines["compare"]
    assert not any(a.startswith(("--nodes", "--ntasks")) for a in compare) and "--mem=2000M" in compare
    assert compare[-2:] == ["--expect", "cuda,gaudi_lazy,cpu"]


def test_a_single_device_run_asks_for_one_task_and_keeps_the_backend_name(bench, stub, tmp_path):
    site = write_site(tmp_path / "site.env")
    proc = bench(["--backends", "cuda", "--site", site, "--run-dir", tmp_path / "run", "--synthetic", "--dry-run",
                  "--skip-verify"], stub["env"])
    assert proc.returncode == 0, proc.stderr
    cuda = _sbatch_lines(proc.stdout)["cuda"]
    assert {"--nodes=1", "--ntasks-per-node=1", "--gres=gpu:1", "--mem=3000M"} <= set(cuda)
    assert cuda[cuda.index("--run-name") + 1] == "cuda"


@pytest.mark.parametrize("flag, value", [("--nodes", "0"), ("--devices-per-node", "0"), ("--nodes", "1.5"),
                                         ("--devices-per-node", "two"), ("--nodes", "-1"), ("--devices-per-node", "")])
def test_bad_node_and_device_counts_are_refused(bench, stub, tmp_path, flag, value):
    site = write_site(tmp_path / "site.env")
    proc = bench(["--backends", "cpu", "--site", site, "--synthetic", "--skip-verify", "--dry-run", f"{flag}={value}"],
                 stub["env"])
    assert proc.returncode == 2
    expected = f"{flag} needs a value" if value == "" else f"{flag} must be a positive whole number, not '{value}'"
    assert expected in proc.stderr
    assert calls(stub) == []


def test_a_gres_that_cannot_be_scaled_is_refused_before_anything_runs(bench, stub, tmp_path):
    site = write_site(tmp_path / "site.env", CUDA_GRES="gpu:0")
    proc = bench(["--backends", "cpu,cuda", "--site", site, "--synthetic", "--skip-verify", "--devices-per-node", "2",
                  "--run-dir", tmp_path / "run"], stub["env"])
    assert proc.returncode == 2
    assert "CUDA_GRES='gpu:0' cannot be scaled to 2 devices per node" in proc.stderr
    assert calls(stub) == [] and not (tmp_path / "run").exists()


def test_multi_device_runs_need_slurm(bench, stub, tmp_path):
    proc = bench(["--backends", "cpu", "--local", "--devices-per-node", "2", "--dry-run", "--skip-verify",
                  "--run-dir", tmp_path / "run"], stub["env"])
    assert proc.returncode == 2 and "need Slurm" in proc.stderr and "torchrun" in proc.stderr


def test_verify_checks_the_dataset_sizes_and_checksums(tiny_splits, tmp_path, capsys):
    # In process (the preflight's own main): the wrapper script is run by the test below.
    data = tmp_path / "data"
    shutil.copytree(tiny_splits.parent, data)
    verify = ["--backends", "cpu", "--local", "--data", data, "--results-dir", tmp_path / "runs"]
    code, out, _ = run_main(preflight.main, verify + ["--full"], capsys)
    assert code == 0, out
    assert "[ OK ] dataset" in out and "sizes and checksums" in out
    assert "[SKIP] site.env" in out and "[FAIL]" not in out

    # One flipped byte: sizes still match, but the file changed (mtime), so it is hashed anyway.
    labels = data / "val_labels.npy"
    raw = bytearray(labels.read_bytes())
    raw[-1] ^= 1
    labels.write_bytes(bytes(raw))
    code, out, _ = run_main(preflight.main, verify, capsys)
    assert code == 1 and "[FAIL] dataset: val_labels.npy changed after preparation" in out
    code, out, _ = run_main(preflight.main, verify + ["--full"], capsys)
    assert code == 1 and "[FAIL] dataset: val_labels.npy: sha256 differs" in out

    labels.write_bytes(bytes(raw[:-10]))   # truncated
    code, out, _ = run_main(preflight.main, verify, capsys)
    assert code == 1 and "[FAIL] dataset: val_labels.npy" in out and "truncated" in out
    assert np.load(data / "train_images.npy", mmap_mode="r").dtype == np.uint8


def test_verify_checks_site_env_and_slurm_tools(stub, tmp_path, capsys, monkeypatch):
    site = write_site(tmp_path / "site.env", CPU_QOS="<your-qos>")
    monkeypatch.setenv("PATH", stub["env"]["PATH"])   # the stand-in Slurm tools
    code, out, _ = run_main(preflight.main, ["--backends", "cpu", "--site", site, "--no-data",
                                             "--results-dir", tmp_path / "runs"], capsys)
    assert code == 1
    assert "[FAIL] site.env" in out and "CPU_QOS still holds a placeholder" in out
    assert "[ OK ] slurm: sbatch squeue scontrol scancel found" in out
    # The script itself: its exit status for a bad flag, before any check.
    proc = run([REPO / "verify_enhanced.sh", "--backends", "nope"])
    assert proc.returncode == 2 and "unknown backend 'nope'" in proc.stderr


@pytest.mark.parametrize("args, expected", [
    (["--epochs", "0"], "training flags: argument --epochs: epochs must be positive, got 0"),
    (["--", "--no-such-flag"], "training flags: unrecognized arguments: --no-such-flag"),
    (["--epochs", "--dry-run"], "--epochs needs a value, not the option '--dry-run'"),
    (["--synthetic", "--crop", "100x100"], "dataset preparation flags: --crop 100x100: the unet model needs both "
                                          "sides to be multiples of 16"),
    (["--model", "vgg"], "training flags: argument --model: invalid choice: 'vgg'"),
])
def test_flags_of_the_other_tools_are_refused_before_anything_runs(bench, stub, tmp_path, args, expected):
    # The training's and prepare's own parsers check them on the login node: a typo costs
    # nothing, instead of failing on a compute node after a wait in the queue.
    site = write_site(tmp_path / "site.env")
    run_dir = tmp_path / "run"
    proc = bench(["--backends", "cpu", "--site", site, "--run-dir", run_dir, "--data", tmp_path / "data",
                  "--prepare-job", *args], stub["env"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert calls(stub) == [] and not run_dir.exists() and not (tmp_path / "data").exists()


def test_every_training_setting_is_accepted_directly(bench, stub, tmp_path):
    site = write_site(tmp_path / "site.env")
    proc = bench(["--backends", "cpu", "--site", site, "--run-dir", tmp_path / "run", "--synthetic", "--dry-run",
                  "--skip-verify", "--lr-patience", "2", "--allow-tf32", "--model=unet"], stub["env"])
    assert proc.returncode == 0, proc.stderr
    cpu = next(shlex.split(line) for line in proc.stdout.splitlines() if "submit_cpu.sh" in line)
    tail = cpu[cpu.index(str(REPO / "submit_cpu.sh")) + 1:]
    assert tail[-5:] == ["--lr-patience", "2", "--allow-tf32", "--model", "unet"]


def test_site_settings_are_printed_by_the_site_module(tmp_path):
    site = write_site(tmp_path / "site.env", CUDA_GRES="gpu:a100:1", CUDA_MEM="16G")
    proc = run([sys.executable, "-m", "unetbench.cluster.site_settings", site, "cuda", "4"], env=script_env(PYTHONPATH=REPO))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["--partition=debug", "--gres=gpu:a100:4", "--cpus-per-task=1", "--mem=64G",
                                   "--time=00:30:00"]


def test_a_cluster_run_without_sbatch_is_refused_not_run_on_the_login_node(bench, tmp_path):
    site = write_site(tmp_path / "site.env")
    bare = tmp_path / "bin"   # the python, and no Slurm commands: a Slurm module not loaded
    bare.mkdir()
    (bare / "python3").symlink_to(sys.executable)
    env = {**script_env(), "PATH": str(bare)}
    proc = bench(["--backends", "cpu", "--site", site, "--synthetic", "--skip-verify", "--run-dir", tmp_path / "run"], env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "sbatch not found on PATH" in proc.stderr and "module load slurm" in proc.stderr and "--local" in proc.stderr
    assert not (tmp_path / "run").exists(), "nothing ran here instead"
