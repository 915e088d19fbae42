"""Throughput variants: blocks of steps of the default and of a variant alternated in one process.

A B, B A, A B, ...: each block is a few steps of one side under its own settings (threads, CPU affinity,
matmul precision); its sample is tokens per iteration over the block's median step time. Both sides see
the same machine at nearly the same time, so a burst of load from a neighbour hits both alike, and the
block medians drop the steps it spoiled. The samples go to bench.tune.verdict (bench.gate.stats).
"""

from __future__ import annotations

import contextlib
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tqdm import tqdm

from bench.tune.verdict import stop_reason, throughput_effect

if TYPE_CHECKING:
    from bench.train import Trainer
    from bench.tune.plan import Knobs

MIN_BLOCK_STEPS = 3
MAX_BLOCK_STEPS = 500
StepHook = Callable[[int, float, float, float, str], None]  # iter, ms, loss, lr, phase


class Diverged(RuntimeError):
    """A side's loss became NaN or infinite."""


class Side:
    """One configuration measured in blocks: a Trainer and the settings its steps run under."""

    def __init__(self, trainer: Trainer, knobs: Knobs, on_step: StepHook | None = None) -> None:
        self.trainer = trainer
        self.knobs = knobs
        self.on_step = on_step
        self.it = 0
        self.first_step_ms: float | None = None
        self.timed_ms: list[float] = []

    @property
    def tokens_per_iter(self) -> int:
        return self.trainer.batch_size * self.trainer.model.config.block_size

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """This side's threads, CPU affinity and matmul precision, for one block; the previous ones after."""
        import torch

        device = self.trainer.device
        prev = torch.get_num_threads()
        try:
            if device.uses_cpu_threads and self.knobs.threads is not None:
                torch.set_num_threads(self.knobs.threads)
            with device.cpu_affinity(self.knobs.cpus), device.matmul_precision(self.trainer.dtype):
                yield
        finally:
            torch.set_num_threads(prev)

    def steps(self, n: int, phase: str) -> list[float]:
        """n train steps (already inside `active`); their ms."""
        out = []
        for _ in range(n):
            ms, loss_t, lr = self.trainer.train_step(self.it)
            loss = loss_t.item()
            if self.first_step_ms is None:
                self.first_step_ms = ms
            if self.on_step is not None:
                self.on_step(self.it, ms, loss, lr, phase)
            if not math.isfinite(loss):
                raise Diverged(f"loss became {loss} at step {self.it} (diverged)")
            self.it += 1
            out.append(ms)
        if phase == "timed":
            self.timed_ms.extend(out)
        return out


@dataclass
class PairResult:
    """Per-block tokens/s of each side, and how the blocks were made and why they stopped."""

    variant_tokens_per_s: list[float] = field(default_factory=list)
    default_tokens_per_s: list[float] = field(default_factory=list)
    variant_steps_per_block: int = 0
    default_steps_per_block: int = 0
    variant_warmup_ms: list[float] = field(default_factory=list)
    where: str = "the warm-up"  # what was running (for error messages)
    stopped: str | None = None  # bench.tune.verdict's STOP_*: why no more pairs were measured
    pairs_s: float = 0.0  # wall seconds of the pairs (the warm-ups not counted)


def block_steps(warmup_ms: list[float], block_s: float) -> int:
    """Steps that fill about block_s seconds, from the warm-up steps after the first (which may compile)."""
    typical = statistics.median(warmup_ms[1:] or warmup_ms)
    if not (math.isfinite(typical) and typical > 0):
        return MIN_BLOCK_STEPS
    return int(min(MAX_BLOCK_STEPS, max(MIN_BLOCK_STEPS, round(block_s * 1e3 / typical))))


MAX_PAIRS = 400  # a bound whatever --max-seconds says (a block of 3 steps of a tiny model is milliseconds)


def measure_pair(
    default: Side,
    variant: Side,
    repeats: int,
    block_s: float,
    warmup_steps: int,
    desc: str = "pair",
    progress: bool = True,
    result: PairResult | None = None,
    max_seconds: float = math.inf,
    clock: Callable[[], float] = time.perf_counter,
    max_pairs: int = MAX_PAIRS,
) -> PairResult:
    """Warm both sides up, then pairs of blocks (one of each, alternating which goes first): at least
    `repeats`, then more until bench.tune.verdict.stop_reason says the verdict is known, the pairs have taken
    max_seconds (by `clock`), or max_pairs.

    `result` is filled as it goes (so an interrupted pair keeps what it measured)."""
    out = result if result is not None else PairResult()
    out.where = "the variant's warm-up (a compiled variant compiles here)"
    with variant.active():
        out.variant_warmup_ms = variant.steps(warmup_steps, "warmup")
    out.where = "the default's warm-up"
    with default.active():
        default_warm = default.steps(warmup_steps, "warmup")
    out.variant_steps_per_block = block_steps(out.variant_warmup_ms, block_s)
    out.default_steps_per_block = block_steps(default_warm, block_s)
    bar = tqdm(total=None, desc=desc, unit="pair", file=sys.stderr, leave=False,
               disable=None if progress else True)  # fmt: skip
    t0 = clock()
    with bar:
        i = 0
        while True:
            order = (
                ((default, out.default_steps_per_block, out.default_tokens_per_s),
                 (variant, out.variant_steps_per_block, out.variant_tokens_per_s))
            )  # fmt: skip
            for side, n, samples in order if i % 2 == 0 else order[::-1]:
                out.where = f"block {i + 1} of the {'default' if side is default else 'variant'}"
                with side.active():
                    ms = side.steps(n, "timed")
                samples.append(side.tokens_per_iter / (statistics.median(ms) / 1e3))
            i += 1
            out.pairs_s = clock() - t0
            bar.update(1)
            if i >= 2:
                e = throughput_effect(out.variant_tokens_per_s, out.default_tokens_per_s)
                low = f" [{e.low:.3f}, {e.high:.3f}]" if e.low is not None else ""
                bar.set_postfix_str(f"variant/default tokens/s {e.ratio:.3f}{low}", refresh=False)
            out.stopped = stop_reason(out.variant_tokens_per_s, out.default_tokens_per_s, out.pairs_s,
                                      max_seconds, repeats, max_pairs)  # fmt: skip
            if out.stopped:
                return out
