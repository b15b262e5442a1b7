# shellcheck shell=bash
# Site settings (site.env) shared by run_benchmark.sh, verify_enhanced.sh and the batch jobs.
#
#   source scripts/lib_site.sh
#   site_load site.env                 # sources it; returns 1 when the file is missing
#   site_check cuda compare            # prints one line per problem; returns 1 if any
#   site_sbatch_opts cuda              # fills the array SITE_SBATCH_OPTS
#   site_sbatch_opts cuda 4            # ... for 4 devices per node (GRES count and MEM x 4)
#
# site.env is a bash file of variables per group: CUDA_*, GAUDI_* (both Gaudi modes), CPU_*,
# PREPARE_* and COMPARE_* (each PREPARE_/COMPARE_ variable left unset falls back to CPU_*).
# Per group: PARTITION ACCOUNT QOS GRES CPUS MEM TIME SETUP, and optionally the array
# <GROUP>_SBATCH_EXTRA=(--constraint=a100 ...). See site.env.example.
#
# Several devices per node: GRES, CPUS and MEM describe the share of ONE device (one task).
# CPUS is per task already (--cpus-per-task); for G devices per node the count of the first
# GRES entry and MEM (per node in Slurm) are multiplied by G: gpu:1 -> gpu:G,
# gpu:a100:1 -> gpu:a100:G, gpu -> gpu:G, 16G -> (16*G)G; MEM=0 (the whole node) stays 0.
# The CPU group has no devices: its GRES is never scaled, only MEM.

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

# scale_gres GRES G -> the GRES for G devices: the first entry's count times G (no count = 1).
# Returns 1 when the count is not a positive whole number.
scale_gres() {
  local gres=$1 per_node=$2 first rest="" name count
  first=${gres%%,*}
  [ "$first" != "$gres" ] && rest=,${gres#*,}
  count=${first##*:}
  if [ "$count" = "$first" ] || ! [[ "$count" =~ ^[0-9]+$ ]]; then
    name=$first count=1            # gpu, gpu:a100: no count given, which means one
  else
    name=${first%:*}
  fi
  [[ "$count" =~ ^[1-9][0-9]*$ ]] || return 1
  printf '%s:%s%s' "$name" "$((10#$count * per_node))" "$rest"
}

# scale_mem MEM G -> MEM times G, keeping its unit (16G -> 64G for 4); 0 stays 0; 1 if not a size.
scale_mem() {
  local mem=$1 per_node=$2
  [[ "$mem" =~ ^([0-9]+)([KMGTkmgt]?)$ ]] || return 1
  printf '%s%s' "$((10#${BASH_REMATCH[1]} * per_node))" "${BASH_REMATCH[2]}"
}

# site_sbatch_opts KIND [DEVICES_PER_NODE] -> SITE_SBATCH_OPTS=(--partition=... --time=... ...)
# Returns 1, with a message on stderr, when GRES or MEM cannot be scaled to DEVICES_PER_NODE.
site_sbatch_opts() {
  local group key value scaled extra_name per_node=${2:-1}
  group=$(site_group "$1")
  SITE_SBATCH_OPTS=()
  for key in PARTITION ACCOUNT QOS GRES CPUS MEM TIME; do
    value=$(site_get "$group" "$key")
    [ -n "$value" ] || continue
    if [ "$per_node" != 1 ]; then
      case "$key" in
        GRES) if [ "$group" = CUDA ] || [ "$group" = GAUDI ]; then
                scaled=$(scale_gres "$value" "$per_node") || {
                  echo "${group}_GRES='$value' cannot be scaled to $per_node devices per node (the device count must be a positive whole number)" >&2
                  return 1
                }
                value=$scaled
              fi ;;
        MEM) scaled=$(scale_mem "$value" "$per_node") || {
               echo "${group}_MEM='$value' cannot be scaled to $per_node devices per node (a size like 64G or 3000M)" >&2
               return 1
             }
             value=$scaled ;;
      esac
    fi
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
