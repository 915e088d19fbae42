"""The gate's statistics on synthetic per-trial samples: pass, regression, inconclusive, reproducible."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench.gate import stats as gate_stats
from bench.gate.measure import run_trials
from bench.gate.stats import (
    can_be_significant,
    compare_samples,
    compare_summaries,
    decide,
    mann_whitney_greater,
)


def lognormal(center: float, sigma: float, n: int, seed: int) -> np.ndarray:
    return center * np.exp(np.random.default_rng(seed).normal(0.0, sigma, n))


def compare(current, baseline, threshold: float = 0.10, **kw) -> gate_stats.Comparison:
    return compare_samples(current, baseline, threshold=threshold, **kw)


def test_equal_samples_pass():
    c = compare(lognormal(1.0, 0.02, 10, 1), lognormal(1.0, 0.02, 20, 2))
    assert c.verdict == gate_stats.PASS
    assert c.low < 1.0 + 0.03 and c.high <= 1.10
    assert 0.97 < c.ratio < 1.03


def test_twenty_percent_slower_low_noise_is_a_regression():
    c = compare(lognormal(1.2, 0.02, 10, 3), lognormal(1.0, 0.02, 20, 4))
    assert c.verdict == gate_stats.REGRESSION
    assert c.low > 1.1 and c.p_value < 1e-4
    assert 1.15 < c.ratio < 1.25


def test_significant_but_below_threshold_passes():
    c = compare(lognormal(1.04, 0.01, 12, 5), lognormal(1.0, 0.01, 20, 6), threshold=0.10)
    assert c.low > 1.0  # the slowdown is real...
    assert c.verdict == gate_stats.PASS  # ...but smaller than the threshold


def test_huge_noise_is_inconclusive_not_a_regression():
    decisions = [
        compare(lognormal(1.0, 0.6, 8, 100 + s), lognormal(1.0, 0.6, 8, 200 + s)).verdict for s in range(40)
    ]
    assert decisions.count(gate_stats.INCONCLUSIVE) >= 30
    assert decisions.count(gate_stats.REGRESSION) <= 2  # a false-alarm rate near the 2.5% one-sided tail
    wide = compare(lognormal(1.0, 0.6, 8, 300), lognormal(1.0, 0.6, 8, 301))
    assert wide.high - wide.low > 0.5


def test_faster_passes():
    c = compare(lognormal(0.7, 0.02, 10, 9), lognormal(1.0, 0.02, 10, 10))
    assert c.verdict == gate_stats.PASS and c.high < 1.0


def test_threshold_is_respected():
    cur, base = lognormal(1.2, 0.02, 10, 11), lognormal(1.0, 0.02, 10, 12)
    assert compare(cur, base, threshold=0.10).verdict == gate_stats.REGRESSION
    assert compare(cur, base, threshold=0.30).verdict == gate_stats.PASS


def test_bootstrap_is_reproducible_and_seeded():
    cur, base = lognormal(1.1, 0.1, 10, 13), lognormal(1.0, 0.1, 10, 14)
    a = gate_stats.bootstrap_ratio_ci(cur, base)
    b = gate_stats.bootstrap_ratio_ci(list(cur), list(base))
    assert a == b
    assert gate_stats.bootstrap_ratio_ci(cur, base, seed=1) != a
    assert compare(cur, base).to_dict() == compare(cur, base).to_dict()


def test_mann_whitney_exact_matches_enumeration():
    x, y = [3.1, 5.2, 7.3, 1.4, 8.0], [2.5, 4.6, 6.7, 0.8, 9.9, 0.1]
    pooled = x + y
    u_obs = sum(a > b for a in x for b in y)
    hits = total = 0
    for idx in itertools.combinations(range(len(pooled)), len(x)):
        xs = [pooled[i] for i in idx]
        ys = [pooled[i] for i in range(len(pooled)) if i not in idx]
        hits += sum(a > b for a in xs for b in ys) >= u_obs
        total += 1
    assert mann_whitney_greater(x, y) == pytest.approx(hits / total)


def test_mann_whitney_normal_approximation_with_ties():
    slower = [2.0] * 15 + [3.0] * 15
    faster = [1.0] * 15 + [2.0] * 15
    assert mann_whitney_greater(slower, faster) < 1e-4
    assert mann_whitney_greater(faster, slower) > 0.99
    assert 0.3 < mann_whitney_greater(faster, faster) < 0.7


def test_decide_branches():
    assert decide(1.3, 1.2, 1.4, 0.1, 0.001, 0.05)[0] == gate_stats.REGRESSION
    assert decide(1.3, 1.2, 1.4, 0.1, 0.2, 0.05)[0] == gate_stats.INCONCLUSIVE  # U test disagrees
    assert decide(1.3, 0.9, 1.8, 0.1, 0.001, 0.05)[0] == gate_stats.INCONCLUSIVE  # interval reaches 1
    assert decide(1.02, 0.98, 1.06, 0.1, 0.3, 0.05)[0] == gate_stats.PASS


def test_compare_refuses_samples_that_are_not_positive_finite_and_bad_settings():
    for bad in ([], [1.0, -1.0], [1.0, float("nan")], [1.0, float("inf")], [0.0, 1.0]):
        with pytest.raises(ValueError):
            compare(bad, [1.0, 1.1, 1.2, 1.3])
        with pytest.raises(ValueError):
            compare([1.0, 1.1, 1.2, 1.3], bad)
    with pytest.raises(ValueError):
        compare([1.0] * 5, [1.0] * 5, threshold=-0.1)
    with pytest.raises(ValueError):
        compare([1.0] * 5, [1.0] * 5, confidence=1.0)


def test_compare_summaries():
    base = {"median": 1.0, "iqr": 0.02, "rounds": 50}
    same = compare_summaries({"median": 1.01, "iqr": 0.02, "rounds": 50}, base, threshold=0.1)
    assert same.verdict == gate_stats.PASS
    slow = compare_summaries({"median": 1.3, "iqr": 0.02, "rounds": 50}, base, threshold=0.1)
    assert slow.verdict == gate_stats.REGRESSION and slow.p_value is None
    assert slow.low < 1.3 < slow.high and slow.method == "normal-approximation"
    wide = compare_summaries(
        {"median": 1.3, "iqr": 3.0, "rounds": 5}, {"median": 1.0, "iqr": 3.0, "rounds": 5}, threshold=0.1
    )
    assert wide.verdict == gate_stats.INCONCLUSIVE


@pytest.mark.parametrize("rounds", [0, 1, 4, None])
def test_summaries_of_too_few_rounds_are_inconclusive_never_a_zero_width_regression(rounds):
    """One round has an IQR of 0: the old code made that a zero-width interval and a 'significant' +30%."""
    base = {"median": 1.0, "iqr": 0.0, "rounds": 50}
    c = compare_summaries({"median": 1.3, "iqr": 0.0, "rounds": rounds}, base, threshold=0.1)
    assert c.verdict == gate_stats.INCONCLUSIVE
    assert "too few rounds" in c.reason and c.low is None and c.high is None
    assert c.ratio == pytest.approx(1.3)
    flipped = compare_summaries(base, {"median": 0.7, "iqr": 0.0, "rounds": rounds}, threshold=0.1)
    assert flipped.verdict == gate_stats.INCONCLUSIVE


def test_summaries_without_iqr_are_inconclusive_and_bad_values_refused():
    c = compare_summaries(
        {"median": 1.3, "rounds": 50}, {"median": 1.0, "iqr": 0.01, "rounds": 50}, threshold=0.1
    )
    assert c.verdict == gate_stats.INCONCLUSIVE and "IQR" in c.reason
    for bad in (float("nan"), 0.0, -1.0, None, "1.0", True):
        with pytest.raises(ValueError):
            compare_summaries({"median": bad, "iqr": 0.01, "rounds": 50}, {"median": 1.0}, threshold=0.1)


def test_normal_quantile_is_the_standard_one():
    """The summaries' interval uses statistics.NormalDist: at 95% it spans +-1.96 standard errors."""
    c = compare_summaries(
        {"median": 1.0, "iqr": 1.349 / 1.2533, "rounds": 100},
        {"median": 1.0, "iqr": 0.0, "rounds": 100},
        threshold=0.1,
    )
    # relative standard error 0.1 on one side, 0 on the other: the interval is exp(+-1.959964 * 0.1)
    assert c.high == pytest.approx(np.exp(1.959964 * 0.1), rel=1e-6)
    assert c.low == pytest.approx(np.exp(-1.959964 * 0.1), rel=1e-6)


