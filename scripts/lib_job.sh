# shellcheck shell=bash
# The body of every batch job, written once; the submit_*.sh scripts (generated from
# unetbench/core/registry.py) only add #SBATCH defaults. This file holds the batch shell's own work
# (signals, srun, requeue) and no facts: those come from scripts/registry.sh (generated) and,
# once SETUP has provided Python, from `python3 -m unetbench.cluster.jobinfo`.
#
#   source scripts/lib_job.sh
#   train_job cuda "$@"        # header, environment, device monitor, training, requeue
#   prepare_job "$@"           # prepare_dataset.py as a CPU job
#   compare_job "$@"           # compare_results.py as a CPU job
#   selfcheck_job cuda "$@"    # the on-device self-check (scripts/selfcheck.sh, verify_enhanced.sh --on-device)
#
# Environment (all optional): UNETBENCH_ROOT (the checkout; default: this file's parent),
# UNETBENCH_SITE (site.env to source for <GROUP>_SETUP; "none" to use the current environment;
# default: $UNETBENCH_ROOT/site.env when it exists), UNETBENCH_PYTHON (default: python3 after
# SETUP; in a container, the image's), UNETBENCH_MAX_REQUEUES (default 10), UNETBENCH_HOST_PYTHON
# (a container job's python3 on the node itself, for the monitor and a hand-submitted job's binds).
# UNETBENCH_CONTAINER_RUNTIME, _IMAGE, _DIGEST and _ARGS: the backend's container, as
# ./run_benchmark.sh derived it (unetbench/cluster/container.py); the helpers, the training and
# the self-check then run in it, and the stop signals reach them through the runtime.
#
# Signals: Slurm sends --signal=B:USR1@<s> to this shell only, and bash runs a trap only
# between foreground commands, so the training runs in the background and this shell waits
# for it; the trap forwards the signal. The training then finishes its step, saves
# last_<run>.pth and exits 3 (INTERRUPTED). On 3 after USR1 the job requeues itself and the
# next start passes --auto-resume, which continues from that checkpoint. A TERM (scancel, the
# time limit itself, preemption) is forwarded too but never requeues: whoever sent it meant stop.
#
# Several tasks (sbatch --ntasks-per-node=G, SLURM_NTASKS > 1): the training starts as one job
# step, `srun --kill-on-bad-exit=1 python3 unet_X.py ...`, one process per device; each reads its
# rank from SLURM_PROCID (unetbench/training/distributed.py). The trap forwards the signal to srun, which
# forwards it to every task; all ranks stop at the same step and exit 3, so srun exits 3 (the
# highest exit status of its tasks; 128+N for a task killed by signal N) and the requeue logic
# is the one of a single task. srun answers SIGTERM itself by killing the step (the tasks get no
# chance to checkpoint), so a TERM is passed to srun as USR1: the training treats both alike,
# and the shell still remembers TERM and does not requeue.
# The device monitor runs once, on the batch host (the job's first node), and sees that node's
# devices only.

