#!/usr/bin/env bash
# Fetch the demo clip: Sports2D/Demo/demo.mp4 (1768x994, 30 fps, 230 frames, 2 people) from
# the sports2d==0.8.34 wheel on PyPI (BSD-3-Clause). The package is not installed; only the
# clip is unzipped into .cache/demo/. Prints the clip's path. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/.cache/demo"
clip="$dest/demo.mp4"
if [ ! -s "$clip" ]; then
  mkdir -p "$dest/wheel"
  "${PYTHON:-$here/.venv/bin/python}" -m pip download -q --no-deps --disable-pip-version-check \
      -d "$dest/wheel" "sports2d==0.8.34" 2>&1 | { grep -v "is ignored: it is neither" >&2 || true; }
  whl="$(ls "$dest"/wheel/sports2d-0.8.34-*.whl | head -n 1)"
  "${PYTHON:-$here/.venv/bin/python}" - "$whl" "$clip" <<'PY'
import sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith("Demo/demo.mp4"))
    with z.open(name) as src, open(out, "wb") as dst:
        dst.write(src.read())
PY
  cp "$here/scripts/DEMO_VIDEO_LICENSE.txt" "$dest/LICENSE.txt" 2>/dev/null || true
fi
echo "$clip"
