"""The words of every finding kind against one golden file per kind (tests/golden/<kind>.txt).

The rules' tests assert evidence; these show the sentences a reader gets, so a change of words is a diff a
reviewer reads. Each golden file holds one line per case below. To accept new words:
UPDATE_GOLDEN=1 pytest tests/test_report_words.py, then read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reports import words
from reports.finding import Finding

GOLDEN = Path(__file__).parent / "golden"
LAB = {
    "a": "desktop/cuda-bf16-b64-compile",
    "b": "laptop/cpu-fp32-b12-eager",
    "c": "laptop/cpu-bf16-b12-eager",
}
GPU, CPU = "NVIDIA GeForce RTX 4070 Ti on desktop", "12th Gen Intel Core i7-12700H on laptop"
SPEED = {
    "fast": "a", "slow": "b", "fast_device": GPU, "slow_device": CPU, "speedup": 1235.0, "same_model": False,
    "peak_ratio": 59.4, "mfu_ratio": 20.8, "mfu": [0.442, 0.0213], "token_time_ratio": 90.0, "iter_time_ratio": 4.2,
}  # fmt: skip
SCALE = {"what": "cuda (GPU) fp32 eager", "shared": False, "weak": None, "same": None, "alone": None}
ROOF_CATS = {"matmul": {"share": 0.59}, "elementwise_norm": {"share": 0.12}}
LIMIT = {"ms_median": 80.2, "allreduce_share": 0.2, "limit": "compute", "shares_device": False}
DEV = "cpu (12th Gen Intel(R) Core(TM) i7-12700H)"
LONG_DEV = "cuda:0 (NVIDIA GeForce RTX 4070 Ti SUPER 16GB) on a-long-host-name"
EFF = {"measure": "throughput", "verdict": "worth it", "ratio": 1.51, "low": 1.42, "high": 1.6}
TIP_ROW = {
    "variant": "", "measure": "throughput", "verdict": "worth it", "effect": EFF, "title": "threads = physical cores",
    "claim": "use every core: torch.set_num_threads / OMP_NUM_THREADS", "why": "1 thread against the default's 4",
}  # fmt: skip
OMP = ("OpenMP affinity (OMP_PROC_BIND=close, OMP_PLACES=cores)",
       "PyTorch's CPU tuning guide: threads that stay on their core keep their caches warm")  # fmt: skip
BEST = {
    "device": DEV, "changed": ["compile on", "fused_adamw on"], "none_better": False, "gain_measured": True,
    "gain_over_default": {**EFF, "ratio": 1.31, "low": 1.25, "high": 1.37}, "time_to_loss_gain": None,
}  # fmt: skip
ENERGY = {
    "joules_per_step": 2.0, "tokens_per_joule": 384.0, "mean_watts": 40.0, "idle_watts": 8.0, "energy_source": "rapl",
    "tokens_per_s": 768.0, "device": f"{DEV} fp32", "igpu": None,
}  # fmt: skip
CONTINUED = {
    "key": "c", "kind": "devicebench", "start_iter": 20, "parent": "b", "parent_text": LAB["b"],
    "start_device": f"{DEV} fp32, 1 thread", "device": f"{DEV} bf16, 4 threads", "start_val": 2.3456, "end_iter": 40,
    "end_val": 2.1, "best_iter": 30, "best_val": 2.05, "reference": "a", "max_abs_diff": 0.013, "at_iter": 40,
    "shared_evals": 2, "tolerance": 0.05, "reproduces": True, "overfit": False,
}  # fmt: skip
CASES: dict[str, list[tuple[dict, list[str]]]] = {
    "speedup": [
        (SPEED, ["a", "b"]),
        (
            {
                **SPEED,
                "same_model": True,
                "speedup": 28.0,
                "peak_ratio": 83.0,
                "mfu_ratio": 0.34,
                "mfu": [0.0226, 0.0659],
            },
            ["a", "b"],
        ),
        ({**SPEED, "peak_ratio": None, "mfu_ratio": None, "unknown_peak": ["Mystery GPU fp32"]}, ["a", "b"]),
        ({**SPEED, "peak_ratio": None, "impossible": ["12th Gen Intel Core i7-12700H fp32"]}, ["a", "b"]),
        (
            {**SPEED, "token_time_ratio": None},
            ["a", "b"],
        ),  # another model whose tokens per iteration are unknown
    ],
    "headline": [
        (
            {
                **SPEED,
                "case": "compare",
                "recipe_differs": ["batch_size", "dtype", "model.n_layer", "train.max_iters"],
            },
            ["a", "b"],
        ),
        (
            {**SPEED, "case": "compare", "token_time_ratio": None, "recipe_differs": ["batch_size"]},
            ["a", "b"],
        ),
        (
            {
                **SPEED,
                "case": "compare",
                "same_model": True,
                "speedup": 28.0,
                "peak_ratio": 83.0,
                "mfu_ratio": 0.34,
                "mfu": [0.0226, 0.0659],
                "recipe_differs": [],
            },
            ["a", "b"],
        ),
        (
            {
                "case": "one",
                "device": "AMD EPYC fp32",
                "tokens_per_s": 4688.0,
                "mfu": 0.425,
                "where": "compute-bound",
                "where_share": 0.59,
                "lever": "faster_device_no_native",
            },
            ["b"],
        ),
        (
            {
                "case": "one",
                "device": "AMD EPYC fp32",
                "tokens_per_s": 4688.0,
                "mfu": None,
                "impossible_mfu": 79.0,
            },
            ["b"],
        ),
        ({"case": "none", "runs": 2, "finished": 0, "warnings": 0}, []),
        ({"case": "none", "runs": 0, "warnings": 0}, []),
        ({"case": "none", "runs": 0, "warnings": 2}, []),
        ({"case": "none", "runs": 3, "finished": 1, "warnings": 1}, []),
    ],  # fmt: skip
    "impossible_mfu": [({"mfu": 79.1, "peak_flops_per_s": 1e9, "peak_source": "user"}, ["b"])],
    "config_mismatch": [
        (
            {
                "run": "a",
                "reference": "b",
                "differs": dict.fromkeys(["batch_size", "dtype", "model.n_layer"]),
                "val_loss": [1.7012, 1.8891],
                "more": "a",
                "tokens_ratio": 53.3,
                "params_ratio": 13.3,
                "dtypes": ["bf16", "fp32"],
            },
            ["a", "b"],
        ),
        (
            {
                "run": "a",
                "reference": "b",
                "differs": {"batch_size": [64, 12]},
                "val_loss": [1.6684, 1.6684],
                "same_val_loss": True,
            },
            ["a", "b"],
        ),
        (
            {
                "run": "a",
                "reference": "b",
                "differs": {"batch_size": [64, 12]},
                "val_loss": [1.70, 1.72],
                "more": "a",
            },
            ["a", "b"],
        ),
    ],  # fmt: skip
    "loss_agree": [
        (
            {
                "runs": ["b", "c"],
                "max_abs_val_diff": 0.004,
                "shared_evals": 9,
                "tolerance": 0.05,
                "differ_in": {"dtype": ["fp32", "bf16"]},
            },
            ["b", "c"],
        ),
        (
            {
                "runs": ["b", "c"],
                "max_abs_val_diff": 0.0,
                "shared_evals": 0,
                "tolerance": 0.02,
                "differ_in": {},
            },
            ["b", "c"],
        ),
    ],  # fmt: skip
    "loss_disagree": [
        ({"runs": ["b", "c"], "max_abs_val_diff": 0.31, "at_iter": 750, "tolerance": 0.05}, ["b", "c"]),
        ({"runs": ["b", "c"], "non_finite": ["c"]}, ["b", "c"]),
    ],
    "assumed_config": [({"assumed": ["dtype", "compile", "eval_iters", "grad_clip", "beta2"]}, ["a"])],
    "overfitting": [({"min_val_loss": 1.4598, "min_iter": 2250, "rise": 0.2414, "final_iter": 5000}, ["a"])],
    "eval_in_timer": [
        (
            {
                "key": "b",
                "imported": True,
                "printed_ms": 1416.0,
                "iter": 2000,
                "eval_ms": 1278.0,
                "includes": "eval and checkpoint",
                "median_ms": 138.3,
            },
            ["b"],
        ),
        ({"key": "b", "imported": True, "printed_ms": 1505.0, "iter": 0, "eval_ms": None}, ["b"]),
        (
            {
                "key": "b",
                "imported": True,
                "printed_ms": 1505.0,
                "iter": 0,
                "eval_ms": None,
                "first_iter": {"eval_ms_est": 1257.0, "startup_ms_est": 110.0, "includes": "eval + start-up"},
            },
            ["b"],
        ),
        (
            {
                "key": "b",
                "imported": False,
                "printed_ms": 479.0,
                "iter": 250,
                "eval_ms": 445.0,
                "ratio": 14.1,
                "median_ms": 34.0,
            },
            ["b"],
        ),
    ],  # fmt: skip
    "overhead_bound": [
        (
            {
                "device": "GPU fp32",
                "batch_sizes": [4, 16, 64],
                "batch_ratio": 16,
                "ms_ratio": 1.15,
                "mfu_small": 0.0019,
                "lever": "cuda_graphs",
            },
            ["a"],
        ),
        (
            {
                "device": "AMD EPYC fp32",
                "batch_sizes": [2, 12],
                "batch_ratio": 6,
                "ms_ratio": 1.4,
                "mfu_small": None,
                "lever": "compile",
            },
            ["b"],
        ),
    ],  # fmt: skip
    "compute_bound": [
        (
            {
                "device": "AMD EPYC fp32",
                "batch_sizes": [12, 48],
                "batch_ratio": 4,
                "ms_ratio": 3.9,
                "mfu": 0.42,
                "lever": "faster_device_no_native",
            },
            ["b"],
        ),
        ({"mfu": 0.61, "lever": "faster_device_or_native_dtype"}, ["a"]),
        ({"mfu": 0.55, "lever": "faster_device_or_bf16"}, ["b"]),
        ({"mfu": 0.55, "lever": "faster_device_features_unknown"}, ["b"]),
    ],  # fmt: skip
    "batch_scaling": [
        (
            {
                "device": "Synthetic CPU fp32",
                "batch_sizes": [4, 48],
                "batch_ratio": 12,
                "ms_ratio": 12,
                "exponent": 1.0,
                "mfu_large": 0.065,
                "why": "below_peak",
            },
            ["b"],
        ),
        (
            {
                "device": "Synthetic CPU fp32",
                "batch_sizes": [4, 48],
                "batch_ratio": 12,
                "ms_ratio": 4,
                "exponent": 0.56,
                "mfu_large": None,
                "why": "mixed",
            },
            ["b"],
        ),
        (
            {
                "device": "Synthetic CPU fp32",
                "batch_sizes": [4, 8],
                "batch_ratio": 2,
                "ms_ratio": 0.9,
                "exponent": -0.15,
                "mfu_large": 0.01,
                "why": "noise",
            },
            ["b"],
        ),
    ],  # fmt: skip
    "mfu_vs_a100": [
        (
            {
                "device": "12th Gen Intel Core i7-12700H fp32 on laptop",
                "mfu": 0.0213,
                "peak": 1.35e12,
                "peak_source": "spec",
                "nanogpt_printed": "0.01% (0.00920%)",
            },
            ["b"],
        ),
        ({"device": "Mystery GPU bf16", "mfu": None, "nanogpt_printed": "9.99%"}, ["a"]),
    ],  # fmt: skip
    "peak_unknown": [({"device": "Mystery GPU fp32", "detail": "no spec entry"}, ["a"])],
    "cpu_threads": [
        (
            {
                "host": "laptop",
                "threads": [2, 4],
                "physical_cores": 2,
                "verdict": "over",
                "ms_by_threads": {2: 50.1, 4: 65.3},
                "fastest_threads": 2,
            },
            ["b"],
        ),
        ({"host": "vm", "threads": [2], "physical_cores": 2, "verdict": "one_per_core"}, ["b"]),
        ({"host": "vm", "threads": [1], "physical_cores": 4, "verdict": "idle", "idle_cores": 3}, ["b"]),
        ({"host": "vm", "threads": [1, 2], "physical_cores": None, "verdict": "unknown"}, ["b"]),
    ],  # fmt: skip
    "cpu_dtype": [
        (
            {
                "dtype": "bf16",
                "support": "emulated",
                "needs": ["avx512_bf16", "amx_bf16"],
                "has": [],
                "ms_median": 956.0,
                "fp32_ms_median": 64.0,
            },
            ["c"],
        ),
        (
            {
                "dtype": "bf16",
                "support": "native",
                "needs": ["avx512_bf16", "amx_bf16"],
                "has": ["amx_bf16"],
                "ms_median": 70.0,
                "fp32_ms_median": 60.0,
                "slower": True,
            },
            ["c"],
        ),
        ({"dtype": "fp16", "support": "unknown", "needs": ["avx512_fp16", "amx_fp16"], "has": []}, ["c"]),
    ],  # fmt: skip
    "warmup_cost": [
        (
            {
                "key": "a",
                "first_step_ms": 27415.0,
                "ratio": 836.0,
                "share_of_train_time": 0.0959,
                "compiled": True,
            },
            ["a"],
        ),
        (
            {
                "key": "a",
                "first_step_ms": 30000.0,
                "ratio": 3000.0,
                "share_of_train_time": 0.6,
                "compiled": True,
            },
            ["a"],
        ),
        (
            {
                "key": "b",
                "first_step_ms": 620.0,
                "ratio": 4.5,
                "share_of_train_time": 0.003,
                "compiled": False,
            },
            ["b"],
        ),
    ],  # fmt: skip
    "step_breakdown": [
        (
            {
                "fraction": {"matmul": 0.62, "elementwise_norm": 0.18, "optimizer": 0.092, "other": 0.09},
                "matmul_flops_per_s": 140e9,
                "profiler_overhead": None,
                "launch_bound": False,
            },
            ["b"],
        ),
        (
            {
                "fraction": {"other": 0.71, "matmul": 0.12},
                "launch_bound": True,
                "device_idle_fraction": 0.71,
                "kernel_launches_per_step": 142,
            },
            ["a"],
        ),
        (
            {
                "fraction": {"other": 1.0},
                "launch_bound": True,
                "device_idle_fraction": 0.9999,
                "kernel_launches_per_step": 1,
            },
            ["a"],
        ),  # fmt: skip
        (
            {
                "fraction": {"matmul": 0.57, "elementwise_norm": 0.33},
                "profiler_overhead": 5.6,
                "launch_bound": False,
            },
            ["b"],
        ),
    ],  # fmt: skip
    "noisy_timing": [
        (
            {
                "p90_over_p10": 9.6,
                "p10": 41.0,
                "p90": 394.0,
                "busy": True,
                "other_processes_cpu_cores": 1.0,
                "oversubscribed": True,
            },
            ["b"],
        ),
        ({"p90_over_p10": 1.7, "p10": 41.0, "p90": 70.0, "busy": False}, ["b"]),
        (
            {"p90_over_p10": 2.1, "p10": 41.0, "p90": 86.0, "busy": True, "other_processes_cpu_cores": None},
            ["b"],
        ),
    ],  # fmt: skip
    "roofline": [
        (
            {
                "bound_fraction": {"compute": 0.59, "memory": 0.29, "overhead": 0.12, "unknown": 0.0},
                "top_category": {"name": "matmul", "share": 0.59},
                "lever": "faster_device_no_native",
                "categories": ROOF_CATS,
            },
            ["b"],
        ),
        (
            {
                "bound_fraction": {"overhead": 1.0},
                "top_category": {"name": "other", "share": 0.745},
                "lever": "cuda_graphs",
            },
            ["a"],
        ),
        ({"host_only": True}, ["a"]),
    ],  # fmt: skip
    "scaling": [
        (
            {
                **SCALE,
                "weak": {
                    "run": "a",
                    "efficiency": 0.909,
                    "world_size": 4,
                    "tokens_per_s": 37154.0,
                    "ideal": 40869.0,
                },
            },
            ["a"],
        ),
        ({**SCALE, "shared": True, "weak": {"run": "b", "efficiency": 0.4, "world_size": 2}}, ["b"]),
        ({**SCALE, "same": {"run": "a", "ratio": 1.7, "batch_size": 32, "world_size": 2}}, ["a"]),
        ({**SCALE, "alone": {"run": "a", "per_rank_batch": 8}}, ["a"]),
    ],  # fmt: skip
    "shared_cores": [
        ({"nproc_per_node": 2, "idle_cores": 2}, ["b"]),
        ({"nproc_per_node": 4, "oversubscribed_threads": 8}, ["b", "c"]),
    ],
    "scaling_limit": [
        (LIMIT, ["a"]),
        ({**LIMIT, "ranks_slower": True}, ["a"]),
        ({**LIMIT, "limit": "communication", "allreduce_share": 0.45}, ["a"]),
        ({**LIMIT, "limit": "communication", "shares_device": True}, ["b"]),
        (
            {
                **LIMIT,
                "limit": "straggler",
                "slowest_rank": 6,
                "straggler_ratio": 1.5,
                "slowest_rank_at": "node1, cuda:2",
            },
            ["a"],
        ),
        ({"limit": None}, ["a"]),
    ],  # fmt: skip
    "ranks_differ": [({"params_identical": False}, ["a"])],
    "time_to_loss": [
        (
            {
                "target_val_loss": 1.7184,
                "reference": "b",
                "runs": [
                    {"key": "a", "reached": True, "time_s": 101.0},
                    {"key": "b", "reached": True, "time_s": 162.0},
                    {"key": "c", "reached": False, "time_s": None},
                ],
                "speedups": {"a": {"ratio": 1.6, "low": 1.4, "high": 1.8}},
            },
            ["a", "b", "c"],
        ),
        (
            {
                "target_val_loss": 1.7184,
                "reference": "b",
                "runs": [{"key": "b", "reached": False, "time_s": None}],
            },
            ["b"],
        ),
    ],  # fmt: skip
    "tip": [
        ({"tip": "threads", "device": DEV, "rows": [TIP_ROW]}, ["b"]),
        (
            {
                "tip": "omp_affinity",
                "device": "cuda:0 (NVIDIA GeForce RTX 4070 Ti SUPER 16GB) on a-long-host-name",
                "rows": [{**TIP_ROW, "title": OMP[0], "claim": OMP[1]}],
            },
            ["b"],
        ),  # the claim left to the details where it would not fit
        (
            {
                "tip": "threads",
                "device": DEV,
                "rows": [
                    {**TIP_ROW, "variant": "threads 1"},
                    {
                        **TIP_ROW,
                        "variant": "threads 2",
                        "verdict": "small gain",
                        "effect": {**EFF, "ratio": 1.03, "low": 1.01},
                    },
                ],
            },
            ["b"],
        ),
        (
            {
                "tip": "tf32",
                "device": LONG_DEV,
                "rows": [
                    {
                        **TIP_ROW,
                        "title": "TF32 matmuls",
                        "effect": None,
                        "verdict": "not available",
                        "why": "tf32 is CUDA only " * 12,
                    }
                ],
            },
            ["b"],
        ),
        (
            {
                "tip": "num_workers",
                "device": DEV,
                "rows": [
                    {
                        **TIP_ROW,
                        "title": "num_workers=4",
                        "measure": "answer",
                        "effect": None,
                        "verdict": "no effect",
                        "effect_text": "data is 1.00% of the step",
                    }
                ],
            },
            ["b"],
        ),
        (
            {
                "tip": "batch_x2",
                "device": DEV,
                "rows": [
                    {
                        **TIP_ROW,
                        "title": "batch x2",
                        "measure": "time_to_loss",
                        "claim": "batch 24-48 if you have the RAM: trains faster",
                        "verdict": "harmful",
                        "effect": {"ratio": None, "low": None, "high": 0.67},
                    }
                ],
            },
            ["b"],
        ),
    ],  # fmt: skip
    "best_config": [
        ({**BEST, "changed": ["threads 1"]}, ["b"]),
        (
            {
                **BEST,
                "time_to_loss_gain": {"ratio": 0.81, "low": 0.78, "high": 0.86},
                "compile_payback": {
                    "first_step_s": 21.0,
                    "ms_median": 61.0,
                    "default_ms_median": 64.0,
                    "recipe_steps": 2000,
                    "break_even_steps": 6980.0,
                },
            },
            ["b"],
        ),
        (
            {
                **BEST,
                "time_to_loss_gain": {"ratio": None, "low": None, "high": 0.15},
                "compile_payback": {"first_step_s": 200.0, "default_time_s": 31.4},
            },
            ["b"],
        ),
        (
            {
                **BEST,
                "device": LONG_DEV,
                "time_to_loss_gain": {"ratio": 0.81, "low": 0.78, "high": 0.86},
                "compile_payback": {
                    "first_step_s": 21.0,
                    "ms_median": 61.0,
                    "default_ms_median": 64.0,
                    "recipe_steps": 2000,
                    "break_even_steps": 6980.0,
                },
            },
            ["b"],
        ),  # the payback's figures left to the details where they would not fit
        (
            {
                **BEST,
                "gain_measured": False,
                "changed": ["batch_size 24"],
                "time_to_loss_gain": {"ratio": 1.2, "low": 1.1, "high": 1.3},
            },
            ["b"],
        ),
        (
            {
                **BEST,
                "none_better": True,
                "gain_measured": False,
                "best_single": {
                    "name": "fused-adamw",
                    "effect": {**EFF, "ratio": 1.01, "low": 0.99, "high": 1.03},
                    "measure": "throughput",
                },
            },
            ["b"],
        ),
    ],  # fmt: skip
    "energy": [
        (ENERGY, ["b"]),
        ({**ENERGY, "idle_watts": None, "igpu": "Intel UHD Graphics 770"}, ["b"]),
        ({**ENERGY, "energy_source": "nvml_power_samples", "device": "cuda (RTX) bf16", "mean_watts": 200.0}, ["a"]),
    ],
    "energy_compare": [
        ({"energy_ratio": 2.0, "time_ratio": 10.0, "runs": ["a", "b"], "devices": ["cuda (RTX)", DEV],
          "tokens_per_joule": [768.0, 384.0]}, ["a", "b"]),
        ({"energy_ratio": 1.3, "time_ratio": 0.5, "runs": ["b", "a"], "devices": [DEV, "cuda (RTX)"],
          "tokens_per_joule": [1000.0, 768.0]}, ["b", "a"]),
    ],
    "energy_unavailable": [
        ({"reason": "no RAPL counters.", "reasons": ["no RAPL counters"], "runs": 2, "of_runs": 2, "device": DEV},
         ["b", "c"]),
        ({"reason": "a", "reasons": ["a", "b", "c"], "runs": 2, "of_runs": 3, "device": DEV}, ["b", "c"]),
        ({"reason": "a", "reasons": ["a", "b"], "runs": 1, "of_runs": 3, "device": DEV}, ["b"]),
    ],
    "continued": [
        (CONTINUED, ["c", "b", "a"]),
        ({**CONTINUED, "max_abs_diff": 0.0, "best_iter": 40, "best_val": 2.1}, ["c", "b", "a"]),
        ({**CONTINUED, "max_abs_diff": 0.3, "reproduces": False, "overfit": True, "end_val": 2.5}, ["c", "b", "a"]),
        ({**CONTINUED, "reference": "a", "max_abs_diff": None}, ["c", "b", "a"]),
        ({**CONTINUED, "kind": "nanogpt", "parent": None, "parent_text": "out/ckpt.pt", "reference": None,
          "end_val": None}, ["c"]),
        ({**CONTINUED, "parent": None, "parent_text": "run-7", "reference": None}, ["c"]),
    ],
}  # fmt: skip


def render(kind: str, evidence: dict, runs: list[str]) -> str:
    labels = {k: LAB[k] for k in ("a", "b", "c")}
    return Finding(kind, "info", evidence=evidence, runs=runs, labels=labels).sentence


def test_every_template_has_a_golden_file_and_every_case_is_short():
    assert set(CASES) == set(words.TEMPLATES)
    for kind, cases in CASES.items():
        for evidence, runs in cases:
            text = render(kind, evidence, runs)
            assert len(text) <= words.MAX_CHARS or kind in words.UNCAPPED, (kind, len(text), text)
            assert "\n" not in text and "  " not in text and not text.endswith(".."), text


@pytest.mark.parametrize("kind", sorted(CASES))
def test_words_match_the_golden_file(kind):
    got = "".join(render(kind, ev, runs) + "\n" for ev, runs in CASES[kind])
    path = GOLDEN / f"{kind}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(got)
    assert path.read_text() == got, f"words of {kind} changed: UPDATE_GOLDEN=1 and read the diff"


NOTES = {  # the words of the report outside findings: notes under the headline and the summary table
    "busy_runs": [(1, 1), (1, 3), (2, 5)],
    "impossible_mfu_note": [(LAB["b"], 79.1, 1e9, "user"), (LAB["a"], 1.3, 165e12, "spec")],
}


@pytest.mark.parametrize("name", sorted(NOTES))
def test_notes_match_the_golden_file(name):
    got = "".join(getattr(words, name)(*args) + "\n" for args in NOTES[name])
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(got)
    assert path.read_text() == got, f"words of {name} changed: UPDATE_GOLDEN=1 and read the diff"


def test_a_directory_prefix_names_where_a_finding_comes_from():
    f = Finding("ranks_differ", "info", evidence={"params_identical": False}, runs=["b"])
    plain = f.sentence
    f.where = "tune-a"
    assert f.sentence == f"tune-a: {plain}" and f.to_dict()["sentence"] == f.sentence


def test_details_format_each_figure_by_what_its_name_says():
    f = Finding(
        "roofline", "info", runs=["b"], labels=LAB,
        evidence={"bound_fraction": {"compute": 0.59}, "compute_roof": {"value": 1.5e11}, "key": "b",
                  "categories": {"elementwise_norm": {"share": 0.12, "bytes_per_s": 8e9, "of_roof": 0.8,
                                                      "intensity": 0.0625, "bound": "memory", "lever": "fuse_elementwise"}},
                  "uncounted_ops": ["aten::a", "aten::b"], "final_val_iter": 5000, "tokens_per_iter": 16384},
    )  # fmt: skip
    rows = dict(words.details(f))
    assert rows["bound_fraction.compute"] == "59.0%" and rows["compute_roof.value"] == "150 GFLOP/s"
    assert rows["key"] == LAB["b"] and rows["uncounted_ops"] == "aten::a, aten::b"
    assert rows["final_val_iter"] == "5000" and rows["tokens_per_iter"] == "16,384"
    assert not any(k.startswith("categories") for k in rows)  # a roofline's categories are their own table
    assert words.roofline_rows(f) == [
        ("elementwise/norm", "12.0%", "0.062", "8.00 GB/s", "80.0%", "memory", "fusing them (torch.compile)")
    ]


def test_every_finding_of_a_16_run_two_host_sweep_is_short(tmp_path):
    """The sweep of benchmarks/finding_lengths.py (the report speed benchmark's builder), shorter runs."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_report_speed import build

    from reports.diagnosis import diagnose, headline
    from reports.load import load_results

    results = load_results(build(tmp_path, 16, 200))
    findings = diagnose(results)
    assert len(findings) > 16 and {f.kind for f in findings} >= {"speedup", "config_mismatch", "loss_agree"}
    long = [(f.kind, len(f.sentence)) for f in findings if len(f.sentence) > words.MAX_CHARS]
    assert not long
    assert len(headline(results, findings).sentence) <= words.MAX_CHARS
