"""A device is one folder you can read whole: its backend names, tools and variables are code
only there (unetbench/devices/<device>/), and the rest of the suite asks the registry.

The scan reads string literals (f-string parts included), not docstrings or comments: prose
may name a device, code may not. "cpu" is exempt: torch calls host memory and host time "cpu"
too (map_location, the profiler's CPU time), whatever the CPU backend is called.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from helpers import REPO

from unetbench.core.registry import BACKENDS
from unetbench.devices.catalog import device_packages

PACKAGE = REPO / "unetbench"
DEVICES = PACKAGE / "devices"
HOST_WORD = "cpu"
# A Slurm job with every device variable set, so that each spec's per-job defaults show their names.
A_JOB = {"SLURM_JOB_ID": "1", "SLURM_NODEID": "0", "USER": "u", **{spec.visible_devices_var: "0" for spec in
                                                                   BACKENDS.values() if spec.visible_devices_var}}


def device_words() -> dict[str, set[str]]:
    """device folder -> what only it may write: backend names, tool, environment variables."""
    words: dict[str, set[str]] = {}
    for spec in BACKENDS.values():
        folder = spec.package.rpartition(".")[2]
        own = words.setdefault(folder, set())
        own.add(spec.name)
        own.update(spec.env_before_python)
        own.update(spec.shown_vars)
        own.update(spec.job_env(A_JOB))
        if spec.visible_devices_var:
            own.add(spec.visible_devices_var)
        if spec.tool is not None:
            own.add(spec.tool.name)
            if spec.tool.job_devices_var:
                own.add(spec.tool.job_devices_var)
    return words


def literals(path: Path):
    """(line, text) of every string literal of a module that is not a docstring."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def names_in(text: str, words: set[str]) -> set[str]:
    """The words of ``words`` that ``text`` holds as words; never "cpu" (see the module docstring)."""
    return {w for w in words - {HOST_WORD} if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)}


def offenders(words: dict[str, set[str]], package: Path = PACKAGE) -> list[str]:
    everything = set().union(*words.values())
    devices = package / "devices"
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(devices).parts if path.is_relative_to(devices) else ()
        own = words.get(rel[0], set()) if len(rel) > 1 else set()
        for line, text in literals(path):
            for word in sorted(names_in(text, everything - own)):
                found.append(f"{path.relative_to(package.parent)}:{line}: {word!r} in {text[:60]!r}")
    return found


def test_backend_names_and_device_tools_are_code_only_in_their_device_folder():
    words = device_words()
    assert {"cuda", "gaudi_lazy", "nvidia-smi", "hl-smi", "HABANA_VISIBLE_MODULES"} <= set().union(*words.values())
    assert offenders(words) == []


def test_the_scan_finds_a_device_named_outside_its_folder(tmp_path):
    # The scan itself can fail: in a package laid out as ours, a tool named in training code and
    # another device's backend named in a device folder are found; a docstring and a device's
    # own names in its folder are not.
    package = tmp_path / "unetbench"
    for rel, source in {
        "training/probe.py": '"""Samples nvidia-smi."""\nTOOL = f"{1} nvidia-smi"\n',
        "devices/cuda/probe.py": 'OWN = "nvidia-smi"\nOTHER = "gaudi_lazy"\n',
        "devices/base.py": 'DEVICE = "cpu"\n',
    }.items():
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_text(source)
    assert offenders(device_words(), package) == [
        "unetbench/devices/cuda/probe.py:2: 'gaudi_lazy' in 'gaudi_lazy'",
        "unetbench/training/probe.py:2: 'nvidia-smi' in ' nvidia-smi'"]


def test_the_batch_shell_knows_no_device():
    words = set().union(*device_words().values())
    for script in [REPO / "scripts" / "lib_job.sh", REPO / "scripts" / "lib_python.sh",
                   REPO / "run_benchmark.sh", REPO / "verify_enhanced.sh"]:
        code = [line.split("#", 1)[0] for line in script.read_text().splitlines()]
        hits = [(script.name, line) for line in code if names_in(line, words)]
        assert hits == []


def test_each_device_is_a_folder_whose_spec_the_login_node_reads_without_torch():
    packages = device_packages(env={})
    for package in packages:
        folder = DEVICES / package.rpartition(".")[2]
        assert (folder / "spec.py").is_file() and (folder / "backend.py").is_file(), folder
    code = (f"import sys, importlib; [importlib.import_module(p + '.spec') for p in {packages!r}]; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "False"
