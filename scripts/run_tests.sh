#!/usr/bin/env bash
# Run the whole test suite in the project venv with ROS 2 traffic kept on this machine:
# localhost-only discovery and a random domain id, so parallel runs don't see each other.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
venv="${VENV:-.venv}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}"
if [ -f config/fastdds_localhost.xml ]; then
  export FASTDDS_DEFAULT_PROFILES_FILE="$here/config/fastdds_localhost.xml"
fi
exec "$venv/bin/python" -m pytest "$@"
