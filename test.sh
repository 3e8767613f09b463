#!/usr/bin/env bash
# Every test: the Rust workspace, then the Python package (built into a virtual environment
# under target/, created on the first run) and its pytest suite.
set -euo pipefail
cd "$(dirname "$0")"
cargo test --workspace
python/build.sh
target/venv/bin/python -m pytest -q python/tests
