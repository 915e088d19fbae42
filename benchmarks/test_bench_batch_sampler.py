"""pytest-benchmark: drawing one training batch from the seeded CPU sampler (nanoGPT recipe shape)."""

from __future__ import annotations


def test_batch_sampler(benchmark):
    from model.dataset import BatchSampler, CharDataset

    data = CharDataset.shakespeare()
    sampler = BatchSampler(data.train, block_size=64, batch_size=12, seed=1337)
    x, y = benchmark(sampler.next)
    assert x.shape == (12, 64) and y.shape == (12, 64)
