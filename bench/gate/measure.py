"""Interleaved measurement for the gate: devicebench's train step (A) and the frozen reference (B).

Steps alternate A B, B A, A B, ... in one process, so both see the same machine at nearly the same
time; a trial is a few such pairs, summarised by the median step of each side.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tqdm import tqdm

from bench.config import TrainConfig
from bench.gate.files import GateError
from bench.gate.reference import ReferenceShape, ReferenceStep
from hwinfo.interrupts import check, checked
from model.config import GPTConfig

if TYPE_CHECKING:
    from bench.train import Trainer

StepFn = Callable[[], float]  # runs one step, returns its milliseconds


@dataclass
class Trial:
    workload_ms: float
    reference_ms: float

    @property
    def ratio(self) -> float:
        return self.workload_ms / self.reference_ms

    def to_dict(self) -> dict:
        return {"workload_ms": self.workload_ms, "reference_ms": self.reference_ms, "ratio": self.ratio}


def make_trainer(workload: dict) -> Trainer:
    """devicebench's own Trainer on the CPU for the gate's workload config (see cli.workload_config)."""
    from bench.train import Trainer

    train = TrainConfig(
        **{k: v for k, v in workload["train"].items() if k in TrainConfig.__dataclass_fields__}
    )
    return Trainer(GPTConfig(**workload["model"]), train, "cpu", "fp32", "off", workload["batch_size"])


def trainer_step_fn(trainer: Trainer) -> StepFn:
    it = [0]

    def step() -> float:
        ms, _, _ = trainer.train_step(it[0])
        it[0] += 1
        return ms

    return step


def make_reference(workload: dict) -> StepFn:
    m = workload["model"]
    shape = ReferenceShape(
        n_layer=m["n_layer"], n_head=m["n_head"], n_embd=m["n_embd"], block_size=m["block_size"],
        batch_size=workload["batch_size"], vocab_size=m["vocab_size"],
    )  # fmt: skip
    return ReferenceStep(shape).step


def run_trials(
    workload: StepFn, reference: StepFn, trials: int, steps: int, warmup_steps: int = 3, progress: bool = True
) -> list[Trial]:
    """trials x steps pairs of steps, A B then B A alternating; per trial the median of each side.

    Interleaving single steps (not blocks) means a burst of load from a neighbour hits both sides
    alike; the per-trial medians drop the steps it spoiled. Progress is a bar on stderr, on a TTY only.
    A signal (hwinfo.interrupts) ends the trials before the next step.
    """
    for _ in range(warmup_steps):
        check()
        workload()
        check()
        reference()
    out = []
    bar = tqdm(total=trials, desc="gate", unit="trial", file=sys.stderr, disable=None if progress else True)
    with bar:
        for i in range(trials):
            a_ms, b_ms = [], []
            for j in range(steps):
                check()
                if (i * steps + j) % 2 == 0:
                    a_ms.append(workload())
                    b_ms.append(reference())
                else:
                    b_ms.append(reference())
                    a_ms.append(workload())
            a, b = statistics.median(a_ms), statistics.median(b_ms)
            for what, ms in (("workload", a), ("reference", b)):
                if not (math.isfinite(ms) and ms > 0):
                    raise GateError(f"trial {i + 1}: the {what} step's median time is {ms} ms, which no ratio "
                                    "can be made of: the clock cannot time this step")  # fmt: skip
            out.append(Trial(a, b))
            bar.set_postfix_str(
                f"workload {a:.1f} ms, reference {b:.1f} ms, ratio {a / b:.3f}", refresh=False
            )
            bar.update(1)
    return out


def measure(
    workload_cfg: dict, trials: int, steps: int, warmup_steps: int = 3, progress: bool = True
) -> list[Trial]:
    """Build both workloads at the configured thread count and run the interleaved trials. Until the trials
    begin a signal ends the gate at once (nothing to keep); during them, at the next step (hwinfo.interrupts).

    PyTorch's thread count is restored afterwards.
    """
    import torch

    threads_before = torch.get_num_threads()
    try:
        if workload_cfg.get("threads"):
            torch.set_num_threads(int(workload_cfg["threads"]))
        with make_trainer(workload_cfg) as trainer, checked():
            reference = make_reference(workload_cfg)
            return run_trials(trainer_step_fn(trainer), reference, trials, steps, warmup_steps, progress)
    finally:
        torch.set_num_threads(threads_before)
