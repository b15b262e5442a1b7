"""``python3 -m unetbench.launch``: the command's name; its code is unetbench/training/launch.py.

Run as a module, not imported: the command keeps its short name while its code lives in its layer.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("unetbench.training.launch", run_name="__main__", alter_sys=True)
