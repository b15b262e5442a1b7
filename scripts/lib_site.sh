# shellcheck shell=bash
# Site settings (site.env) shared by run_benchmark.sh, verify_enhanced.sh and the batch jobs.
#
#   source scripts/lib_site.sh
#   site_load site.env                 # sources it; returns 1 when the file is missing
#   site_check cuda compare            # prints one line per problem; returns 1 if any
#   site_sbatch_opts cuda              # fills the array SITE_SBATCH_OPTS
#
# site.env is a bash file of variables per group: CUDA_*, GAUDI_* (both Gaudi modes), CPU_*,
# PREPARE_* and COMPARE_* (each PREPARE_/COMPARE_ variable left unset falls back to CPU_*).
# Per group: PARTITION ACCOUNT QOS GRES CPUS MEM TIME SETUP, and optionally the array
# <GROUP>_SBATCH_EXTRA=(--constraint=a100 ...). See site.env.example.

UNETBENCH_BACKENDS=(cuda gaudi_lazy gaudi_eager cpu)
SITE_KEYS=(PARTITION ACCOUNT QOS GRES CPUS MEM TIME SETUP)

# backend or job kind -> site.env group
site_group() {
  case "$1" in
    cuda) echo CUDA ;;
    gaudi_lazy | gaudi_eager) echo GAUDI ;;
    cpu) echo CPU ;;
    prepare) echo PREPARE ;;
    compare) echo COMPARE ;;
    *) return 1 ;;
  esac
}

is_backend() {
  local b
  for b in "${UNETBENCH_BACKENDS[@]}"; do [ "$b" = "$1" ] && return 0; done
  return 1
}

site_load() {
  local file=$1
  [ -f "$file" ] || return 1
  # shellcheck source=/dev/null
  source "$file"
}

# site_var GROUP KEY -> the name of the variable that holds it ('' when unset everywhere).
site_var() {
  local group=$1 key=$2 name
  name="${group}_${key}"
  if [ -n "${!name+set}" ]; then echo "$name"; return 0; fi
  case "$group" in
    PREPARE | COMPARE)
      name="CPU_${key}"
      if [ -n "${!name+set}" ]; then echo "$name"; return 0; fi ;;
  esac
  echo ""
}

site_get() {
  local name
  name=$(site_var "$1" "$2")
  [ -n "$name" ] && printf '%s' "${!name}"
  return 0
}

# Keys that must hold a value; the others must be set but may be empty (no account, no QOS).
_site_required() {
  local group=$1 key=$2
  case "$key" in
    PARTITION | CPUS | MEM | TIME) return 0 ;;
    GRES) [ "$group" = CUDA ] || [ "$group" = GAUDI ] ;;
    *) return 1 ;;
  esac
}

# site_check KIND... : kinds are backends or prepare/compare. One line per problem on stdout.
site_check() {
  local kind group key name value problems=0 seen=" "
  for kind in "$@"; do
    group=$(site_group "$kind") || { echo "unknown job kind '$kind'"; problems=1; continue; }
    case "$seen" in *" $group "*) continue ;; esac
    seen="$seen$group "
    for key in "${SITE_KEYS[@]}"; do
      name=$(site_var "$group" "$key")
      if [ -z "$name" ]; then
        echo "${group}_${key} is not set (set it, empty if your cluster does not use it)"
        problems=1
        continue
      fi
      value=${!name}
      if _site_required "$group" "$key" && [ -z "$value" ]; then
        echo "$name is empty (needed for $kind jobs)"
        problems=1
      fi
      case "$value" in
        *'<'*'>'*) echo "$name still holds a placeholder: $value"; problems=1 ;;
      esac
    done
  done
  return "$problems"
}

# site_sbatch_opts KIND -> SITE_SBATCH_OPTS=(--partition=... --time=... ...)
site_sbatch_opts() {
  local group key value extra_name
  group=$(site_group "$1")
  SITE_SBATCH_OPTS=()
  for key in PARTITION ACCOUNT QOS GRES CPUS MEM TIME; do
    value=$(site_get "$group" "$key")
    [ -n "$value" ] || continue
    case "$key" in
      PARTITION) SITE_SBATCH_OPTS+=("--partition=$value") ;;
      ACCOUNT) SITE_SBATCH_OPTS+=("--account=$value") ;;
      QOS) SITE_SBATCH_OPTS+=("--qos=$value") ;;
      GRES) SITE_SBATCH_OPTS+=("--gres=$value") ;;
      CPUS) SITE_SBATCH_OPTS+=("--cpus-per-task=$value") ;;
      MEM) SITE_SBATCH_OPTS+=("--mem=$value") ;;
      TIME) SITE_SBATCH_OPTS+=("--time=$value") ;;
    esac
  done
  extra_name="${group}_SBATCH_EXTRA[@]"
  if declare -p "${group}_SBATCH_EXTRA" >/dev/null 2>&1; then
    SITE_SBATCH_OPTS+=("${!extra_name}")
  fi
}
