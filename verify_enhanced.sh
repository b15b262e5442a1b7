#!/usr/bin/env bash
# Preflight: is this checkout, environment, dataset and site.env ready to run the benchmark?
#
#   ./verify_enhanced.sh                         # everything, all backends, data/ and site.env
#   ./verify_enhanced.sh --backends cpu --local  # no Slurm, no site.env
#   ./verify_enhanced.sh --full                  # also checksum the dataset arrays
#   ./verify_enhanced.sh --on-device --backends cuda     # plus a 2-minute self-check job on the GPU
#
# One line per check: [ OK ], [WARN], [SKIP] or [FAIL]; exit 0 when nothing failed, 1 when a
# check failed, 2 for a bad flag. The program is unetbench/cluster/preflight.py; this wrapper only
# finds Python (UNETBENCH_PYTHON, default python3).
set -euo pipefail
UNETBENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib_python.sh
source "$UNETBENCH_ROOT/scripts/lib_python.sh"
run_module unetbench.cluster.preflight "$@"
