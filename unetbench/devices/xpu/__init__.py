"""Intel Data Center GPUs (XPU) through PyTorch's XPU build. spec.py (torch-free: registry entry,
xpu-smi, the job's cards, the device hierarchy), backend.py (XpuBackend), energy.py (Level Zero
Sysman's or the kernel's energy counter for this rank's card or stack)."""
