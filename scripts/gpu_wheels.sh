#!/usr/bin/env bash
# Prepare what scripts/gpu_check.sh needs on a device machine that has only python 3.12 with
# CUDA torch, numpy, opencv-python-headless, pyyaml, onnx and onnxruntime (no network, no
# smplx, and ../shared beside the checkout does not travel). Run HERE, from anywhere:
#   scripts/gpu_wheels.sh            # -> .gpu_wheels/*.whl and .gpu_fixture/refit_reference
# then pass carry [".gpu_wheels", ".gpu_fixture"] to the device run (both are git-ignored).
#
# Missing there (checked by importing every refit_ros module with them blocked): smplx,
# imported at top level by refit_ros.body / models / runtime / parity (a 30 kB pure-Python
# wheel; its needs, torch and numpy, are there). rclpy (refit_ros.ros.*), mediapipe and mcap
# are missing too but imported only by the node, the detector and replay, which the check
# does not use. scipy, pyyaml, tqdm, psutil are in that image.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
mkdir -p .gpu_wheels
# Pinned to requirements/base.txt; --no-deps: their requirements are in the image.
PKGS=$(grep -E '^smplx==' requirements/base.txt)
for pkg in $PKGS; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 -d .gpu_wheels "$pkg"
done
# The ReFit reference fixture (16 MB): from $REFIT_FIXTURE or ../shared beside the checkout.
src=${REFIT_FIXTURE:-../shared/fixtures/refit_reference}
if [ -f "$src/manifest.json" ]; then
  mkdir -p .gpu_fixture/refit_reference
  cp "$src"/*.npz "$src"/*.json "$src"/*.md .gpu_fixture/refit_reference/ 2>/dev/null || \
    cp "$src"/* .gpu_fixture/refit_reference/
  chmod -R u+w .gpu_fixture
else
  echo "gpu_wheels.sh: no fixture at $src (set REFIT_FIXTURE); gpu_check needs --models refit_kp then" >&2
fi
du -sh .gpu_wheels .gpu_fixture 2>/dev/null || true
ls .gpu_wheels
