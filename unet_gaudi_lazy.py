#!/usr/bin/env python3
"""Train on Intel Gaudi in lazy mode (PT_HPU_LAZY_MODE=1).

    python3 unet_gaudi_lazy.py [--splits data/dataset_splits.json] [--out results/] [--profile parity|fast]

All logic lives in unetbench (the loop: unetbench/training/trainer.py); this file only names the backend.
--help lists every flag.
Generated from unetbench/core/registry.py by `python3 -m unetbench.scaffold`: edit the registry, not this file.
"""

from unetbench.training.entry import run_backend

if __name__ == "__main__":
    run_backend("gaudi_lazy")
