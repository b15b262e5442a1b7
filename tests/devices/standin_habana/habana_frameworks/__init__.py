"""STAND-IN for Intel's habana_frameworks, for contract tests only (no Gaudi exists here).

It records every call into ``CALLS`` so tests can check the order in which the suite drives
the HPU API; tensors stay on the CPU.
"""
CALLS = []
