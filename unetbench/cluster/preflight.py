"""What ./verify_enhanced.sh does: is this checkout, environment, dataset and site.env ready?

    ./verify_enhanced.sh                         # everything, all backends, data/ and site.env
    ./verify_enhanced.sh --backends cpu --local  # no Slurm, no site.env
    ./verify_enhanced.sh --full                  # also checksum the dataset arrays
    ./verify_enhanced.sh --backends cuda --device cuda   # plus a 3-step smoke training on the GPU

One line per check: [ OK ], [WARN] (worth knowing, not fatal), [SKIP] or [FAIL]. Exit status 0
when nothing failed, 1 when a check failed, 2 for a bad flag. The dataset check is the data
module's own (unetbench/data/prepared.py); the site.env check is unetbench/cluster/site_settings.py's; each backend
checks its own software (Backend.software_check).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..core.errors import UserError, run_cli
from ..core.paths import REPO_ROOT
from ..core.registry import BACKENDS, JOBS
from .shell_flags import FlagReader, HelpRequested
from .site_settings import Site, SiteError

ROOT = Path(os.environ.get("UNETBENCH_ROOT") or REPO_ROOT)
PROG = "./verify_enhanced.sh"
PACKAGES = {"numpy": "numpy", "torch": "torch", "yaml": "pyyaml", "PIL": "pillow", "matplotlib": "matplotlib",
            "tqdm": "tqdm", "unetbench": "unetbench"}
SLURM_TOOLS = ("sbatch", "squeue", "scontrol", "scancel")
SMOKE_STEPS = 3
MIN_PYTHON = (3, 9)     # as pyproject.toml's requires-python


def usage() -> str:
    return f"""usage: {PROG} [--backends LIST] [--site FILE] [--local] [--data DIR | --no-data]
                            [--full] [--results-dir DIR] [--device BACKEND]
  --backends LIST   comma-separated, from: {' '.join(BACKENDS)} (default: all)
  --site FILE       site settings to check (default: site.env beside this script)
  --local           no Slurm: skip the site.env and sbatch/squeue checks
  --data DIR        prepared dataset folder (default: data/)
  --no-data         skip the dataset check (run_benchmark.sh prepares it next)
  --full            verify the dataset arrays' sha256 checksums, not only their sizes
  --results-dir DIR folder the results go under (default: runs/); must be writable
  --device BACKEND  run a {SMOKE_STEPS}-step smoke training on that backend's device"""


@dataclass
class Report:
    failures: int = 0

    def ok(self, line: str) -> None:
        print(f"[ OK ] {line}", flush=True)

    def warn(self, line: str) -> None:
        print(f"[WARN] {line}", flush=True)

    def skip(self, line: str) -> None:
        print(f"[SKIP] {line}", flush=True)

    def fail(self, line: str) -> None:
        print(f"[FAIL] {line}", flush=True)
        self.failures += 1


def check_files(report: Report, backends: list) -> None:
    executables = ["run_benchmark.sh", "verify_enhanced.sh", *(f"submit_{j}.sh" for j in JOBS),
                   *(f"submit_{b}.sh" for b in backends)]
    readables = ["scripts/lib_job.sh", "scripts/registry.sh", *(JOBS[j].entry for j in JOBS),
                 *(f"unet_{b}.py" for b in backends)]
    missing = []
    for name in executables:
        path = ROOT / name
        if not path.is_file():
            missing.append(name)
        elif not os.access(path, os.X_OK):
            missing.append(f"{name} (not executable: chmod +x)")
    missing += [name for name in readables if not (ROOT / name).is_file()]
    if missing:
        report.fail(f"missing: {' '.join(missing)}")
    else:
        report.ok("scripts present and executable")


def check_python(report: Report, backends: list) -> bool:
    """Python, the packages, and each backend's own software; False when torch is missing."""
    version = "%d.%d" % sys.version_info[:2]
    if sys.version_info < MIN_PYTHON:
        report.fail(f"python {version} is older than {'.'.join(map(str, MIN_PYTHON))}")
    else:
        report.ok(f"python {version} ({sys.executable})")
    for module, package in PACKAGES.items():
        try:
            importlib.import_module(module)
        except Exception as err:  # a broken install raises more than ImportError
            report.fail(f"packages: {package}: {type(err).__name__}: {err} (pip install -e . in your environment)")
            return False
    import torch
    report.ok(f"packages {' '.join(PACKAGES.values())} importable (torch {torch.__version__})")
    from ..devices.base import backend_class
    for name in backends:
        ok, message = backend_class(name).software_check()
        (report.ok if ok else report.warn)(f"{name}: {message}")
    return True


