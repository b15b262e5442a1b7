"""STAND-IN device for the tests: a pretend "npu", laid out as a device folder of
unetbench/devices/ is (spec.py, backend.py, energy.py), kept outside the package and brought in
with UNETBENCH_DEVICE_PACKAGES=standin_npu (tests/devices on PYTHONPATH).

It computes on the CPU but goes through everything a real accelerator does: an
AcceleratorBackend over its own device module (``torch.npu``, installed by backend.py: it
counts synchronisations and events), a device tool on PATH (``npu-smi``, written by the test),
its job's devices in NPU_VISIBLE_DEVICES, an environment variable set before torch, and an
energy counter. tests/devices/test_new_device.py runs it through the loop, the monitor, the
energy meter and the report.
"""
