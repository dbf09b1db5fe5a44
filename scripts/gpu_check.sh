#!/usr/bin/env bash
# The prepared GPU check of issue 14, in one command (see scripts/gpu_check.py).
#
# On a lent NVIDIA machine (python3 with CUDA torch; no smplx, ROS or network), from the
# repo root, after scripts/gpu_wheels.sh ran HERE (it fills .gpu_wheels/ and .gpu_fixture/):
#   device run, carry [".gpu_wheels", ".gpu_fixture"], command:
#     bash scripts/gpu_check.sh
# Prints one JSON object (timings, parity, GPU, torch) and writes $OUT/gpu_check.json.
# Smoke test without a GPU:  scripts/gpu_check.sh --device cpu --quick
# Arguments are passed to scripts/gpu_check.py (--help lists them). Exit: 0 parity ok,
# 1 parity failed, 2 cannot run (no CUDA, missing package, no fixture).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python3}
# Carried wheels (smplx): installed into a private folder only when the module is missing.
if ! "$PY" -c "import smplx" 2>/dev/null; then
  for dir in shared/wheels .gpu_wheels; do
    if compgen -G "$dir/*.whl" >/dev/null; then
      site=${GPU_CHECK_SITE:-/tmp/gpu_check_site}
      "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --disable-pip-version-check --target "$site" "$dir"/*.whl || exit 2
      export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
      break
    fi
  done
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
exec "$PY" scripts/gpu_check.py "$@"