# --- compare_samples: the reusable function (the gate, bench tune) ----------------------------------


def test_compare_samples_clear_slowdown_speedup_and_no_change():
    base = lognormal(100.0, 0.02, 10, 20)
    slow = compare_samples(lognormal(130.0, 0.02, 10, 21), base, threshold=0.1)
    assert slow.verdict == gate_stats.REGRESSION and 1.25 < slow.ratio < 1.35
    assert 1.2 < slow.low <= slow.ratio <= slow.high < 1.4 and slow.p_value < 0.001
    fast = compare_samples(lognormal(70.0, 0.02, 10, 22), base, threshold=0.1)
    assert fast.verdict == gate_stats.PASS and fast.high < 1.0 and "faster" in fast.reason
    same = compare_samples(lognormal(100.0, 0.02, 10, 23), base, threshold=0.1)
    assert same.verdict == gate_stats.PASS and same.low < 1.0 < same.high
    assert (same.n_variant, same.n_baseline) == (10, 10)
    assert same.variant_median == pytest.approx(float(np.median(lognormal(100.0, 0.02, 10, 23))))


def test_compare_samples_rates_where_larger_is_better():
    """tokens/s: 30% fewer is the regression, 30% more is a pass; the ratio stays variant/baseline."""
    base = lognormal(1000.0, 0.02, 10, 30)
    fewer = compare_samples(lognormal(700.0, 0.02, 10, 31), base, threshold=0.1, larger_is_better=True)
    assert fewer.verdict == gate_stats.REGRESSION and fewer.ratio < 0.75 and fewer.high < 0.8
    more = compare_samples(lognormal(1300.0, 0.02, 10, 32), base, threshold=0.1, larger_is_better=True)
    assert more.verdict == gate_stats.PASS and more.low > 1.2
    # the same samples read as times: more is slower
    assert (
        compare_samples(lognormal(1300.0, 0.02, 10, 32), base, threshold=0.1).verdict == gate_stats.REGRESSION
    )


