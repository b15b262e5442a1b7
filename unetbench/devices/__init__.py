"""Devices: what each accelerator is to the suite, one folder per device.

    cpu/ cuda/ gaudi/        spec.py (torch-free: site.env group, sbatch defaults, device tool,
                             variables set before Python, distributed backend), backend.py (the
                             Backend class), energy.py (its meter), and what else only it needs
    base.py                  the Backend interface the loop asks; AcceleratorBackend for a device
                             with a torch module of its own (torch.cuda, torch.hpu)
    spec.py                  BackendSpec, DeviceTool, SbatchDefaults: the torch-free description
    catalog.py               collects every folder's spec (and UNETBENCH_DEVICE_PACKAGES)
    energy.py, events.py     what every meter and every step timer's event share
    before_torch.py          a backend's environment, set before torch is imported

Adding a device: a folder here laid out as the others, then ``python3 -m unetbench.scaffold``
(README.md, "Adding a device or a model").
"""
