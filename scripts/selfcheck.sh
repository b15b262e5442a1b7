#!/usr/bin/env bash
# The on-device self-check as a batch job, one per backend: ./verify_enhanced.sh --on-device submits it
# with the site's options and waits for it (unetbench/cluster/selfcheck_jobs.py).
#
#   sbatch --ntasks-per-node=2 --gres=gpu:2 scripts/selfcheck.sh cuda [--profile parity|fast]
#
# The job's body is scripts/lib_job.sh's selfcheck_job: SETUP, the job header, then
# `python3 -m unetbench.cluster.selfcheck` on each of its devices (srun with several tasks).
# Exit status: the self-check's (0 passed, 1 a check failed, 2 a bad flag).
#SBATCH --job-name=unetbench_selfcheck
#SBATCH --output=%x_%j.out
#SBATCH --time=00:15:00
# (the self-check's time limit: two minutes of checks, plus SETUP, imports and a first compile
# on a slow node; verify_enhanced.sh leaves the site's training limit out so that this one applies)
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
set -euo pipefail
# Slurm runs a copy of this script from its spool folder, so find the checkout another way.
_root=${UNETBENCH_ROOT:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}
[ -f "$_root/scripts/lib_job.sh" ] || { echo "error: no scripts/lib_job.sh under $_root; submit from the unetbench checkout or set UNETBENCH_ROOT" >&2; exit 2; }
UNETBENCH_ROOT=$(cd "$_root" && pwd)
# shellcheck source=scripts/lib_job.sh
source "$UNETBENCH_ROOT/scripts/lib_job.sh"
selfcheck_job "$@"
