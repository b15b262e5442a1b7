"""Every device the suite knows: the specs of unetbench/devices/<device>/spec.py, in their order.

    from unetbench.devices.catalog import BACKENDS      # usually through unetbench.core.registry
    UNETBENCH_DEVICE_PACKAGES=mysite.devices.npu python3 unet_npu.py ...   # a device kept outside

A device is a folder here with a torch-free ``spec.py`` (``SPECS``: its BackendSpec entries)
and a ``backend.py`` (its Backend classes, each naming its spec); adding one is that folder
and ``python3 -m unetbench.scaffold``. A site may keep a device of its own outside this
package: UNETBENCH_DEVICE_PACKAGES lists importable packages laid out the same way (the
tests' stand-in device comes in so). Imports no torch: the login node reads this.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path

from .spec import BackendSpec

EXTRA_PACKAGES_VAR = "UNETBENCH_DEVICE_PACKAGES"


def device_packages(env=os.environ) -> list[str]:
    """The folders here that hold a spec.py, then the extra packages the environment names."""
    here = Path(__file__).parent
    own = [f"{__package__}.{m.name}" for m in pkgutil.iter_modules([str(here)])
           if m.ispkg and (here / m.name / "spec.py").exists()]
    extra = [name.strip() for name in env.get(EXTRA_PACKAGES_VAR, "").split(",") if name.strip()]
    return own + extra


def collect(packages: list[str]) -> dict[str, BackendSpec]:
    specs: list[BackendSpec] = []
    for package in packages:
        try:
            module = importlib.import_module(f"{package}.spec")
        except ImportError as err:
            raise ImportError(f"device package {package!r} has no importable spec module ({err}); "
                              f"check {EXTRA_PACKAGES_VAR}") from err
        specs.extend(module.SPECS)
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"backend names defined twice: {', '.join(duplicates)}")
    return {spec.name: spec for spec in sorted(specs, key=lambda s: (s.order, s.name))}


BACKENDS: dict[str, BackendSpec] = collect(device_packages())
