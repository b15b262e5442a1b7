#!/usr/bin/env bash
# One command on the login node: preflight, dataset, one training job per backend, comparison.
#
#   ./run_benchmark.sh --backends cuda,gaudi_lazy,gaudi_eager        # on a Slurm cluster (site.env)
#   ./run_benchmark.sh --backends cuda --epochs 5 --profile fast --dry-run
#   ./run_benchmark.sh --demo --local                                # a first try anywhere, ~1 minute
#   ./run_benchmark.sh --backends cuda --nodes 2 --devices-per-node 4  # DDP over 8 GPUs, run "cuda_2x4"
#
# Run ./run_benchmark.sh --help for every flag; docs/cluster.md for the cluster guide.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib_site.sh
source "$ROOT/scripts/lib_site.sh"

usage() {
  cat <<EOF
usage: ./run_benchmark.sh [options] [training flags] [-- more training flags]

Where it runs
  --backends LIST      comma-separated, from: ${UNETBENCH_BACKENDS[*]}
                       (default: cuda,gaudi_lazy,gaudi_eager; cpu with --local or --demo)
  --local              run the same chain on this machine, without Slurm (chosen, with a
                       notice, when sbatch is missing)
  --dry-run            print the exact commands (sbatch lines) and submit nothing
  --site FILE          site settings (default: site.env beside this script)
  --nodes N            nodes per training job (default 1; Slurm only)
  --devices-per-node G devices (GPUs, HPUs; CPU: processes) per node (default 1; Slurm only).
                       With N x G > 1 each training job is one DDP run: sbatch gets
                       --nodes=N --ntasks-per-node=G, and G times the GRES count and MEM
                       of site.env, which describes one device (gpu:a100:1 -> gpu:a100:G,
                       16G -> 64G for G=4; CPUS stays per task). The job starts one process
                       per device with srun. The run is named <backend>_<N>x<G>
                       (results_cuda_2x4.json), so it can sit beside single-device results;
                       --batch-size stays per device. See docs/cluster.md.

Data
  --data DIR           prepared dataset folder (default: data/, demo: demo/data/)
  --synthetic, --num-images N, --crop HxW, --source-dir PATH
                       passed to prepare_dataset.py (default source: Kaggle, needs credentials)
  --prepare-job        prepare the dataset in a CPU job; training jobs depend on it (afterok)
  --no-prepare         never prepare; fail if the dataset is missing

Results
  --run-dir DIR        results folder of this invocation (default: runs/<date>-<time>,
                       demo: demo/run); it must not exist yet unless --force
  --force              replace a results folder an earlier run_benchmark.sh made
  --skip-verify        skip the preflight (verify_enhanced.sh)
  --demo               small synthetic dataset and short settings: a first try anywhere

Training flags passed to every backend
  --epochs N --profile parity|fast --batch-size N --lr F --workers N --seed N
  --max-steps-per-epoch N --warmup-steps N --log-every N --config FILE

Exit status: 0 submitted (or, with --local, everything finished), 2 bad input or a refused
job (jobs already submitted by this run are cancelled), 1 a local run with a failed step.
EOF
}

die() { echo "error: $*" >&2; exit 2; }
note() { echo "run_benchmark: $*"; }
quote() { local s; s=$(printf '%q ' "$@"); printf '%s' "${s% }"; }
show() { quote "$@"; echo; }

# ---- arguments ---------------------------------------------------------------------------
ORIG_ARGS=("$@")
backends_arg="" site="" data_dir="" run_dir="" local_mode=0 dry_run=0 demo=0 force=0
prepare_job=0 no_prepare=0 skip_verify=0 nodes=1 devices_per_node=1
prepare_flags=() train_flags=()

