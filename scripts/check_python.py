"""Stop `make venv` before pip when this Python is older than the project needs (one line, the fix).

    python3 scripts/check_python.py      # exit 0, or 2 with a message naming both versions

Reads the minimum from pyproject.toml's requires-python, the one place it is written. Runs on
any Python 3 (no tomllib before 3.11): the line is found by its key.
"""

import re
import sys
from pathlib import Path

text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
found = re.search(r'^requires-python\s*=\s*">=\s*(\d+)\.(\d+)"', text, re.M)
if found is None:
    sys.exit("error: pyproject.toml has no requires-python = \">=X.Y\" line")
need = (int(found[1]), int(found[2]))
if sys.version_info[:2] < need:
    have = ".".join(map(str, sys.version_info[:3]))
    wanted = ".".join(map(str, need))
    print(f"error: {sys.executable} is Python {have}; this suite and its torch need Python {wanted} or newer. "
          f"Use a newer one: make demo PYTHON=python3.11 (or: module load python, then make demo)", file=sys.stderr)
    sys.exit(2)
