"""pytest-benchmark: one evaluation (both splits, a few batches each) of the shared GPT on the CPU."""

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


def test_evaluate(benchmark):
    import torch

    from bench.config import TrainConfig
    from bench.train import Trainer
    from model.gpt import GPTConfig

    trainer = Trainer(GPTConfig(), TrainConfig(eval_iters=4), torch.device("cpu"))
    samplers = trainer.eval_samplers()
    out = benchmark(trainer.evaluate, samplers)
    assert set(out) == {"train", "val"}
