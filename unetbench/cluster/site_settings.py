"""Site settings (site.env): read them, check them, turn them into sbatch options.

    site = Site.load("site.env")                 # SiteError when bash cannot source it
    site.problems(["cuda", "compare"])           # ["CUDA_GRES is not set (...)", ...]
    site.sbatch_options("cuda", devices_per_node=4)   # ["--partition=gpu", "--gres=gpu:a100:4", ...]

    python3 -m unetbench.cluster.site_settings site.env cuda 4    # prints the sbatch options one per line

site.env is a Bash file of variables per group (site.env.example): <GROUP>_PARTITION, _ACCOUNT,
_QOS, _GRES, _CPUS, _MEM, _TIME, _SETUP and optionally the array <GROUP>_SBATCH_EXTRA=(...) and,
for a backend, its container: <GROUP>_CONTAINER and _CONTAINER_RUNTIME (cluster/container.py).
Groups and their fallbacks come from unetbench/core/registry.py (PREPARE_* and COMPARE_* fall back
to CPU_*). Bash itself reads the file, so it may hold anything Bash allows; Python only asks
for the variables it needs.

Several devices per node: GRES, CPUS and MEM describe the share of ONE device (one task).
CPUS is per task already (--cpus-per-task); for G devices per node the count of the first
GRES entry and MEM (per node in Slurm) are multiplied by G: gpu:1 -> gpu:G, gpu:a100:1 ->
gpu:a100:G, gpu -> gpu:G, 16G -> (16*G)G; MEM=0 (the whole node) stays 0. A backend without
devices (CPU) never has its GRES scaled, only MEM.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ..core.errors import UserError
from ..core.registry import BACKENDS, JOBS, site_groups
from . import container as containers
from .site_formats import format_problem

KEYS = ("PARTITION", "ACCOUNT", "QOS", "GRES", "CPUS", "MEM", "TIME", "SETUP")
SBATCH_FLAGS = {"PARTITION": "--partition", "ACCOUNT": "--account", "QOS": "--qos", "GRES": "--gres",
                "CPUS": "--cpus-per-task", "MEM": "--mem", "TIME": "--time"}
ALWAYS_REQUIRED = ("PARTITION", "CPUS", "MEM", "TIME")
EXTRA = "SBATCH_EXTRA"
PRICE = "PRICE_PER_HOUR"   # optional: price of one device-hour (any currency); the report's cost columns
SCALARS_OUTSIDE_GROUPS = ("SIGNAL_LEAD_S",)

# Sources the file in a clean bash and prints what Python asks for, NUL-separated:
# name, "unset" | "scalar" VALUE | "array" COUNT VALUE...
_DUMP = r'''
set +u
source "$1" >/dev/null || exit 97
shift
for name in "$@"; do
  if ! declare -p "$name" >/dev/null 2>&1; then printf '%s\0unset\0' "$name"; continue; fi
  if [[ "$(declare -p "$name" 2>/dev/null)" == "declare -a"* ]]; then
    declare -n _ub_ref="$name"
    printf '%s\0array\0%s\0' "$name" "${#_ub_ref[@]}"
    [ "${#_ub_ref[@]}" -eq 0 ] || printf '%s\0' "${_ub_ref[@]}"
    unset -n _ub_ref
  else
    printf '%s\0scalar\0%s\0' "$name" "${!name}"
  fi
done
'''


class SiteError(UserError):
    """site.env is missing or does not source."""


def _all_groups() -> list[str]:
    groups = []
    for kind in [*BACKENDS, *JOBS]:
        for group in site_groups(kind):
            if group not in groups:
                groups.append(group)
    return groups


@dataclass
class Site:
    path: Path
    scalars: dict = field(default_factory=dict)      # name -> value, for set scalars
    arrays: dict = field(default_factory=dict)       # name -> [values], for set arrays

    @classmethod
    def load(cls, path: str | Path) -> "Site":
        path = Path(path)
        if not path.is_file():
            raise SiteError(f"site settings {path} not found")
        names = ([f"{g}_{k}" for g in _all_groups() for k in (*KEYS, EXTRA, PRICE, *containers.KEYS)]
                 + list(SCALARS_OUTSIDE_GROUPS))
        try:
            proc = subprocess.run(["bash", "-c", _DUMP, "site.env", str(path), *names],
                                  capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as err:
            raise SiteError(f"cannot read {path} with bash: {err}") from None
        if proc.returncode != 0:
            detail = proc.stderr.decode(errors="replace").strip().splitlines()
            raise SiteError(f"{path} does not source cleanly (bash -n {path})"
                            + (f": {detail[-1]}" if detail else ""))
        site = cls(path)
        fields = proc.stdout.decode(errors="replace").split("\0")
        i = 0
        while i + 1 < len(fields):
            name, kind = fields[i], fields[i + 1]
            if kind == "scalar":
                site.scalars[name] = fields[i + 2]
                i += 3
            elif kind == "array":
                count = int(fields[i + 2])
                site.arrays[name] = fields[i + 3:i + 3 + count]
                i += 3 + count
            else:
                i += 2
        return site

    # -- lookup -------------------------------------------------------------------------------
    def var(self, kind: str, key: str) -> Optional[str]:
        """The name of the variable that holds KEY for this job kind (group, then fallback)."""
        for group in site_groups(kind):
            name = f"{group}_{key}"
            if name in self.scalars or name in self.arrays:
                return name
        return None

    def get(self, kind: str, key: str) -> str:
        name = self.var(kind, key)
        if name is None:
            return ""
        return self.scalars[name] if name in self.scalars else (self.arrays[name] or [""])[0]

    def scalar(self, name: str) -> Optional[str]:
        return self.scalars.get(name)

    # -- checks -------------------------------------------------------------------------------
    def problems(self, kinds: Iterable[str]) -> list[str]:
        """One line per problem for these job kinds (backends, prepare, compare)."""
        found, seen = [], set()
        for kind in kinds:
            group = site_groups(kind)[0]
            if group in seen:
                continue
            seen.add(group)
            for key in KEYS:
                name = self.var(kind, key)
                if name is None:
                    found.append(f"{group}_{key} is not set (set it, empty if your cluster does not use it)")
                    continue
                value = self.get(kind, key)
                if _required(kind, key) and not value:
                    found.append(f"{name} is empty (needed for {kind} jobs)")
                if re.search(r"<.*>", value):
                    found.append(f"{name} still holds a placeholder: {value}")
                elif format_problem(name, key, value):
                    found.append(format_problem(name, key, value))
            found += self.container_problems(kind)
            price = self.scalars.get(f"{group}_{PRICE}", "")
            if price and _price(price) is None:
                found.append(f"{group}_{PRICE} must be the price of one device-hour, a number 0 or more (e.g. 2.50), "
                             f"got {price!r}; leave it empty for no cost columns")
        return list(dict.fromkeys(found))   # a group's values serve several kinds: each problem once

    def container(self, kind: str) -> Optional["containers.Container"]:
        """The backend's container (<GROUP>_CONTAINER, _CONTAINER_RUNTIME); None for none or a non-backend job."""
        return containers.from_site(self, kind) if kind in BACKENDS else None

    def container_problems(self, kind: str) -> list[str]:
        """The container settings' own problems, then what stops it on this machine (runtime, image)."""
        container = self.container(kind)
        if container is None:
            return []
        return containers.problems(container) or containers.availability(container)

    def price_per_hour(self, kind: str) -> Optional[float]:
        """The price of one device-hour for this job kind's group, or None (unset, empty, invalid)."""
        return _price(self.scalars.get(f"{site_groups(kind)[0]}_{PRICE}", ""))

    # -- sbatch options -----------------------------------------------------------------------
    def sbatch_options(self, kind: str, devices_per_node: int = 1) -> list[str]:
        """--partition=... --time=... for one job of KIND; GRES and MEM scaled per device.

        Raises UserError when GRES or MEM cannot be scaled to ``devices_per_node``."""
        group = site_groups(kind)[0]
        options = []
        for key, option in SBATCH_FLAGS.items():
            value = self.get(kind, key)
            if not value:
                continue
            if devices_per_node != 1 and key == "GRES" and kind in BACKENDS and BACKENDS[kind].needs_device:
                value = scale_gres(value, devices_per_node, f"{group}_GRES")
            elif devices_per_node != 1 and key == "MEM":
                value = scale_mem(value, devices_per_node, f"{group}_MEM")
            options.append(f"{option}={value}")
        extra = f"{group}_{EXTRA}"
        if extra in self.arrays:
            options += self.arrays[extra]
        elif self.scalars.get(extra):
            options.append(self.scalars[extra])
        return options


