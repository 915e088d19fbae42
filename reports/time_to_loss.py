"""Time to a target val loss, for every set of runs that share a target (as MLPerf measures training).

A run's clock is its train and eval time (reports.load.wall_clock: steps plus evals); it reaches the
target at the first eval (after iter 0) whose val loss is at or below it. The val loss is known only at
evals, so the crossing lies between the eval before and that eval: the eval resolution. A ratio of two runs'
times is bracketed by both runs' resolution; a run that never reached the target is bounded by its last
eval (the last time its val loss was known), not by the clock at which it stopped.

Sets: a `bench tune` device (its default's full run and the variants run to its final val loss, the
target stored by tune), and any other runs of one model on one text and seed (target: the highest final
val loss among them, which each reached by its end). Never mixed with throughput figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.tune.to_loss import TARGET_TOLERANCE
from bench.tune.verdict import NO_EFFECT, TIME_TO_LOSS, Effect, time_to_loss_effect
from reports import fmt
from reports.finding import Finding
from reports.load import Results, wall_clock


@dataclass
class ToLossRun:
    """One run's time to the target: time_s (None: not reached), the eval before it, its last eval (the last
    time its val loss was known: above the target when not reached), its whole clock."""

    key: str
    time_s: float | None
    prev_eval_s: float | None
    end_s: float
    last_eval_s: float | None
    reached_iter: int | None
    last_iter: int | None
    last_val: float | None
    tokens: float | None  # training tokens read until the target (or the end)

    @property
    def reached(self) -> bool:
        return self.time_s is not None


@dataclass
class ToLossSet:
    """Runs that share a target val loss; `reference` is the run the others are compared with (tune's default,
    else the slowest to reach it)."""

    target: float
    source: str  # "tune" or "shared"
    reference: str
    runs: list[ToLossRun] = field(default_factory=list)

    _by_key: dict[str, ToLossRun] = field(default_factory=dict, init=False, repr=False, compare=False)

    def run(self, key: str) -> ToLossRun | None:
        if len(self._by_key) != len(self.runs):  # built once the runs are in (a findings pass asks per run)
            self._by_key = {r.key: r for r in reversed(self.runs)}  # the first run of a key wins, as before
        return self._by_key.get(key)

    def effect(self, key: str) -> Effect | None:
        """The run's speed-up to the target over the reference (interval: both runs' eval resolution)."""
        ref, run = self.run(self.reference), self.run(key)
        if ref is None or run is None or ref.time_s is None:
            return None
        if key == self.reference:  # one crossing against itself: exactly 1
            return Effect(TIME_TO_LOSS, NO_EFFECT, 1.0, 1.0, 1.0, 1, 1)
        return time_to_loss_effect(ref.time_s, run.time_s, run.prev_eval_s, run.last_eval_s,
                                   default_prev_eval_s=ref.prev_eval_s)  # fmt: skip

    def to_dict(self) -> dict:
        return {"target_val_loss": self.target, "source": self.source, "reference": self.reference,
                "runs": [r.__dict__ | {"reached": r.reached} for r in self.runs]}  # fmt: skip


def time_to_target(results: Results, key: str, target: float) -> ToLossRun | None:
    """When the run's val loss first reached target (None: it has no val evals)."""
    steps, evals = results.arrays_of("steps", key), results.arrays_of("evals", key)
    if not len(evals["iter"]):
        return None
    step_end, eval_end = wall_clock(steps, evals)
    val_iters, val_losses = _last_val_loss(evals)
    if not len(val_iters):
        return None
    end_of = dict(zip(np.unique(evals["iter"]).tolist(), eval_end.tolist(), strict=True))
    tpi = results.runs.at[key, "tokens_per_iter"] if "tokens_per_iter" in results.runs.columns else None
    last = val_iters[-1]
    last_t = float(end_of.get(last, np.nan))
    last_eval_s = last_t if np.isfinite(last_t) else None
    prev = 0.0
    for it, loss in zip(val_iters, val_losses, strict=True):
        t = float(end_of.get(it, np.nan))
        if it > 0 and np.isfinite(loss) and loss <= target + TARGET_TOLERANCE and np.isfinite(t):
            return ToLossRun(key, t, prev, _end(step_end, eval_end), last_eval_s, it, last, val_losses[-1],
                             it * float(tpi) if fmt.is_num(tpi) else None)  # fmt: skip
        if np.isfinite(t):
            prev = t
    # not reached: its val loss was last known (above the target) at the end of its last timed eval, `prev`
    return ToLossRun(key, None, None, _end(step_end, eval_end), prev if prev > 0 else None, None, last,
                     val_losses[-1], len(steps["iter"]) * float(tpi) if fmt.is_num(tpi) else None)  # fmt: skip


