"""Containers (unetbench/cluster/container.py) without a cluster: site.env checks, the dry run's exact
invocation per backend, derived binds, the image's checksum, and jobs run "inside" stand-ins.

Neither Apptainer nor Pyxis can be installed here. Contract tests with stand-ins
(tests/cluster/standin_container/): ``apptainer`` (and ``singularity``) records its arguments,
checks the image and every bind source as the real one does, and runs the command in --pwd,
forwarding stop signals as Apptainer's starter does; ``srun`` takes the --container-* options
as Pyxis does. tests/cluster/test_slurm_container.py runs such a job on the real Slurm.

    PATH="$PWD/.venv/bin:$PATH" CI=1 .venv/bin/python -m pytest -q tests/cluster/test_container.py
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from pathlib import Path

import pytest
from helpers import REPO, SMALL_TRAINING, run, script_env, signal_mid_run, write_site

from unetbench.cluster import container as containers
from unetbench.core.errors import UserError

STANDINS = REPO / "tests" / "cluster" / "standin_container"


def standin_env(stub, tmp_path, **extra) -> dict:
    """The Slurm stand-ins' environment with the container stand-ins first on PATH."""
    env = dict(stub["env"])
    env["PATH"] = f"{STANDINS}:{env['PATH']}"
    env["STANDIN_CONTAINER_LOG"] = str(tmp_path / "container_calls.jsonl")
    return {**env, **{k: str(v) for k, v in extra.items()}}


def image(tmp_path, name="pytorch.sif", content=b"SIF image stand-in") -> Path:
    path = tmp_path / "images" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def container_site(tmp_path, **containers_by_group) -> Path:
    values = {}
    for group, (runtime, img) in containers_by_group.items():
        values[f"{group}_CONTAINER"] = img
        values[f"{group}_CONTAINER_RUNTIME"] = runtime
    return write_site(tmp_path / "site.env", **values)


def dry_run(bench, env, site, tmp_path, backends):
    return bench(["--backends", backends, "--site", site, "--run-dir", tmp_path / "run", "--data", tmp_path / "data",
                  "--no-prepare", "--skip-verify", "--epochs", "1", "--dry-run"], env)


