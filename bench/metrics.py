"""Figures computed from recorded steps, in one place: medians, throughput, MFU. No torch."""

from __future__ import annotations

import statistics

from hwinfo.peaks import A100_BF16_PEAK_FLOPS as A100_PEAK_FLOPS  # nanoGPT's denominator on every device


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def step_summary(
    timed_ms: list[float],
    tokens_per_iter: int,
    flops_per_iter: float,
    peak_flops_per_s: float | None,
) -> dict:
    """ms median/p10/p90, tokens/s, achieved FLOP/s, MFU vs own peak (None if unknown) and vs an A100."""
    if not timed_ms:
        return {
            "ms_median": None, "ms_p10": None, "ms_p90": None, "ms_mean": None,
            "tokens_per_s": None, "achieved_flops_per_s": None, "mfu": None, "mfu_vs_a100": None,
        }  # fmt: skip
    median = statistics.median(timed_ms)
    achieved = flops_per_iter / (median / 1e3)
    return {
        "ms_median": median,
        "ms_p10": percentile(timed_ms, 10),
        "ms_p90": percentile(timed_ms, 90),
        "ms_mean": statistics.fmean(timed_ms),
        "tokens_per_s": tokens_per_iter / (median / 1e3),
        "achieved_flops_per_s": achieved,
        "mfu": achieved / peak_flops_per_s if peak_flops_per_s else None,
        "mfu_vs_a100": achieved / A100_PEAK_FLOPS,
    }
