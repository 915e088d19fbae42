"""Where a train step's time goes: a few extra steps under torch.profiler, split into categories.

Laid out like HolisticTraceAnalysis: `capture` (the profiled steps), `trace` (plain records), `analysis`
(pure), `traffic` (bytes and FLOPs), `roofs` and `roofline`. `profile_steps(trainer)` is the facade (schema
in docs/profile-schema.md). Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any

from bench.profile.analysis import CATEGORIES, PHASES, SCHEMA, assemble, breakdown
from bench.profile.roofs import RoofMeter

__all__ = ["CATEGORIES", "PHASES", "SCHEMA", "RoofMeter", "profile_steps"]


def profile_steps(trainer: Any, n_steps: int = 5, start_iter: int = 0, unprofiled_ms_median: float | None = None,
                  peak_flops_per_s: float | None = None, roofs: dict | None = None) -> dict:  # fmt: skip
    """Profile n_steps extra train steps of a warmed-up Trainer and break each step's time into categories.

    One more step runs first as the profiler's own warm-up and is not recorded. The Trainer's weights,
    optimizer, scaler, batch sampler and RNG are restored afterwards, so the profiled steps change
    nothing a run records. `start_iter` sets the learning rate of the steps; `unprofiled_ms_median`
    (the run's median step) gives the profiler's overhead; `peak_flops_per_s` (this device and dtype)
    gives the matmuls' fraction of peak. One more step (not timed, not recorded) counts each op's bytes
    and FLOPs under a dispatch mode for the roofline; `roofs` ({"compute": [...], "memory": [...]}, from
    RoofMeter.roofs) are the roofs its categories are placed under (default: peak_flops_per_s alone).
    """
    import torch

    from bench.profile.capture import capture
    from bench.profile.traffic import count_step

    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    captured = capture(trainer, n_steps, start_iter)
    try:
        counts = count_step(trainer, start_iter)
    except Exception as e:
        if trainer.device.is_oom(e):
            raise
        counts, uncounted = None, f"roofline: not counted ({type(e).__name__}: {str(e)[:200]})"
    else:
        uncounted = None
    device_view = captured.device_view
    steps = breakdown(captured.events, device_view)
    if len(steps) != n_steps:
        raise RuntimeError(f"the profiler recorded {len(steps)} of {n_steps} steps")
    for s, wall, host in zip(steps, captured.wall_ms, captured.host_ms, strict=True):
        s["wall_ms"] = wall
        s["host_ms"] = host
    device = trainer.device
    meta = {
        "device": device.name, "device_type": device.type, "dtype": trainer.dtype, "batch_size": trainer.batch_size,
        "block_size": trainer.model.config.block_size, "compiled": trainer.compiled,
        "fused_adamw": bool(getattr(trainer, "fused_adamw", False)),
        "threads": torch.get_num_threads() if device.uses_cpu_threads else None, "torch": torch.__version__,
    }  # fmt: skip
    prof = assemble(
        meta, steps, start_iter, device.profile_view, unprofiled_ms_median, peak_flops_per_s, counts, roofs
    )
    if uncounted:
        prof["notes"].append(uncounted)
    return prof
