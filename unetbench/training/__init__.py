"""Training: the one loop and what it owns (evaluation, timing, checkpoints, run state, results,
energy windows, traces), the distributed set-up, the launcher and the benchmark.

Importing this package imports nothing: results.py and the other torch-free modules stay
readable on a login node."""
