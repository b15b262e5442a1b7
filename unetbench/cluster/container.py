"""A backend's jobs inside the site's container: Apptainer/Singularity, or Pyxis/Enroot on srun.

    # site.env (docs/cluster.md, "Containers"):
    CUDA_CONTAINER=/images/pytorch-25.01.sif      CUDA_CONTAINER_RUNTIME=apptainer
    CUDA_CONTAINER='nvcr.io#nvidia/pytorch:25.01-py3'   CUDA_CONTAINER_RUNTIME=pyxis

    box = Container("cuda", "apptainer", "/images/pytorch.sif")
    launch, env = submission(box, root, training_folders(train_args))   # the words; the job's environment

What the job needs is decided here, once, on the login node by ./run_benchmark.sh and
./verify_enhanced.sh --on-device (or in a hand-submitted job by the host's python3:
``python3 -m unetbench.cluster.jobinfo container BACKEND [training flags]``), and handed
to the batch shell in its environment (``job_env``): scripts/lib_job.sh puts the words in front
of every Python it starts, and the training records the image (training/environment.py).

* The binds are derived, never typed: the checkout, the folder the job starts in, and the
  folders its training reads and writes (dataset, results, compile cache, --weights, --config),
  each once (a folder inside another bound one is covered by it).
* The device reaches the container by the backend's own words (``BackendSpec.container_devices``:
  ``--nv`` for CUDA, ``--rocm`` for ROCm under Apptainer; device nodes elsewhere).
* Apptainer/Singularity: ``apptainer exec FLAGS --bind=F ... --pwd=CWD IMAGE`` in front of the
  command (inside srun when the job has several tasks). Pyxis: ``--container-image``,
  ``--container-mounts``, ``--container-workdir`` on the srun line, so a Pyxis job always starts
  its Python through srun; ``--container-name`` (one per job) makes its steps share one import.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ..core.atomic import atomic_write_text
from ..core.container_record import ENV_ARGS, ENV_DIGEST, ENV_IMAGE, ENV_RUNTIME
from ..core.errors import UserError
from ..core.registry import BACKENDS

KEYS = ("CONTAINER", "CONTAINER_RUNTIME")      # site.env: <GROUP>_CONTAINER, <GROUP>_CONTAINER_RUNTIME
FAMILIES = {"apptainer": "apptainer", "singularity": "apptainer", "pyxis": "pyxis"}  # runtime -> its CLI
URI = re.compile(r"^[a-z][a-z0-9+.-]*://")    # docker://, oras://, library:// (Apptainer pulls these)
# A Pyxis image is a squashfs file when it is a path, else a registry reference (enroot imports it).
PYXIS_FILE = re.compile(r"^(/|\./|\.\./)")
# One container per job: its steps (helpers, training) reuse the import. Per job, because Pyxis
# reuses a named container whatever --container-image says, and by default keeps it on the node
# after the job (container_scope=global): the job shell puts its id in and removes it at the end.
PYXIS_NAME = "unetbench_$SLURM_JOB_ID"


@dataclass(frozen=True)
class Container:
    backend: str
    runtime: str          # apptainer, singularity or pyxis
    image: str            # a .sif file or sandbox folder, an Apptainer URI, a squashfs file or registry reference

    @property
    def family(self) -> str:
        return FAMILIES[self.runtime]

    @property
    def image_file(self) -> Optional[Path]:
        """The image as a file or folder on the shared file system; None for a reference pulled by the runtime."""
        if self.family == "apptainer":
            return None if URI.match(self.image) else Path(self.image)
        return Path(self.image) if PYXIS_FILE.match(self.image) else None

    def launch(self, binds: Sequence[str], workdir: str) -> list[str]:
        """The words in front of the command (Apptainer), or the srun options (Pyxis)."""
        devices = list(BACKENDS[self.backend].container_devices.get(self.family, ()))
        if self.family == "apptainer":
            return [self.runtime, "exec", *devices, *(f"--bind={b}" for b in binds), f"--pwd={workdir}", self.image]
        mounts = ",".join([*(f"{b}:{b}" for b in binds), *devices])
        return [f"--container-image={self.image}", f"--container-name={PYXIS_NAME}",
                f"--container-mounts={mounts}", f"--container-workdir={workdir}"]


def from_site(site, backend: str) -> Optional[Container]:
    """The backend's container from site.env; None when its group names none."""
    group = BACKENDS[backend].site_group
    image = (site.scalar(f"{group}_CONTAINER") or "").strip()
    runtime = (site.scalar(f"{group}_CONTAINER_RUNTIME") or "").strip()
    return Container(backend, runtime, image) if image or runtime else None


