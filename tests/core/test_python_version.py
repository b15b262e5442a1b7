"""make venv stops before pip on a Python older than pyproject.toml's requires-python (RHEL 9's
python3 is 3.9; torch 2.14 needs 3.10): python -m pytest tests/core/test_python_version.py"""

from __future__ import annotations

import shutil
import subprocess
import sys

from helpers import REPO


def test_an_older_python_is_stopped_before_pip_with_both_versions_and_the_fix(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "check_python.py", tmp_path / "scripts")
    (tmp_path / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.99"\n')
    proc = subprocess.run([sys.executable, tmp_path / "scripts" / "check_python.py"], capture_output=True, text=True)
    assert proc.returncode == 2
    have = ".".join(map(str, sys.version_info[:3]))
    assert f"is Python {have}; this suite and its torch need Python 3.99 or newer" in proc.stderr
    assert "make demo PYTHON=python3.11" in proc.stderr and "module load python" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_this_python_passes_and_the_makefile_checks_before_making_the_venv():
    proc = subprocess.run([sys.executable, REPO / "scripts" / "check_python.py"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    recipe = (REPO / "Makefile").read_text().split("$(VENV)/.installed: pyproject.toml\n", 1)[1]
    assert recipe.index("scripts/check_python.py") < recipe.index("-m venv") < recipe.index("pip install")
