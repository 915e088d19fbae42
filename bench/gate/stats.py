"""Statistics of the CI gate: ratio of medians with a seeded bootstrap interval, Mann-Whitney U, verdict.

Pure numpy, no torch. Samples are per-trial values (per-trial medians, or per-trial ratios of the
workload to the reference), not per-iteration times, which are autocorrelated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

PASS = "pass"
REGRESSION = "regression"
INCONCLUSIVE = "inconclusive"

DEFAULT_SEED = 20240607  # fixed: the same samples always give the same interval and verdict
_MAX_BOOT_CELLS = 20_000_000  # resamples x sample size, bounds memory for long pytest-benchmark runs


@dataclass
class Comparison:
    """Current vs baseline: slowdown = median(current) / median(baseline), > 1 means slower now."""

    decision: str  # pass | regression | inconclusive
    reason: str
    current_median: float
    baseline_median: float
    slowdown: float
    ci_low: float
    ci_high: float
    confidence: float
    threshold: float
    mann_whitney_p: float | None  # one-sided: current tends to be larger than baseline
    n_current: int
    n_baseline: int
    method: str  # "bootstrap" or "normal-approximation" (summary statistics only)

    def to_dict(self) -> dict:
        return asdict(self)


def bootstrap_ratio_ci(
    current: Sequence[float],
    baseline: Sequence[float],
    confidence: float = 0.95,
    n_boot: int = 4000,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of median(current)/median(baseline), both samples resampled.

    The RNG is seeded, so the interval is a function of the samples alone.
    """
    cur = np.asarray(current, dtype=float)
    base = np.asarray(baseline, dtype=float)
    if cur.size == 0 or base.size == 0:
        raise ValueError("bootstrap needs at least one sample on each side")
    n_boot = int(max(200, min(n_boot, _MAX_BOOT_CELLS // max(cur.size, base.size))))
    rng = np.random.default_rng(seed)
    med_cur = np.median(cur[rng.integers(0, cur.size, (n_boot, cur.size))], axis=1)
    med_base = np.median(base[rng.integers(0, base.size, (n_boot, base.size))], axis=1)
    ratios = med_cur / med_base
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)


def _exact_u_cdf_upper(u: float, n1: int, n2: int) -> float:
    """P(U >= u) for U of sample 1 under H0, no ties (exact, by counting arrangements)."""
    # counts[j][k] = number of arrangements of i ones and j twos with U = k, built up over i.
    max_u = n1 * n2
    prev = [np.zeros(max_u + 1) for _ in range(n2 + 1)]
    for j in range(n2 + 1):
        prev[j][0] = 1.0  # i = 0: U is 0
    for _ in range(1, n1 + 1):
        cur = [np.zeros(max_u + 1) for _j in range(n2 + 1)]
        cur[0][0] = 1.0
        for j in range(1, n2 + 1):
            # the largest element is from sample 1 (it beats all j of sample 2) or from sample 2
            shifted = np.zeros(max_u + 1)
            shifted[j:] = prev[j][: max_u + 1 - j]
            cur[j] = shifted + cur[j - 1]
        prev = cur
    counts = prev[n2]
    return float(counts[int(math.ceil(u - 1e-9)) :].sum() / counts.sum())


def mann_whitney_greater(current: Sequence[float], baseline: Sequence[float]) -> float:
    """One-sided Mann-Whitney U p-value for "current tends to be larger than baseline".

    Exact for small samples without ties, else the normal approximation with tie and continuity
    corrections (as asv and scipy do).
    """
    x = np.asarray(current, dtype=float)
    y = np.asarray(baseline, dtype=float)
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann-Whitney U needs at least one sample on each side")
    both = np.concatenate([x, y])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(both.size)
    sorted_vals = both[order]
    i = 0
    tie_term = 0.0
    while i < both.size:
        j = i
        while j + 1 < both.size and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        t = j - i + 1
        tie_term += t**3 - t
        i = j + 1
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    if tie_term == 0.0 and n1 * n2 <= 400:
        return _exact_u_cdf_upper(u, n1, n2)
    n = n1 + n2
    mean = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if var <= 0:
        return 1.0
    z = (u - mean - 0.5) / math.sqrt(var)
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def decide(
    slowdown: float,
    ci_low: float,
    ci_high: float,
    threshold: float,
    p_value: float | None,
    alpha: float,
) -> tuple[str, str]:
    """Regression only when significant (interval above 1, and U test if given) AND above threshold."""
    limit = 1.0 + threshold
    significant = ci_low > 1.0 and (p_value is None or p_value < alpha)
    if significant and slowdown > limit:
        return REGRESSION, f"slower by more than the {threshold:.0%} threshold, and significant"
    if ci_high <= limit:
        if ci_high < 1.0:
            return PASS, "faster than the baseline"
        return PASS, f"any slowdown is within the {threshold:.0%} threshold"
    if slowdown > limit:
        return INCONCLUSIVE, "slower than the threshold, but not significant: the spread is too wide"
    return INCONCLUSIVE, (
        f"the interval reaches past the {threshold:.0%} threshold: the spread is too wide to decide "
        "(more --trials, or a quieter machine)"
    )


def compare(
    current: Sequence[float],
    baseline: Sequence[float],
    threshold: float = 0.10,
    confidence: float = 0.95,
    alpha: float = 0.05,
    seed: int = DEFAULT_SEED,
    n_boot: int = 4000,
) -> Comparison:
    """Compare per-trial samples (values where larger is slower) of the current run with the baseline."""
    cur = np.asarray(current, dtype=float)
    base = np.asarray(baseline, dtype=float)
    if cur.size < 2 or base.size < 2:
        raise ValueError(f"need at least 2 samples on each side, got {cur.size} and {base.size}")
    if not (np.all(np.isfinite(cur)) and np.all(np.isfinite(base)) and cur.min() > 0 and base.min() > 0):
        raise ValueError("samples must be positive finite numbers")
    med_cur, med_base = float(np.median(cur)), float(np.median(base))
    slowdown = med_cur / med_base
    low, high = bootstrap_ratio_ci(cur, base, confidence, n_boot, seed)
    p = mann_whitney_greater(cur, base)
    decision, reason = decide(slowdown, low, high, threshold, p, alpha)
    return Comparison(
        decision, reason, med_cur, med_base, slowdown, low, high, confidence, threshold, p,
        int(cur.size), int(base.size), "bootstrap",
    )  # fmt: skip


def compare_summaries(
    current: dict,
    baseline: dict,
    threshold: float = 0.10,
    confidence: float = 0.95,
) -> Comparison:
    """Compare two pytest-benchmark summaries (median, iqr, rounds) without their samples.

    The median's standard error is taken as 1.2533 * sigma / sqrt(n), sigma = IQR / 1.349 (normal
    approximation), and the two combined on the log scale. No Mann-Whitney test is possible.
    """
    z = _normal_quantile(1.0 - (1.0 - confidence) / 2.0)

    def rel_se(s: dict) -> float:
        n = max(int(s.get("rounds") or 1), 1)
        sigma = float(s.get("iqr") or 0.0) / 1.349
        return 1.2533 * sigma / math.sqrt(n) / float(s["median"])

    med_cur, med_base = float(current["median"]), float(baseline["median"])
    if med_cur <= 0 or med_base <= 0:
        raise ValueError("medians must be positive")
    slowdown = med_cur / med_base
    se = math.sqrt(rel_se(current) ** 2 + rel_se(baseline) ** 2)
    low, high = slowdown * math.exp(-z * se), slowdown * math.exp(z * se)
    decision, reason = decide(slowdown, low, high, threshold, None, 0.05)
    return Comparison(
        decision, reason, med_cur, med_base, slowdown, low, high, confidence, threshold, None,
        int(current.get("rounds") or 0), int(baseline.get("rounds") or 0), "normal-approximation",
    )  # fmt: skip


def _normal_quantile(p: float) -> float:
    """Inverse standard normal CDF by bisection on erfc (precise enough for interval bounds)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0
