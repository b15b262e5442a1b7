"""Write the files that repeat registry facts where Python cannot be asked at run time.

    python3 -m unetbench.scaffold            # (re)write them from unetbench/core/registry.py
    python3 -m unetbench.scaffold --check    # exit 1 and list the stale ones (the tests run this)

Why generated: ``#SBATCH`` lines are read by sbatch before any code runs, and a batch job
must know its site.env group before its SETUP can provide Python. So, from the registry:
``submit_<backend>.sh`` and ``submit_<job>.sh`` (the #SBATCH defaults), ``unet_<backend>.py``
(the training entry points) and ``scripts/registry.sh`` (what scripts/lib_job.sh needs: site
groups, environment set before Python, exit codes). Edit the registry, never these files.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

from ..core import errors
from ..core.atomic import atomic_write_text
from ..core.paths import REPO_ROOT
from ..core.registry import (
    BACKENDS,
    DEFAULT_SIGNAL_LEAD_S,
    JOBS,
    BackendSpec,
    JobSpec,
    SbatchDefaults,
    site_groups,
)

ROOT = REPO_ROOT
GENERATED = "Generated from unetbench/core/registry.py by `python3 -m unetbench.scaffold`: edit the registry, not this file."

_FIND_ROOT = """set -euo pipefail
# Slurm runs a copy of this script from its spool folder, so find the checkout another way.
_root=${UNETBENCH_ROOT:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")" && pwd)}}
[ -f "$_root/scripts/lib_job.sh" ] || { echo "error: no scripts/lib_job.sh under $_root; submit from the unetbench checkout or set UNETBENCH_ROOT" >&2; exit %(usage)d; }
UNETBENCH_ROOT=$(cd "$_root" && pwd)
# shellcheck source=scripts/lib_job.sh
source "$UNETBENCH_ROOT/scripts/lib_job.sh"
"""


def _sbatch_lines(name: str, sbatch: SbatchDefaults, training: bool, note: str) -> str:
    lines = [f"--job-name=unetbench_{name}", "--output=%x_%j.out", "--open-mode=append"]
    if training:
        lines += ["--requeue", f"--signal=B:USR1@{DEFAULT_SIGNAL_LEAD_S}"]
    lines += [f"--time={sbatch.time}", "--nodes=1", "--ntasks-per-node=1" if training else "--ntasks=1"]
    out = [f"#SBATCH {line}" for line in lines]
    if note:
        out.append(f"# {note}")
    if sbatch.gres:
        out.append(f"#SBATCH --gres={sbatch.gres}")
    out += [f"#SBATCH --cpus-per-task={sbatch.cpus}", f"#SBATCH --mem={sbatch.mem}"]
    return "\n".join(out) + "\n"


def submit_script(spec: BackendSpec | JobSpec) -> str:
    training = isinstance(spec, BackendSpec)
    if training:
        what = (f"# Training on {spec.title} with unet_{spec.name}.py: one device by default;\n"
                "# several (DDP, one task per device) with --ntasks-per-node=G and the site's GRES for G devices.\n")
        call = f"train_job {spec.name} \"$@\"\n"
    else:
        what = f"# {spec.title}; flags go to {spec.entry}.\n"
        call = f"{spec.name}_job \"$@\"\n"
    return ("#!/usr/bin/env bash\n" + what +
            "# Normally submitted by ./run_benchmark.sh, which adds the site.env settings on the command line\n"
            f"# (they override these defaults); a plain `sbatch submit_{spec.name}.sh [flags]` works from the checkout too.\n"
            f"# {GENERATED}\n"
            + _sbatch_lines(spec.name, spec.sbatch, training, getattr(spec, "note", ""))
            + _FIND_ROOT % {"usage": errors.EXIT_USAGE} + call)


def entry_script(spec: BackendSpec) -> str:
    return f'''#!/usr/bin/env python3
"""Train on {spec.title}.

    python3 unet_{spec.name}.py [--splits data/dataset_splits.json] [--out results/] [--profile parity|fast]

All logic lives in unetbench (the loop: unetbench/training/trainer.py); this file only names the backend.
--help lists every flag.
{GENERATED}
"""

from unetbench.training.entry import run_backend

if __name__ == "__main__":
    run_backend("{spec.name}")
'''


def registry_sh() -> str:
    kinds = [*BACKENDS, *JOBS]
    groups = "\n".join(f'    {kind}) echo "{" ".join(site_groups(kind))}" ;;' for kind in kinds)
    env = "\n".join(f'    {name}) echo "{" ".join(f"{k}={v}" for k, v in spec.env_before_python.items())}" ;;'
                    for name, spec in BACKENDS.items() if spec.env_before_python)
    return f"""# shellcheck shell=bash
# What the batch shell (scripts/lib_job.sh) must know before Python can be asked.
# {GENERATED}

# Exit codes of unetbench/core/errors.py (read by the scripts that source this file).
# shellcheck disable=SC2034
UB_EXIT_USAGE={errors.EXIT_USAGE}
# shellcheck disable=SC2034
UB_EXIT_INTERRUPTED={errors.EXIT_INTERRUPTED}

# ub_site_groups KIND -> the site.env groups its settings are read from, first match wins
ub_site_groups() {{
  case "$1" in
{groups}
    *) return 1 ;;
  esac
}}

# ub_env_before_python BACKEND -> NAME=VALUE words to export before any Python starts
ub_env_before_python() {{
  case "$1" in
{env}
    *) ;;
  esac
}}
"""


def generated_files() -> dict[Path, tuple[str, int]]:
    """path -> (content, mode)."""
    files = {ROOT / "scripts" / "registry.sh": (registry_sh(), 0o644)}
    for spec in [*BACKENDS.values(), *JOBS.values()]:
        files[ROOT / f"submit_{spec.name}.sh"] = (submit_script(spec), 0o755)
    for spec in BACKENDS.values():
        files[ROOT / f"unet_{spec.name}.py"] = (entry_script(spec), 0o755)
    return files


def stale_files() -> list[Path]:
    stale = []
    for path, (content, mode) in generated_files().items():
        executable = bool(mode & 0o100)
        if (not path.is_file() or path.read_text(encoding="utf-8") != content
                or bool(path.stat().st_mode & 0o100) != executable):
            stale.append(path)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m unetbench.scaffold", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1 if any)")
    args = parser.parse_args(argv)
    stale = stale_files()
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run python3 -m unetbench.scaffold)")
        return 1 if stale else 0
    files = generated_files()
    for path in stale:
        content, mode = files[path]
        atomic_write_text(path, content)   # keeps the umask's permissions
        if mode & 0o100:
            os.chmod(path, path.stat().st_mode | 0o111)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    errors.run_cli(main)
