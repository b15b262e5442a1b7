# shellcheck shell=bash
# What the batch shell (scripts/lib_job.sh) must know before Python can be asked.
# Generated from unetbench/core/registry.py by `python3 -m unetbench.scaffold`: edit the registry, not this file.

# Exit codes of unetbench/core/errors.py (read by the scripts that source this file).
# shellcheck disable=SC2034
UB_EXIT_USAGE=2
# shellcheck disable=SC2034
UB_EXIT_INTERRUPTED=3

# ub_site_groups KIND -> the site.env groups its settings are read from, first match wins
ub_site_groups() {
  case "$1" in
    cuda) echo "CUDA" ;;
    gaudi_lazy) echo "GAUDI" ;;
    gaudi_eager) echo "GAUDI" ;;
    cpu) echo "CPU" ;;
    prepare) echo "PREPARE CPU" ;;
    compare) echo "COMPARE CPU" ;;
    *) return 1 ;;
  esac
}

# ub_env_before_python BACKEND -> NAME=VALUE words to export before any Python starts
ub_env_before_python() {
  case "$1" in
    gaudi_lazy) echo "PT_HPU_LAZY_MODE=1" ;;
    gaudi_eager) echo "PT_HPU_LAZY_MODE=0" ;;
    *) ;;
  esac
}
