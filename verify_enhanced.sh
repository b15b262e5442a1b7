#!/usr/bin/env bash
# Preflight: is this checkout, environment, dataset and site.env ready to run the benchmark?
#
#   ./verify_enhanced.sh                         # everything, all backends, data/ and site.env
#   ./verify_enhanced.sh --backends cpu --local  # no Slurm, no site.env
#   ./verify_enhanced.sh --full                  # also checksum the dataset arrays
#   ./verify_enhanced.sh --backends cuda --device cuda   # plus a 3-step smoke training on the GPU
#
# One line per check: [ OK ], [WARN] (worth knowing, not fatal), [SKIP] or [FAIL].
# Exit status 0 when nothing failed, 1 when a check failed, 2 for a bad flag.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib_site.sh
source "$ROOT/scripts/lib_site.sh"

usage() {
  cat <<EOF
usage: ./verify_enhanced.sh [--backends LIST] [--site FILE] [--local] [--data DIR | --no-data]
                            [--full] [--results-dir DIR] [--device BACKEND]
  --backends LIST   comma-separated, from: ${UNETBENCH_BACKENDS[*]} (default: all)
  --site FILE       site settings to check (default: site.env beside this script)
  --local           no Slurm: skip the site.env and sbatch/squeue checks
  --data DIR        prepared dataset folder (default: data/)
  --no-data         skip the dataset check (run_benchmark.sh prepares it next)
  --full            verify the dataset arrays' sha256 checksums, not only their sizes
  --results-dir DIR folder the results go under (default: runs/); must be writable
  --device BACKEND  run a 3-step smoke training on that backend's device
EOF
}

backends_arg=$(IFS=,; echo "${UNETBENCH_BACKENDS[*]}")
site="$ROOT/site.env" local_mode=0 data_dir="$ROOT/data" check_data=1 full=0
results_dir="$ROOT/runs" device=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --backends) backends_arg=${2:?--backends needs a value}; shift 2 ;;
    --site) site=${2:?--site needs a value}; shift 2 ;;
    --local) local_mode=1; shift ;;
    --data) data_dir=${2:?--data needs a value}; shift 2 ;;
    --no-data) check_data=0; shift ;;
    --full) full=1; shift ;;
    --results-dir) results_dir=${2:?--results-dir needs a value}; shift 2 ;;
    --device) device=${2:?--device needs a value}; shift 2 ;;
    *) echo "error: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

IFS=',' read -r -a backends <<<"$backends_arg"
for b in "${backends[@]}" ${device:+"$device"}; do
  is_backend "$b" || { echo "error: unknown backend '$b'; valid backends: ${UNETBENCH_BACKENDS[*]}" >&2; exit 2; }
done

failures=0
executables=()
readables=()
ok() { printf '[ OK ] %s\n' "$*"; }
warn() { printf '[WARN] %s\n' "$*"; }
skip() { printf '[SKIP] %s\n' "$*"; }
fail() { printf '[FAIL] %s\n' "$*"; failures=$((failures + 1)); }

# ---- files ---------------------------------------------------------------------------------
missing=()
for b in "${backends[@]}"; do executables+=("submit_$b.sh"); readables+=("unet_$b.py"); done
executables=(run_benchmark.sh verify_enhanced.sh submit_prepare.sh submit_compare.sh "${executables[@]}")
readables=(scripts/lib_job.sh scripts/lib_site.sh prepare_dataset.py compare_results.py "${readables[@]}")
for f in "${executables[@]}"; do
  if [ ! -f "$ROOT/$f" ]; then missing+=("$f"); elif [ ! -x "$ROOT/$f" ]; then missing+=("$f (not executable: chmod +x)"); fi
done
for f in "${readables[@]}"; do [ -f "$ROOT/$f" ] || missing+=("$f"); done
if [ "${#missing[@]}" -eq 0 ]; then ok "scripts present and executable"; else fail "missing: ${missing[*]}"; fi

# ---- python and packages --------------------------------------------------------------------
py=${UNETBENCH_PYTHON:-python3}
if ! command -v "$py" >/dev/null 2>&1; then
  fail "python: $py not found (activate your environment or set UNETBENCH_PYTHON)"
else
  pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 9))'; then ok "python $pyver ($(command -v "$py"))"
  else fail "python $pyver is older than 3.9"; fi
  if out=$(cd "$ROOT" && "$py" -c 'import numpy, torch, yaml, PIL, matplotlib, tqdm, unetbench; print(torch.__version__)' 2>&1); then
    ok "packages numpy torch pyyaml pillow matplotlib tqdm unetbench importable (torch ${out##*$'\n'})"
  else
    fail "packages: ${out##*$'\n'} (pip install -e . in your environment)"
  fi
  for b in "${backends[@]}"; do
    case "$b" in
      cuda)
        if cuda=$("$py" -c 'import torch, sys; v = torch.version.cuda; print(v); sys.exit(v is None)' 2>/dev/null); then
          ok "cuda: torch built with CUDA $cuda"
        else
          warn "cuda: this torch has no CUDA build here (fine if CUDA_SETUP activates another environment on the GPU node)"
        fi ;;
      gaudi_lazy | gaudi_eager)
        if "$py" -c 'import habana_frameworks.torch' >/dev/null 2>&1; then
          ok "$b: habana_frameworks.torch importable"
        else
          warn "$b: habana_frameworks.torch not importable here (fine if GAUDI_SETUP provides it on the Gaudi node)"
        fi ;;
      cpu) ok "cpu: nothing beyond torch needed" ;;
    esac
  done
