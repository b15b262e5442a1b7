"""unetbench: benchmark UNet segmentation training across accelerators.

The top-level scripts (prepare_dataset.py, unet_*.py, compare_results.py) are thin
entry points over this package; each piece of logic lives here exactly once.
"""

__version__ = "0.1.0"
