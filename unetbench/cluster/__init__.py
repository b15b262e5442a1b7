"""Slurm orchestration: run_benchmark.sh (submit), verify_enhanced.sh (preflight), site.env,
what a batch job asks Python, the generated scripts (scaffold), the benchmark matrix."""