UNETBENCH_ROOT=${UNETBENCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export UNETBENCH_ROOT
# shellcheck source=scripts/registry.sh
source "$UNETBENCH_ROOT/scripts/registry.sh"
# shellcheck source=scripts/lib_container.sh
source "$UNETBENCH_ROOT/scripts/lib_container.sh"

_ub_child=""        # pid of the foreground work (training, prepare, compare)
_ub_monitor=""      # pid of the device monitor
_ub_signals=()      # signals received, in order
_ub_pending=0       # set by a trap while we wait
_ub_early=""        # what becomes of a signal that comes before the work starts (train_job says)
UB_LAUNCHER=()      # what starts the work: srun, container, shield (_ub_launcher)
UB_SRUN=0           # 1 when UB_LAUNCHER starts it through srun

# The job's log is this shell's stdout as the job started: kept on a descriptor of its own, so a
# trap that runs while a command's output goes to a file (the resolved training flags) still
# writes its line to the log, not into that file.
exec {_ub_log_fd}>&1
_ub_log() { printf '[unetbench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&"$_ub_log_fd"; }

# The training is started shielded (UB_SHIELD): the stop signals ignored until Python has
# installed its handlers, so an early one cannot kill it. The stop is written to
# UNETBENCH_STOP_FILE before each forwarded signal: the training reads it at install (a signal
# it ignored) and at every step (a signal that nsys, between us and it, did not forward).
# File first, signal second: a process then either has its handlers when the signal comes, or
# installs them after the file exists (unetbench/training/stop_signals.py).
# Both wrappers also put the checkout first on PYTHONPATH where the command runs (on the host, or
# inside the container, whose own PYTHONPATH stays behind it), so `python3 -m unetbench...` works.
# shellcheck disable=SC2016  # $0, $@ and PYTHONPATH are the inner bash's
UB_SHIELD=(bash -c 'trap "" USR1 TERM; export PYTHONPATH="$0${PYTHONPATH:+:$PYTHONPATH}"; exec "$@"' "$UNETBENCH_ROOT")
# shellcheck disable=SC2016
UB_PATHED=(bash -c 'export PYTHONPATH="$0${PYTHONPATH:+:$PYTHONPATH}"; exec "$@"' "$UNETBENCH_ROOT")


_ub_request_stop() {
  [ -n "${UNETBENCH_STOP_FILE:-}" ] || return 0
  if ! { printf '%s\n' "$1" >"$UNETBENCH_STOP_FILE.$$" && mv -f "$UNETBENCH_STOP_FILE.$$" "$UNETBENCH_STOP_FILE"; }; then
    _ub_log "could not write $UNETBENCH_STOP_FILE; the signal alone is forwarded"
  fi
}

_ub_forward() {
  local sig=$1
  _ub_signals+=("$sig")
  _ub_pending=1
  _ub_request_stop "$sig"
  if [ -n "$_ub_child" ] && [ "$UB_SRUN" = 1 ]; then
    _ub_log "received SIG$sig; forwarding it to pid $_ub_child (srun) as SIGUSR1, which srun passes to every task"
    kill -s USR1 "$_ub_child" 2>/dev/null || true
  elif [ -n "$_ub_child" ]; then
    _ub_log "received SIG$sig; forwarding it to pid $_ub_child"
    kill -s "$sig" "$_ub_child" 2>/dev/null || true
  else
    _ub_log "received SIG$sig before the work started${_ub_early:+; $_ub_early}"
  fi
}

_ub_stop_monitor() {
  if [ -n "$_ub_monitor" ]; then
    kill -s TERM "$_ub_monitor" 2>/dev/null || true
    wait "$_ub_monitor" 2>/dev/null || true
    _ub_monitor=""
  fi
}

_ub_on_exit() {
  _ub_stop_monitor
  if [ -n "$_ub_child" ] && kill -0 "$_ub_child" 2>/dev/null; then
    kill -s TERM "$_ub_child" 2>/dev/null || true
  fi
  _ub_forget_container
}

# job_setup KIND: source site.env and run the SETUP of KIND's group; UB_PYTHON names python.
job_setup() {
  local kind=$1 group name setup="" setup_name="" site=${UNETBENCH_SITE:-}
  if [ -z "$site" ] && [ -f "$UNETBENCH_ROOT/site.env" ]; then site="$UNETBENCH_ROOT/site.env"; fi
  if [ -n "$site" ] && [ "$site" != none ]; then
    [ -f "$site" ] || { echo "error: site settings $site not found" >&2; exit "$UB_EXIT_USAGE"; }
    # shellcheck source=/dev/null
    source "$site" || { echo "error: site settings $site do not load cleanly (check with bash -n $site)" >&2; exit "$UB_EXIT_USAGE"; }
    for group in $(ub_site_groups "$kind"); do
      name="${group}_SETUP"
      if [ -n "${!name+set}" ]; then setup=${!name}; setup_name=$name; break; fi
    done
    if [ -n "$setup" ]; then
      _ub_log "environment: $setup_name from $site"
      # SETUP is shell code by design (module load, conda activate, source venv/bin/activate),
      # written by the user in a file that is itself sourced; it must run in this shell.
      set +u
      if ! eval "$setup"; then
        echo "error: $setup_name failed: $setup" >&2
        exit "$UB_EXIT_USAGE"
      fi
      set -u
    fi
  fi
  UB_PYTHON=${UNETBENCH_PYTHON:-python3}
  UB_RUN=("${UB_SHIELD[@]}")
}

# _ub_python_here KIND: stop unless UB_PYTHON runs on this node (a job without container).
_ub_python_here() {
  command -v "$UB_PYTHON" >/dev/null 2>&1 || {
    echo "error: $UB_PYTHON not found; set the SETUP of $1 jobs in site.env, or UNETBENCH_PYTHON" >&2
    exit "$UB_EXIT_USAGE"
  }
}

# job_setup_backend BACKEND [training flags...]: job_setup, then the backend's container if its
# group names one (only backends run in containers; prepare and compare use SETUP).
job_setup_backend() {
  job_setup "$1"
  _ub_container "$@"
  _ub_in_container || _ub_python_here "$1"
}

# _ub_py ARGS...: Python with the checkout importable, for the set-up helpers, where the training
# runs (UB_RUN: on this node, or in the backend's container). Shielded: a stop
# signal sent to every process of the job (scancel --signal=USR1 without --batch, scancel) must
# not kill a helper, which the job would take for bad input (exit 2); the shell's trap keeps it,
# and the training acts on it once it starts.
_ub_py() {
  "${UB_RUN[@]}" "$UB_PYTHON" "$@"
}

# _ub_start_monitor BACKEND OUT RUN: the device monitor in the background, on the host: the
# vendor tools come with the host's driver. In a container job the host needs a python3 >= 3.10
# for it; without one it runs inside the Apptainer image (whose --nv/--rocm bring the tools
# along), and a Pyxis job goes without (said in the log).
_ub_start_monitor() {
  local monitor=(-m unetbench.monitor --backend "$1" --out "$2" --run-name "$3") host_py
  # Started directly (not through a subshell): $! must be the process that owns the device tool.
  if ! _ub_in_container; then
    "${UB_PATHED[@]}" "$UB_PYTHON" "${monitor[@]}" &
  elif host_py=$(_ub_host_python); then
    _ub_log "device monitor: on the host ($host_py)"
    "${UB_PATHED[@]}" "$host_py" "${monitor[@]}" &
  elif [ "${#UB_CONTAINER[@]}" -gt 0 ]; then
    _ub_log "device monitor: inside the container (this node has no python3 >= 3.10; UNETBENCH_HOST_PYTHON names one)"
    "${UB_CONTAINER[@]}" "${UB_PATHED[@]}" "$UB_PYTHON" "${monitor[@]}" &
  else
    _ub_log "device monitor: none (this node has no python3 >= 3.10 for it; load one in SETUP or set UNETBENCH_HOST_PYTHON)"
    return 0
  fi
  _ub_monitor=$!
}

# job_header KIND: who, where, what devices, which software - the first thing in every log.
job_header() {
  local kind=$1
  echo "================ unetbench $kind job ================"
  echo "job       : ${SLURM_JOB_ID:-local} ${SLURM_JOB_NAME:+($SLURM_JOB_NAME)} restart ${SLURM_RESTART_COUNT:-0}"
  echo "node      : $(hostname) ${SLURM_JOB_PARTITION:+partition $SLURM_JOB_PARTITION} cpus ${SLURM_CPUS_PER_TASK:-$(nproc)}"
  echo "started   : $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "checkout  : $UNETBENCH_ROOT ($(git -C "$UNETBENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
  if _ub_in_container; then
    echo "container : $UNETBENCH_CONTAINER_RUNTIME $UNETBENCH_CONTAINER_IMAGE ${UNETBENCH_CONTAINER_DIGEST:-(no digest: a tag or folder)}"
    echo "python    : $UB_PYTHON inside the container ($(_ub_py --version 2>&1))"
  else
    echo "python    : $(command -v "$UB_PYTHON") ($("$UB_PYTHON" --version 2>&1))"
  fi
  _ub_py -m unetbench.cluster.jobinfo header "$kind" || echo "software  : python -m unetbench.cluster.jobinfo failed (see above)"
  echo "======================================================"
}

# job_run CMD...: run in the background, forward signals, wait; sets UB_RC.
job_run() {
  _ub_log "running: $*"
  "$@" &
  _ub_child=$!
  # A signal that arrived during set-up is not sent now: it would reach the child before it
  # has started (a training: before its shield ignores the signal, killing it). train_job
  # wrote it to the stop file, which the training reads as it installs its handlers.
  while :; do
    _ub_pending=0
    UB_RC=0
    wait "$_ub_child" || UB_RC=$?
    # wait returns early (status > 128) when a trap ran; wait again for the real status.
    [ "$_ub_pending" = 1 ] || break
  done
  _ub_child=""
}

_ub_install_traps() {
  trap '_ub_forward USR1' USR1
  trap '_ub_forward TERM' TERM
  # Background jobs of a script ignore SIGINT, so an interrupt is passed on as TERM.
  trap '_ub_forward TERM' INT
  trap '_ub_on_exit' EXIT
}

_ub_has() {
  local want
  for want in "${@:2}"; do
    [ "$1" = "$want" ] && return 0
  done
  return 1
}

# _ub_launcher WRAPPER... -> UB_LAUNCHER=(the words in front of the job's Python): srun when the
# job has several tasks (and always under Pyxis, whose container srun starts; UB_SRUN=1 then),
# the container, the WRAPPER (UB_SHIELD or UB_PATHED) and, for several tasks, rankenv.
_ub_launcher() {
  UB_LAUNCHER=()
  UB_SRUN=0
  local tasks=${SLURM_NTASKS:-1} several=0
  if [ -n "${SLURM_JOB_ID:-}" ] && [[ "$tasks" =~ ^[0-9]+$ ]] && [ "$tasks" -gt 1 ]; then several=1; fi
  if [ "$several" = 1 ] || [ "${#UB_PYXIS[@]}" -gt 0 ]; then
    # --kill-on-bad-exit: a rank that fails takes the others down at once, instead of leaving them
    # waiting in a collective until the process-group timeout.
    # --cpus-per-task: since Slurm 22.05 srun no longer inherits sbatch's value (man srun);
    # --cpu-bind=cores: each rank on its own cores (ignored where the site has no task/affinity).
    UB_SRUN=1
    UB_LAUNCHER=(srun --kill-on-bad-exit=1 --ntasks="$tasks" --cpu-bind=cores)
    if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then
      UB_LAUNCHER+=(--cpus-per-task="$SLURM_CPUS_PER_TASK")
      # One intra-op thread pool per core of the task, not per core of the node.
      export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$SLURM_CPUS_PER_TASK}
    fi
    UB_LAUNCHER+=("${UB_PYXIS[@]}")
  elif [ "${#UB_CONTAINER[@]}" -gt 0 ]; then
    # The runtime's own process starts shielded as well: a stop that comes before it forwards
    # signals is not lost, the stop file carries it (see UB_SHIELD).
    UB_LAUNCHER=("${UB_SHIELD[@]}")
  fi
  UB_LAUNCHER+=("${UB_CONTAINER[@]}" "$@")
  # Each task gets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from its srun layout
  # before the training's Python starts (unetbench/training/rankenv.py computes them, then execs the
  # training): the Gaudi bridge sets up its distributed state from them when torch loads it.
  if [ "$several" = 1 ]; then UB_LAUNCHER+=("$UB_PYTHON" -m unetbench.training.rankenv --); fi
}

# _ub_nsys OUT RUN BACKEND -> UB_NSYS=(nsys profile ...) for run_benchmark.sh --nsys (jobs of the backends
# ub_nsys_trace names; it exports
# UNETBENCH_NSYS=1). The capture range is the traced steps (--trace-steps): the training brackets
# them with cudaProfilerStart/Stop when UNETBENCH_NSYS_CAPTURE=1 (unetbench/training/trace.py).
_ub_nsys() {
  # In a container nsys is the image's (NGC's PyTorch images carry it): not looked for on the node.
  _ub_in_container || command -v nsys >/dev/null || {
    echo "error: --nsys: nsys (Nsight Systems) not found on $(hostname); load it in $(ub_site_groups "$3")_SETUP (site.env)" >&2
    exit "$UB_EXIT_USAGE"
  }
  local name="$1/nsys_$2" traced
  traced=$(ub_nsys_trace "$3")
  if [ "${SLURM_NTASKS:-1}" -gt 1 ]; then name+="_rank%q{SLURM_PROCID}"; fi
  export UNETBENCH_NSYS_CAPTURE=1 UNETBENCH_NSYS_OUTPUT="$name.nsys-rep"
  UB_NSYS=(nsys profile --capture-range=cudaProfilerApi --capture-range-end=stop
    --trace="$traced" --force-overwrite=true --output="$name")
  _ub_log "Nsight Systems: the traced steps are captured to $name.nsys-rep"
}

# train_job BACKEND [training flags...]
train_job() {
  local backend=$1 out run last entry restarts max_requeues var resolved
  shift
  _ub_early="the training stops as it starts, and the job acts on it as on any stop"
  # Set before any Python starts: the Gaudi bridge reads PT_HPU_LAZY_MODE at import.
  for var in $(ub_env_before_python "$backend"); do export "${var?}"; done
  _ub_install_traps
  job_setup_backend "$backend" "$@"
  job_header "$backend"

  entry="$UNETBENCH_ROOT/unet_${backend}.py"
  # The training's own parser says where the outputs go and adds --auto-resume (a requeued job
  # must continue, not start over); a bad flag stops the job here with its message.
  resolved=$(mktemp)
  _ub_py -m unetbench.cluster.jobinfo train-args "$backend" "$@" >"$resolved" || {
    rm -f "$resolved"
    exit "$UB_EXIT_USAGE"
  }
  local parts=()
  mapfile -d '' -t parts <"$resolved"
  rm -f "$resolved"
  out=${parts[0]} run=${parts[1]} last=${parts[2]}
  local args=("${parts[@]:3}")
  restarts=${SLURM_RESTART_COUNT:-0}
  if [ "$restarts" -gt 0 ]; then
    _ub_log "restart $restarts of job ${SLURM_JOB_ID:-}: resuming from $last if present"
  fi

  mkdir -p "$out"
  _ub_start_monitor "$backend" "$out" "$run"

  _ub_launcher "${UB_SHIELD[@]}"
  if [ "${SLURM_NTASKS:-1}" -gt 1 ] && [ "$UB_SRUN" = 1 ]; then
    _ub_log "$SLURM_NTASKS tasks on ${SLURM_JOB_NUM_NODES:-1} node(s) (${SLURM_JOB_NODELIST:-?}): one process per device via srun; monitor on $(hostname) only"
  fi
  UB_NSYS=()
  if [ "${UNETBENCH_NSYS:-0}" = 1 ] && [ -n "$(ub_nsys_trace "$backend")" ]; then
    _ub_nsys "$out" "$run" "$backend"
  fi
  # Per attempt: a stop written for an earlier run of this job must not stop this one.
  export UNETBENCH_STOP_FILE="$out/.stop_${run}_${SLURM_JOB_ID:-$$}"
  rm -f "$UNETBENCH_STOP_FILE"
  if [ "${#_ub_signals[@]}" -gt 0 ]; then _ub_request_stop "${_ub_signals[0]}"; fi  # came during set-up
  job_run "${UB_LAUNCHER[@]}" "${UB_NSYS[@]}" "$UB_PYTHON" "$entry" "${args[@]}"
  rm -f "$UNETBENCH_STOP_FILE"
  unset UNETBENCH_STOP_FILE
  _ub_stop_monitor
  _ub_log "training exited with status $UB_RC"

  if [ "$UB_RC" = "$UB_EXIT_INTERRUPTED" ]; then
    max_requeues=${UNETBENCH_MAX_REQUEUES:-10}
    # Stopped before its first step, a run has nothing to save: say so, not "checkpoint saved".
    local saved="checkpoint saved" resume="Checkpoint: $last; resubmit to continue."
    if [ ! -f "$last" ]; then
      saved="nothing saved (stopped before the first training step)"
      resume="Nothing was saved yet; resubmit to start it again."
    fi
    if [ -z "${SLURM_JOB_ID:-}" ]; then
      _ub_log "interrupted; $saved. Run again (it passes --auto-resume) to continue."
    elif _ub_has TERM "${_ub_signals[@]}"; then
      _ub_log "interrupted by SIGTERM (scancel, time limit or preemption): not requeueing. $resume"
    elif [ "$restarts" -ge "$max_requeues" ]; then
      _ub_log "interrupted; already restarted $restarts times (UNETBENCH_MAX_REQUEUES=$max_requeues): not requeueing"
    else
      _ub_log "interrupted; $saved; requeueing job $SLURM_JOB_ID to resume (restart $((restarts + 1)))"
      if scontrol requeue "$SLURM_JOB_ID"; then
        # Slurm now ends this run of the job; the requeued one starts after the scheduler's delay.
        exit "$UB_EXIT_INTERRUPTED"
      fi
      _ub_log "scontrol requeue failed; resubmit this job to resume from $last"
    fi
  fi
  exit "$UB_RC"
}

# prepare_job [prepare_dataset.py flags...]
prepare_job() {
  _ub_install_traps
  job_setup prepare
  _ub_python_here prepare
  job_header prepare
  job_run "$UB_PYTHON" "$UNETBENCH_ROOT/prepare_dataset.py" "$@"
  _ub_log "prepare_dataset.py exited with status $UB_RC"
  exit "$UB_RC"
}

# compare_job [compare_results.py flags...]
compare_job() {
  _ub_install_traps
  job_setup compare
  _ub_python_here compare
  job_header compare
  job_run "$UB_PYTHON" "$UNETBENCH_ROOT/compare_results.py" "$@"
  _ub_log "compare_results.py exited with status $UB_RC"
  exit "$UB_RC"
}

# selfcheck_job BACKEND [self-check flags...]: every device call of the benchmark, in minutes
# (python3 -m unetbench.cluster.selfcheck), on each of the job's devices; no monitor, no requeue.
selfcheck_job() {
  local backend=$1 var
  shift
  # As train_job: the Gaudi bridge reads PT_HPU_LAZY_MODE when torch loads it.
  for var in $(ub_env_before_python "$backend"); do export "${var?}"; done
  _ub_install_traps
  job_setup_backend "$backend"
  job_header "$backend"
  # Not shielded: the self-check has no handlers of its own, a stop ends it (UB_PATHED: -m needs the checkout).
  _ub_launcher "${UB_PATHED[@]}"
  job_run "${UB_LAUNCHER[@]}" "$UB_PYTHON" -m unetbench.cluster.selfcheck --backend "$backend" "$@"
  _ub_log "self-check exited with status $UB_RC"
  exit "$UB_RC"
}
