"""The gate's statistics on synthetic per-trial samples: pass, regression, inconclusive, reproducible."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench.gate import stats as gate_stats
from bench.gate.measure import run_trials
from bench.gate.stats import compare, compare_summaries, decide, mann_whitney_greater


def lognormal(center: float, sigma: float, n: int, seed: int) -> np.ndarray:
    return center * np.exp(np.random.default_rng(seed).normal(0.0, sigma, n))


def test_equal_samples_pass():
    c = compare(lognormal(1.0, 0.02, 10, 1), lognormal(1.0, 0.02, 20, 2))
    assert c.decision == gate_stats.PASS
    assert c.ci_low < 1.0 + 0.03 and c.ci_high <= 1.10
    assert 0.97 < c.slowdown < 1.03


def test_twenty_percent_slower_low_noise_is_a_regression():
    c = compare(lognormal(1.2, 0.02, 10, 3), lognormal(1.0, 0.02, 20, 4))
    assert c.decision == gate_stats.REGRESSION
    assert c.ci_low > 1.1 and c.mann_whitney_p < 1e-4
    assert 1.15 < c.slowdown < 1.25


def test_significant_but_below_threshold_passes():
    c = compare(lognormal(1.04, 0.01, 12, 5), lognormal(1.0, 0.01, 20, 6), threshold=0.10)
    assert c.ci_low > 1.0  # the slowdown is real...
    assert c.decision == gate_stats.PASS  # ...but smaller than the threshold


def test_huge_noise_is_inconclusive_not_a_regression():
    decisions = [
        compare(lognormal(1.0, 0.6, 8, 100 + s), lognormal(1.0, 0.6, 8, 200 + s)).decision for s in range(40)
    ]
    assert decisions.count(gate_stats.INCONCLUSIVE) >= 30
    assert decisions.count(gate_stats.REGRESSION) <= 2  # a false-alarm rate near the 2.5% one-sided tail
    wide = compare(lognormal(1.0, 0.6, 8, 300), lognormal(1.0, 0.6, 8, 301))
    assert wide.ci_high - wide.ci_low > 0.5


def test_faster_passes():
    c = compare(lognormal(0.7, 0.02, 10, 9), lognormal(1.0, 0.02, 10, 10))
    assert c.decision == gate_stats.PASS and c.ci_high < 1.0


def test_threshold_is_respected():
    cur, base = lognormal(1.2, 0.02, 10, 11), lognormal(1.0, 0.02, 10, 12)
    assert compare(cur, base, threshold=0.10).decision == gate_stats.REGRESSION
    assert compare(cur, base, threshold=0.30).decision == gate_stats.PASS


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


def test_compare_needs_two_positive_samples():
    with pytest.raises(ValueError):
        compare([1.0], [1.0, 1.1])
    with pytest.raises(ValueError):
        compare([1.0, -1.0], [1.0, 1.1])


def test_compare_summaries():
    base = {"median": 1.0, "iqr": 0.02, "rounds": 50}
    assert compare_summaries({"median": 1.01, "iqr": 0.02, "rounds": 50}, base).decision == gate_stats.PASS
    slow = compare_summaries({"median": 1.3, "iqr": 0.02, "rounds": 50}, base)
    assert slow.decision == gate_stats.REGRESSION and slow.mann_whitney_p is None
    wide = compare_summaries(
        {"median": 1.3, "iqr": 3.0, "rounds": 5}, {"median": 1.0, "iqr": 3.0, "rounds": 5}
    )
    assert wide.decision == gate_stats.INCONCLUSIVE


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
