#!/usr/bin/env bash
# Generate and install refit_ros/msg/{SMPL,SMPLArray} into the active virtual environment
# with CMake + rosidl from the PyPI ROS 2 wheels. Idempotent; ~10 s on 2 cores.
#
# Traps handled (see docs/INSTALL.md):
#  - rosidl needs AMENT_PREFIX_PATH=$VIRTUAL_ENV to find its type supports;
#  - the wheels' exported *.cmake files hard-code the wheel builder's Python/numpy include
#    dirs, rewritten here to this venv's;
#  - the generated Python package `refit_ros` would shadow this source tree, so its
#    __init__.py is removed: it becomes a namespace portion that refit_ros/__init__.py's
#    pkgutil.extend_path merges with the hand-written modules.
set -euo pipefail
: "${VIRTUAL_ENV:?activate the venv first (make setup does)}"
here="$(cd "$(dirname "$0")/.." && pwd)"
py="$VIRTUAL_ENV/bin/python"
build="${REFIT_MSG_BUILD_DIR:-$here/build/msgs}"

py_inc="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_inc="$("$py" -c 'import numpy; print(numpy.get_include())')"
site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

# Rewrite the wheel builder's include dirs (only files that still contain them; none left
# on a second run, when grep's "no match" must not stop the script).
{ grep -rlZ "/opt/python/cp311-cp311" --include='*.cmake' "$VIRTUAL_ENV/share" 2>/dev/null || true; } \
  | xargs -0 -r sed -i \
      -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${np_inc}#g" \
      -e "s#/opt/python/cp311-cp311/include/python3.11#${py_inc}#g"

export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
mkdir -p "$build"
cmake -S "$here" -B "$build" -G "Unix Makefiles" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$VIRTUAL_ENV" \
  -DCMAKE_INSTALL_PREFIX="$VIRTUAL_ENV" \
  -DPython3_EXECUTABLE="$py" \
  -DREFIT_ROS_INSTALL_PYTHON_SOURCES=OFF \
  -DBUILD_TESTING=OFF > "$build/configure.log" 2>&1 \
  || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j "$(nproc)" > "$build/build.log" 2>&1 || { tail -50 "$build/build.log"; exit 1; }
cmake --install "$build" > "$build/install.log" 2>&1 || { tail -50 "$build/install.log"; exit 1; }

# Namespace portion instead of a competing regular package (see header).
rm -f "$site/refit_ros/__init__.py"
rm -rf "$site/refit_ros/__pycache__"
"$py" - <<'PY'
from refit_ros.msg import SMPL, SMPLArray  # noqa: F401
m = SMPL()
assert len(m.pose) == 72 and len(m.betas) == 10 and len(m.transl) == 3 and len(m.bbox) == 4
print("refit_ros messages OK")
PY
