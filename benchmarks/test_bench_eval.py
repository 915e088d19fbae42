"""pytest-benchmark: one evaluation (both splits, a few batches each) of the shared GPT on the CPU."""

from __future__ import annotations


def test_evaluate(benchmark):
    import torch

    from bench.config import TrainConfig
    from bench.train import Trainer
    from model.gpt import GPTConfig

    trainer = Trainer(GPTConfig(), TrainConfig(eval_iters=4), torch.device("cpu"))
    samplers = trainer.eval_samplers()
    out = benchmark(trainer.evaluate, samplers)
    assert set(out) == {"train", "val"}
