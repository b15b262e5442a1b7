#!/usr/bin/env bash
# One command on the login node: preflight, dataset, one training job per backend, comparison.
#
#   ./run_benchmark.sh --backends cuda,gaudi_lazy,gaudi_eager        # on a Slurm cluster (site.env)
#   ./run_benchmark.sh --backends cuda --epochs 5 --profile fast --dry-run
#   ./run_benchmark.sh --demo --local                                # a first try anywhere, ~1 minute
#   ./run_benchmark.sh --backends cuda --nodes 2 --devices-per-node 4  # DDP over 8 GPUs, run "cuda_2x4"
#
# ./run_benchmark.sh --help lists every flag; docs/cluster.md is the cluster guide. The program
# is unetbench/cluster/submit.py; this wrapper only finds Python (UNETBENCH_PYTHON, default python3).
set -euo pipefail
UNETBENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib_python.sh
source "$UNETBENCH_ROOT/scripts/lib_python.sh"
run_module unetbench.cluster.submit "$@"