fi

# ---- dataset --------------------------------------------------------------------------------
if [ "$check_data" = 0 ]; then
  skip "dataset (prepared next)"
elif ! command -v "$py" >/dev/null 2>&1; then
  fail "dataset: cannot check without python"
elif out=$("$py" - "$data_dir" "$full" <<'PY' 2>&1
"""Check the prepared dataset against its split file: shapes and sizes, and checksums when asked."""
import hashlib, json, sys
from pathlib import Path
import numpy as np

data, full = Path(sys.argv[1]), sys.argv[2] == "1"
splits_file = data / "dataset_splits.json"
if not splits_file.is_file():
    sys.exit(f"{splits_file} not found (run prepare_dataset.py, or let run_benchmark.sh prepare it)")
meta = json.loads(splits_file.read_text())
if meta.get("format") != "unetbench-dataset" or meta.get("format_version") != 1:
    sys.exit(f"{splits_file}: not a version-1 unetbench dataset")
total = 0
for name, split in meta["splits"].items():
    for kind in ("images", "labels"):
        entry = split[kind]
        path = data / entry["file"]
        if not path.is_file():
            sys.exit(f"{name} {kind}: {path} missing")
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(fh)
            offset = fh.tell()
        if list(shape) != list(entry["shape"]) or str(dtype) != entry["dtype"]:
            sys.exit(f"{path.name}: shape {list(shape)} {dtype}, split file says {entry['shape']} {entry['dtype']}")
        expected = offset + int(np.prod(shape)) * np.dtype(dtype).itemsize
        if path.stat().st_size != expected:
            sys.exit(f"{path.name}: {path.stat().st_size} bytes, expected {expected} (truncated?)")
        if full:
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != entry["sha256"]:
                sys.exit(f"{path.name}: sha256 differs from the split file")
    if split["count"] != entry["shape"][0]:
        sys.exit(f"{name}: count {split['count']} but {entry['shape'][0]} rows")
    total += split["count"]
crop = meta["crop"]
how = "sizes and checksums" if full else "sizes; --full for checksums"
print(f"{len(meta['splits'])} splits, {total} crops of {crop['height']}x{crop['width']}, {meta['num_classes']} classes ({how})")
PY
); then
  ok "dataset $data_dir: $out"
else
  fail "dataset: ${out##*$'\n'}"
fi

# ---- site.env and Slurm ---------------------------------------------------------------------
if [ "$local_mode" = 1 ]; then
  skip "site.env (local run)"
  skip "sbatch/squeue (local run)"
else
  if [ ! -f "$site" ]; then
    fail "site.env: $site not found (cp $ROOT/site.env.example $site and fill it in)"
  elif ! site_load "$site" 2>/dev/null; then
    fail "site.env: $site does not source cleanly (bash -n $site)"
  elif problems=$(site_check "${backends[@]}" compare); then
    ok "site.env $site complete for ${backends[*]} compare"
  else
    fail "site.env $site: $(echo "$problems" | paste -sd ';' - | sed 's/;/; /g')"
  fi
  tools_missing=()
  for t in sbatch squeue scontrol scancel; do command -v "$t" >/dev/null 2>&1 || tools_missing+=("$t"); done
  if [ "${#tools_missing[@]}" -eq 0 ]; then ok "slurm: sbatch squeue scontrol scancel found"
  else fail "slurm: ${tools_missing[*]} not found (load the Slurm module, or use --local)"; fi
fi

# ---- results folder -------------------------------------------------------------------------
if mkdir -p "$results_dir" 2>/dev/null && probe=$(mktemp "$results_dir/.verify.XXXXXX" 2>/dev/null); then
  rm -f "$probe"
  ok "results folder $results_dir writable"
else
  fail "results folder $results_dir not writable (choose another with --run-dir)"
fi

# ---- smoke training -------------------------------------------------------------------------
if [ -n "$device" ]; then
  smoke=$(mktemp -d)
  splits="$data_dir/dataset_splits.json"
  if [ ! -f "$splits" ]; then
    fail "smoke $device: no dataset at $splits"
  elif "$py" "$ROOT/unet_$device.py" --splits "$splits" --out "$smoke" --run-name smoke \
    --epochs 1 --max-steps-per-epoch 3 --warmup-steps 1 >"$smoke/log.txt" 2>&1 &&
    grep -q '"status": *"completed"' "$smoke/results_smoke.json" 2>/dev/null; then
    ok "smoke $device: 3 training steps completed"
  else
    fail "smoke $device: $(grep -v '^\s*$' "$smoke/log.txt" | tail -n 1)"
  fi
  rm -rf "$smoke"
fi

if [ "$failures" -gt 0 ]; then
  echo "verify: $failures check(s) failed"
  exit 1
fi
echo "verify: all checks passed"
