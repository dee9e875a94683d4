#!/usr/bin/env bash
# Set up wham_ros in ./.venv (idempotent): CPU PyTorch, the package and its test tools.
# Usage: ./install.sh            then  .venv/bin/wham-ros selftest  or  .venv/bin/python -m pytest -q
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
VENV="${WHAM_ROS_VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# The CPU build of torch first: letting pip resolve "torch" on its own may pull a multi-GB CUDA build.
"${PIP[@]}" install torch==2.13.0
"${PIP[@]}" install -e ".[test]"
"$VENV/bin/python" - <<'PY'
import torch, numpy, smplx
print(f"wham_ros environment ready: torch {torch.__version__}, numpy {numpy.__version__}, smplx 0.1.28")
PY
