#!/usr/bin/env python3
"""Prepare the shared, verified dataset every backend trains on.

Run::

    python3 prepare_dataset.py --synthetic --num-images 40 --crop 64x96 --out data   # tiny demo set
    python3 prepare_dataset.py                        # the seed's CARLA Vision Dataset from Kaggle into data/
    python3 prepare_dataset.py --source-dir carla-vd.zip      # a local copy, prepared the same way
    python3 prepare_dataset.py --help                 # every registered dataset: Kaggle slug and defaults

Flags, sources, credentials and layouts: docs/prepare.md (``--help`` shows the defaults, taken
from unetbench/core/registry.py). Output format: docs/dataset_format.md. The code is unetbench/data/prepare/.
"""

from unetbench.core.errors import run_cli
from unetbench.data.prepare.cli import main

if __name__ == "__main__":
    run_cli(main, stop_cleanly=True)