@pytest.mark.parametrize("n_variant,n_baseline", [(1, 1), (1, 20), (2, 2), (3, 3), (2, 4)])
def test_compare_samples_too_few_is_inconclusive_and_says_so(n_variant, n_baseline):
    """Even a 50% slowdown with no noise cannot be significant with this few samples."""
    c = compare_samples([150.0 + i for i in range(n_variant)], [100.0 + i for i in range(n_baseline)],
                        threshold=0.1)  # fmt: skip
    assert c.verdict == gate_stats.INCONCLUSIVE and c.reason.startswith("too few samples")
    assert c.ratio > 1.3
    if min(n_variant, n_baseline) < 2:
        assert c.low is None and c.high is None and c.p_value is None


def test_can_be_significant_counts_arrangements():
    assert not can_be_significant(3, 3)  # best exact p = 1/20, not below 0.05
    assert can_be_significant(3, 4)  # 1/35
    assert not can_be_significant(1, 100)
    assert can_be_significant(4, 4)
    # and the exact test agrees at the boundary: completely separated samples
    assert mann_whitney_greater([4.0, 5.0, 6.0], [1.0, 2.0, 3.0]) == pytest.approx(1 / 20)
    assert mann_whitney_greater([4.0, 5.0, 6.0], [0.5, 1.0, 2.0, 3.0]) == pytest.approx(1 / 35)


def test_run_trials_interleaves_and_takes_per_trial_medians():
    calls = []
    a_times = iter([100.0] * 3 + [10.0, 11.0, 12.0, 50.0, 20.0, 21.0])  # 3 warm-up, then 2 trials x 3
    b_times = iter([100.0] * 3 + [5.0] * 6)

    def a() -> float:
        calls.append("A")
        return next(a_times)

    def b() -> float:
        calls.append("B")
        return next(b_times)

    trials = run_trials(a, b, trials=2, steps=3, warmup_steps=3, progress=False)
    assert [t.workload_ms for t in trials] == [11.0, 21.0]
    assert [t.ratio for t in trials] == [2.2, 4.2]
    assert "".join(calls[6:]) == "ABBAABBAABBA"
