"""pytest-benchmark: devicebench's CPU train step, and the gate's frozen reference step beside it.

    pytest benchmarks/ --benchmark-json out.json --benchmark-save-data
    bench gate --pytest-benchmark out.json --baseline base.json [--reference-benchmark test_reference_step]

The reference step (bench/gate/reference.py) never changes with devicebench's code, so dividing by it
(--reference-benchmark) cancels the speed of the machine the suite ran on.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def trainer():
    import torch

    from bench.config import TrainConfig
    from bench.train import Trainer
    from model.gpt import GPTConfig

    with Trainer(GPTConfig(), TrainConfig(), torch.device("cpu")) as t:
        yield t


def test_train_step(benchmark, trainer):
    it = iter(range(10**9))
    ms, loss, _ = benchmark(lambda: trainer.train_step(next(it)))
    assert ms > 0 and loss.isfinite()


def test_reference_step(benchmark):
    from bench.gate.reference import ReferenceShape, ReferenceStep

    ref = ReferenceStep(ReferenceShape())
    assert benchmark(ref.step) > 0
