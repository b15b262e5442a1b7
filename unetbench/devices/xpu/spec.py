"""The XPU backend's registry entry, its tool xpu-smi, the job's cards and the device hierarchy (torch-free).

    job_cards({"ZE_AFFINITY_MASK": "2,3"})                        # [2, 3]: cards as Slurm and xpu-smi number them
    xpu_job_env({"SLURM_JOB_ID": "42", "ZE_AFFINITY_MASK": "1"})  # COMPOSITE + PCI order: the mask's integers are cards
    hierarchy({})                                                 # "FLAT": Level Zero's default

Facts this file relies on (each decides where a job runs or what a figure counts):
- Level Zero's default hierarchy, FLAT, makes each stack of a multi-stack card (the Max 1550
  has two) a device of its own; COMPOSITE makes each card one device. ZE_AFFINITY_MASK is read
  in the mode in effect, and ZE_ENABLE_PCI_ID_DEVICE_ORDER=1 orders devices by PCI address
  (Level Zero spec, core/PROG.rst: "Device Hierarchy", "Affinity Mask").
- Slurm's AutoDetect=oneapi counts whole cards in PCI order (slurmd sets COMPOSITE and PCI order
  for itself only) and gives a job ZE_AFFINITY_MASK=<card indices> (SchedMD/slurm
  src/plugins/gpu/oneapi/gpu_oneapi.c, gres.conf(5)). Under FLAT the same integers would name
  stacks, so a job with the mask gets COMPOSITE and PCI order unless its site chose otherwise.
- xpu-smi numbers cards the same way: both generations set COMPOSITE and PCI order before they
  enumerate (intel/xpumanager v1.3.7 core/src/device/gpu/gpu_device_stub.cpp, v2.0.0
  hal/core/driver.cpp), so its DeviceId is Slurm's card index.
- ``xpu-smi dump``: 1.x takes ``-d``, ``-m/--metrics`` and ``-i`` (interval); 2.0 takes ``-d``
  and long options only (``--metrics``, ``--interval``); the interval defaults to 1 s in both
  (cli/src/comlet_dump.cpp v1.3.7, ial/cmn/cmd_dump.cpp v2.0.0). Metric 0's header is "GPU
  Utilization (%)" in 1.2, "Average % utilization of all GPU Engines" in 1.3 and
  "utilization.gpu (%)" in 2.0, so rows are read by column name. 2.0 writes CSV only when its
  stdin is not a terminal (STDIN_ISATTY in cmd_dump.cpp).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from ..spec import BackendSpec, DeviceTool, SbatchDefaults, id_list

MASK_VAR = "ZE_AFFINITY_MASK"                    # the job's devices (Slurm's intel_gpu_env or the site)
HIERARCHY_VAR = "ZE_FLAT_DEVICE_HIERARCHY"       # FLAT (default), COMPOSITE or COMBINED
PCI_ORDER_VAR = "ZE_ENABLE_PCI_ID_DEVICE_ORDER"  # 1: devices in PCI address order
DEFAULT_HIERARCHY = "FLAT"
COMPOSITE = "COMPOSITE"


def job_cards(env: Mapping[str, str]) -> list[int] | None:
    """ZE_AFFINITY_MASK as the card indices Slurm gave the job ("1,3" -> [1, 3]); None when the
    variable is unset or not a plain list of integers (a site's "0.1" names stack 1 of card 0)."""
    return id_list(env.get(MASK_VAR, ""))


def hierarchy(env: Mapping[str, str]) -> str:
    """The device hierarchy Level Zero applies: what one torch device is."""
    return env.get(HIERARCHY_VAR) or DEFAULT_HIERARCHY


def xpu_job_env(env: Mapping[str, str]) -> dict[str, str]:
    """Inside a Slurm job that has a device mask: whole cards in PCI order, the way Slurm counted
    them when it wrote the mask; under Level Zero's default (FLAT) the same integers would pick
    stacks, and a 1-card job on a node of Max 1550s would get one stack of the node's first card.
    Nothing outside a job or without the mask. The caller applies these with setdefault: a site
    that exported FLAT keeps it."""
    if not env.get("SLURM_JOB_ID") or not env.get(MASK_VAR):
        return {}
    return {HIERARCHY_VAR: COMPOSITE, PCI_ORDER_VAR: "1"}


# The monitor's five fields -> the names xpu-smi's dump header gives them (compared in lower
# case): 1.2, 1.3 and 2.0 each name some metrics differently; 2.0 drops the units with nounits.
XPU_SMI_COLUMNS = (
    ("deviceid",),
    ("gpu utilization (%)", "average % utilization of all gpu engines", "utilization.gpu (%)", "utilization.gpu"),
    ("gpu memory used (mib)", "memory.used (mib)", "memory.used"),
    ("gpu power (w)", "power.draw (w)", "power.draw"),
    ("gpu core temperature (celsius degree)", "temperature.gpu (c)", "temperature.gpu"),
)


def xpu_smi_rows(lines: Iterable[str]) -> Iterator[list[str]]:
    """``xpu-smi dump`` CSV -> [card, utilisation %, memory used MiB, power W, temperature C] per
    data line, columns found by name in the latest header. Values pass through as printed
    (space-padded, "N/A", empty): the monitor keeps numbers and blanks the rest. Lines before a
    header, and lines with fewer fields than it (messages), are skipped."""
    where: list[int | None] | None = None
    width = 0
    for line in lines:
        fields = [field.strip() for field in line.strip().split(",")]
        names = [field.lower() for field in fields]
        if "deviceid" in names:
            where = [next((names.index(name) for name in choice if name in names), None) for choice in XPU_SMI_COLUMNS]
            width = len(fields)
            continue
        if where is None or len(fields) < width:
            continue
        yield [fields[i] if i is not None else "" for i in where]


def xpu_smi_sample(interval: int) -> list[str]:
    """Every card (-d -1), metrics 0 utilisation, 18 memory used, 1 power, 3 core temperature:
    ``-d`` and ``--metrics`` are spelt the same by xpu-smi 1.x and 2.0."""
    argv = ["xpu-smi", "dump", "-d", "-1", "--metrics", "0,18,1,3"]
    # The interval's flag is the one option the two generations do not share (1.x: -i only,
    # 2.0: --interval only). Both default to 1 s, the monitor's default, so the flag is left out
    # then; another interval takes 1.x's -i, the generation Data Center GPU Max nodes run.
    return argv if interval == 1 else [*argv, "-i", str(interval)]


XPU_SMI = DeviceTool(
    name="xpu-smi",
    sample=xpu_smi_sample,
    # Device ID, Device Name, Driver Version, PCI BDF Address, Memory Physical Size (1.x and 2.0
    # number these properties alike); a header line comes first.
    describe=["xpu-smi", "discovery", "--dump", "1,2,8,11,16"],
    # ``discovery --dump 8`` prints a header line, then the version per card (quoted by 1.x): the
    # first card's, unquoted, as the one line DeviceTool.driver_version takes.
    driver=["sh", "-c", "xpu-smi discovery --dump 8 | sed -n 2p | tr -d '\"'"],
    job_devices=job_cards, job_devices_var=MASK_VAR, rows=xpu_smi_rows,
)


def xpu_software() -> str | None:
    """The oneAPI (SYCL compiler) version this torch was built with: ``torch.version.xpu``,
    set in PyTorch's XPU builds only (inside a job, where torch is there)."""
    try:
        import torch
    except ImportError:
        return None
    version = getattr(torch.version, "xpu", None)
    return f"xpu {version}" if version else None


SPECS = (
    BackendSpec(
        name="xpu", title="Intel Data Center GPUs (XPU)", package=__package__, order=12, site_group="XPU",
        dist_backend="xccl", needs_device=True, tool=XPU_SMI, visible_devices_var=MASK_VAR,
        job_env=xpu_job_env, shown_vars=(HIERARCHY_VAR, PCI_ORDER_VAR), software=xpu_software, color="#0071c5",
        # Asked for by name (--backends xpu): a site without Intel GPUs keeps its default run.
        in_cluster_default=False,
        note="Slurm: AutoDetect=oneapi counts whole cards and sets ZE_AFFINITY_MASK; the GRES name is the site's (XPU_GRES).",
        sbatch=SbatchDefaults(time="02:00:00", cpus=8, mem="64G", gres="gpu:1")),
)
