#!/usr/bin/env bash
# Installs keras_score with all three backends into a virtual environment and
# runs the whole test suite once per backend (TensorFlow, JAX, PyTorch).
# Fails if any backend fails.
#
#   KERAS_SCORE_VENV      where the virtual environment lives
#                         (default: ~/.cache/keras_score/venv)
#   KERAS_SCORE_BACKENDS  backends to test (default: "tensorflow jax torch")
#   KERAS_SCORE_TORCH     torch requirement installed first
#                         (default: torch==2.13.0, a CPU build)
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
python -m pip install --quiet -e ".[tensorflow,jax,torch,tfds,dev]"

export TF_CPP_MIN_LOG_LEVEL=2
status=0
for backend in ${KERAS_SCORE_BACKENDS:-tensorflow jax torch}; do
  echo "=== KERAS_BACKEND=$backend"
  threads=""
  # PyTorch's OpenMP pool spins badly on small, busy machines: one thread ran the
  # 2-D training step 15x faster on 2 cores (benchmarks/README.md).
  [ "$backend" = torch ] && threads="${OMP_NUM_THREADS:-1}"
  if ! env ${threads:+OMP_NUM_THREADS=$threads} KERAS_BACKEND="$backend" \
      python -m pytest tests -p no:cacheprovider; then
    echo "=== FAILED on $backend"
    status=1
  fi
done
exit "$status"
