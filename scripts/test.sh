#!/usr/bin/env bash
# Installs keras_score with all three backends into a virtual environment and
# runs the whole test suite once per backend (TensorFlow, JAX, PyTorch),
# the three side by side.
# Fails if any backend fails.
#
#   KERAS_SCORE_VENV      where the virtual environment lives
#                         (default: ~/.cache/keras_score/venv)
#   KERAS_SCORE_BACKENDS  backends to test (default: "tensorflow jax torch")
#   KERAS_SCORE_TORCH     torch requirement installed first
#                         (default: torch==2.13.0, a CPU build)
#   KERAS_SCORE_PARALLEL  1 (default): the backends run side by side, each
#                         log printed when all are done; 0: one after another
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${KERAS_SCORE_VENV:-$HOME/.cache/keras_score/venv}"
if [ ! -x "$venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
# shellcheck disable=SC1091
. "$venv/bin/activate"

# torch goes first: a pinned CPU build keeps pip from pulling a multi-GB CUDA build.
python -m pip install --quiet "${KERAS_SCORE_TORCH:-torch==2.13.0}"
python -m pip install --quiet -e ".[tensorflow,jax,torch,tfds,envs,dev]"

export TF_CPP_MIN_LOG_LEVEL=2
# One pytest process keeps about one core busy (Python, and compiling), so the backends run side
# by side: on 2 cores the suite takes about half the time of running them one after another.
# KERAS_SCORE_PARALLEL=0 runs them in turn, with live output.
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
run_backend() {
  local backend="$1" threads=""
  # PyTorch's OpenMP pool spins badly on small, busy machines: one thread ran the
  # 2-D training step 15x faster on 2 cores (benchmarks/README.md).
  [ "$backend" = torch ] && threads="${OMP_NUM_THREADS:-1}"
  env ${threads:+OMP_NUM_THREADS=$threads} KERAS_BACKEND="$backend" \
    python -m pytest tests -p no:cacheprovider --basetemp="$logs/tmp-$backend"
}
status=0
backends="${KERAS_SCORE_BACKENDS:-tensorflow jax torch}"
if [ "${KERAS_SCORE_PARALLEL:-1}" = 0 ]; then
  for backend in $backends; do
    echo "=== KERAS_BACKEND=$backend"
    run_backend "$backend" || { echo "=== FAILED on $backend"; status=1; }
  done
  exit "$status"
fi
declare -A pids
for backend in $backends; do
  run_backend "$backend" >"$logs/$backend.log" 2>&1 &
  pids[$backend]=$!
done
for backend in $backends; do
  code=0
  wait "${pids[$backend]}" || code=$?
  echo "=== KERAS_BACKEND=$backend"
  cat "$logs/$backend.log"
  if [ "$code" != 0 ]; then
    echo "=== FAILED on $backend"
    status=1
  fi
done
exit "$status"
