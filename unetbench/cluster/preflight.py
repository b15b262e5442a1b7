"""What ./verify_enhanced.sh does: is this checkout, environment, dataset and site.env ready?

    ./verify_enhanced.sh                         # everything, all backends, data/ and site.env
    ./verify_enhanced.sh --backends cpu --local  # no Slurm, no site.env
    ./verify_enhanced.sh --full                  # also checksum the dataset arrays
    ./verify_enhanced.sh --on-device --backends cuda,gaudi_lazy   # plus a short self-check job per backend
    ./verify_enhanced.sh --on-device --backends cpu --local       # ... run here instead

One line per check: [ OK ], [WARN] (worth knowing, not fatal), [SKIP] or [FAIL]. Exit status 0
when nothing failed, 1 when a check failed, 2 for a bad flag. The dataset check is the data
module's own (unetbench/data/prepared.py); the site.env check is unetbench/cluster/site_settings.py's; each backend
checks its own software (Backend.software_check). --on-device runs every device call of the
benchmark on the devices themselves (unetbench/cluster/selfcheck_jobs.py submits it, the checks
are unetbench/cluster/selfcheck_calls.py); it needs no dataset, so the dataset check is skipped then
unless --data names one.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..core.errors import UserError, run_cli
from ..core.parsing import positive_int
from ..core.paths import REPO_ROOT
from ..core.registry import BACKENDS, JOBS, PROFILES
from .selfcheck_jobs import JOB_SCRIPT, SelfCheckPlan, run_on_device
from .shell_flags import FlagReader, HelpRequested
from .site_settings import Site, SiteError

ROOT = Path(os.environ.get("UNETBENCH_ROOT") or REPO_ROOT)
PROG = "./verify_enhanced.sh"
PACKAGES = {"numpy": "numpy", "torch": "torch", "yaml": "pyyaml", "PIL": "pillow", "matplotlib": "matplotlib",
            "tqdm": "tqdm", "unetbench": "unetbench"}
SLURM_TOOLS = ("sbatch", "squeue", "scontrol", "scancel")
MIN_PYTHON = (3, 9)     # as pyproject.toml's requires-python


def usage() -> str:
    return f"""usage: {PROG} [--backends LIST] [--site FILE] [--local] [--data DIR | --no-data]
                            [--full] [--results-dir DIR] [--on-device [--devices N] [--profile P]]
  --backends LIST   comma-separated, from: {' '.join(BACKENDS)} (default: all)
  --site FILE       site settings to check (default: site.env beside this script)
  --local           no Slurm: skip the site.env and sbatch/squeue checks (--on-device: run here)
  --data DIR        prepared dataset folder (default: data/)
  --no-data         skip the dataset check (run_benchmark.sh prepares it next)
  --full            verify the dataset arrays' sha256 checksums, not only their sizes
  --results-dir DIR folder the results go under (default: runs/); must be writable
  --on-device       run the self-check on each backend's devices: one short job per backend
                    (every device call the benchmark makes, in minutes; no dataset needed)
  --devices N       ranks per self-check job (default 1; more checks the process group too)
  --profile P       the profile whose calls the self-check makes: parity or fast (default fast)"""


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
    readables = ["scripts/lib_job.sh", "scripts/lib_container.sh", "scripts/registry.sh", JOB_SCRIPT,
                 *(JOBS[j].entry for j in JOBS), *(f"unet_{b}.py" for b in backends)]
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
            site = Site.load(site_path)
            problems = site.problems([*backends, "compare"])
        except SiteError:
            report.fail(f"site.env: {site_path} does not source cleanly (bash -n {site_path})")
        else:
            if problems:
                report.fail(f"site.env {site_path}: {'; '.join(problems)}")
            else:
                report.ok(f"site.env {site_path} complete for {' '.join(backends)} compare")
                for name in backends:
                    box = site.container(name)
                    if box is not None:   # its problems (runtime, image) are among the ones above
                        where = "image readable" if box.image_file else "image pulled on the node"
                        report.ok(f"{name}: runs in its container, {box.runtime} {box.image} ({where}; "
                                  f"--on-device checks torch sees the device inside it)")
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


def main(argv: Sequence[str] | None = None) -> int:
    reader = FlagReader(PROG, "see --help")
    for name in ("--backends", "--site", "--data", "--results-dir", "--device", "--devices", "--profile"):
        reader.value(name, name[2:].replace("-", "_"))
    for name in ("--local", "--no-data", "--full", "--on-device"):
        reader.switch(name, name[2:].replace("-", "_"))
    try:
        values, rest = reader.read(list(sys.argv[1:] if argv is None else argv))
    except HelpRequested:
        print(usage())
        return 0
    if rest:
        raise UserError("unknown option '--' (see --help)")
    if "device" in values:
        raise UserError(f"--device was replaced by --on-device, which checks every device call in a short job: "
                        f"{PROG} --on-device --backends {values['device']} (add --local to run it here)")
    backends = values.get("backends", ",".join(BACKENDS)).split(",")
    for name in backends:
        if name not in BACKENDS:
            raise UserError(f"unknown backend '{name}'; valid backends: {' '.join(BACKENDS)}")
    on_device = bool(values.get("on_device"))
    if not on_device and ("devices" in values or "profile" in values):
        raise UserError("--devices and --profile belong to --on-device (the self-check); add --on-device")
    devices = positive_int(values.get("devices", "1"), "--devices")
    profile = values.get("profile")
    if profile is not None and profile not in PROFILES:
        raise UserError(f"--profile must be one of: {' '.join(PROFILES)}, not '{profile}'")
    data = Path(values.get("data", ROOT / "data"))
    site_path = Path(values.get("site", ROOT / "site.env"))
    results_dir = Path(values.get("results_dir", ROOT / "runs"))

    report = Report()
    check_files(report, backends)
    check_python(report, backends)
    if values.get("no_data"):
        report.skip("dataset (prepared next)")
    elif on_device and "data" not in values:
        report.skip("dataset (the self-check needs none; --data DIR checks one)")
    else:
        check_dataset(report, data, bool(values.get("full")))
    if values.get("local"):
        report.skip("site.env (local run)")
        report.skip("sbatch/squeue (local run)")
    else:
        check_site(report, site_path, backends)
    check_results_dir(report, results_dir)
    if on_device:
        if report.failures:
            # A job would fail on what failed here, after its wait in the queue.
            report.skip("on-device self-check: fix the checks marked FAIL above first")
        else:
            run_on_device(SelfCheckPlan(backends=backends, local=bool(values.get("local")), root=ROOT,
                                        log_root=results_dir, site_path=site_path, devices=devices,
                                        profile=profile), report)
    if report.failures:
        print(f"verify: {report.failures} check(s) failed")
        return 1
    print("verify: all checks passed")
    return 0


if __name__ == "__main__":
    run_cli(main)
