"""The CUDA path on a real GPU (marked `gpu`: skipped with the reason where torch sees no CUDA device)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bench.cli import main

pytestmark = pytest.mark.gpu

TINY = ["--n-layer", "2", "--n-head", "2", "--n-embd", "64", "--block-size", "32"]


def _evals(out: Path, run_id: str) -> dict[tuple[int, str], float]:
    with open(out / "runs" / run_id / "evals.csv", newline="") as f:
        return {(int(r["iter"]), r["split"]): float(r["loss"]) for r in csv.DictReader(f)}


def _run(out: Path, run_id: str) -> dict:
    return json.loads((out / "runs" / run_id / "run.json").read_text())


def test_cpu_and_cuda_curves_agree_with_one_seed(tmp_path):
    """Same config and seed: same batches, so the eval losses agree within numeric noise (fp32, TF32 off)."""
    out = tmp_path / "r"
    args = [
        "run",
        "--devices",
        "cpu,cuda",
        *TINY,
        "--iters",
        "200",
        "--eval-interval",
        "50",
        "--eval-iters",
        "5",
    ]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    cpu, cuda = _evals(out, "cpu-fp32-b12-eager"), _evals(out, "cuda-fp32-b12-eager")
    assert cpu.keys() == cuda.keys()
    assert max(abs(cpu[k] - cuda[k]) for k in cpu) < 0.02


def test_cuda_timing_is_synchronised_and_warmup_kept_apart(tmp_path):
    out = tmp_path / "r"
    assert main(["run", "--devices", "cuda", *TINY, "--iters", "60", "--batch-sizes", "12,256",
                 "--eval-interval", "30", "--eval-iters", "2", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    small, big = _run(out, "cuda-fp32-b12-eager"), _run(out, "cuda-fp32-b256-eager")
    for run in (small, big):
        s = run["summary"]
        assert (
            run["device_name"]
            and s["peak_mem_kind"] == "cuda_max_memory_allocated"
            and s["peak_mem_bytes"] > 0
        )
        assert s["first_step_ms"] > s["ms_median"]  # CUDA context, cuBLAS handles: warm-up kept out
        assert run["peak_flops"]["source"] in ("spec", "measured", "unknown")
    # synchronised: 21x the tokens cannot cost less time than the small batch
    assert big["summary"]["ms_median"] >= small["summary"]["ms_median"] * 0.9


def test_out_of_memory_fails_that_run_and_the_sweep_goes_on(tmp_path):
    out = tmp_path / "r"
    code = main(["run", "--devices", "cuda", *TINY, "--iters", "5", "--batch-sizes", "12,4000000,12",
                 "--eval-interval", "5", "--eval-iters", "1", "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 1
    oom = _run(out, "cuda-fp32-b4000000-eager")
    assert oom["status"] == "failed" and "out of memory at batch size 4000000" in oom["error"]
    assert _run(out, "cuda-fp32-b12-eager")["status"] == "ok"


def test_dtypes_and_cuda_graphs_compile_run(tmp_path):
    out = tmp_path / "r"
    code = main(["run", "--devices", "cuda", *TINY, "--iters", "30", "--dtypes", "fp32,tf32,bf16",
                 "--compile", "off,reduce-overhead", "--eval-interval", "30", "--eval-iters", "1",
                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    statuses = {p.name: _run(out, p.name)["status"] for p in (out / "runs").iterdir()}
    assert len(statuses) == 6 and set(statuses.values()) == {"ok"}, statuses
