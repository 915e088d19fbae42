"""bench tune's verdicts on synthetic samples: tokens/s intervals (bench.gate.stats), time to loss at both
runs' eval resolution, the tip's direction, and the choice of the best configuration."""

from __future__ import annotations

import numpy as np
import pytest

from bench.tune.verdict import (
    HARMFUL,
    INCONCLUSIVE,
    NO_EFFECT,
    SMALL_GAIN,
    SMALL_LOSS,
    WORTH_IT,
    Candidate,
    Effect,
    choose_best,
    classify,
    throughput_effect,
    time_to_loss_effect,
)


def samples(median: float, spread: float, n: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(median * (1 + spread * rng.standard_normal(n)))


def test_a_clear_gain_is_worth_it_with_an_interval_above_one():
    e = throughput_effect(samples(13_000, 0.02, 8, 1), samples(10_000, 0.02, 8, 2))
    assert e.verdict == WORTH_IT
    assert e.ratio == pytest.approx(1.3, rel=0.03)
    assert 1 < e.low < e.ratio < e.high
    assert e.p_faster < 0.05 and e.p_slower > 0.5


def test_a_clear_loss_is_harmful():
    e = throughput_effect(samples(7_000, 0.02, 8, 3), samples(10_000, 0.02, 8, 4))
    assert e.verdict == HARMFUL and e.high < 1 and e.p_slower < 0.05


def test_the_same_speed_measured_tightly_is_no_effect():
    e = throughput_effect(samples(10_000, 0.005, 10, 5), samples(10_000, 0.005, 10, 6))
    assert e.verdict == NO_EFFECT and 0.95 <= e.low and e.high <= 1.05


def test_noise_wider_than_the_effect_is_inconclusive_not_a_verdict():
    e = throughput_effect(samples(11_000, 0.3, 6, 7), samples(10_000, 0.3, 6, 8))
    assert e.verdict == INCONCLUSIVE and e.low < 1 < e.high


def test_too_few_blocks_can_never_decide():
    e = throughput_effect([20_000, 21_000, 20_500], [10_000, 10_100, 10_050])
    assert e.verdict == INCONCLUSIVE  # 3 and 3: no Mann-Whitney U p-value below 0.05 is possible


def test_the_tips_direction_inverts_ratio_interval_and_verdict():
    e = throughput_effect(samples(7_000, 0.02, 8, 3), samples(10_000, 0.02, 8, 4))
    inv = e.inverted()
    assert inv.verdict == WORTH_IT and inv.ratio == pytest.approx(1 / e.ratio)
    assert inv.low == pytest.approx(1 / e.high) and inv.high == pytest.approx(1 / e.low)
    assert inv.p_faster == e.p_slower


def test_classify_bands():
    assert classify(1.10, 1.04, 1.16) == WORTH_IT
    assert classify(1.03, 1.01, 1.05) == SMALL_GAIN  # wholly above 1, but under the 5% bar
    assert classify(1.04, 1.01, 1.08) == SMALL_GAIN  # a gain for sure; the ratio under the bar
    assert classify(0.97, 0.95, 0.99) == SMALL_LOSS
    assert classify(1.01, 0.98, 1.04) == NO_EFFECT  # within the bar and holding 1
    assert classify(1.04, 0.99, 1.08) == INCONCLUSIVE  # may or may not be worth 5%
    assert classify(1.10, 1.04, 1.16, faster_significant=False) == INCONCLUSIVE
    assert classify(0.90, 0.85, 0.96) == HARMFUL
    assert classify(None, None, 0.6) == HARMFUL  # only an upper bound, below the band
    assert classify(None, None, 0.99) == INCONCLUSIVE


def test_time_to_loss_effect_at_eval_resolution():
    # the default reached its final loss at its eval at 100 s (the eval before: 98 s); the variant at its eval
    # at 80 s (the eval before: 70 s)
    e = time_to_loss_effect(100.0, 80.0, 70.0, 80.0, default_prev_eval_s=98.0)
    assert (
        e.ratio == pytest.approx(1.25)
        and e.low == pytest.approx(98 / 80)
        and e.high == pytest.approx(100 / 70)
    )
    assert e.verdict == WORTH_IT
    slow = time_to_loss_effect(100.0, 130.0, 110.0, 130.0, default_prev_eval_s=98.0)
    assert slow.verdict == HARMFUL and slow.high < 1
    straddles = time_to_loss_effect(100.0, 102.0, 90.0, 102.0, default_prev_eval_s=98.0)
    assert straddles.verdict == INCONCLUSIVE
    never = time_to_loss_effect(100.0, None, None, 150.0, default_prev_eval_s=98.0)  # last eval at 150 s
    assert never.verdict == HARMFUL and never.ratio is None and never.high == pytest.approx(1 / 1.5)
    assert time_to_loss_effect(0.0, 1.0, 0.5, 1.0, default_prev_eval_s=0.0).verdict == INCONCLUSIVE


def test_time_to_loss_bracket_spans_both_runs_eval_resolution():
    """The reference's crossing is known only between its own evals too: the demo's b12 against b48 is
    2.8x [1.46x-4.21x], not [2.8x-4.2x] (b48 crossed after 27.39 s and by 51.95 s, b12 after 12.34 s and by
    18.80 s)."""
    e = time_to_loss_effect(51.95, 18.80, 12.34, 18.80, default_prev_eval_s=27.39)
    assert e.ratio == pytest.approx(51.95 / 18.80)  # the point estimate stays reached / reached
    assert e.low == pytest.approx(27.39 / 18.80) and e.high == pytest.approx(51.95 / 12.34)
    assert round(e.low, 2) == 1.46 and round(e.high, 2) == 4.21
    assert e.verdict == WORTH_IT  # the whole bracket is above 1
    # an unknown eval before (or one at 0 s) leaves no lower bound above 0
    assert time_to_loss_effect(51.95, 18.80, 12.34, 18.80, default_prev_eval_s=None).low == 0.0


def test_time_to_loss_verdict_follows_the_reference_resolution():
    # 1.25x by the evals that reached it, but the default may have crossed right after its eval at 60 s:
    # the bracket [0.75x-1.43x] straddles 1, so it is not "worth it"
    e = time_to_loss_effect(100.0, 80.0, 70.0, 80.0, default_prev_eval_s=60.0)
    assert e.ratio == pytest.approx(1.25) and e.low == pytest.approx(0.75)
    assert e.verdict == INCONCLUSIVE
    # 0.8x by the reached evals, but the variant may have crossed right after 70 s: not "harmful" either
    h = time_to_loss_effect(100.0, 125.0, 70.0, 125.0, default_prev_eval_s=95.0)
    assert h.ratio == pytest.approx(0.8) and h.high == pytest.approx(100 / 70)
    assert h.verdict == INCONCLUSIVE
    # within the band on every side of the bracket: no effect
    n = time_to_loss_effect(100.0, 100.0, 99.0, 100.0, default_prev_eval_s=99.0)
    assert n.verdict == NO_EFFECT


def test_a_target_never_reached_is_bounded_by_the_variants_last_eval_not_its_stop():
    """The real tune's batch 24: the default reached its final val loss at 134.70 s; batch 24 was stopped by
    the cap at 148.24 s, but its val loss was last known (above the target) at its eval ending at 120.46 s,
    and it may have crossed right after: < 1.12x, not < 0.909x, so inconclusive, not harmful."""
    e = time_to_loss_effect(134.70, None, None, 120.46, default_prev_eval_s=117.64)
    assert e.ratio is None and e.low is None and e.high == pytest.approx(134.70 / 120.46)
    assert e.verdict == INCONCLUSIVE
    # still above the target at an eval after 1.5x the default's time: harmful
    late = time_to_loss_effect(100.0, None, None, 150.0, default_prev_eval_s=90.0)
    assert late.verdict == HARMFUL and late.high == pytest.approx(1 / 1.5)
    # no timed eval at all: nothing bounds it
    assert time_to_loss_effect(100.0, None, None, None, default_prev_eval_s=90.0).verdict == INCONCLUSIVE


def test_choose_best_takes_the_largest_worth_it_per_group():
    fast = throughput_effect(samples(15_000, 0.02, 8, 1), samples(10_000, 0.02, 8, 2))
    faster = throughput_effect(samples(20_000, 0.02, 8, 3), samples(10_000, 0.02, 8, 4))
    harmful = throughput_effect(samples(5_000, 0.02, 8, 5), samples(10_000, 0.02, 8, 6))
    cands = [
        Candidate("threads2", "threads", {"threads": 2}, fast),
        Candidate("threads1", "threads", {"threads": 1}, faster),
        Candidate("bf16", "dtype", {"dtype": "bf16"}, harmful),
        Candidate("compile", "compile", {"compile": "on"}, fast),
    ]
    best = choose_best(cands)
    assert set(best) == {"threads", "compile"} and best["threads"].name == "threads1"
    assert choose_best([cands[2]]) == {}


def test_machine_speed_drifting_between_pairs_cancels_within_each_pair():
    """A neighbour's job makes the machine 10x slower for the later pairs: each pair's ratio still says 0.8."""
    speed = [10_000, 11_000, 9_500, 1_000, 1_100, 950]
    e = throughput_effect([0.8 * s for s in speed], speed)
    assert e.verdict == HARMFUL and e.ratio == pytest.approx(0.8) and e.high < 1
    # unpaired, the same numbers could not be told apart
    from bench.gate.stats import compare_samples

    unpaired = compare_samples([0.8 * s for s in speed], speed, threshold=0.05, larger_is_better=True)
    assert unpaired.low < 1 < unpaired.high


def test_pairs_are_matched_by_position_and_an_unfinished_pair_is_dropped():
    from bench.tune.verdict import pair_ratios

    assert pair_ratios([2.0, 4.0, 9.0], [1.0, 2.0]) == [2.0, 2.0]


def test_a_small_gain_mirrors_into_a_small_loss_and_only_a_settled_interval_stops_the_pairs():
    e = Effect("throughput", SMALL_GAIN, 1.03, 1.01, 1.045, 12, 12)
    assert e.inverted().verdict == SMALL_LOSS and e.settled
    assert not Effect("throughput", WORTH_IT, 1.08, 1.03, 1.12, 12, 12).settled  # holds the bar's edge 1.05
    assert Effect("throughput", WORTH_IT, 1.08, 1.06, 1.12, 12, 12).settled
    assert Effect("throughput", NO_EFFECT, 1.0, 0.97, 1.03, 12, 12).settled
    assert not Effect("throughput", INCONCLUSIVE, 1.0, 0.9, 1.1, 12, 12).settled


def test_a_small_gain_goes_into_the_best_configuration():
    small = Candidate("fused-adamw", "optimizer", {}, Effect("throughput", SMALL_GAIN, 1.03, 1.01, 1.045))
    none = Candidate("bf16", "dtype", {}, Effect("throughput", NO_EFFECT, 1.01, 0.98, 1.03))
    assert set(choose_best([small, none])) == {"optimizer"}


def test_pairs_needed_grows_with_the_spread_and_near_the_bar():
    """The arithmetic of the stopping rule: n ~ (1.96 x 1.2533 x spread / room)^2, room the distance (in logs)
    from the ratio to the nearer edge of the bar."""
    import math

    from bench.tune.verdict import pairs_needed, ratio_spread

    assert pairs_needed(1.0, 0.044) == pytest.approx((1.96 * 1.2533 * 0.044 / math.log(1.05)) ** 2)
    assert pairs_needed(1.0, 0.044) < 6 < pairs_needed(1.0, 0.1) < pairs_needed(1.0, 0.2)
    assert (
        pairs_needed(1.3, 0.1) < 2 < pairs_needed(1.03, 0.1)
    )  # a clear effect needs few, one near the bar many
    assert pairs_needed(1.05, 0.1) == math.inf and pairs_needed(0.95, 0.01) == math.inf
    assert pairs_needed(0.0, 0.1) == math.inf
    # the spread is robust: one pair out of ten spoiled does not move it much
    calm = [1.0, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.0, 1.01, 0.99]
    assert ratio_spread(calm) == pytest.approx(ratio_spread(calm[:9] + [8.0]), rel=0.5)
    assert ratio_spread([1.0, 2.0]) is None


def test_what_would_settle_is_said_only_while_unsettled():
    from bench.tune.verdict import what_would_settle

    v, d = samples(1.2, 0.01, 8, 1), samples(1.0, 0.01, 8, 2)
    assert throughput_effect(v, d).settled and what_would_settle(v, d, 8.0) is None
    v, d = samples(1.0, 0.3, 8, 3), samples(1.0, 0.3, 8, 4)
    w = what_would_settle(v, d, 8.0)
    assert w is not None and w["spread"] > 0.1 and (w["pairs_needed"] is None or w["pairs_needed"] > 8)


def test_a_clear_effect_with_few_noisy_pairs_is_not_promised_settling_in_one_more():
    """With 6 pairs the bootstrap interval is about the ratios' range, wider than the spread's formula: for an
    effect outside the bar the estimate scales the measured interval, so it asks for more than the formula."""
    from bench.tune.verdict import pair_ratios, pairs_needed, ratio_spread, what_would_settle

    d = [1000.0] * 6
    v = [2000.0, 2100.0, 1900.0, 2050.0, 600.0, 500.0]  # mostly 2x; two pairs far below
    e = throughput_effect(v, d)
    assert not e.settled
    w = what_would_settle(v, d, 6.0)
    formula = pairs_needed(e.ratio, ratio_spread(pair_ratios(v, d)))
    assert w["pairs_needed"] > max(7, formula)