need_value() {
  if [ "$#" -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi
}
while [ "$#" -gt 0 ]; do
  arg=$1
  # Accept --flag=value as well as --flag value.
  if [[ "$arg" == --*=* ]]; then
    set -- "${arg%%=*}" "${arg#*=}" "${@:2}"
    arg=$1
  fi
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    --backends) need_value "$@"; backends_arg=$2; shift 2 ;;
    --site) need_value "$@"; site=$2; shift 2 ;;
    --data) need_value "$@"; data_dir=$2; shift 2 ;;
    --run-dir | --out) need_value "$@"; run_dir=$2; shift 2 ;;
    --local) local_mode=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --demo) demo=1; shift ;;
    --force) force=1; shift ;;
    --prepare-job) prepare_job=1; shift ;;
    --no-prepare) no_prepare=1; shift ;;
    --skip-verify) skip_verify=1; shift ;;
    --nodes) need_value "$@"; nodes=$2; shift 2 ;;
    --devices-per-node) need_value "$@"; devices_per_node=$2; shift 2 ;;
    --synthetic) prepare_flags+=(--synthetic); shift ;;
    --num-images | --crop | --source-dir) need_value "$@"; prepare_flags+=("$1" "$2"); shift 2 ;;
    --epochs | --profile | --batch-size | --lr | --workers | --seed | --max-steps-per-epoch | \
      --warmup-steps | --log-every | --config)
      need_value "$@"; train_flags+=("$1" "$2"); shift 2 ;;
    --) shift; train_flags+=("$@"); break ;;
    *) die "unknown option '$arg' (see ./run_benchmark.sh --help; training flags after -- pass through)" ;;
  esac
done

positive_int() { [[ "$2" =~ ^[1-9][0-9]{0,5}$ ]] || die "$1 must be a positive whole number, not '$2'"; }
positive_int --nodes "$nodes"
positive_int --devices-per-node "$devices_per_node"
world_size=$((nodes * devices_per_node))
[ "$prepare_job" = 1 ] && [ "$no_prepare" = 1 ] && die "--prepare-job and --no-prepare exclude each other"

# ---- backends ----------------------------------------------------------------------------
if [ -z "$backends_arg" ]; then
  if [ "$demo" = 1 ] || [ "$local_mode" = 1 ]; then backends_arg=cpu; else backends_arg=cuda,gaudi_lazy,gaudi_eager; fi
fi
IFS=',' read -r -a backends <<<"$backends_arg"
[ "${#backends[@]}" -gt 0 ] || die "--backends is empty; valid backends: ${UNETBENCH_BACKENDS[*]}"
seen=" "
for b in "${backends[@]}"; do
  is_backend "$b" || die "unknown backend '$b'; valid backends: ${UNETBENCH_BACKENDS[*]}"
  case "$seen" in *" $b "*) die "backend '$b' given twice" ;; esac
  seen="$seen$b "
done

# ---- where it runs -----------------------------------------------------------------------
[ -n "$site" ] || site="$ROOT/site.env"
if [ "$local_mode" = 0 ] && ! command -v sbatch >/dev/null 2>&1; then
  note "notice: sbatch not found on this machine; running locally (--local) instead of submitting"
  local_mode=1
fi
if [ "$local_mode" = 0 ] && [ "$demo" = 1 ] && [ ! -f "$site" ]; then
  note "notice: --demo without $site; running locally (--local)"
  local_mode=1
fi
if [ "$local_mode" = 0 ]; then
  if [ ! -f "$site" ]; then
    if [ "$site" = "$ROOT/site.env" ]; then
      die "site settings $site not found: create it from the example (cp $ROOT/site.env.example $ROOT/site.env) and fill in your partition, account, QOS and time limits; or run with --local"
    fi
    die "site settings $site not found (copy $ROOT/site.env.example and fill it in)"
  fi
  site=$(cd "$(dirname "$site")" && pwd)/$(basename "$site")
  site_load "$site" || die "cannot read $site"
  kinds=("${backends[@]}" compare)
  [ "$prepare_job" = 1 ] && kinds+=(prepare)
  if ! problems=$(site_check "${kinds[@]}"); then
    echo "error: $site is incomplete:" >&2
    printf '  %s\n' "$problems" >&2
    exit 2
  fi
  # GRES and MEM scaled to the devices per node: refuse a value that cannot be, before anything runs.
  for b in "${backends[@]}"; do
    if ! problems=$(site_sbatch_opts "$b" "$devices_per_node" 2>&1); then
      die "$site: $problems"
    fi
  done
