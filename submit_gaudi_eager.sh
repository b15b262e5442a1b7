#!/usr/bin/env bash
# Training on Intel Gaudi in eager mode (PT_HPU_LAZY_MODE=0) with unet_gaudi_eager.py: one device by default;
# several (DDP, one task per device) with --ntasks-per-node=G and the site's GRES for G devices.
# Normally submitted by ./run_benchmark.sh, which adds the site.env settings on the command line
# (they override these defaults); a plain `sbatch submit_gaudi_eager.sh [flags]` works from the checkout too.
# Generated from unetbench/core/registry.py by `python3 -m unetbench.scaffold`: edit the registry, not this file.
#SBATCH --job-name=unetbench_gaudi_eager
#SBATCH --output=%x_%j.out
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --signal=B:USR1@300
#SBATCH --time=02:00:00
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
# The Gaudi GRES name differs between sites (hpu, gaudi, gpu): set GAUDI_GRES in site.env.
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
set -euo pipefail
# Slurm runs a copy of this script from its spool folder, so find the checkout another way.
_root=${UNETBENCH_ROOT:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")" && pwd)}}
[ -f "$_root/scripts/lib_job.sh" ] || { echo "error: no scripts/lib_job.sh under $_root; submit from the unetbench checkout or set UNETBENCH_ROOT" >&2; exit 2; }
UNETBENCH_ROOT=$(cd "$_root" && pwd)
# shellcheck source=scripts/lib_job.sh
source "$UNETBENCH_ROOT/scripts/lib_job.sh"
train_job gaudi_eager "$@"
