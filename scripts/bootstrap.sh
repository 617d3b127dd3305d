#!/usr/bin/env bash
# Set up .venv for actadapt: pinned CPU torch FIRST (a bare `torch` requirement can pull a multi-GB CUDA
# build), then the package in editable mode with the extras given (default: experiments).
#   bash scripts/bootstrap.sh [experiments|test|dev|plots|onnx]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-experiments}"
python="${PYTHON:-python3}"
torch_pin="${ACTADAPT_TORCH:-torch==2.13.0}"

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "$torch_pin"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
.venv/bin/python -c "import torch, actadapt; print(f'actadapt {actadapt.__version__} ready (torch {torch.__version__})')"
