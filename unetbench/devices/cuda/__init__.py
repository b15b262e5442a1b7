"""NVIDIA GPUs through CUDA. spec.py (torch-free: registry entry, nvidia-smi), backend.py
(CudaBackend and its side stream), energy.py (NVML's energy counter)."""
