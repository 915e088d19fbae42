"""Schema-valid results directories written without training: for rule tests and the speed benchmark.

Real reports come from `bench run`; these files follow docs/results-schema.md so the diagnosis rules
can be tested on cases a tiny CPU run cannot produce (a GPU, a config mismatch, an imported log).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from hwinfo.peaks import A100_BF16_PEAK_FLOPS as A100_PEAK_FLOPS
from reports.load import SCHEMA

MODEL = {
    "n_layer": 4,
    "n_head": 4,
    "n_embd": 128,
    "block_size": 64,
    "vocab_size": 65,
    "dropout": 0.0,
    "bias": False,
}
TRAIN = {
    "max_iters": 2000, "learning_rate": 1e-3, "min_lr": 1e-4, "warmup_iters": 100, "lr_decay_iters": 2000,
    "decay_lr": True, "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.99, "grad_clip": 1.0, "eval_interval": 250,
    "eval_iters": 20, "seed": 1337, "timing_warmup_iters": 10,
}  # fmt: skip


def hwinfo(
    host: str = "laptop",
    physical_cores: int = 4,
    features: tuple[str, ...] = ("avx2", "fma"),
    gpus: tuple[str, ...] = (),
) -> dict:
    """A devicebench-hwinfo/1 snapshot."""
    return {
        "schema": "devicebench-hwinfo/1",
        "host": host,
        "os": "Linux",
        "torch": {"version": "2.x"},
        "cpu": {
            "vendor": "GenuineIntel",
            "model_name": "Synthetic CPU",
            "microarchitecture": None,
            "physical_cores": physical_cores,
            "logical_cores": physical_cores * 2,
            "max_mhz": 3000.0,
            "features": list(features),
            "torch_capability": "AVX2",
            "torch_threads": physical_cores,
        },  # fmt: skip
        "gpus": [{"name": g} for g in gpus],
        "devices": [],
        "notes": [],
    }


def flops_per_token(model: dict) -> int:
    """6N + 12*L*H*Q*T, N the non-embedding parameters (no bias) as nanoGPT counts them."""
    L, C, T = model["n_layer"], model["n_embd"], model["block_size"]
    n = L * 12 * C * C + L * 2 * C + C  # attention + MLP weights, two LayerNorms per block, final LayerNorm
    return 6 * n + 12 * L * C * T


def write_sweep(
    root: str | Path, host: str = "laptop", hw: dict | None = None, source: str | None = None
) -> Path:
    root = Path(root)
    (root / "runs").mkdir(parents=True, exist_ok=True)
    sweep = {
        "schema": SCHEMA, "sweep_id": f"synthetic-{host}", "created": "2025-01-01T00:00:00+00:00", "host": host,
        "hwinfo": hw if hw is not None else hwinfo(host), "software": {"python": "3.11", "torch": "2.x"},
        "project_version": "0.1.0", "spec": {"model": MODEL, "train": TRAIN}, "command": "synthetic",
    }  # fmt: skip
    if source:
        sweep["source"] = source
    (root / "sweep.json").write_text(json.dumps(sweep, indent=1))
    return root


def write_run(
    root: str | Path,
    run_id: str | None = None,
    *,
    host: str = "laptop",
    device: str = "cpu",
    device_name: str = "Synthetic CPU",
    dtype: str = "fp32",
    batch_size: int = 12,
    compile: str = "off",
    threads: int | None = 4,
    model: dict | None = None,
    train: dict | None = None,
    ms: float | np.ndarray = 50.0,
    peak: float | None = 1e12,
    val_offset: float = 0.0,
    eval_ms: float = 200.0,
    first_step_ms: float | None = None,
    status: str = "ok",
    error: str | None = None,
    source: str = "devicebench",
    after_eval_ms: float | None = None,
    assumed: list[str] | None = None,
    seed: int = 0,
) -> Path:
    """One run: run.json with a summary computed from the steps written, steps.csv, evals.csv.

    ms: the typical step time (or the per-step array); after_eval_ms: write nanoGPT-style `after_eval` rows
    with this time at every eval iteration (an imported log).
    """
    model = {**MODEL, **(model or {})}
    train = {**TRAIN, **(train or {})}
    n = train["max_iters"]
    warm = min(train["timing_warmup_iters"], n // 2)
    rng = np.random.default_rng(seed)
    if np.ndim(ms) == 0:
        times = float(ms) * (1 + 0.05 * rng.standard_normal(n)).clip(0.5)
    else:
        times = np.asarray(ms, dtype=float)
    times = times.copy()
    if first_step_ms is not None:
        times[0] = first_step_ms
    its = np.arange(n)
    loss = 4.2 * np.exp(-its / (n / 2)) + 1.0 + 0.02 * rng.standard_normal(n)
    phase = np.where(its < warm, "warmup", "timed").astype(object)
    interval = train["eval_interval"]
    if after_eval_ms is not None:
        at = (its % interval == 0) & (its > 0)
        times[at] = after_eval_ms
        phase[at] = "after_eval"
    run_id = (
        run_id
        or f"{device.replace(':', '')}-{dtype}-b{batch_size}-{'eager' if compile == 'off' else 'compile'}"
    )
    rd = Path(root) / "runs" / run_id
    rd.mkdir(parents=True, exist_ok=True)
    with open(rd / "steps.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iter", "ms", "loss", "lr", "phase"])
        w.writerows(
            zip(
                its.tolist(),
                np.round(times, 4).tolist(),
                np.round(loss, 6).tolist(),
                [1e-3] * n,
                phase,
                strict=True,
            )
        )
    eval_iters = list(range(0, n, interval)) + [n]
    evals = []
    for i in eval_iters:
        base = 4.2 * np.exp(-i / (n / 2)) + 1.0
        evals.append((i, "train", round(base, 6), eval_ms / 2))
        evals.append((i, "val", round(base + 0.1 + val_offset * i / n, 6), eval_ms / 2))
    with open(rd / "evals.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iter", "split", "loss", "ms"])
        w.writerows(evals)
    fpt = flops_per_token(model)
    tokens = batch_size * model["block_size"]
    timed = times[phase == "timed"]
    med = float(np.median(timed))
    achieved = fpt * tokens / (med / 1e3)
    meta: dict[str, Any] = {
        "schema": SCHEMA, "run_id": run_id, "status": status, "error": error, "source": source, "host": host,
        "device": device, "device_type": device.split(":")[0], "device_name": device_name, "dtype": dtype,
        "batch_size": batch_size, "block_size": model["block_size"], "compile": compile,
        "threads": threads if device == "cpu" else None, "seed": train["seed"], "model": model, "train": train,
        "flops_per_token": fpt, "flops_per_iter": fpt * tokens, "tokens_per_iter": tokens,
        "peak_flops": {"value": peak, "source": "spec" if peak else "unknown",
                       "detail": "synthetic spec" if peak else "no spec entry for this device"},
        "started": "2025-01-01T00:00:00+00:00", "finished": "2025-01-01T01:00:00+00:00",
    }  # fmt: skip
    if assumed:
        meta["assumed"] = assumed
    if status != "skipped":
        meta["summary"] = {
            "ms_median": med, "ms_p10": float(np.percentile(timed, 10)), "ms_p90": float(np.percentile(timed, 90)),
            "ms_mean": float(timed.mean()), "tokens_per_s": tokens / (med / 1e3), "achieved_flops_per_s": achieved,
            "mfu": achieved / peak if peak else None, "mfu_vs_a100": achieved / A100_PEAK_FLOPS,
            "final_train_loss": evals[-2][2], "final_val_loss": evals[-1][2], "iters_done": n, "warmup_iters": warm,
            "first_step_ms": float(times[0]), "eval_ms_total": eval_ms * len(eval_iters),
            "wall_s": float(times.sum() / 1e3 + eval_ms * len(eval_iters) / 1e3), "peak_mem_bytes": 2**28,
            "peak_mem_kind": "process_rss" if device == "cpu" else "cuda_max_memory_allocated",
        }  # fmt: skip
    (rd / "run.json").write_text(json.dumps(meta, indent=1))
    return rd
