"""Intel Gaudi, in lazy mode and in eager mode: the same card, group and tools. spec.py
(torch-free: both registry entries, hl-smi, the job's cards), backend.py (HpuLazyBackend,
HpuEagerBackend), bridge.py (loading habana_frameworks in the mode asked for, HPU graphs, the
lazy-mode graph cut), energy.py (HLML's energy counter, hl-smi's power)."""
