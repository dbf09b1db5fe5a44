#!/usr/bin/env bash
# Fetch the real 3D dev set's videos: Pose2Sim's Demo_MultiPerson (4 calibrated portrait
# views, 1088x1920, 60 fps, 2 people) from the pose2sim==0.10.49 wheel on PyPI (BSD-3-Clause,
# (c) David Pagnon). The package is not installed; only videos/cam0[1-4].mp4 of that one demo
# folder are unzipped into .cache/p2s_multi/videos/. The wheel's other demo folders are held
# out for independent checks: they are never extracted. The ground truth (gt.npz, per-camera
# yaml) is the team's fixture ../shared/fixtures/p2s_multi. Prints the videos folder. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/.cache/p2s_multi"
videos="$dest/videos"
if [ ! -s "$videos/cam04.mp4" ]; then
  mkdir -p "$dest/wheel" "$videos"
  "${PYTHON:-$here/.venv/bin/python}" -m pip download -q --no-deps --disable-pip-version-check \
      -d "$dest/wheel" "pose2sim==0.10.49" 2>&1 | { grep -v "is ignored: it is neither" >&2 || true; }
  whl="$(ls "$dest"/wheel/pose2sim-0.10.49-*.whl | head -n 1)"
  "${PYTHON:-$here/.venv/bin/python}" - "$whl" "$videos" <<'PY'
import sys, zipfile
from pathlib import Path
whl, out = sys.argv[1], Path(sys.argv[2])
with zipfile.ZipFile(whl) as z:
    for cam in ("cam01", "cam02", "cam03", "cam04"):
        name = f"Pose2Sim/Demo_MultiPerson/videos/{cam}.mp4"
        (out / f"{cam}.mp4").write_bytes(z.read(name))
PY
  rm -rf "$dest/wheel"
  cat > "$dest/LICENSE.txt" <<'TXT'
videos/cam01-04.mp4: Pose2Sim Demo_MultiPerson, from the pose2sim==0.10.49 wheel on PyPI.
BSD 3-Clause License, Copyright (c) David Pagnon. https://github.com/perfanalytics/pose2sim
TXT
fi
echo "$videos"
