#!/usr/bin/env bash
# The main job: what this machine has, a short sweep on every device PyTorch can use, the HTML report.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
ITERS=${ITERS:-300}
OUT=${OUT:-results/demo-$(date +%Y%m%d-%H%M%S)}
"$VENV/bin/hwinfo"
"$VENV/bin/bench" run --iters "$ITERS" --eval-interval 100 --batch-sizes 12,48 --profile 3 --out "$OUT"
"$VENV/bin/bench" report "$OUT" --html
