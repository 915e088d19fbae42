"""Figures computed from recorded steps, in one place: medians, throughput, MFU. No torch.

bench (runs and imports), reports (the diagnosis) and the tests' fixture writer all compute MFU with
`mfu` below.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from hwinfo.peaks import A100_BF16_PEAK_FLOPS as A100_PEAK_FLOPS  # nanoGPT's denominator on every device
from hwinfo.units import positive  # noqa: F401 - bench reads it from here too

# other processes using this many cores' worth of CPU during a run: the machine was shared (tips, roofline,
# diagnosis all judge host_load by it)
BUSY_OTHER_CORES = 0.25

MFU_POSSIBLE_MAX = 1.0  # achieved FLOP/s above the peak: the peak or the FLOP count is wrong


def mfu(achieved_flops_per_s: Any, peak_flops_per_s: Any) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over the peak of the device and dtype actually used.

    None when either is unknown (or not a number above zero). A value above MFU_POSSIBLE_MAX is
    returned as computed: the caller flags it as impossible (mfu_is_possible), never shows it as a result.
    """
    achieved, peak = positive(achieved_flops_per_s), positive(peak_flops_per_s)
    return achieved / peak if achieved is not None and peak is not None else None


def mfu_is_possible(value: Any) -> bool:
    """False for an MFU above 100%: the peak is wrong (another chip's, a wrong dtype) or the config is."""
    v = positive(value)
    return v is None or v <= MFU_POSSIBLE_MAX


def step_summary(
    timed_ms: list[float], tokens_per_iter: int, flops_per_iter: float, peak_flops_per_s: float | None
) -> dict:
    """ms median/p10/p90, tokens/s, achieved FLOP/s, MFU vs own peak (None if unknown) and vs an A100."""
    if not timed_ms:
        return {
            "ms_median": None, "ms_p10": None, "ms_p90": None, "ms_mean": None,
            "tokens_per_s": None, "achieved_flops_per_s": None, "mfu": None, "mfu_vs_a100": None,
        }  # fmt: skip
    median = statistics.median(timed_ms)
    achieved = flops_per_iter / (median / 1e3)
    p10, p90 = np.percentile(np.asarray(timed_ms, dtype=float), [10, 90])
    return {
        "ms_median": median,
        "ms_p10": float(p10),
        "ms_p90": float(p90),
        "ms_mean": statistics.fmean(timed_ms),
        "tokens_per_s": tokens_per_iter / (median / 1e3),
        "achieved_flops_per_s": achieved,
        "mfu": mfu(achieved, peak_flops_per_s),
        "mfu_vs_a100": achieved / A100_PEAK_FLOPS,
    }
