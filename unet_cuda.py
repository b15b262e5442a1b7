#!/usr/bin/env python3
"""Train the benchmark UNet on an NVIDIA GPU (CUDA).

    python3 unet_cuda.py [--splits data/dataset_splits.json] [--out results/] [--profile parity|fast]

All logic lives in unetbench.train; this file only fixes the backend. --help lists every flag.
"""

from unetbench.errors import run_cli
from unetbench.launch import main

if __name__ == "__main__":
    run_cli(lambda argv: main(argv, backend_name="cuda"))
