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
        # derived: a GPU without a spec row, or a MIG slice (its SM share of the row)
        assert run["peak_flops"]["source"] in ("spec", "derived", "measured", "unknown")
    # synchronised: 21x the tokens cannot cost less time than the small batch
    assert big["summary"]["ms_median"] >= small["summary"]["ms_median"] * 0.9


def test_out_of_memory_fails_that_run_and_the_sweep_goes_on(tmp_path):
    out = tmp_path / "r"
    # a repeated batch size runs once, so the run after the failure has its own size
    code = main(["run", "--devices", "cuda", *TINY, "--iters", "5", "--batch-sizes", "12,4000000,8",
                 "--eval-interval", "5", "--eval-iters", "1", "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 1
    oom = _run(out, "cuda-fp32-b4000000-eager")
    assert oom["status"] == "failed" and "out of memory at batch size 4000000" in oom["error"]
    assert _run(out, "cuda-fp32-b12-eager")["status"] == "ok"
    assert _run(out, "cuda-fp32-b8-eager")["status"] == "ok"


def test_dtypes_and_cuda_graphs_compile_run(tmp_path):
    import torch

    out = tmp_path / "r"
    code = main(["run", "--devices", "cuda", *TINY, "--iters", "30", "--dtypes", "fp32,tf32,bf16",
                 "--compile", "off,reduce-overhead", "--eval-interval", "30", "--eval-iters", "1",
                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    statuses = {p.name: _run(out, p.name)["status"] for p in (out / "runs").iterdir()}
    # tf32 and bf16 need compute capability 8.0 (Ampere); before it (T4, V100) they are skipped as emulation
    ampere = torch.cuda.get_device_capability() >= (8, 0)
    expected = {rid: "ok" if ampere or rid.startswith("cuda-fp32-") else "skipped" for rid in statuses}
    assert len(statuses) == 6 and statuses == expected, statuses


def test_fp16_trains_with_a_grad_scaler(shakespeare):
    import torch

    from bench.config import TrainConfig
    from bench.train import Trainer
    from model.gpt import GPTConfig

    trainer = Trainer(GPTConfig(n_layer=1, n_head=2, n_embd=64, block_size=32), TrainConfig(), "cuda", "fp16",
                      batch_size=8, dataset=shakespeare)  # fmt: skip
    with trainer:
        losses = [trainer.train_step(it).loss.item() for it in range(20)]
    assert trainer.scaler.is_enabled() and trainer.scaler.get_scale() > 0
    assert all(map(torch.isfinite, torch.tensor(losses))) and losses[-1] < losses[0]


def test_compiled_runs_really_compile_and_reduce_overhead_uses_cuda_graphs(tmp_path):
    out = tmp_path / "r"
    assert main(["run", "--devices", "cuda", *TINY, "--iters", "20", "--batch-sizes", "8,16", "--compile",
                 "on,reduce-overhead", "--eval-interval", "20", "--eval-iters", "1", "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    for run_id in ("cuda-fp32-b8-compile", "cuda-fp32-b16-compile", "cuda-fp32-b8-compile-reduce-overhead",
                   "cuda-fp32-b16-compile-reduce-overhead"):  # fmt: skip
        run = _run(out, run_id)
        assert run["compile_stats"]["frames_compiled"] >= 1, run_id  # each run compiled its own graph
        assert run["summary"]["first_step_ms"] > 5 * run["summary"]["ms_median"], run_id
    for run_id in ("cuda-fp32-b8-compile-reduce-overhead", "cuda-fp32-b16-compile-reduce-overhead"):
        assert _run(out, run_id)["compile_stats"]["cudagraph_skips"] == 0, run_id  # CUDA graphs were used


def test_matmul_precision_is_restored_after_tf32_run(tmp_path):
    import torch

    torch.backends.cuda.matmul.fp32_precision = "ieee"
    out = tmp_path / "r"
    assert main(["run", "--devices", "cuda", *TINY, "--iters", "5", "--dtypes", "tf32", "--eval-interval", "5",
                 "--eval-iters", "1", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"


def test_profile_on_cuda_writes_the_device_view(tmp_path):
    out = tmp_path / "r"
    assert main(["run", "--devices", "cuda", *TINY, "--iters", "20", "--eval-interval", "20", "--eval-iters", "1",
                 "--profile", "3", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    prof = json.loads((out / "runs" / "cuda-fp32-b12-eager" / "profile.json").read_text())
    assert prof["view"] == "device" and prof["mean"]["kernel_launches_per_step"] > 10
    assert 0.0 <= prof["mean"]["device_idle_fraction"] <= 1.0
    rl = prof["roofline"]  # bytes and FLOPs counted on CUDA too, against the GPU's roofs
    assert rl["categories"]["matmul"]["flops"] > 0 and rl["categories"]["matmul"]["bytes"] > 0
    assert rl["compute_roof"] and rl["compute_roof"]["value"] > 0


def test_a_cuda_run_records_joules_per_step_from_nvml(tmp_path):
    """Issue 20 on hardware: NVML's energy counter (or power samples) gives J/step; a MIG slice says why not."""
    out = tmp_path / "r"
    assert main(["run", "--devices", "cuda", *TINY, "--iters", "200", "--eval-interval", "100", "--eval-iters",
                 "2", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    energy = _run(out, "cuda-fp32-b12-eager")["summary"]["energy"]
    if energy["source"] == "unavailable":
        assert energy["reason"], energy  # e.g. MIG, or a GPU without the counter: said, never estimated
        pytest.skip(f"no GPU energy counter here: {energy['reason']}")
    assert energy["source"] in ("nvml_energy", "nvml_power_samples")
    assert energy["joules_per_step"] > 0 and energy["mean_watts"] > 0 and energy["tokens_per_joule"] > 0


def test_ddp_on_one_gpu_with_nccl_matches_one_process(tmp_path):
    """`--nproc 1` goes through torchrun and NCCL; the curve equals the plain run's (same global batch)."""
    args = ["run", "--devices", "cuda", *TINY, "--iters", "40", "--eval-interval", "20", "--eval-iters", "2",
            "--no-progress"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--nproc", "1", "--out", str(tmp_path / "ddp")]) == 0
    (ddp_dir,) = (tmp_path / "ddp" / "runs").iterdir()
    ddp = json.loads((ddp_dir / "run.json").read_text())
    assert ddp["status"] == "ok" and ddp["backend"] == "nccl" and ddp["world_size"] == 1
    one = _evals(tmp_path / "one", "cuda-fp32-b12-eager")
    assert max(abs(one[k] - v) for k, v in _evals(tmp_path / "ddp", ddp_dir.name).items()) < 1e-3


def test_out_of_memory_in_an_eval_fails_that_run(tmp_path):
    """Batch 20,000,000 fits no eval on any GPU of today: the run fails with its batch size, the sweep goes on."""
    out = tmp_path / "r"
    code = main(["run", "--devices", "cuda", *TINY, "--iters", "5", "--batch-sizes", "20000000,8",
                 "--eval-interval", "5", "--eval-iters", "1", "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 1
    oom = _run(out, "cuda-fp32-b20000000-eager")
    assert (
        oom["status"] == "failed" and "out of memory at batch size 20000000 during the eval" in oom["error"]
    )
    assert _run(out, "cuda-fp32-b8-eager")["status"] == "ok"