elif [ "$world_size" -gt 1 ]; then
  die "--nodes/--devices-per-node above 1 need Slurm (srun starts one process per device); without it use torchrun by hand (docs/training.md)"
elif [ "$prepare_job" = 1 ]; then
  note "notice: --prepare-job has no effect with --local; preparing here"
  prepare_job=0
fi

# ---- demo settings, data, results folder ------------------------------------------------
if [ "$demo" = 1 ]; then
  [ -n "$data_dir" ] || data_dir="$ROOT/demo/data"
  [ -n "$run_dir" ] || run_dir="$ROOT/demo/run"
  # About a minute on two CPU cores, and long enough to see validation mIoU climb: a narrow
  # UNet (--model-width 16; the benchmark model is 64) on 120 synthetic scenes. User flags
  # come later and win.
  [ "${#prepare_flags[@]}" -gt 0 ] || prepare_flags=(--synthetic --num-images 120 --crop 64x96 --seed 0)
  train_flags=(--epochs 5 --model-width 16 --batch-size 8 --lr 3e-3 --workers 0 --warmup-steps 2 --log-every 5 "${train_flags[@]}")
fi
[ -n "$data_dir" ] || data_dir="$ROOT/data"
[ -n "$run_dir" ] || run_dir="$ROOT/runs/$(date +%Y%m%d-%H%M%S)"
abs_path() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
data_dir=$(abs_path "$data_dir")
run_dir=$(abs_path "$run_dir")
splits="$data_dir/dataset_splits.json"
for p in "$ROOT" "$data_dir" "$run_dir" "$site"; do
  case "$p" in *,*) die "paths with commas cannot pass through sbatch --export: $p" ;; esac
done

if [ -e "$run_dir" ] && [ -n "$(ls -A "$run_dir" 2>/dev/null)" ]; then
  if [ "$force" = 0 ]; then
    die "results folder $run_dir already exists; choose another --run-dir or add --force to replace it"
  fi
  [ -f "$run_dir/.unetbench-run" ] ||
    die "$run_dir was not made by run_benchmark.sh; refusing to replace it even with --force"
fi

# Prepare unless the dataset is there and no preparation flags ask for a specific one.
do_prepare=0
if [ "${#prepare_flags[@]}" -gt 0 ] || [ ! -f "$splits" ]; then do_prepare=1; fi
if [ "$no_prepare" = 1 ]; then
  do_prepare=0
  [ -f "$splits" ] || die "dataset missing: $splits not found (prepare it with prepare_dataset.py, or drop --no-prepare)"
fi
prepare_args=(--out "$data_dir" "${prepare_flags[@]}")

# ---- preflight ---------------------------------------------------------------------------
if [ "$skip_verify" = 0 ]; then
  verify=("$ROOT/verify_enhanced.sh" --backends "$(IFS=,; echo "${backends[*]}")" --data "$data_dir"
    --results-dir "$(dirname "$run_dir")")
  if [ "$local_mode" = 1 ]; then verify+=(--local); else verify+=(--site "$site"); fi
  [ "$do_prepare" = 1 ] && verify+=(--no-data)
  note "preflight: $(quote "${verify[@]}")"
  "${verify[@]}" || die "preflight failed: fix the checks marked FAIL above (or --skip-verify)"
fi