def _last_val_loss(evals: dict[str, np.ndarray]) -> tuple[list[int], list[float]]:
    """The iterations with a val eval, ascending, and the last val loss that is not NaN at each (NaN: none),
    as pandas' groupby("iter").last() gives them, in numpy: a report of 1,500 runs asks this of each."""
    is_val = np.asarray(evals["split"] == "val", dtype=bool)
    it = np.asarray(evals["iter"][is_val], dtype=np.int64)
    loss = np.asarray(evals["loss"][is_val], dtype=float)
    iters = np.unique(it)
    last = np.full(len(iters), np.nan)
    known = ~np.isnan(loss)
    if known.any():
        seen, first_from_end = np.unique(it[known][::-1], return_index=True)
        last[np.searchsorted(iters, seen)] = loss[known][::-1][first_from_end]
    return iters.tolist(), last.tolist()


def _end(step_end: np.ndarray, eval_end: np.ndarray) -> float:
    """The run's whole clock: the end of its last step or its last eval, whichever came later."""
    ends = [float(np.nanmax(a)) for a in (step_end, eval_end) if len(a) and np.isfinite(a).any()]
    return max(ends, default=0.0)


def _tune(results: Results, key: str) -> dict:
    t = (results.run_meta.get(key) or {}).get("tune")
    return t if isinstance(t, dict) else {}


def to_loss_sets(results: Results) -> list[ToLossSet]:
    """Every set of finished runs that share a target, tune's first (computed once per Results)."""
    cached = getattr(results, "_to_loss_sets", None)
    if cached is None:
        cached = _sets(results)
        results._to_loss_sets = cached  # type: ignore[attr-defined]
    return cached


def _sets(results: Results) -> list[ToLossSet]:
    ok = results.ok_runs()
    out: list[ToLossSet] = []
    used: set[str] = set()
    # a tune's runs to its target count when they finished, timed steps or not: a compiled best whose compile
    # (its warm-up) outlasted the cap has evals and an answer ("< 0.15x"), never "not measured"
    finished = results.runs[results.runs["status"] == "ok"]
    tuned = [k for k in finished.index if _tune(results, k).get("measure") in ("default", TIME_TO_LOSS)]
    groups: dict[tuple, list[str]] = {}
    for k in tuned:
        groups.setdefault((finished.loc[k, "results_dir"], finished.loc[k, "device"]), []).append(k)
    for keys in groups.values():
        default = next((k for k in keys if _tune(results, k).get("measure") == "default"), None)
        target = _tune(results, default).get("target_val_loss") if default else None
        if default is None or not fmt.is_num(target):
            continue
        s = ToLossSet(float(target), "tune", default)
        s.runs = [r for k in keys if (r := time_to_target(results, k, float(target))) is not None]
        used.update(keys)
        if s.run(default) is not None and len(s.runs) >= 2:
            out.append(s)
    shared: dict[str, list[str]] = {}
    for k in ok.index:
        meta = results.run_meta.get(k) or {}
        if (
            k in used or _tune(results, k) or meta.get("init_from")
        ):  # a continued run's clock starts mid-recipe
            continue
        train = meta.get("train") or {}
        task = json.dumps({"model": meta.get("model") or {}, "data": train.get("data"), "seed": train.get("seed")},
                          sort_keys=True, default=str)  # fmt: skip
        shared.setdefault(task, []).append(k)
    for keys in shared.values():
        finals = [float(v) for v in ok.loc[keys, "final_val_loss"] if fmt.is_num(v)]
        if len(keys) < 2 or len(finals) < 2:
            continue
        target = max(finals)
        runs = [r for k in keys if (r := time_to_target(results, k, target)) is not None]
        reached = [r for r in runs if r.reached]
        if len(reached) < 2:
            continue
        slowest = max(reached, key=lambda r: r.time_s or 0.0)
        out.append(ToLossSet(target, "shared", slowest.key, runs))
    return out


def time_to_loss_findings(results: Results, ok: Any) -> list[Finding]:
    """One `time_to_loss` finding per set: each run's time to the shared target (the words: reports.words)."""
    out = []
    for s in to_loss_sets(results):
        ref = s.run(s.reference)
        evidence = s.to_dict()
        evidence["speedups"] = {r.key: (e.to_dict() if (e := s.effect(r.key)) else None) for r in s.runs}
        if ref is not None:
            evidence["reference_time_s"] = ref.time_s
        out.append(Finding("time_to_loss", "info", evidence=evidence, runs=[r.key for r in s.runs]))
    return out
