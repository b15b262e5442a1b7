"""run_benchmark.sh --models/--datasets: one job per backend x workload, named side by side, one
comparison after all; bad matrices refused before anything is submitted (stand-in Slurm tools)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from helpers import write_site

from unetbench.data.prepare.api import prepare_synthetic


def sbatch_lines(stdout: str) -> list[list[str]]:
    return [shlex.split(line) for line in stdout.splitlines() if line.startswith("sbatch ")]


def script_and_tail(cmd: list[str]):
    i = next(i for i, a in enumerate(cmd) if a.endswith(".sh"))
    return Path(cmd[i]).name, cmd[i + 1:]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for name in ("kvasir-seg", "oxford-pet"):   # two prepared datasets under DATA/<name>
        prepare_synthetic(root / name, num_images=12, crop=(32, 48), seed=1)
    prepare_synthetic(root / "plain", num_images=12, crop=(32, 48), seed=1)
    return root


def test_models_give_one_job_per_backend_and_model_and_one_comparison(bench, stub, tmp_path, data_root):
    site = write_site(tmp_path / "site.env")
    run_dir = tmp_path / "run"
    proc = bench(["--backends", "cuda,gaudi_lazy", "--models", "unet,resunetpp,deeplabv3_resnet101", "--site", site,
                  "--data", data_root / "plain", "--run-dir", run_dir, "--dry-run", "--skip-verify"], stub["env"])
    assert proc.returncode == 0, proc.stderr
    lines = sbatch_lines(proc.stdout)
    jobs = [script_and_tail(cmd) for cmd in lines]
    assert [s for s, _ in jobs] == ["submit_cuda.sh", "submit_gaudi_lazy.sh"] * 3 + ["submit_compare.sh"]
    names = [tail[tail.index("--run-name") + 1] for s, tail in jobs[:-1]]
    assert names == ["cuda_unet", "gaudi_lazy_unet", "cuda_resunetpp", "gaudi_lazy_resunetpp",
                     "cuda_deeplabv3_resnet101", "gaudi_lazy_deeplabv3_resnet101"]
    for (_, tail), name in zip(jobs[:-1], names):
        assert tail[tail.index("--model") + 1] == name.split("_", 1)[1].replace("lazy_", "")
    assert f"--dependency=afterany:{':'.join(f'<{n}_jobid>' for n in names)}" in lines[-1]


def test_datasets_read_each_prepared_folder(bench, stub, tmp_path, data_root):
    site = write_site(tmp_path / "site.env")
    proc = bench(["--backends", "cpu", "--models", "unet,resunetpp", "--datasets", "kvasir_seg,oxford-pet",
                  "--site", site, "--data", data_root, "--run-dir", tmp_path / "run", "--dry-run", "--skip-verify"],
                 stub["env"])
    assert proc.returncode == 0, proc.stderr
    jobs = [script_and_tail(cmd) for cmd in sbatch_lines(proc.stdout)]
    assert not any(s == "submit_prepare.sh" for s, _ in jobs) and "prepare_dataset.py" not in proc.stdout
    runs = {tail[tail.index("--run-name") + 1]: tail for s, tail in jobs if s == "submit_cpu.sh"}
    assert set(runs) == {"cpu_unet_kvasir-seg", "cpu_resunetpp_kvasir-seg", "cpu_unet_oxford-pet",
                         "cpu_resunetpp_oxford-pet"}
    tail = runs["cpu_resunetpp_oxford-pet"]
    splits = [tail[i + 1] for i, a in enumerate(tail) if a == "--splits"]
    assert splits[-1] == str(data_root / "oxford-pet" / "dataset_splits.json")   # the last one wins


@pytest.mark.parametrize("args,needle", [
    (["--models", "unet,vit"], "unknown model 'vit'"),
    (["--models", "unet,unet"], "given twice"),
    (["--models", "unet", "--", "--model", "resunetpp"], "--model and --models"),
    (["--datasets", "kvasir-seg,coco"], "unknown dataset 'coco'"),
])
def test_bad_matrices_are_refused_before_anything_is_submitted(bench, stub, tmp_path, data_root, args, needle):
    site = write_site(tmp_path / "site.env")
    proc = bench(["--backends", "cpu", "--site", site, "--data", data_root, "--run-dir", tmp_path / "run",
                  "--skip-verify", *args], stub["env"])
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
    assert not stub["log"].exists()


def test_a_dataset_not_prepared_says_how_to_prepare_it(bench, stub, tmp_path):
    site = write_site(tmp_path / "site.env")
    proc = bench(["--backends", "cpu", "--datasets", "oxford_pet", "--site", site, "--data", tmp_path / "none",
                  "--run-dir", tmp_path / "run", "--skip-verify", "--dry-run"], stub["env"])
    assert proc.returncode == 2 and "prepare_dataset.py --dataset oxford-pet --out" in proc.stderr


def test_a_model_that_cannot_take_the_crop_is_refused(bench, stub, tmp_path):
    data = tmp_path / "odd"
    prepare_synthetic(data, num_images=12, crop=(32, 48), seed=1)
    import json
    meta = json.loads((data / "dataset_splits.json").read_text())
    site = write_site(tmp_path / "site.env")
    # a crop of 40x48 suits ResUNet++ (multiple of 8) but not the UNet (16): the split file says so
    meta["crop"] = {"height": 40, "width": 48}
    (data / "dataset_splits.json").write_text(json.dumps(meta))
    proc = bench(["--backends", "cpu", "--models", "resunetpp,unet", "--site", site, "--data", data,
                  "--run-dir", tmp_path / "run", "--skip-verify", "--dry-run"], stub["env"])
    assert proc.returncode == 2 and "unet model needs both sides to be multiples of 16" in proc.stderr


def test_deeplab_without_torchvision_is_refused_on_the_login_node(monkeypatch, tmp_path):
    import importlib.util

    from unetbench.cluster.workloads import Workload, check_dependencies
    from unetbench.core.errors import UserError
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchvision" else real(name, *a))
    check_dependencies([Workload("resunetpp", None, tmp_path)])          # needs nothing more
    with pytest.raises(UserError, match="deeplabv3_resnet101 needs torchvision"):
        check_dependencies([Workload("deeplabv3_resnet101", None, tmp_path)])
