"""Verdicts of tips from measured numbers: pure (numpy through bench.gate.stats), no torch.

Two measures, never mixed: throughput (tokens/s pairs of blocks against the default, through
bench.gate.stats.compare_samples) and time to loss (time to the default's final val loss, whose interval
is the eval resolution of both runs). reports/ writes the tips table with the same functions.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from bench.gate.stats import ALPHA, can_be_significant, compare_samples, mann_whitney_greater
from hwinfo.units import positive

WORTH_IT = "worth it"
SMALL_GAIN = "small gain"
NO_EFFECT = "no effect"
SMALL_LOSS = "small loss"
HARMFUL = "harmful"
NOT_AVAILABLE = "not available"
INCONCLUSIVE = "inconclusive"
FAILED = "failed"
VERDICTS = (WORTH_IT, SMALL_GAIN, NO_EFFECT, SMALL_LOSS, HARMFUL, NOT_AVAILABLE, INCONCLUSIVE, FAILED)
GAINS = (WORTH_IT, SMALL_GAIN)  # the verdicts whose variant goes into the best configuration
_MIRROR = {WORTH_IT: HARMFUL, HARMFUL: WORTH_IT, SMALL_GAIN: SMALL_LOSS, SMALL_LOSS: SMALL_GAIN}

MIN_EFFECT = 0.05  # the bar: a change of 5% or more either way is worth acting on ("worth it", "harmful")
# A pair of blocks is spoiled by a burst of load when BOTH its blocks are more than SPOILED_BY times away from
# the median of their own side's blocks in the neighbouring pairs (up to NEIGHBOURS on each side, at least 2 in
# all): the pair's ratio then compares two disturbed blocks, and it is dropped (and counted). At most
# MAX_SPOILED of the pairs are dropped, the farthest first: a machine loaded throughout is noise to measure,
# not bursts to remove.
SPOILED_BY = 1.25
NEIGHBOURS = 2
MAX_SPOILED = 0.25
THROUGHPUT = "throughput"
TIME_TO_LOSS = "time_to_loss"
# Groups of knobs: one choice per group goes into the best configuration.
GROUPS = ("dtype", "compile", "threads", "affinity", "allocator", "optimizer", "batch")


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
    n_spoiled: int = 0  # pairs of blocks dropped as spoiled by a burst of load (tokens/s)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def settled(self) -> bool:
        """Whether more samples could no longer change the verdict: the interval holds neither edge of the
        bar (1 - MIN_EFFECT, 1 + MIN_EFFECT), and it holds 1 only when it lies wholly within the bar."""
        if self.low is None or self.high is None or self.verdict == INCONCLUSIVE:
            return False
        return not any(self.low < edge < self.high for edge in (1 - MIN_EFFECT, 1 + MIN_EFFECT))

    def inverted(self) -> Effect:
        """The same effect seen from the other side (the default against the variant)."""

        def inv(x: float | None) -> float | None:
            return 1 / x if x else None

        verdict = _MIRROR.get(self.verdict, self.verdict)
        return Effect(self.measure, verdict, inv(self.ratio), inv(self.high), inv(self.low), self.n_variant,
                      self.n_default, self.p_slower, self.p_faster, self.n_spoiled)  # fmt: skip


def classify(
    ratio: float | None,
    low: float | None,
    high: float | None,
    faster_significant: bool = True,
    slower_significant: bool = True,
    min_effect: float = MIN_EFFECT,
) -> str:
    """worth it: faster by at least min_effect (the bar) and the interval wholly above 1; small gain: the
    interval wholly above 1 but the ratio under the bar; harmful and small loss: their mirror images; no effect:
    the whole interval within +-min_effect (and holding 1); anything else is inconclusive."""
    if ratio is None or low is None or high is None:
        if high is not None and high < 1 - min_effect and slower_significant:
            return HARMFUL  # only an upper bound (a target never reached), and it is below the band
        return INCONCLUSIVE
    if low > 1 and faster_significant:
        return WORTH_IT if ratio >= 1 + min_effect else SMALL_GAIN
    if high < 1 and slower_significant:
        return HARMFUL if ratio <= 1 - min_effect else SMALL_LOSS
    if low >= 1 - min_effect and high <= 1 + min_effect:
        return NO_EFFECT
    return INCONCLUSIVE


def pair_ratios(variant: Sequence[float], default: Sequence[float]) -> list[float]:
    """variant / default tokens/s of each pair of blocks (the two blocks run one after the other)."""
    n = min(len(variant), len(default))
    return [float(v) / float(d) for v, d in zip(variant[:n], default[:n], strict=True)]


def spoiled_pairs(variant: Sequence[float], default: Sequence[float]) -> list[int]:
    """The pairs (indices) spoiled by a burst of load: both blocks more than SPOILED_BY times away from the
    median of their own side's blocks in the neighbouring pairs (NEIGHBOURS each side; a pair with fewer than
    two neighbours is never judged); at most MAX_SPOILED of the pairs, the farthest first."""
    n = min(len(variant), len(default))
    flagged = []
    for i in range(n):
        near = [j for j in range(max(0, i - NEIGHBOURS), min(n, i + NEIGHBOURS + 1)) if j != i]
        if len(near) < 2:
            continue
        far = []
        for side in (variant, default):
            med = statistics.median(float(side[j]) for j in near)
            x = float(side[i])
            far.append(max(x / med, med / x) if med > 0 and x > 0 else 0.0)
        if min(far) > SPOILED_BY:
            flagged.append((-min(far), i))
    return sorted(i for _, i in sorted(flagged)[: int(n * MAX_SPOILED)])


def throughput_effect(variant: Sequence[float], default: Sequence[float]) -> Effect:
    """The variant's tokens/s against the default's, from one sample per block, block i of each side run
    one after the other (a pair).

    Paired, as the gate pairs workload and reference in a trial: the ratio of each pair cancels the speed
    the machine had while that pair ran, so load that drifts between pairs (a neighbour's job starting)
    does not widen the interval. Pairs spoiled by a burst of load (spoiled_pairs) are dropped first and
    counted. compare_samples then takes the pairs' ratios against 1: the ratio is their median, the interval
    a bootstrap of it, and Mann-Whitney U says whether they lie above (or below) 1.
    """
    n = min(len(variant), len(default))
    if not n:
        raise ValueError("no pairs of blocks")
    drop = set(spoiled_pairs(variant, default))
    ratios = [r for i, r in enumerate(pair_ratios(variant, default)) if i not in drop]
    ones = [1.0] * len(ratios)
    c = compare_samples(ratios, ones, threshold=MIN_EFFECT, larger_is_better=True, alpha=ALPHA)
    if c.low is None or not can_be_significant(c.n_variant, c.n_baseline):
        return Effect(THROUGHPUT, INCONCLUSIVE, c.ratio, c.low, c.high, c.n_variant, c.n_baseline,
                      n_spoiled=len(drop))  # fmt: skip
    p_faster = mann_whitney_greater(ratios, ones)
    p_slower = c.p_value
    verdict = classify(c.ratio, c.low, c.high, p_faster < ALPHA, p_slower is not None and p_slower < ALPHA)
    return Effect(THROUGHPUT, verdict, c.ratio, c.low, c.high, c.n_variant, c.n_baseline, p_faster, p_slower,
                  len(drop))  # fmt: skip


# The median's standard error is about sqrt(pi / 2) = 1.2533 times the mean's (normal samples), and the interval
# is about 1.96 standard errors each way: the pairs a settled verdict needs follow from the spread of the ratios.
_MEDIAN_SE = 1.2533
_Z = 1.96


def ratio_spread(ratios: Sequence[float]) -> float | None:
    """The spread of pairs' ratios as a standard deviation of their logarithms, robust to a few outliers
    (1.4826 x the median absolute deviation); None with fewer than 3 usable ratios."""
    logs = [math.log(r) for r in ratios if r > 0 and math.isfinite(r)]
    if len(logs) < 3:
        return None
    mid = statistics.median(logs)
    return 1.4826 * statistics.median(abs(x - mid) for x in logs)


def pairs_needed(ratio: float, spread: float, min_effect: float = MIN_EFFECT) -> float:
    """About how many pairs settle the verdict of an effect `ratio` measured with pairs' ratios of this
    `spread` (ratio_spread): enough that the interval (about 1.96 x 1.2533 x spread / sqrt(n) each way, in
    logarithms) no longer holds the nearer edge of the bar (1 - min_effect, 1 + min_effect). math.inf for an
    effect on an edge: no number of pairs settles it."""
    if not (ratio > 0 and math.isfinite(ratio) and spread >= 0 and math.isfinite(spread)):
        return math.inf
    room = min(abs(math.log(ratio) - math.log(edge)) for edge in (1 - min_effect, 1 + min_effect))
    if room == 0:
        return math.inf
    return (_Z * _MEDIAN_SE * spread / room) ** 2


def what_would_settle(variant: Sequence[float], default: Sequence[float], pairs_s: float) -> dict | None:
    """For pairs that stopped unsettled: the spread of their ratios (spoiled pairs dropped), about how many pairs
    would settle the verdict at that spread (pairs_needed; for an effect outside the bar, more where its
    measured interval, scaled by 1 / sqrt(n), says so; None when the effect sits on an edge of the bar) and the seconds of pairs that is at
    the rate these ran; None when they settled or are too few to say."""
    n = min(len(variant), len(default))
    if not n:
        return None
    drop = set(spoiled_pairs(variant, default))
    ratios = [r for i, r in enumerate(pair_ratios(variant, default)) if i not in drop]
    spread = ratio_spread(ratios)
    e = throughput_effect(variant, default)
    if spread is None or e.settled or e.ratio is None:
        return None
    need = pairs_needed(e.ratio, spread)
    outside = e.ratio > 1 + MIN_EFFECT or e.ratio < 1 - MIN_EFFECT
    if math.isfinite(need) and outside and e.low is not None and e.high is not None and e.low > 0:
        # a clear effect with few pairs: the bootstrap interval is wider than the formula's (about the range of the
        # ratios), so scale its side toward the one edge it holds, which narrows as 1 / sqrt(n). (Within the
        # bar both edges matter, and one outlying pair would make that side, not the spread, decide.)
        edge = 1 + MIN_EFFECT if e.ratio > 1 else 1 - MIN_EFFECT
        if e.low < edge < e.high:
            side = math.log(e.ratio / (e.low if edge < e.ratio else e.high))
            need = max(need, n * (side / math.log(e.ratio / edge)) ** 2)
    pairs = None if not math.isfinite(need) else max(n + 1, math.ceil(need))
    seconds = None if pairs is None or pairs_s <= 0 else pairs * pairs_s / n
    return {"spread": spread, "pairs_needed": pairs, "seconds_needed": seconds}


STOP_SETTLED = "the verdict is known"
STOP_BUDGET = "--max-seconds ran out"
STOP_MAX_PAIRS = "the most pairs"


def stop_reason(
    variant: Sequence[float],
    default: Sequence[float],
    elapsed_s: float,
    max_seconds: float,
    min_pairs: int,
    max_pairs: int,
) -> str | None:
    """Why a throughput variant's pairs of blocks stop now, or None to measure one more pair: never before
    min_pairs; then once the interval has settled the verdict (Effect.settled), or the pairs have used
    max_seconds, or max_pairs were measured."""
    n = min(len(variant), len(default))
    if n < min_pairs:
        return None
    try:
        if throughput_effect(variant, default).settled:
            return STOP_SETTLED
    except ValueError:
        pass
    if elapsed_s >= max_seconds:
        return STOP_BUDGET
    if n >= max_pairs:
        return STOP_MAX_PAIRS
    return None


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
    than the default (worth it or a small gain), the one with the largest ratio; groups with none keep the
    default."""
    best: dict[str, Candidate] = {}
    for c in candidates:
        if c.effect.verdict not in GAINS or c.effect.ratio is None:
            continue
        held = best.get(c.group)
        if held is None or c.effect.ratio > (held.effect.ratio or 0):
            best[c.group] = c
    return best
