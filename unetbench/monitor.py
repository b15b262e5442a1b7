"""``python3 -m unetbench.monitor``: the command's name; its code is unetbench/cluster/monitor.py.

Run as a module, not imported: the command keeps its short name while its code lives in its layer.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("unetbench.cluster.monitor", run_name="__main__", alter_sys=True)