def _price(text: str) -> Optional[float]:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 and value != float("inf") else None


def _required(kind: str, key: str) -> bool:
    if key in ALWAYS_REQUIRED:
        return True
    return key == "GRES" and kind in BACKENDS and BACKENDS[kind].needs_device


def scale_gres(gres: str, per_node: int, name: str = "GRES") -> str:
    """The GRES for ``per_node`` devices: the first entry's count times it (no count = 1)."""
    first, comma, rest = gres.partition(",")
    kind, colon, count = first.rpartition(":")
    if not colon or not re.fullmatch(r"[+-]?[0-9]+", count):
        kind, count = first, "1"          # gpu, gpu:a100: no count given, which means one
    if not re.fullmatch(r"[1-9][0-9]*", count):
        raise UserError(f"{name}='{gres}' cannot be scaled to {per_node} devices per node "
                        "(the device count must be a positive whole number)")
    return f"{kind}:{int(count) * per_node}{comma}{rest}"


def scale_mem(mem: str, per_node: int, name: str = "MEM") -> str:
    """MEM times ``per_node``, keeping its unit (16G -> 64G for 4); 0 stays 0."""
    match = re.fullmatch(r"([0-9]+)([KMGTkmgt]?)", mem)
    if not match:
        raise UserError(f"{name}='{mem}' cannot be scaled to {per_node} devices per node "
                        "(a size like 64G or 3000M)")
    return f"{int(match.group(1)) * per_node}{match.group(2)}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 3) or args[0] in ("-h", "--help"):
        print("usage: python3 -m unetbench.cluster.site_settings SITE_ENV KIND [DEVICES_PER_NODE]", file=sys.stderr)
        return 2
    site = Site.load(args[0])
    problems = site.problems([args[1]])
    if problems:
        raise UserError(f"{args[0]} is incomplete: " + "; ".join(problems))
    print("\n".join(site.sbatch_options(args[1], int(args[2]) if len(args) == 3 else 1)))
    return 0


if __name__ == "__main__":
    from ..core.errors import run_cli
    run_cli(main)