# The run name: the backend, or <backend>_<N>x<G> for a multi-device run, so that single- and
# multi-device results of one backend can share a results folder (results_cuda_2x4.json).
run_name() {
  if [ "$world_size" -gt 1 ]; then echo "${1}_${nodes}x${devices_per_node}"; else echo "$1"; fi
}
# Compiled kernels (fast profile) are cached beside the run folders, so the next invocation's
# warm-up reuses them; a --compile-cache in the training flags wins.
train_args() { # backend -> TRAIN_ARGS
  TRAIN_ARGS=(--splits "$splits" --out "$run_dir/results" --run-name "$(run_name "$1")"
              --compile-cache "$(dirname "$run_dir")/compile_cache" "${train_flags[@]}")
}
# --expect: a backend whose job died before writing results is listed as missing, not forgotten.
compare_args=("$run_dir/results" --report-dir "$run_dir/report" --expect "$(IFS=,; echo "${backends[*]}")")

make_run_dir() {
  [ "$force" = 1 ] && [ -f "$run_dir/.unetbench-run" ] && rm -rf "$run_dir"
  mkdir -p "$run_dir/results" "$run_dir/logs" "$run_dir/report"
  { echo "# made by run_benchmark.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"; show "$0" "${ORIG_ARGS[@]}"; } \
    >"$run_dir/.unetbench-run"
}

# ---- local chain -------------------------------------------------------------------------
run_local() {
  local py=${UNETBENCH_PYTHON:-python3} failed=0 b rc
  export UNETBENCH_ROOT="$ROOT" UNETBENCH_SITE=none
  if [ "$dry_run" = 1 ]; then
    [ "$do_prepare" = 1 ] && show "$py" "$ROOT/prepare_dataset.py" "${prepare_args[@]}"
    for b in "${backends[@]}"; do
      train_args "$b"
      show bash "$ROOT/submit_$b.sh" "${TRAIN_ARGS[@]}"
    done
    show bash "$ROOT/submit_compare.sh" "${compare_args[@]}"
    return 0
  fi
  make_run_dir
  if [ "$do_prepare" = 1 ]; then
    note "preparing the dataset: $(quote "$py" "$ROOT/prepare_dataset.py" "${prepare_args[@]}")"
    "$py" "$ROOT/prepare_dataset.py" "${prepare_args[@]}" || die "dataset preparation failed"
  fi
  for b in "${backends[@]}"; do
    train_args "$b"
    note "training $b (log: $run_dir/logs/unetbench_${b}_local.out)"
    rc=0
    bash "$ROOT/submit_$b.sh" "${TRAIN_ARGS[@]}" 2>&1 | tee "$run_dir/logs/unetbench_${b}_local.out" || rc=$?
    [ "$rc" = 0 ] || { note "training $b failed (status $rc); continuing, the report will mark it"; failed=1; }
  done
  rc=0
  bash "$ROOT/submit_compare.sh" "${compare_args[@]}" 2>&1 | tee "$run_dir/logs/unetbench_compare_local.out" || rc=$?
  [ "$rc" = 0 ] || failed=1
  echo
  echo "Results: $run_dir/results/"
  echo "Report:  $run_dir/report/report.md"
  echo "Logs:    $run_dir/logs/"
  return "$failed"
}

# ---- Slurm chain -------------------------------------------------------------------------
submitted=()        # job ids, for cancelling the chain when a later sbatch refuses
submitted_names=()

cancel_submitted() {
  if [ "${#submitted[@]}" -gt 0 ]; then
    note "cancelling the jobs this run already submitted: ${submitted[*]}"
    scancel "${submitted[@]}" || true
  fi
}

