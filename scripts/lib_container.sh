# shellcheck shell=bash disable=SC2034  # UB_RUN, UB_CONTAINER, UB_PYXIS: read by lib_job.sh
# The backend's container in a batch job: sourced by scripts/lib_job.sh, which starts every Python
# of a backend job through what is set here. unetbench/cluster/container.py decides the container
# (docs/cluster.md, "Containers"); this file only reads its decision from the job's environment,
# or asks the node's python3 for it when the job was submitted by hand.
#
#   _ub_container cuda "$@"        # sets UB_CONTAINER (Apptainer/Singularity) or UB_PYXIS, and UB_RUN
#   _ub_in_container && ...        # whether the job has one
#   _ub_forget_container           # at exit: the job's Pyxis container off the node

# Set by _ub_container:
UB_CONTAINER=()       # apptainer|singularity exec FLAGS --bind=... --pwd=... IMAGE, in front of a command
UB_PYXIS=()           # --container-image=... --container-mounts=... for srun (Pyxis)
UB_RUN=()             # what starts one Python where the training runs (helpers), set by _ub_container

# _ub_container KIND [training flags...]: the job's container from its environment (set by
# ./run_benchmark.sh or verify_enhanced.sh --on-device, which derived the binds on the login node),
# else from site.env's <GROUP>_CONTAINER through this node's python3 (a job submitted by hand);
# sets UB_CONTAINER or UB_PYXIS, and UB_RUN. No container: UB_RUN runs Python here.
_ub_container() {
  local kind=$1 group name words=() host_py
  shift
  UB_RUN=("${UB_SHIELD[@]}")
  if [ -z "${UNETBENCH_CONTAINER_RUNTIME:-}" ]; then
    group=$(ub_site_groups "$kind")
    name="${group}_CONTAINER"
    [ -n "${!name:-}" ] || return 0
    host_py=$(_ub_host_python) || {
      echo "error: $name is set in site.env, but this job was not submitted by ./run_benchmark.sh and this node has" \
        "no python3 >= 3.10 to derive the container's binds; submit it with ./run_benchmark.sh (or set UNETBENCH_HOST_PYTHON)" >&2
      exit "$UB_EXIT_USAGE"
    }
    local derived
    derived=$(mktemp)
    "${UB_SHIELD[@]}" "$host_py" -m unetbench.cluster.jobinfo container "$kind" "$@" >"$derived" || {
      rm -f "$derived"
      exit "$UB_EXIT_USAGE"
    }
    mapfile -d '' -t words <"$derived"
    rm -f "$derived"
    [ "${#words[@]}" -gt 3 ] || return 0
    export UNETBENCH_CONTAINER_RUNTIME=${words[0]} UNETBENCH_CONTAINER_IMAGE=${words[1]} UNETBENCH_CONTAINER_DIGEST=${words[2]}
    words=("${words[@]:3}")
  else
    # The words were written by Python's shlex.join (unetbench/cluster/container.py job_env).
    eval "words=(${UNETBENCH_CONTAINER_ARGS:-})"
    [ "${#words[@]}" -gt 0 ] || {
      echo "error: UNETBENCH_CONTAINER_RUNTIME is set but UNETBENCH_CONTAINER_ARGS is empty: submit with ./run_benchmark.sh" >&2
      exit "$UB_EXIT_USAGE"
    }
  fi
  case "$UNETBENCH_CONTAINER_RUNTIME" in
    pyxis)
      # The container's name holds the job's id (container.py PYXIS_NAME), written as the variable.
      UB_PYXIS=("${words[@]//\$SLURM_JOB_ID/${SLURM_JOB_ID:-$$}}")
      UB_RUN=(srun --ntasks=1 --nodes=1 "${UB_PYXIS[@]}" "${UB_SHIELD[@]}") ;;
    apptainer | singularity)
      UB_CONTAINER=("${words[@]}")
      UB_RUN=("${UB_SHIELD[@]}" "${UB_CONTAINER[@]}" "${UB_SHIELD[@]}") ;;
    *)
      echo "error: UNETBENCH_CONTAINER_RUNTIME=$UNETBENCH_CONTAINER_RUNTIME: expected apptainer, singularity or pyxis" >&2
      exit "$UB_EXIT_USAGE" ;;
  esac
}

# _ub_host_python -> this node's python3 (UNETBENCH_HOST_PYTHON) when it is new enough for the suite.
_ub_host_python() {
  local py=${UNETBENCH_HOST_PYTHON:-python3}
  command -v "$py" >/dev/null 2>&1 && "$py" "$UNETBENCH_ROOT/scripts/check_python.py" 2>/dev/null || return 1
  echo "$py"
}

_ub_in_container() { [ "${#UB_CONTAINER[@]}" -gt 0 ] || [ "${#UB_PYXIS[@]}" -gt 0 ]; }

# A Pyxis container stays on the node after the job where the site keeps named containers
# (container_scope=global): removed here, where enroot is at hand, so nodes do not fill up.
_ub_forget_container() {
  local word
  for word in "${UB_PYXIS[@]}"; do
    case "$word" in
      --container-name=*)
        if command -v enroot >/dev/null 2>&1; then
          enroot list 2>/dev/null | grep -E -- "(^|_)${word#--container-name=}\$" | while read -r name; do
            enroot remove --force "$name" >/dev/null 2>&1 || true
          done
        fi ;;
    esac
  done
}
