#!/usr/bin/env bash
# Dataset preparation as a CPU job (run_benchmark.sh --prepare-job); flags go to prepare_dataset.py.
# Normally submitted by ./run_benchmark.sh, which adds the site.env settings on the command line
# (they override these defaults); a plain `sbatch submit_prepare.sh [flags]` works from the checkout too.
# Generated from unetbench/core/registry.py by `python3 -m unetbench.scaffold`: edit the registry, not this file.
#SBATCH --job-name=unetbench_prepare
#SBATCH --output=%x_%j.out
#SBATCH --open-mode=append
#SBATCH --time=01:00:00
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
set -euo pipefail
# Slurm runs a copy of this script from its spool folder, so find the checkout another way.
_root=${UNETBENCH_ROOT:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")" && pwd)}}
[ -f "$_root/scripts/lib_job.sh" ] || { echo "error: no scripts/lib_job.sh under $_root; submit from the unetbench checkout or set UNETBENCH_ROOT" >&2; exit 2; }
UNETBENCH_ROOT=$(cd "$_root" && pwd)
# shellcheck source=scripts/lib_job.sh
source "$UNETBENCH_ROOT/scripts/lib_job.sh"
prepare_job "$@"
