"""Interleaved measurement for the gate: devicebench's train step (A) and the frozen reference (B).

Steps alternate A B, B A, A B, ... in one process, so both see the same machine at nearly the same
time; a trial is a few such pairs, summarised by the median step of each side.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

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


def make_trainer(workload: dict):
    """devicebench's own Trainer on the CPU for the gate's workload config (see gate.workload_config)."""
    import torch

    from bench.config import TrainConfig
    from bench.train import Trainer
    from model.gpt import GPTConfig

    train = TrainConfig(
        **{k: v for k, v in workload["train"].items() if k in TrainConfig.__dataclass_fields__}
    )
    return Trainer(
        GPTConfig(**workload["model"]), train, torch.device("cpu"), "fp32", "off", workload["batch_size"]
    )


def trainer_step_fn(trainer) -> StepFn:
    it = [0]

    def step() -> float:
        ms, _, _ = trainer.train_step(it[0])
        it[0] += 1
        return ms

    return step


def make_reference(workload: dict) -> StepFn:
    from bench.gate.reference import ReferenceShape, ReferenceStep

    m = workload["model"]
    shape = ReferenceShape(
        n_layer=m["n_layer"], n_head=m["n_head"], n_embd=m["n_embd"], block_size=m["block_size"],
        batch_size=workload["batch_size"], vocab_size=m["vocab_size"],
    )  # fmt: skip
    return ReferenceStep(shape).step


def run_trials(
    workload: StepFn,
    reference: StepFn,
    trials: int,
    steps: int,
    warmup_steps: int = 3,
    progress: bool = True,
) -> list[Trial]:
    """trials x steps pairs of steps, A B then B A alternating; per trial the median of each side.

    Interleaving single steps (not blocks) means a burst of load from a neighbour hits both sides
    alike; the per-trial medians drop the steps it spoiled.
    """
    for _ in range(warmup_steps):
        workload()
        reference()
    out = []
    for i in range(trials):
        a_ms, b_ms = [], []
        for j in range(steps):
            if (i * steps + j) % 2 == 0:
                a_ms.append(workload())
                b_ms.append(reference())
            else:
                b_ms.append(reference())
                a_ms.append(workload())
        a, b = statistics.median(a_ms), statistics.median(b_ms)
        out.append(Trial(a, b))
        if progress:
            print(f"\rgate: trial {i + 1}/{trials}  workload {a:.1f} ms  reference {b:.1f} ms  ratio {a / b:.3f}",
                  end="", file=sys.stderr, flush=True)  # fmt: skip
    if progress:
        print(file=sys.stderr)
    return out


def measure(
    workload_cfg: dict, trials: int, steps: int, warmup_steps: int = 3, progress: bool = True
) -> list[Trial]:
    """Build both workloads at the configured thread count and run the interleaved trials."""
    import torch

    threads = workload_cfg.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    trainer = make_trainer(workload_cfg)
    reference = make_reference(workload_cfg)
    return run_trials(trainer_step_fn(trainer), reference, trials, steps, warmup_steps, progress)
