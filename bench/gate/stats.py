"""Variant against baseline: ratio of medians, bootstrap interval, Mann-Whitney U, verdict. Pure numpy.

Samples are per-repeat values (per-trial medians or ratios), never per-iteration times, which are
autocorrelated. `compare_summaries` does the same from pytest-benchmark summaries alone.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

PASS = "pass"
REGRESSION = "regression"
INCONCLUSIVE = "inconclusive"

DEFAULT_SEED = 20240607  # fixed: the same samples always give the same interval and verdict
ALPHA = 0.05  # one-sided Mann-Whitney U level
MIN_SUMMARY_ROUNDS = 5  # fewer rounds than this give no usable IQR
_MAX_BOOT_CELLS = 20_000_000  # resamples x sample size, bounds memory for long pytest-benchmark runs


@dataclass(frozen=True)
class Comparison:
    """A variant against a baseline: ratio = median(variant) / median(baseline), its interval, the verdict.

    low/high: the `confidence` interval of the ratio; p_value: one-sided Mann-Whitney U p-value for
    "the variant is worse". Both are None when there are too few samples to compute them. verdict is
    pass | regression | inconclusive, `reason` says why in words. "Worse" is slower: larger values
    for times (ms), smaller for rates (tokens/s, larger_is_better).
    """

    verdict: str
    reason: str
    ratio: float
    low: float | None
    high: float | None
    variant_median: float
    baseline_median: float
    n_variant: int
    n_baseline: int
    p_value: float | None
    confidence: float
    threshold: float
    larger_is_better: bool
    method: str  # "bootstrap", or "normal-approximation" (summary statistics only)

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
    advice: str = "more samples, or a quieter machine",
) -> tuple[str, str]:
    """Regression only when significant (interval above 1, and U test if given) AND above threshold.

    All in the "worse" direction: slowdown > 1 is worse. `advice` ends the reason of a too-wide interval.
    """
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
        f"({advice})"
    )


def can_be_significant(n_variant: int, n_baseline: int, alpha: float = ALPHA) -> bool:
    """Whether any arrangement of this many samples could pass a one-sided U test at alpha.

    The smallest exact p-value is 1 / C(n1 + n2, n1): with 3 and 3 samples it is 1/20, never below 0.05.
    """
    return min(n_variant, n_baseline) >= 2 and math.comb(n_variant + n_baseline, n_variant) * alpha > 1.0


def _check_settings(threshold: float, confidence: float) -> None:
    if not (math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _samples(values: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"no {what} samples")
    if not (np.all(np.isfinite(arr)) and arr.min() > 0):
        raise ValueError(f"{what} samples must be positive finite numbers")
    return arr


def _too_few(n_variant: int, n_baseline: int, unit: str = "samples") -> str:
    return (
        f"too few {unit} to decide ({n_variant} and {n_baseline}): with so few, no difference can be "
        f"significant; measure more {unit}"
    )


def compare_samples(
    variant: Sequence[float],
    baseline: Sequence[float],
    *,
    threshold: float,
    confidence: float = 0.95,
    seed: int = DEFAULT_SEED,
    larger_is_better: bool = False,
    alpha: float = ALPHA,
    n_boot: int = 4000,
    advice: str = "more samples, or a quieter machine",
) -> Comparison:
    """Compare per-repeat samples of a variant with a baseline's (ms, ratios, or tokens/s).

    The verdict is a regression only when the variant is worse by more than `threshold` (0.10 = 10%)
    AND significantly so: the bootstrap interval of the ratio of medians lies wholly on the worse side
    of 1 and a one-sided Mann-Whitney U test agrees (p < alpha). It passes when the interval's worse
    end is within the threshold; anything else is inconclusive, as is any comparison with too few
    samples for the U test to ever reach alpha (see can_be_significant). `advice` ends the reason of
    a too-wide interval. The bootstrap is seeded: the same samples always give the same result.
    Raises ValueError for empty, non-positive or non-finite samples and settings out of range.
    """
    _check_settings(threshold, confidence)
    v, b = _samples(variant, "variant"), _samples(baseline, "baseline")
    med_v, med_b = float(np.median(v)), float(np.median(b))
    ratio = med_v / med_b
    same = {
        "ratio": ratio, "variant_median": med_v, "baseline_median": med_b, "n_variant": int(v.size),
        "n_baseline": int(b.size), "confidence": confidence, "threshold": threshold,
        "larger_is_better": larger_is_better, "method": "bootstrap",
    }  # fmt: skip
    if min(v.size, b.size) < 2:
        return Comparison(INCONCLUSIVE, _too_few(v.size, b.size), low=None, high=None, p_value=None, **same)
    low, high = bootstrap_ratio_ci(v, b, confidence, n_boot, seed)
    p = mann_whitney_greater(b, v) if larger_is_better else mann_whitney_greater(v, b)
    if not can_be_significant(v.size, b.size, alpha):
        return Comparison(INCONCLUSIVE, _too_few(v.size, b.size), low=low, high=high, p_value=p, **same)
    worse, worse_low, worse_high = (1 / ratio, 1 / high, 1 / low) if larger_is_better else (ratio, low, high)
    verdict, reason = decide(worse, worse_low, worse_high, threshold, p, alpha, advice)
    return Comparison(verdict, reason, low=low, high=high, p_value=p, **same)


def _summary_value(summary: dict, key: str, what: str) -> float | None:
    value = summary.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{what} {key} must be a finite number >= 0, got {value!r}")
    return float(value)


def compare_summaries(
    current: dict,
    baseline: dict,
    *,
    threshold: float,
    confidence: float = 0.95,
    advice: str = "more rounds, or a quieter machine",
) -> Comparison:
    """Compare two pytest-benchmark summaries (median, iqr, rounds) without their samples.

    The median's standard error is taken as 1.2533 * sigma / sqrt(n), sigma = IQR / 1.349 (normal
    approximation), and the two combined on the log scale. No Mann-Whitney test is possible. Fewer
    than MIN_SUMMARY_ROUNDS rounds on a side, or no IQR, is inconclusive: the spread is unknown.
    """
    _check_settings(threshold, confidence)
    med_cur = _summary_value(current, "median", "current")
    med_base = _summary_value(baseline, "median", "baseline")
    if not med_cur or not med_base:
        raise ValueError("medians must be positive")
    rounds_cur = int(_summary_value(current, "rounds", "current") or 0)
    rounds_base = int(_summary_value(baseline, "rounds", "baseline") or 0)
    iqr_cur = _summary_value(current, "iqr", "current")
    iqr_base = _summary_value(baseline, "iqr", "baseline")
    ratio = med_cur / med_base
    same = {
        "ratio": ratio, "variant_median": med_cur, "baseline_median": med_base, "n_variant": rounds_cur,
        "n_baseline": rounds_base, "confidence": confidence, "threshold": threshold,
        "larger_is_better": False, "method": "normal-approximation", "p_value": None,
    }  # fmt: skip
    if min(rounds_cur, rounds_base) < MIN_SUMMARY_ROUNDS:
        reason = _too_few(rounds_cur, rounds_base, "rounds") + f" (at least {MIN_SUMMARY_ROUNDS} each)"
        return Comparison(INCONCLUSIVE, reason, low=None, high=None, **same)
    if iqr_cur is None or iqr_base is None:
        reason = "no IQR recorded, so the spread is unknown: save per-round data (--benchmark-save-data)"
        return Comparison(INCONCLUSIVE, reason, low=None, high=None, **same)
    z = statistics.NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)

    def rel_se(median: float, iqr: float, rounds: int) -> float:
        return 1.2533 * (iqr / 1.349) / math.sqrt(rounds) / median

    se = math.hypot(rel_se(med_cur, iqr_cur, rounds_cur), rel_se(med_base, iqr_base, rounds_base))
    low, high = ratio * math.exp(-z * se), ratio * math.exp(z * se)
    verdict, reason = decide(ratio, low, high, threshold, None, ALPHA, advice)
    return Comparison(verdict, reason, low=low, high=high, **same)
