"""One source of truth: the registry drives every tool, generated files are current, no cycles.

A new device is one folder (tests/devices/test_new_device.py runs a stand-in one through every
consumer); here: no backend name or device tool written as code outside its device's folder.
"""

from __future__ import annotations

import ast
import dataclasses
import re

import pytest
from helpers import REPO

from unetbench.cluster import scaffold
from unetbench.core import registry


def test_generated_scripts_are_up_to_date():
    stale = scaffold.stale_files()
    assert stale == [], f"run python3 -m unetbench.scaffold: {stale}"


def test_every_backend_class_carries_its_own_registry_entry():
    from unetbench.devices.base import Backend, backend_class
    for name, spec in registry.BACKENDS.items():
        cls = backend_class(name)
        assert issubclass(cls, Backend) and cls.spec is spec
        assert not getattr(cls, "__abstractmethods__", None), f"{cls.__name__} leaves abstract methods"


def test_the_backend_base_class_says_what_a_backend_must_provide():
    from unetbench.devices.base import Backend
    assert {"device", "synchronize", "memory_bytes", "environment", "software_check"} <= Backend.__abstractmethods__

    class Incomplete(Backend):
        spec = registry.BACKENDS["cpu"]

    with pytest.raises(TypeError):
        Incomplete("parity")


def test_every_model_entry_resolves():
    for spec in registry.MODELS.values():
        assert callable(registry.resolve(spec.builder)) and spec.input_multiple > 0
        assert spec.input_multiple >= 1


def _package_imports() -> dict[str, set[str]]:
    """module -> unetbench modules it imports anywhere in its source (function bodies too)."""
    root = REPO / "unetbench"
    graph = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(REPO).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = module if rel.name == "__init__" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                if stem.startswith("unetbench"):
                    for alias in node.names:
                        candidate = f"{stem}.{alias.name}"
                        targets.add(candidate if (root.parent / (candidate.replace(".", "/") + ".py")).exists()
                                    else stem)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("unetbench")}
        graph[module] = {t for t in targets if t != module}
    return graph


def test_no_import_cycles_in_the_package():
    graph = _package_imports()
    assert "unetbench.training.trainer" in graph and "unetbench.data.prepare.api" in graph
    cycles = []

    def visit(node, stack, on_stack, done):
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_stack:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, stack, on_stack, done)
        on_stack.discard(node)
        stack.pop()
        done.add(node)

    done: set = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [], set(), done)
    # A package's __init__ that re-exports a submodule lazily is not a cycle worth naming.
    cycles = [c for c in cycles if not any(m.count(".") == 1 and m.endswith(("prepare", "report")) for m in c)]
    assert cycles == []


# What each layer may import besides itself, along the data flow (README, "The pieces").
LAYERS = {
    "core": {"devices.catalog", "devices.spec"},   # the registry indexes the device specs (torch-free)
    "devices": {"core"},
    "data": {"core"},
    "models": {"core"},
    "training": {"core", "devices", "data", "models"},
    "cluster": {"core", "devices", "data", "models", "training"},
    "report": {"core", "training.results", "cluster.site_settings"},   # the results format; site prices
}


def _allowed(importer: str, target: str) -> bool:
    layer, other = importer.split(".")[1], target.split(".", 1)[1] if "." in target else ""
    if other.split(".")[0] == layer or not other:
        return True
    return any(other == allowed or other.startswith(allowed + ".") for allowed in LAYERS[layer])


def test_each_layer_imports_only_the_layers_below_it():
    graph = _package_imports()
    assert set(LAYERS) == {p.name for p in (REPO / "unetbench").iterdir() if (p / "__init__.py").exists()}
    in_layers = {a: targets for a, targets in graph.items() if a.count(".") >= 1 and a.split(".")[1] in LAYERS}
    wrong = sorted(f"{a} -> {b}" for a, targets in in_layers.items() for b in targets if not _allowed(a, b))
    assert wrong == []
    assert not _allowed("unetbench.data.loaders", "unetbench.training.stop_signals")   # the check can fail


def test_the_package_top_level_holds_its_layers_and_the_commands_runners():
    top = sorted(p.name for p in (REPO / "unetbench").iterdir() if p.suffix == ".py")
    assert top == ["__init__.py", "bench.py", "launch.py", "monitor.py", "scaffold.py"]


def test_the_login_node_tools_do_not_import_torch():
    # run_benchmark.sh plans and submits from a login node; torch may be absent or slow there.
    import subprocess
    import sys
    code = ("import sys, unetbench.cluster.submit, unetbench.cluster.preflight, unetbench.cluster.site_settings, unetbench.cluster.scaffold; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("fact, home, pattern", [
    ("backend list", "unetbench/core/registry.py", r"""["']cuda["'],\s*["']gaudi_lazy["']|cuda gaudi_lazy gaudi_eager"""),
    ("ignore index", "unetbench/data/prepared.py", r"IGNORE_INDEX\s*=\s*255|ignore_index=255"),
    ("schema version", "unetbench/training/results.py", r"SCHEMA_VERSION\s*=\s*\d|\"schema_version\":\s*\d"),
    ("Lyft Kaggle dataset", "unetbench/core/registry.py", r"kumaresanmanickavelu/lyft-udacity-challenge"),
    ("default Kaggle dataset", "unetbench/core/registry.py", r"maelstro/carla-vd-dataset"),
    ("the seed's class colours", "unetbench/data/prepare/classes.py", r"\(45,\s*60,\s*150\)"),
    ("split names", "unetbench/data/prepared.py", r"""\(\s*["']train["'],\s*["']val["'],\s*["']test["']\s*\)"""),
])
def test_each_fact_is_written_once_in_the_code(fact, home, pattern):
    sources = [p for p in (REPO / "unetbench").rglob("*") if p.suffix in (".py", ".json")]
    sources += list(REPO.glob("*.sh")) + list((REPO / "scripts").glob("*.sh")) + list(REPO.glob("*.py"))
    generated = set(scaffold.generated_files())
    hits = [f"{p.relative_to(REPO)}" for p in sources if p not in generated
            for _ in re.finditer(pattern, p.read_text())]
    assert [h for h in hits if h != home] == [], f"{fact} written outside {home}"


def test_settings_are_the_only_list_of_training_flags():
    from unetbench.cluster import submit_options
    from unetbench.core import settings as config
    valued, switches = submit_options.train_flag_names()
    names = {f.name for f in dataclasses.fields(config.Settings)}
    assert {config.flag(n) for n in names - submit_options.CHAIN_SETTINGS} == set(valued + switches) - {"--config"}


def test_an_entry_point_sets_the_backend_environment_before_torch_is_imported():
    import subprocess
    import sys
    code = ("import os, sys; os.environ['PT_HPU_LAZY_MODE'] = '0'; import unetbench.training.entry as e; "
            "e.prepare_environment('gaudi_lazy'); print('torch' in sys.modules, os.environ['PT_HPU_LAZY_MODE'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.split() == ["False", "1"]