def problems(container: Container) -> list[str]:
    """What is wrong with the settings themselves (no file system, no PATH)."""
    group = BACKENDS[container.backend].site_group
    if container.runtime not in FAMILIES:
        return [f"{group}_CONTAINER_RUNTIME must be one of {', '.join(FAMILIES)}"
                + (f", not '{container.runtime}'" if container.runtime else f" when {group}_CONTAINER is set")]
    if not container.image:
        return [f"{group}_CONTAINER is empty but {group}_CONTAINER_RUNTIME={container.runtime}: name the image "
                f"(a .sif file, or for pyxis a squashfs file or registry reference), or empty both"]
    if re.search(r"\s", container.image):
        return [f"{group}_CONTAINER='{container.image}' holds a space: the runtimes split their options at spaces; "
                "move or link the image to a path without one"]
    if container.family == "pyxis" and "," in container.image:
        return [f"{group}_CONTAINER='{container.image}' holds a comma, which srun takes as a list separator"]
    return []


def availability(container: Container) -> list[str]:
    """What stops the container here: the runtime not on PATH, the image missing or unreadable."""
    group = BACKENDS[container.backend].site_group
    found = []
    if container.family == "apptainer" and shutil.which(container.runtime) is None:
        found.append(f"{container.runtime} not found on PATH ({group}_CONTAINER_RUNTIME): load it "
                     f"(e.g. module load {container.runtime}) before ./run_benchmark.sh, and in {group}_SETUP")
    if container.family == "pyxis":
        srun = shutil.which("srun")
        if srun is None:
            found.append(f"srun not found on PATH: {group}_CONTAINER_RUNTIME=pyxis starts the container through srun")
        elif not pyxis_installed(srun):
            found.append(f"{group}_CONTAINER_RUNTIME=pyxis, but `srun --help` lists no --container-image: "
                         "this cluster's srun has no Pyxis plugin; use apptainer or singularity with a .sif image")
    path = container.image_file
    if path is not None:
        if not path.is_absolute():
            found.append(f"{group}_CONTAINER='{container.image}' must be an absolute path (the job starts elsewhere)")
        elif not path.exists():
            found.append(f"{group}_CONTAINER: image {path} not found (build or pull it there, or fix the path)")
        elif not os.access(path, os.R_OK) or (path.is_dir() and not os.access(path, os.X_OK)):
            found.append(f"{group}_CONTAINER: image {path} is not readable by you (chmod a+r, or ask its owner)")
    return found


