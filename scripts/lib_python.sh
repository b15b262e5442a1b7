# shellcheck shell=bash
# Hand a command over to a module of the package, with the Python the user chose.
#
#   source scripts/lib_python.sh
#   run_module unetbench.cluster.submit "$@"       # execs: $UNETBENCH_PYTHON (default python3) -m unetbench.cluster.submit
#
# The caller sets UNETBENCH_ROOT (the checkout); the module is imported from there, so the
# scripts work from a plain checkout as well as after `pip install -e .`.

# shellcheck source=scripts/registry.sh
source "$UNETBENCH_ROOT/scripts/registry.sh"

run_module() {
  local module=$1 py=${UNETBENCH_PYTHON:-python3}
  shift
  if ! command -v "$py" >/dev/null 2>&1; then
    echo "error: $py not found; activate the environment that has unetbench's requirements (pip install -e .)," \
      "or set UNETBENCH_PYTHON" >&2
    exit "$UB_EXIT_USAGE"
  fi
  export UNETBENCH_ROOT
  PYTHONPATH="$UNETBENCH_ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m "$module" "$@"
}