def shown_lines(stdout: str) -> dict[str, list[str]]:
    """The dry run's container lines by backend: the words after the colon."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("# ") and " job runs in its container (" in line:
            found[line.split()[1]] = shlex.split(line.split("): ", 1)[1])
    return found


@pytest.fixture
def data(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset_splits.json").write_text("{}")
    return tmp_path / "data"


def test_dry_run_shows_the_exact_container_invocation_of_each_backend(bench, stub, tmp_path, data, monkeypatch):
    sif = image(tmp_path)
    site = container_site(tmp_path, CUDA=("apptainer", sif), ROCM=("singularity", sif), GAUDI=("apptainer", sif),
                          XPU=("pyxis", "nvcr.io#intel/xpu:1"), CPU=("pyxis", str(image(tmp_path, "cpu.sqsh"))))
    monkeypatch.chdir(tmp_path)
    proc = dry_run(bench, standin_env(stub, tmp_path), site, tmp_path, "cuda,rocm,xpu,gaudi_lazy,cpu")
    assert proc.returncode == 0, proc.stderr
    shown = shown_lines(proc.stdout)
    run_dir, cache = tmp_path / "run", tmp_path / "compile_cache"
    # Derived binds: the checkout, the start folder (which holds data, run and cache here), each once.
    binds = [str(p) for p in sorted([REPO, tmp_path])]
    for backend, device in (("cuda", ["--nv"]), ("rocm", ["--rocm"]), ("gaudi_lazy", ["--bind=/dev/accel"])):
        runtime = "singularity" if backend == "rocm" else "apptainer"
        assert shown[backend][:2 + len(device)] == [runtime, "exec", *device], backend
        rest = shown[backend][2 + len(device):]
        assert rest[:len(binds) + 2] == [*(f"--bind={b}" for b in binds), f"--pwd={tmp_path}", str(sif)]
        command = rest[len(binds) + 2:]
        assert command[:2] == ["python3", str(REPO / f"unet_{backend}.py")]
        assert ["--out", str(run_dir / "results"), "--compile-cache", str(cache)] == \
            [command[command.index("--out")], command[command.index("--out") + 1],
             command[command.index("--compile-cache")], command[command.index("--compile-cache") + 1]]
    mounts = ",".join(f"{b}:{b}" for b in binds)
    for backend, img in (("xpu", "nvcr.io#intel/xpu:1"), ("cpu", str(tmp_path / "images" / "cpu.sqsh"))):
        assert shown[backend][:5] == ["srun", f"--container-image={img}", "--container-name=unetbench_$SLURM_JOB_ID",
                                      f"--container-mounts={mounts}", f"--container-workdir={tmp_path}"], backend
    assert not run_dir.exists() and not (tmp_path / "container_calls.jsonl").exists()


def test_the_job_gets_the_container_in_its_environment_and_the_image_checksum(bench, stub, tmp_path, data,
                                                                               monkeypatch):
    sif = image(tmp_path, content=b"x" * 1000)
    fake = stub["env"]["PATH"].split(os.pathsep)[0]
    # sbatch records the container variables it was given (sbatch --export=ALL hands them to the job).
    Path(fake, "sbatch").write_text(Path(fake, "sbatch").read_text().replace(
        "#!/bin/sh\n", "#!/bin/sh\nenv | grep '^UNETBENCH_CONTAINER_' | sort >> \"$JOB_ENV_LOG\"\n", 1))
    site = container_site(tmp_path, CPU=("apptainer", sif))
    (tmp_path / "start").mkdir()
    monkeypatch.chdir(tmp_path / "start")
    env = standin_env(stub, tmp_path, JOB_ENV_LOG=tmp_path / "job_env", XDG_CACHE_HOME=tmp_path / "cache")
    proc = bench(["--backends", "cpu", "--site", site, "--run-dir", tmp_path / "run", "--data", data,
                  "--no-prepare", "--skip-verify", "--epochs", "1"], env)
    assert proc.returncode == 0, proc.stderr
    got = dict(line.split("=", 1) for line in (tmp_path / "job_env").read_text().splitlines())
    assert got["UNETBENCH_CONTAINER_RUNTIME"] == "apptainer" and got["UNETBENCH_CONTAINER_IMAGE"] == str(sif)
    assert got["UNETBENCH_CONTAINER_DIGEST"] == "sha256:" + hashlib.sha256(b"x" * 1000).hexdigest()
    words = shlex.split(got["UNETBENCH_CONTAINER_ARGS"])
    assert words[:2] == ["apptainer", "exec"] and words[-1] == str(sif)
    binds = sorted(str(p) for p in (REPO, tmp_path / "start", data, tmp_path / "run" / "results",
                                    tmp_path / "compile_cache"))
    assert [w for w in words if w.startswith("--bind=")] == [f"--bind={b}" for b in binds]
    assert (tmp_path / "compile_cache").is_dir(), "a runtime refuses to bind a folder that does not exist"


@pytest.mark.parametrize("settings, expected", [
    ({"CPU": ("docker", "/x.sif")}, "CPU_CONTAINER_RUNTIME must be one of apptainer, singularity, pyxis, not 'docker'"),
    ({"CPU": ("", "/x.sif")}, "CPU_CONTAINER_RUNTIME must be one of apptainer, singularity, pyxis when CPU_CONTAINER"),
    ({"CPU": ("apptainer", "")}, "CPU_CONTAINER is empty but CPU_CONTAINER_RUNTIME=apptainer"),
    ({"CPU": ("apptainer", "/my images/pytorch.sif")}, "CPU_CONTAINER='/my images/pytorch.sif' holds a space"),
    ({"CPU": ("apptainer", "/nowhere/pytorch.sif")}, "CPU_CONTAINER: image /nowhere/pytorch.sif not found"),
    ({"CPU": ("apptainer", "pytorch.sif")}, "must be an absolute path"),
])
def test_bad_container_settings_get_one_clear_message_before_anything_is_submitted(bench, stub, tmp_path, data,
                                                                                     settings, expected):
    site = container_site(tmp_path, **settings)
    proc = bench(["--backends", "cpu", "--site", site, "--run-dir", tmp_path / "run", "--data", data,
                  "--no-prepare", "--epochs", "1"], standin_env(stub, tmp_path))
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not stub["log"].exists() and not (tmp_path / "run").exists()


def test_a_runtime_not_on_path_is_named_before_anything_is_submitted(bench, stub, tmp_path, data):
    site = container_site(tmp_path, CPU=("apptainer", image(tmp_path)))
    proc = bench(["--backends", "cpu", "--site", site, "--run-dir", tmp_path / "run", "--data", data,
                  "--no-prepare", "--epochs", "1"], stub["env"])      # no stand-in on PATH
    assert proc.returncode == 2, proc.stderr
    assert "apptainer not found on PATH (CPU_CONTAINER_RUNTIME): load it (e.g. module load apptainer)" in proc.stderr
    assert not stub["log"].exists()


def test_pyxis_needs_srun_with_the_plugin(bench, stub, tmp_path, data):
    site = container_site(tmp_path, CPU=("pyxis", "nvcr.io#nvidia/pytorch:25.01-py3"))
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "srun").write_text("#!/bin/sh\necho 'Usage: srun [OPTIONS(0)...]'\n")   # a Slurm without Pyxis
    (bare / "srun").chmod(0o755)
    env = {**stub["env"], "PATH": f"{bare}:{stub['env']['PATH']}"}
    proc = bench(["--backends", "cpu", "--site", site, "--run-dir", tmp_path / "run", "--data", data,
                  "--no-prepare", "--epochs", "1"], env)
    assert proc.returncode == 2 and "srun --help` lists no --container-image" in proc.stderr, proc.stderr


def test_binds_are_each_folder_once_and_refuse_what_a_bind_list_cannot_carry(tmp_path):
    root = tmp_path / "unetbench"
    assert containers.minimal_binds([root / "runs" / "a", root, tmp_path / "data", root / "runs"]) == \
        [str(tmp_path / "data"), str(root)]
    assert containers.minimal_binds([tmp_path / "ab", tmp_path / "a"]) == [str(tmp_path / "a"), str(tmp_path / "ab")]
    with pytest.raises(UserError, match="space, comma or colon"):
        containers.minimal_binds([tmp_path / "a,b"])
    config = tmp_path / "configs" / "run.yaml"
    config.parent.mkdir()
    config.write_text("epochs: 3\n")
    folders = containers.training_folders(["--splits", "/d/splits.json", "--out", "/r", "--weights", "/w/x.pth",
                                           "--compile-cache", "/c", f"--config={config}"])
    assert folders == [Path("/d"), Path("/r"), Path("/c"), Path("/w"), config.parent]


def test_the_image_checksum_is_read_once_per_image_version(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sif = image(tmp_path, content=b"first")
    box = containers.Container("cpu", "apptainer", str(sif))
    assert containers.digest(box) == "sha256:" + hashlib.sha256(b"first").hexdigest()
    # Same size and time stamp: the cache answers (a 20 GB image is not read at every submission).
    stamp = sif.stat()
    sif.write_bytes(b"other")
    os.utime(sif, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert containers.digest(box) == "sha256:" + hashlib.sha256(b"first").hexdigest()
    # A new version of the image (another time stamp) is read again.
    os.utime(sif, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    assert containers.digest(box) == "sha256:" + hashlib.sha256(b"other").hexdigest()
    pinned = "nvcr.io#nvidia/pytorch@sha256:" + "ab" * 32
    assert containers.digest(containers.Container("cuda", "pyxis", pinned)) == "sha256:" + "ab" * 32
    assert containers.digest(containers.Container("cuda", "pyxis", "nvcr.io#nvidia/pytorch:25.01-py3")) == ""


def test_the_training_records_its_container(monkeypatch):
    from unetbench.core.container_record import recorded
    assert recorded({}) is None
    env = {"UNETBENCH_CONTAINER_RUNTIME": "pyxis", "UNETBENCH_CONTAINER_IMAGE": "nvcr.io#nvidia/pytorch:25.01-py3",
           "UNETBENCH_CONTAINER_DIGEST": ""}
    assert recorded(env) == {"runtime": "pyxis", "image": "nvcr.io#nvidia/pytorch:25.01-py3", "digest": None}
    # Started in Apptainer by hand: the path Apptainer sets is the record.
    assert recorded({"APPTAINER_CONTAINER": "/i/x.sif", "SINGULARITY_CONTAINER": "/i/x.sif"}) == \
        {"runtime": "apptainer", "image": "/i/x.sif", "digest": None}


# ---- jobs inside the stand-ins (the job shell without Slurm) -------------------------------
def job_site(tmp_path, runtime, img) -> Path:
    return container_site(tmp_path, CPU=(runtime, img))


def job_command(tiny_splits, out, *extra):
    return ["bash", str(REPO / "submit_cpu.sh"), "--splits", str(tiny_splits), "--out", str(out), *SMALL_TRAINING,
            *extra]


def container_calls(tmp_path) -> list[dict]:
    path = tmp_path / "container_calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_a_job_runs_every_python_in_the_image_and_stops_cleanly_on_usr1(tiny_splits, tmp_path, monkeypatch):
    sif = image(tmp_path)
    out = tmp_path / "results"
    site = job_site(tmp_path, "apptainer", sif)
    cmd = job_command(tiny_splits, out, "--epochs", "20", "--max-steps-per-epoch", "8")   # the signal lands mid-run
    env = script_env(STANDINS, UNETBENCH_SITE=site, STANDIN_CONTAINER_LOG=tmp_path / "container_calls.jsonl",
                     XDG_CACHE_HOME=tmp_path / "cache", UNETBENCH_HOST_PYTHON=tmp_path / "no-python")
    # Submitted by hand to a node without a Python of its own: the binds cannot be derived. Refused, clearly.
    refused = run(cmd, env=env, cwd=tmp_path, timeout=120)
    assert refused.returncode == 2 and "submit it with ./run_benchmark.sh" in refused.stderr, refused.stderr
    # As ./run_benchmark.sh submits it: the container in the job's environment. Still no host
    # Python, so the device monitor runs inside the image.
    monkeypatch.chdir(tmp_path)
    box = containers.Container("cpu", "apptainer", str(sif))
    _, job = containers.submission(box, REPO, containers.training_folders(cmd[2:]))
    log = tmp_path / "job.log"
    assert signal_mid_run(cmd, {**env, **job}, tmp_path, log, "epoch 1/20: step 2/") == 3, log.read_text()
    text = log.read_text()
    assert f"container : apptainer {sif} sha256:{hashlib.sha256(sif.read_bytes()).hexdigest()}" in text
    assert "python    : python3 inside the container" in text
    assert "device monitor: inside the container" in text
    assert "interrupted; checkpoint saved" in text and (out / "last_cpu.pth").exists()
    calls = container_calls(tmp_path)
    inside = [c["argv"][c["argv"].index(str(sif)) + 1:] for c in calls]
    # Header, flags, training: every Python of the job ran in the image, bound to what it needs.
    assert any("unetbench.cluster.jobinfo" in words and "header" in words for words in inside)
    assert any("unetbench.cluster.jobinfo" in words and "train-args" in words for words in inside)
    assert any(str(REPO / "unet_cpu.py") in words for words in inside)
    assert any("unetbench.monitor" in words for words in inside)
    for call in calls:
        assert call["argv"][0] == "exec"
        assert {f"--bind={REPO}", f"--bind={tmp_path}", f"--pwd={tmp_path}"} <= set(call["argv"])
    results = json.loads((out / "results_cpu.json").read_text())
    assert results["status"] == "interrupted"
    assert results["environment"]["container"] == {
        "runtime": "apptainer", "image": str(sif), "digest": "sha256:" + hashlib.sha256(sif.read_bytes()).hexdigest()}


@pytest.mark.slow
def test_a_pyxis_job_starts_its_python_through_srun_with_the_container_options(tiny_splits, tmp_path):
    out = tmp_path / "results"
    ref = "nvcr.io#nvidia/pytorch:25.01-py3"
    env = script_env(STANDINS, UNETBENCH_SITE=job_site(tmp_path, "pyxis", ref),
                     STANDIN_CONTAINER_LOG=tmp_path / "container_calls.jsonl")
    proc = run(job_command(tiny_splits, out, "--epochs", "1", "--max-steps-per-epoch", "2"), env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "device monitor: on the host" in proc.stdout
    calls = container_calls(tmp_path)
    training = next(c["argv"] for c in calls if str(REPO / "unet_cpu.py") in c["argv"])
    mounts = ",".join(f"{b}:{b}" for b in sorted([str(REPO), str(tmp_path), str(tiny_splits.parent)]))
    assert {f"--container-image={ref}", f"--container-mounts={mounts}", f"--container-workdir={tmp_path}",
            "--ntasks=1"} <= set(training)
    names = {w for c in calls for w in c["argv"] if w.startswith("--container-name=")}
    assert len(names) == 1 and "$" not in names.pop(), "one container per job, named with its id"
    results = json.loads((out / "results_cpu.json").read_text())
    assert results["environment"]["container"] == {"runtime": "pyxis", "image": ref, "digest": None}


def test_the_on_device_self_check_job_runs_in_the_backends_image(tmp_path, monkeypatch):
    # verify_enhanced.sh --on-device: the self-check runs where the training would, so "torch sees
    # the device" is checked inside the image; its log folder is bound.
    from unetbench.cluster.selfcheck_jobs import SelfCheckPlan, job_environment
    from unetbench.cluster.site_settings import Site
    monkeypatch.setenv("PATH", f"{STANDINS}:{os.environ['PATH']}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "start").mkdir()
    monkeypatch.chdir(tmp_path / "start")
    sif = image(tmp_path)
    site = Site.load(container_site(tmp_path, CUDA=("apptainer", sif)))
    logs = tmp_path / "elsewhere" / "selfcheck-1"
    plan = SelfCheckPlan(backends=["cuda", "cpu"], local=False, root=REPO, log_root=logs.parent)
    env = job_environment(plan, site, "cuda", logs)
    words = shlex.split(env["UNETBENCH_CONTAINER_ARGS"])
    assert words[:3] == ["apptainer", "exec", "--nv"] and f"--bind={logs}" in words and words[-1] == str(sif)
    assert env["UNETBENCH_CONTAINER_DIGEST"].startswith("sha256:") and logs.is_dir()
    assert job_environment(plan, site, "cpu", logs) == {}