# submit NAME SCRIPT [sbatch options...] -- [script args...]; sets JOB_ID
submit() {
  local name=$1 script=$2 out err rc
  shift 2
  local opts=() args=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ "$#" -gt 0 ] && shift
  args=("$@")
  local cmd=(sbatch --parsable --output="$run_dir/logs/%x_%j.out" --open-mode=append
    --export="ALL,UNETBENCH_ROOT=$ROOT,UNETBENCH_SITE=$site" "${opts[@]}" "$ROOT/$script" "${args[@]}")
  if [ "$dry_run" = 1 ]; then
    show "${cmd[@]}"
    JOB_ID="<${name}_jobid>"
    return 0
  fi
  err=$(mktemp)
  rc=0
  out=$("${cmd[@]}" 2>"$err") || rc=$?
  if [ "$rc" != 0 ] || [ -z "$out" ]; then
    echo "error: sbatch refused the $name job (status $rc):" >&2
    sed 's/^/  /' "$err" >&2
    echo "  command: $(quote "${cmd[@]}")" >&2
    rm -f "$err"
    cancel_submitted
    exit 2
  fi
  rm -f "$err"
  JOB_ID=${out%%;*}    # --parsable prints "id" or "id;cluster"
  submitted+=("$JOB_ID")
  submitted_names+=("$name")
  printf '%s\t%s\n' "$name" "$JOB_ID" >>"$run_dir/jobs.tsv"
}

run_slurm() {
  local lead=${SIGNAL_LEAD_S:-300} train_ids=() prep_dep=() b
  [[ "$lead" =~ ^[0-9]+$ ]] || die "SIGNAL_LEAD_S in $site must be whole seconds, not '$lead'"
  [ "$dry_run" = 1 ] || make_run_dir
  if [ "$do_prepare" = 1 ]; then
    if [ "$prepare_job" = 1 ]; then
      site_sbatch_opts prepare
      submit prepare submit_prepare.sh "${SITE_SBATCH_OPTS[@]}" -- "${prepare_args[@]}"
      # If preparation fails, the training jobs are cancelled instead of waiting forever.
      prep_dep=(--dependency="afterok:$JOB_ID" --kill-on-invalid-dep=yes)
    else
      local py=${UNETBENCH_PYTHON:-python3}
      if [ "$dry_run" = 1 ]; then
        show "$py" "$ROOT/prepare_dataset.py" "${prepare_args[@]}"
      else
        note "preparing the dataset on this node: $(quote "$py" "$ROOT/prepare_dataset.py" "${prepare_args[@]}")"
        "$py" "$ROOT/prepare_dataset.py" "${prepare_args[@]}" ||
          die "dataset preparation failed; nothing submitted (or use --prepare-job to prepare in a job)"
      fi
    fi
  fi
  for b in "${backends[@]}"; do
    site_sbatch_opts "$b" "$devices_per_node"
    train_args "$b"
    # One task per device; the job script starts them with srun when there is more than one.
    submit "$b" "submit_$b.sh" --nodes="$nodes" --ntasks-per-node="$devices_per_node" "${SITE_SBATCH_OPTS[@]}" \
      --signal="B:USR1@$lead" --requeue "${prep_dep[@]}" -- "${TRAIN_ARGS[@]}"
    train_ids+=("$JOB_ID")
  done
  site_sbatch_opts compare
  # afterany: a failed backend still gets a report (which marks it failed).
  submit compare submit_compare.sh "${SITE_SBATCH_OPTS[@]}" --dependency="afterany:$(IFS=:; echo "${train_ids[*]}")" \
    -- "${compare_args[@]}"
  [ "$dry_run" = 1 ] && return 0

  echo
  if [ "$world_size" -gt 1 ]; then
    echo "Each training job: $nodes node(s) x $devices_per_node device(s), one DDP run of $world_size processes"
  fi
  echo "Submitted (run folder $run_dir):"
  local i
  for i in "${!submitted[@]}"; do printf '  %-12s %s\n' "${submitted_names[$i]}" "${submitted[$i]}"; done
  echo
  echo "Watch:   squeue -j $(IFS=,; echo "${submitted[*]}")"
  echo "Logs:    tail -f $run_dir/logs/*.out"
  echo "Results: $run_dir/results/   (monitor_<backend>.csv beside them)"
  echo "Report:  $run_dir/report/report.md once job ${submitted[-1]} (compare) has run"
}

if [ "$local_mode" = 1 ]; then
  run_local
else
  run_slurm
fi
