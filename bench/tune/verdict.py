"""Verdicts of tips from measured numbers: pure (numpy through bench.gate.stats), no torch.

Two measures, never mixed: a throughput variant (same recipe) is judged on tokens/s samples taken in
alternating blocks with the default (each pair's ratio; their median, its bootstrap interval and a
Mann-Whitney U test through bench.gate.stats.compare_samples); a time-to-loss variant (another batch size) on the time it takes to reach the val loss
the default reaches at its end, known only at evals, so its interval is both runs' eval resolution. `bench tune`
uses these to pick the best configuration; reports/ uses the same functions to write the tips table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from bench.gate.stats import ALPHA, can_be_significant, compare_samples, mann_whitney_greater
from hwinfo.units import positive

WORTH_IT = "worth it"
NO_EFFECT = "no effect"
HARMFUL = "harmful"
NOT_AVAILABLE = "not available"
INCONCLUSIVE = "inconclusive"
FAILED = "failed"
VERDICTS = (WORTH_IT, NO_EFFECT, HARMFUL, NOT_AVAILABLE, INCONCLUSIVE, FAILED)

MIN_EFFECT = 0.05  # a change smaller than 5% either way is "no effect": not worth acting on
THROUGHPUT = "throughput"
TIME_TO_LOSS = "time_to_loss"
# Groups of knobs: one choice per group goes into the best configuration.
GROUPS = ("dtype", "compile", "threads", "optimizer", "batch")


@dataclass(frozen=True)
class Effect:
    """A measured effect: ratio > 1 means faster (more tokens/s, or less time to the target loss).

    low/high: its interval (bootstrap for tokens/s; for time to loss, the eval resolution of both runs); None
    where there is none (too few samples; a target never reached has only an upper bound, `high`).
    """

    measure: str
    verdict: str
    ratio: float | None
    low: float | None
    high: float | None
    n_variant: int = 0
    n_default: int = 0
    p_faster: float | None = None  # one-sided Mann-Whitney U p-value for "faster" (tokens/s)
    p_slower: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def inverted(self) -> Effect:
        """The same effect seen from the other side (the default against the variant)."""

        def inv(x: float | None) -> float | None:
            return 1 / x if x else None

        verdict = {WORTH_IT: HARMFUL, HARMFUL: WORTH_IT}.get(self.verdict, self.verdict)
        return Effect(self.measure, verdict, inv(self.ratio), inv(self.high), inv(self.low), self.n_variant,
                      self.n_default, self.p_slower, self.p_faster)  # fmt: skip


def classify(
    ratio: float | None,
    low: float | None,
    high: float | None,
    faster_significant: bool = True,
    slower_significant: bool = True,
    min_effect: float = MIN_EFFECT,
) -> str:
    """worth it: faster by at least min_effect and the interval wholly above 1; harmful: the mirror image;
    no effect: the whole interval within +-min_effect; anything else is inconclusive."""
    if ratio is None or low is None or high is None:
        if high is not None and high < 1 - min_effect and slower_significant:
            return HARMFUL  # only an upper bound (a target never reached), and it is below the band
        return INCONCLUSIVE
    if low > 1 and ratio >= 1 + min_effect and faster_significant:
        return WORTH_IT
    if high < 1 and ratio <= 1 - min_effect and slower_significant:
        return HARMFUL
    if low >= 1 - min_effect and high <= 1 + min_effect:
        return NO_EFFECT
    return INCONCLUSIVE


def pair_ratios(variant: Sequence[float], default: Sequence[float]) -> list[float]:
    """variant / default tokens/s of each pair of blocks (the two blocks run one after the other)."""
    n = min(len(variant), len(default))
    return [float(v) / float(d) for v, d in zip(variant[:n], default[:n], strict=True)]


def throughput_effect(variant: Sequence[float], default: Sequence[float]) -> Effect:
    """The variant's tokens/s against the default's, from one sample per block, block i of each side run
    one after the other (a pair).

    Paired, as the gate pairs workload and reference in a trial: the ratio of each pair cancels the speed
    the machine had while that pair ran, so load that drifts between pairs (a neighbour's job starting)
    does not widen the interval. compare_samples then takes the pairs' ratios against 1: the ratio is their
    median, the interval a bootstrap of it, and Mann-Whitney U says whether they lie above (or below) 1.
    """
    ratios = pair_ratios(variant, default)
    ones = [1.0] * len(ratios)
    if not ratios:
        raise ValueError("no pairs of blocks")
    c = compare_samples(ratios, ones, threshold=MIN_EFFECT, larger_is_better=True, alpha=ALPHA)
    if c.low is None or not can_be_significant(c.n_variant, c.n_baseline):
        return Effect(THROUGHPUT, INCONCLUSIVE, c.ratio, c.low, c.high, c.n_variant, c.n_baseline)
    p_faster = mann_whitney_greater(ratios, ones)
    p_slower = c.p_value
    verdict = classify(c.ratio, c.low, c.high, p_faster < ALPHA, p_slower is not None and p_slower < ALPHA)
    return Effect(THROUGHPUT, verdict, c.ratio, c.low, c.high, c.n_variant, c.n_baseline, p_faster, p_slower)


def time_to_loss_effect(
    default_s: float,
    variant_s: float | None,
    variant_prev_eval_s: float | None,
    variant_last_eval_s: float | None,
    *,
    default_prev_eval_s: float | None,
) -> Effect:
    """Speed-up in time to the target: default_s / variant_s, bracketed by both runs' eval resolution.

    Val loss is known only at evals, so each run crossed the target after its last eval above it and by its
    first eval at or below it: the default within (default_prev_eval_s, default_s], the variant within
    (variant_prev_eval_s, variant_s] (None: it never reached it). The speed-up therefore lies in
    [default_prev_eval_s / variant_s, default_s / variant_prev_eval_s] (no upper bound when the variant's
    eval before was at 0 s). A variant that never reached the target was still above it at its last eval
    (variant_last_eval_s; whatever it trained after that was never evaluated, so a time cap's clock says
    nothing more): it has only an upper bound, default_s / variant_last_eval_s.
    """
    if not _pos(default_s):
        return Effect(TIME_TO_LOSS, INCONCLUSIVE, None, None, None, 1, 1)
    if variant_s is None or not _pos(variant_s):
        bound = default_s / variant_last_eval_s if _pos(variant_last_eval_s) else None
        return Effect(TIME_TO_LOSS, classify(None, None, bound), None, None, bound, 1, 1)
    ratio = default_s / variant_s
    # the default may have crossed right after its eval before (none known: right after it started)
    d_prev = default_prev_eval_s if default_prev_eval_s is not None and _pos(default_prev_eval_s) else 0.0
    low = min(d_prev, default_s) / variant_s
    high = default_s / variant_prev_eval_s if _pos(variant_prev_eval_s) else None
    verdict = classify(ratio, low, high if high is not None else math.inf)
    return Effect(TIME_TO_LOSS, verdict, ratio, low, high, 1, 1)


def _pos(x: float | None) -> bool:
    return positive(x) is not None


@dataclass(frozen=True)
class Candidate:
    """A measured single variant, as the choice of the best configuration sees it."""

    name: str
    group: str
    knobs: dict
    effect: Effect  # the variant against the default (not the tip's direction)


def choose_best(candidates: Sequence[Candidate]) -> dict[str, Candidate]:
    """{group: the variant to take} for the best configuration: per group, of the variants that are faster
    than the default (worth it), the one with the largest ratio; groups with none keep the default."""
    best: dict[str, Candidate] = {}
    for c in candidates:
        if c.effect.verdict != WORTH_IT or c.effect.ratio is None:
            continue
        held = best.get(c.group)
        if held is None or c.effect.ratio > (held.effect.ratio or 0):
            best[c.group] = c
    return best
