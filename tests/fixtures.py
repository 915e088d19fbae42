"""Results directories written without training, for the report tests and the report speed benchmark.

Written through the real writer (bench.results: ResultsDir, RunWriter, atomic writes) with the real
summary (bench.metrics.step_summary), so a fixture can never drift from what `bench run` writes. It lets
the diagnosis be tested on cases a tiny CPU run cannot produce (a GPU, a config mismatch, an imported log).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.metrics import step_summary
from bench.results import ResultsDir

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
    """sweep.json of a results directory (and its empty runs/); returns the directory."""
    results = ResultsDir(root)
    sweep = {
        "sweep_id": f"synthetic-{host}", "created": "2025-01-01T00:00:00+00:00", "host": host,
        "hwinfo": hw if hw is not None else hwinfo(host), "software": {"python": "3.11", "torch": "2.x"},
        "project_version": "0.1.0", "spec": {"model": MODEL, "train": TRAIN}, "command": "synthetic",
    }  # fmt: skip
    if source:
        sweep["source"] = source
    results.write_sweep(sweep)
    (results.root / "runs").mkdir(exist_ok=True)
    return results.root


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
    with this time at every eval iteration (an imported log). A skipped run has run.json only, as in
    `bench run`. Returns the run's directory.
    """
    model = {**MODEL, **(model or {})}
    train = {**TRAIN, **(train or {})}
    run_id = (
        run_id
        or f"{device.replace(':', '')}-{dtype}-b{batch_size}-{'eager' if compile == 'off' else 'compile'}"
    )
    fpt = flops_per_token(model)
    tokens = batch_size * model["block_size"]
    meta: dict[str, Any] = {
        "status": "running", "error": None, "source": source, "host": host,
        "device": device, "device_type": device.split(":")[0], "device_name": device_name, "dtype": dtype,
        "batch_size": batch_size, "block_size": model["block_size"], "compile": compile,
        "threads": threads if device == "cpu" else None, "seed": train["seed"], "model": model, "train": train,
        "flops_per_token": fpt, "flops_per_iter": fpt * tokens, "tokens_per_iter": tokens,
        "peak_flops": {"value": peak, "source": "spec" if peak else "unknown",
                       "detail": "synthetic spec" if peak else "no spec entry for this device"},
    }  # fmt: skip
    if assumed:
        meta["assumed"] = assumed
    results = ResultsDir(root)
    if status == "skipped":
        results.record_skipped(run_id, meta, error or "skipped")
        return results.run_dir(run_id)

    n = train["max_iters"]
    warm = min(train["timing_warmup_iters"], n // 2)
    rng = np.random.default_rng(seed)
    if np.ndim(ms) == 0:
        times = float(ms) * (1 + 0.05 * rng.standard_normal(n)).clip(0.5)
    else:
        times = np.asarray(ms, dtype=float).copy()
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
    eval_iters = list(range(0, n, interval)) + [n]
    losses: dict[str, float] = {}
    with results.new_run(run_id, {**meta, "started": "2025-01-01T00:00:00+00:00"}) as writer:
        writer.write_meta()
        for it in range(n + 1):
            if it in eval_iters:
                base = 4.2 * np.exp(-it / (n / 2)) + 1.0
                losses = {"train": base, "val": base + 0.1 + val_offset * it / n}
                for split, value in losses.items():
                    writer.eval(it, split, value, eval_ms / 2)
            if it < n:
                writer.step(it, float(times[it]), float(loss[it]), 1e-3, str(phase[it]))
        timed = [float(t) for t in times[phase == "timed"]]
        summary = step_summary(timed, tokens, fpt * tokens, peak)
        summary.update(
            {
                "final_train_loss": float(losses["train"]), "final_val_loss": float(losses["val"]),
                "iters_done": n, "warmup_iters": warm, "first_step_ms": float(times[0]),
                "eval_ms_total": eval_ms * len(eval_iters),
                "wall_s": float(times.sum() / 1e3 + eval_ms * len(eval_iters) / 1e3), "peak_mem_bytes": 2**28,
                "peak_mem_kind": "process_rss" if device == "cpu" else "cuda_max_memory_allocated",
            }
        )  # fmt: skip
        writer.write_meta(status=status, error=error, summary=summary, finished="2025-01-01T01:00:00+00:00")
    return writer.dir


def deny_reading(monkeypatch: Any, suffix: str) -> None:
    """Make open() of any file whose name ends with suffix raise PermissionError, as for a non-root user
    (the suite runs as root in CI, where a chmod cannot deny a read)."""
    import builtins

    real = builtins.open

    def deny(file, *args, **kwargs):
        if str(file).endswith(suffix):
            raise PermissionError(13, "Permission denied", str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)


def terminate(proc: Any, timeout: float = 120) -> tuple[str, str]:
    """SIGTERM a subprocess.Popen and return its (stdout, stderr); a process that does not end in time is
    killed, so it never stays behind to load the rest of the suite."""
    import signal

    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
