"""Where the package and the checkout it runs from are: the one definition.

    from unetbench.core.paths import REPO_ROOT    # the folder of run_benchmark.sh, unet_*.py, site.env
"""

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent   # .../unetbench
REPO_ROOT = PACKAGE_ROOT.parent
