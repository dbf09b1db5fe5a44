#!/usr/bin/env bash
# Install refit_ros into PREFIX the way `colcon build` does (CMake, default options, from a
# workspace copy of the package), on top of the project venv that `make setup` built (its
# ROS 2 wheels stand in for /opt/ros). For tests and for machines without colcon:
#
#   bash scripts/install_colcon_style.sh PREFIX          (~1-2 min on 2 cores)
#   then: AMENT_PREFIX_PATH=PREFIX:$VENV  PYTHONPATH=PREFIX/lib/python3.11/site-packages
#
# The workspace copy matters: CMake refuses an install from a source tree that holds a venv.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(cd "${VENV:-$here/.venv}" && pwd)"
prefix="${1:?usage: install_colcon_style.sh PREFIX}"
mkdir -p "$prefix"; prefix="$(cd "$prefix" && pwd)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
src="$work/src/refit_ros"
mkdir -p "$src"
# What the package is: the files CMakeLists.txt installs (no caches, venv or build outputs).
tar -C "$here" --exclude='__pycache__' --exclude='*.pyc' -cf - \
  CMakeLists.txt package.xml msg launch config scripts refit_ros | tar -C "$src" -xf -
export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
cmake -S "$src" -B "$work/build" -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF >"$work/configure.log" 2>&1 \
  || { cat "$work/configure.log" >&2; exit 1; }
cmake --build "$work/build" -j 2 >"$work/build.log" 2>&1 || { tail -50 "$work/build.log" >&2; exit 1; }
cmake --install "$work/build" >/dev/null
echo "refit_ros installed colcon-style into $prefix"
