#!/usr/bin/env bash
# The tests CI skips because their dependencies are gigabytes (torch, ray): installs
# sb3-contrib and ray[rllib] into target/venv if missing, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
python/build.sh
if ! target/venv/bin/python -c "import sb3_contrib, ray.rllib" 2>/dev/null; then
    echo "== installing sb3-contrib and ray[rllib] (torch included: several GB)"
    target/venv/bin/pip install -q sb3-contrib "ray[rllib]"
fi
target/venv/bin/python -m pytest -q python/tests/test_sb3.py python/tests/test_rllib.py
