"""pytest-benchmark: devicebench's CPU train step, and the gate's frozen reference step beside it.

    pytest benchmarks/ --benchmark-json out.json --benchmark-save-data
    bench gate --pytest-benchmark out.json --baseline base.json [--reference-benchmark test_reference_step]

The reference step (bench/reference.py) never changes with devicebench's code, so dividing by it
(--reference-benchmark) cancels the speed of the machine the suite ran on.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One CPU thread unless DEVICEBENCH_BENCH_THREADS says otherwise: two OpenMP threads on a busy
    2-core runner stall on each other (steps 10x slower, wildly spread); one slows down smoothly."""
    import os

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("DEVICEBENCH_BENCH_THREADS", "1")))
    yield
    torch.set_num_threads(before)


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
    from bench.reference import ReferenceShape, ReferenceStep

    ref = ReferenceStep(ReferenceShape())
    assert benchmark(ref.step) > 0