@functools.lru_cache(maxsize=None)
def pyxis_installed(srun: str) -> bool:
    """Pyxis adds its options to srun's own --help (a SPANK plugin's options are listed there).
    Asked once per srun: the plan, the preflight and the self-check all check the site."""
    try:
        return "--container-image" in subprocess.run([srun, "--help"], capture_output=True, text=True,
                                                      timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False


# ---- binds ----------------------------------------------------------------------------------
def minimal_binds(paths: Iterable[Path | str]) -> list[str]:
    """Absolute folders, each once, none inside another (bound with its parent already)."""
    folders = sorted({os.path.normpath(os.path.abspath(str(p))) for p in paths})
    kept: list[str] = []
    for folder in folders:
        if not any(folder == k or folder.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(folder)
    for folder in kept:
        if re.search(r"[\s,:]", folder):
            raise UserError(f"{folder} holds a space, comma or colon, which container bind lists cannot carry; "
                            "use a path without one (or a link to it)")
    return kept


def training_folders(args: Sequence[str]) -> list[Path]:
    """The folders a training with these flags reads and writes: dataset, results, compile
    cache, starting weights, config file (the training reads it again inside the container)."""
    from ..core.settings import parse_settings
    settings, parsed = parse_settings(list(args), prog="training flags", raising=True)
    folders = [Path(settings.splits).parent, Path(settings.out)]
    folders += [Path(settings.compile_cache)] if settings.compile_cache else []
    folders += [Path(settings.weights).parent] if settings.weights else []
    folders += [Path(parsed.config).parent] if parsed.config else []
    return folders


def job_binds(root: Path, workdir: Path, folders: Sequence[Path], create: bool) -> list[str]:
    """The binds of a job: checkout, start folder and ``folders``; with ``create`` the missing
    ones are made (a runtime refuses to bind a folder that does not exist)."""
    binds = minimal_binds([root, workdir, *folders])
    if create:
        for folder in binds:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as err:
                raise UserError(f"cannot create {folder} to bind into the container: {err.strerror}") from None
    return binds


# ---- the image's identity ------------------------------------------------------------------
def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "unetbench" / "image_sha256.json"


def digest(container: Container) -> str:
    """sha256:<hex> of an image file (kept per path, size and mtime, so a 20 GB image is read
    once); the @sha256 of a pinned reference; "" where none can be known here."""
    pinned = re.search(r"@(sha256:[0-9a-f]{64})$", container.image)
    if pinned:
        return pinned.group(1)
    path = container.image_file
    if path is None or not path.is_file():
        return ""          # a tag pulled on the node, or a sandbox folder: recorded by name only
    stat = path.stat()
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    cache = _cache_file()
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(str(path)) if isinstance(known, dict) else None
    if isinstance(entry, dict) and {k: entry.get(k) for k in stamp} == stamp and entry.get("sha256"):
        return f"sha256:{entry['sha256']}"
    if stat.st_size > 1 << 30:
        print(f"checksumming {path} ({stat.st_size / (1 << 30):.1f} GiB; once per image version)", file=sys.stderr)
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            sha.update(block)
    known = known if isinstance(known, dict) else {}
    known[str(path)] = {**stamp, "sha256": sha.hexdigest()}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, json.dumps(known, indent=1))
    except (OSError, UserError):
        pass        # no cache: the next submission reads the image again, nothing worse
    return f"sha256:{sha.hexdigest()}"


def job_env(container: Container, launch: Sequence[str], image_digest: str) -> dict[str, str]:
    """What the batch shell reads (scripts/lib_job.sh) and the training records."""
    return {ENV_RUNTIME: container.runtime, ENV_IMAGE: container.image, ENV_DIGEST: image_digest,
            ENV_ARGS: shlex.join(launch)}


@functools.lru_cache(maxsize=None)
def _digest_once(container: Container) -> str:
    return digest(container)   # one submission's jobs share their image: read it once


def submission(container: Container, root: Path, folders: Sequence[Path], dry_run: bool = False
               ) -> tuple[list[str], dict[str, str]]:
    """For one job started from this folder: its launch words and the environment to submit it
    with (``job_env``). A dry run creates no folder and reads no image."""
    workdir = Path.cwd()
    binds = job_binds(root, workdir, folders, create=not dry_run)
    launch = container.launch(binds, str(workdir))
    return launch, job_env(container, launch, "" if dry_run else _digest_once(container))


def shown(container: Container, launch: Sequence[str], command: Sequence[str]) -> str:
    """The container part of a job's command line, for run_benchmark.sh --dry-run: ``command``
    after the launch words, started by the image's Python (as scripts/lib_job.sh names it)."""
    python = os.environ.get("UNETBENCH_PYTHON") or "python3"
    return shlex.join([*(launch if container.family == "apptainer" else ["srun", *launch]), python, *command])
