"""AMD Instinct GPUs through PyTorch's ROCm build. spec.py (torch-free: registry entry, amd-smi,
the job's GPUs, MIOpen's per-job databases), backend.py (RocmBackend: torch.cuda on HIP),
energy.py (amdsmi's energy accumulator, else amd-smi's)."""
