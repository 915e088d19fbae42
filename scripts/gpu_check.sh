#!/usr/bin/env bash
# The CUDA checks of issues #3-#5, #8, #9 in one go, on a machine with an NVIDIA GPU and its own torch:
#   PYTHON=python3 OUT=/tmp/gpu-out bash scripts/gpu_check.sh
# Runs from the repository root without installing (PYTHONPATH=.); writes everything under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-gpu-out}
ITERS=${ITERS:-2000}
mkdir -p "$OUT"
export PYTHONPATH=. PYTHONUNBUFFERED=1
run() { echo "== $*" | tee -a "$OUT/log.txt"; "$@" 2>&1 | tee -a "$OUT/log.txt"; }
run nvidia-smi
$PY -m hwinfo --json --measure > "$OUT/hwinfo.json" 2>> "$OUT/log.txt"
run $PY -m hwinfo
run $PY -m pytest -q -m gpu tests/
# Same seed, same batches: the CPU and CUDA curves of the reference recipe must agree within 0.02 at every eval.
run $PY -m bench run --devices cpu,cuda --iters "$ITERS" --out "$OUT/cpu-vs-cuda" --no-progress --profile 5
# Where the GPU stops being overhead-bound: batch x dtype x compile (eager, inductor, CUDA graphs).
# (eager: every dtype; compiled: bf16 only, each compile costs ~a minute; fits a 10-minute call on an H100)
run $PY -m bench run --devices cuda --iters 300 --eval-interval 150 --batch-sizes 12,64,256,1024 \
    --dtypes fp32,tf32,bf16 --out "$OUT/cuda-eager" --no-progress --profile 5
run $PY -m bench run --devices cuda --iters 300 --eval-interval 150 --batch-sizes 12,256 \
    --dtypes bf16 --compile on,reduce-overhead --out "$OUT/cuda-compiled" --no-progress --profile 5
run $PY -m bench report "$OUT/cpu-vs-cuda" "$OUT/cuda-eager" "$OUT/cuda-compiled" --html "$OUT/report.html"
run $PY - "$OUT/cpu-vs-cuda" <<'PY'
import csv, sys, pathlib
runs = pathlib.Path(sys.argv[1], "runs")
def evals(rid):
    with open(runs / rid / "evals.csv") as f:
        return {(r["iter"], r["split"]): float(r["loss"]) for r in csv.DictReader(f)}
cpu, cuda = evals("cpu-fp32-b12-eager"), evals("cuda-fp32-b12-eager")
diff = max(abs(cpu[k] - cuda[k]) for k in cpu)
print(f"max |cpu - cuda| eval loss over {len(cpu)} evals: {diff:.4f} ({'ok' if diff < 0.02 else 'ABOVE 0.02'})")
PY
