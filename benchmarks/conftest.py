"""Shared set-up of the pytest-benchmark suite in benchmarks/."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One CPU thread unless DEVICEBENCH_BENCH_THREADS says otherwise: two OpenMP threads on a busy
    2-core runner stall on each other (steps 10x slower, wildly spread); one slows down smoothly."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("DEVICEBENCH_BENCH_THREADS", "1")))
    yield
    torch.set_num_threads(before)