def check_dataset(report: Report, data: Path, full: bool) -> None:
    from ..data.array_stamps import verify_changed_arrays
    from ..data.prepared import SPLITS_FILE, load_splits, verify_arrays
    splits = data / SPLITS_FILE
    if not splits.is_file():
        report.fail(f"dataset: {splits} not found (run prepare_dataset.py, or let run_benchmark.sh prepare it)")
        return
    try:
        loaded = load_splits(splits)
        if not full:   # arrays changed since last verified (size, mtime) are hashed all the same
            verify_changed_arrays(loaded)
        report.ok(f"dataset {data}: {verify_arrays(loaded, checksums=full)}")
    except UserError as err:
        report.fail(f"dataset: {err}")


def check_site(report: Report, site_path: Path, backends: list) -> None:
    if not site_path.is_file():
        report.fail(f"site.env: {site_path} not found (cp {ROOT}/site.env.example {site_path} and fill it in)")
    else:
        try:
            problems = Site.load(site_path).problems([*backends, "compare"])
        except SiteError:
            report.fail(f"site.env: {site_path} does not source cleanly (bash -n {site_path})")
        else:
            if problems:
                report.fail(f"site.env {site_path}: {'; '.join(problems)}")
            else:
                report.ok(f"site.env {site_path} complete for {' '.join(backends)} compare")
    missing = [tool for tool in SLURM_TOOLS if not shutil.which(tool)]
    if missing:
        report.fail(f"slurm: {' '.join(missing)} not found (load the Slurm module, or use --local)")
    else:
        report.ok(f"slurm: {' '.join(SLURM_TOOLS)} found")


def check_results_dir(report: Report, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".verify."):
            pass
    except OSError:
        report.fail(f"results folder {folder} not writable (choose another with --run-dir)")
    else:
        report.ok(f"results folder {folder} writable")


def check_smoke(report: Report, backend: str, data: Path) -> None:
    from ..data.prepared import SPLITS_FILE
    splits = data / SPLITS_FILE
    if not splits.is_file():
        report.fail(f"smoke {backend}: no dataset at {splits}")
        return
    with tempfile.TemporaryDirectory(prefix="unetbench_smoke_") as tmp:
        cmd = [sys.executable, str(ROOT / f"unet_{backend}.py"), "--splits", str(splits), "--out", tmp,
               "--run-name", "smoke", "--epochs", "1", "--max-steps-per-epoch", str(SMOKE_STEPS),
               "--warmup-steps", "1"]
        # The entry script sets up the device's environment itself; the backend's variables are
        # added here too so that a direct child process sees them before importing torch.
        env = {**os.environ, **BACKENDS[backend].env_before_python}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        results = Path(tmp) / "results_smoke.json"
        if proc.returncode == 0 and results.is_file() and '"status": "completed"' in results.read_text():
            report.ok(f"smoke {backend}: {SMOKE_STEPS} training steps completed")
        else:
            lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
            report.fail(f"smoke {backend}: {lines[-1] if lines else f'exit status {proc.returncode}'}")


def main(argv: Sequence[str] | None = None) -> int:
    reader = FlagReader(PROG, "see --help")
    for name in ("--backends", "--site", "--data", "--results-dir", "--device"):
        reader.value(name, name[2:].replace("-", "_"))
    for name in ("--local", "--no-data", "--full"):
        reader.switch(name, name[2:].replace("-", "_"))
    try:
        values, rest = reader.read(list(sys.argv[1:] if argv is None else argv))
    except HelpRequested:
        print(usage())
        return 0
    if rest:
        raise UserError("unknown option '--' (see --help)")
    backends = values.get("backends", ",".join(BACKENDS)).split(",")
    device = values.get("device")
    for name in backends + ([device] if device else []):
        if name not in BACKENDS:
            raise UserError(f"unknown backend '{name}'; valid backends: {' '.join(BACKENDS)}")
    data = Path(values.get("data", ROOT / "data"))

    report = Report()
    check_files(report, backends)
    torch_ok = check_python(report, backends)
    if values.get("no_data"):
        report.skip("dataset (prepared next)")
    else:
        check_dataset(report, data, bool(values.get("full")))
    if values.get("local"):
        report.skip("site.env (local run)")
        report.skip("sbatch/squeue (local run)")
    else:
        check_site(report, Path(values.get("site", ROOT / "site.env")), backends)
    check_results_dir(report, Path(values.get("results_dir", ROOT / "runs")))
    if device:
        if torch_ok:
            check_smoke(report, device, data)
        else:
            report.fail(f"smoke {device}: needs the packages above")
    if report.failures:
        print(f"verify: {report.failures} check(s) failed")
        return 1
    print("verify: all checks passed")
    return 0


if __name__ == "__main__":
    run_cli(main)
