"""The CPU: the baseline, and the backend every test runs. spec.py (torch-free), backend.py,
energy.py (RAPL), host.py (CPU model, resident memory)."""
