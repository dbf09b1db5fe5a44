#!/usr/bin/env bash
# Run the whole test suite in the project venv with ROS 2 traffic kept on this machine:
# localhost-only discovery and a random domain id, so parallel runs don't see each other.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
venv="${VENV:-.venv}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}"
# No DDS profile here: the processes under test set their own transport (ros.transport), and
# the test process itself follows the README's camera-driver instruction (tests/conftest.py).
exec "$venv/bin/python" -m pytest "$@"
