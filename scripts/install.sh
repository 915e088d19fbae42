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
  # No CUDA wheels on a CPU install: no nvidia-* package but NVML's binding (nvidia-ml-py, a few hundred kB),
  # and a torch built without CUDA.
  packages=$("$VENV/bin/python" -m pip list --format=freeze 2>/dev/null)
  cuda_wheels=$(printf '%s\n' "$packages" | grep -i '^nvidia-' | grep -vi '^nvidia-ml-py=' || true)
  if [ -n "$cuda_wheels" ] || ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.version.cuda is not None)"; then
    echo "error: a CPU install pulled CUDA wheels: $(echo $cuda_wheels) (torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'))" >&2
    exit 1
  fi
fi
touch "$VENV/.installed"
