#!/usr/bin/env bash
# Builds the `haca` Python package into target/venv (created, with its dependencies, when
# missing): `target/venv/bin/python -c "import haca"` then works. Rebuilds in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x target/venv/bin/python ]; then
    echo "== creating target/venv with maturin, gymnasium, numpy, pytest"
    python3 -m venv target/venv
    target/venv/bin/pip install -q --upgrade pip
    target/venv/bin/pip install -q "maturin>=1.9,<2" "gymnasium>=1.0,<2" "numpy>=1.24" "pytest>=7"
fi
# maturin builds the extension with the workspace's target folder and installs it in place.
(cd python && VIRTUAL_ENV="$PWD/../target/venv" ../target/venv/bin/maturin develop --release -q)
