"""The Gaudi backends' registry entries, their tool hl-smi and the job's cards (torch-free).

    visible_modules({"HABANA_VISIBLE_MODULES": "2,3"})   # [2, 3]: the module ids ranks take, in order
"""

from __future__ import annotations

from importlib import metadata
from typing import Mapping

from ..spec import BackendSpec, DeviceTool, SbatchDefaults, id_list

VISIBLE_MODULES_VAR = "HABANA_VISIBLE_MODULES"   # the job's cards (Slurm's GRES plugin or the site sets it)
MODULE_ID_VAR = "HLS_MODULE_ID"                  # the card the bridge acquires (its hccl module sets it per LOCAL_RANK)
MODE_VAR = "PT_HPU_LAZY_MODE"                    # the bridge's execution mode, read once when it loads
BRIDGE_PACKAGE = "habana-torch-plugin"           # the bridge's distribution: its metadata holds the version


def visible_modules(env: Mapping[str, str]) -> list[int] | None:
    """The module ids of the job's cards, in the order ranks take them ("2,3" or "2 3"); None
    when the variable is unset or not a list of ids (every card of the node is then the job's)."""
    return id_list(env.get(VISIBLE_MODULES_VAR, ""))


def bridge_version() -> str | None:
    """The bridge's version from its package metadata (``habana_frameworks.torch`` has no
    ``__version__`` of its own in current releases), None where the package is not installed."""
    try:
        return metadata.version(BRIDGE_PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def bridge_software() -> str | None:
    version = bridge_version()
    return f"{BRIDGE_PACKAGE} {version}" if version else None


# Rows are keyed by module id, the id HABANA_VISIBLE_MODULES (the job's cards) uses.
HL_SMI = DeviceTool(
    name="hl-smi",
    sample=lambda interval: ["hl-smi", "-Q", "module_id,utilization.aip,memory.used,power.draw,temperature.aip",
                             "-f", "csv,noheader,nounits", "-l", str(interval)],
    describe=["hl-smi", "-Q", "index,name,bus_id,driver_version,memory.total", "-f", "csv,noheader"],
    driver=["hl-smi", "-Q", "driver_version", "-f", "csv,noheader"],
    job_devices=visible_modules, job_devices_var=VISIBLE_MODULES_VAR,
)


def _gaudi(mode: str, order: int, color: str) -> BackendSpec:
    """Intel Gaudi in one of its two execution modes: the same card, group and tools."""
    value = "1" if mode == "lazy" else "0"
    return BackendSpec(
        name=f"gaudi_{mode}", title=f"Intel Gaudi in {mode} mode ({MODE_VAR}={value})", package=__package__,
        order=order, site_group="GAUDI", dist_backend="hccl", needs_device=True, tool=HL_SMI,
        visible_devices_var=VISIBLE_MODULES_VAR, software=bridge_software, color=color,
        # The cards' device nodes, bound explicitly: present also where a site mounts a minimal /dev
        # (Apptainer's default binds all of /dev, as enroot does for Pyxis; the Gaudi user space is the image's).
        container_devices={"apptainer": ("--bind=/dev/accel",)},
        # The Gaudi bridge reads the mode once, at import (torch >= 2.5 autoloads it with torch).
        env_before_python={MODE_VAR: value},
        note="The Gaudi GRES name differs between sites (hpu, gaudi, gpu): set GAUDI_GRES in site.env.",
        sbatch=SbatchDefaults(time="02:00:00", cpus=8, mem="64G"))


SPECS = (_gaudi("lazy", 20, "#0068b5"), _gaudi("eager", 21, "#00a3e0"))
