#!/usr/bin/env bash
# `make demo`: the main job on the built-in default: camera source -> refit node -> recorder
# on a real two-person clip, writing overlays + recorded messages under out/demo/.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
clip="$(bash scripts/fetch_demo_video.sh)"
exec .venv/bin/refit-ros demo --input "$clip" --out out/demo "$@"
