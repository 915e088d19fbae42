#!/usr/bin/env bash
# Create .venv and install devicebench with its test extra. Idempotent.
# - No torch in .venv yet: install with constraints.txt (a CPU build of torch 2.13.0; never CUDA wheels).
# - torch already in .venv (a GPU user installed their own build first): keep it, no constraints.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "keeping the torch already in $VENV: $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')" >&2
  "$VENV/bin/python" -m pip install -q -e '.[test]'
else
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e '.[test]'
  if "$VENV/bin/python" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
    echo "error: CUDA wheels were installed on a CPU install: $("$VENV/bin/python" -m pip list 2>/dev/null | grep -i '^nvidia-' | tr '\n' ' ')" >&2
    exit 1
  fi
fi
touch "$VENV/.installed"
