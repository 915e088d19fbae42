"""pytest-benchmark: drawing one training batch from the seeded CPU sampler (nanoGPT recipe shape)."""

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


def test_batch_sampler(benchmark):
    from model.dataset import BatchSampler, CharDataset

    data = CharDataset.shakespeare()
    sampler = BatchSampler(data.train, block_size=64, batch_size=12, seed=1337)
    x, y = benchmark(sampler.next)
    assert x.shape == (12, 64) and y.shape == (12, 64)
