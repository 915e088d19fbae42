"""Time-to-loss runs: the recipe and the variants that change it (a larger batch), each trained until its
val loss reaches the target, as MLPerf times training; the target is the val loss the default reaches at
the end of the recipe.

The runs take turns in one process (each turn takes every run's own clock `turn_s` further, to the same
level), so a neighbour's burst of load hits them alike. A run's clock is its own train and eval time, as reports.load.wall_clock
reads it back from steps.csv and evals.csv: the sum of its synchronised step times and eval times. The
target is known only at evals (every eval_interval steps, as the recipe says). A variant stops at its first
eval at or below the target, or once its clock passes the cap (a multiple of the default's time), after one
more eval there, so that its val loss is known at the cap: by then it has answered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.results import RunWriter
    from bench.tune.measure import Side

TARGET_TOLERANCE = 1e-6  # evals.csv keeps 6 decimals: a loss equal to the target reads back within this


@dataclass
class ToLoss:
    """What one run to the target measured; `stopped` says why it ended."""

    target: float | None
    cap_s: float | None
    clock_ms: float = 0.0
    eval_ms_total: float = 0.0
    steps_done: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    reached_iter: int | None = None
    reached_s: float | None = None
    prev_eval_s: float | None = None  # when the eval before the one that reached the target ended
    stopped: str = "running"  # "target reached", "time cap", "end of recipe"
    where: str = "setup"
    val_evals: list[tuple[int, float, float]] = field(default_factory=list)  # (iter, val loss, clock s)

    def to_dict(self) -> dict:
        return {
            "target_val_loss": self.target, "cap_s": self.cap_s, "stopped": self.stopped,
            "reached_at_iter": self.reached_iter, "time_to_target_s": self.reached_s,
            "prev_eval_s": self.prev_eval_s, "clock_s": self.clock_ms / 1e3,
        }  # fmt: skip

    def find_target(self) -> bool:
        """Whether an eval so far (after iter 0) is at or below the target; the first such is recorded."""
        if self.reached_s is not None:
            return True
        if self.target is None:
            return False
        prev = 0.0
        for it, val, end_s in self.val_evals:
            if it > 0 and val <= self.target + TARGET_TOLERANCE:
                self.reached_iter, self.reached_s, self.prev_eval_s = it, end_s, prev
                return True
            prev = end_s
        return False

    def check(self) -> bool:
        """Whether a running variant is done: the target reached, or its clock past the cap."""
        if self.find_target():
            self.stopped = "target reached"
            return True
        if self.cap_s is not None and self.clock_ms / 1e3 > self.cap_s:
            self.stopped = "time cap"
            return True
        return False


class ToLossRun:
    """One run to the target, advanced a turn at a time. The default's own run (is_default) runs the whole
    recipe, and its final val loss becomes the target of the others."""

    def __init__(
        self,
        side: Side,
        writer: RunWriter,
        state: ToLoss,
        is_default: bool = False,
        on_step: Callable[[], None] | None = None,
    ) -> None:
        self.side, self.writer, self.state = side, writer, state
        self.is_default = is_default
        self.done = False
        self.error: Exception | None = None
        self._on_step = on_step
        self._steps = self._run()

    def advance_to(self, until: float) -> None:
        """Steps (and evals) until this run's clock reaches `until` ms, or it is done (nothing when it is there
        already); an exception ends this run alone (kept in `error`)."""
        try:
            with self.side.active():
                while not self.done and self.state.clock_ms < until:
                    next(self._steps)
        except StopIteration:
            self.done = True
        except Exception as e:  # noqa: BLE001 - the other runs go on
            self.error, self.done = e, True

    def _run(self) -> Iterator[None]:
        trainer, state = self.side.trainer, self.state
        t = trainer.train_cfg
        warmup = min(t.timing_warmup_iters, t.max_iters // 2)
        samplers = trainer.eval_samplers()

        def on_step(it: int, ms: float, loss: float, lr: float, phase: str) -> None:
            self.writer.step(it, ms, loss, lr, phase)
            state.clock_ms += ms
            state.steps_done += 1
            if self._on_step is not None:
                self._on_step()

        self.side.on_step = on_step

        def evaluate(it: int) -> None:
            state.where = f"the eval at iter {it}"
            for split, (loss, ms) in trainer.evaluate(samplers).items():
                self.writer.eval(it, split, loss, ms)
                state.losses[split] = loss
                state.eval_ms_total += ms
                state.clock_ms += ms
            if "val" in state.losses:
                state.val_evals.append((it, state.losses["val"], state.clock_ms / 1e3))

        for it in range(t.max_iters + 1):
            if it % t.eval_interval == 0 or it == t.max_iters:
                evaluate(it)
                if not self.is_default and state.check():
                    return
                yield
            if it == t.max_iters:
                break
            state.where = f"step {it}"
            self.side.steps(1, "warmup" if it < warmup else "timed")
            if not self.is_default and state.cap_s is not None and state.clock_ms / 1e3 > state.cap_s:
                # Past the cap between two evals: one eval now, so its val loss is known at the cap. Without it,
                # the last known loss would be an eval's up to an interval earlier, and "not at the target
                # within the cap" would be a guess (the loss may have crossed in between).
                evaluate(it + 1)
                state.stopped = "target reached" if state.find_target() else "time cap"
                return
            yield
        state.stopped = "end of recipe"
        if self.is_default and math.isfinite(state.losses.get("val", math.nan)):
            state.target = state.losses["val"]  # the default's final val loss: the target of the others
            state.find_target()
        elif not self.is_default and state.find_target():
            state.stopped = "target reached"


def run_interleaved(
    runs: list[ToLossRun],
    turn_s: float,
    time_cap: float,
    target: float | None = None,
    cap_s: float | None = None,
) -> None:
    """Advance the runs in turns until each is done. When the default (is_default) finishes, its
    final val loss is every other run's target and time_cap x its time their cap; each then stops at once if
    it is already there (a variant that ended before is judged by the evals it made). With no default among them, `target` and `cap_s` (from a finished default) apply."""
    for r in runs:
        if not r.is_default:
            r.state.target, r.state.cap_s = target, cap_s
    active = list(runs)
    # Every turn takes each run's clock to the same level: a run whose steps (or an eval) overshoot a turn
    # waits for the others rather than drifting ahead, so the runs stay within a step of each other in
    # clock, and none is far past the cap when the default finishes and sets it.
    level = 0.0
    while active:
        level = max(level + turn_s * 1e3, min(r.state.clock_ms for r in active))
        for r in list(active):
            r.advance_to(level)
            if r.is_default and r.done and r.state.reached_s is not None:
                for other in runs:
                    if other.is_default or other.error is not None:
                        continue
                    other.state.target = r.state.target
                    other.state.cap_s = time_cap * r.state.reached_s
                    if not other.done:
                        # at the target by an eval made already: done; past the cap: its next step evaluates
                        # once and stops (so its val loss is known at the cap)
                        if other.state.find_target():
                            other.state.stopped, other.done = "target reached", True
                    elif other.state.find_target():  # it ended before the target was known
                        other.state.stopped = "target reached"
        active = [r for r in active if not r.done]
