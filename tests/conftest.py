"""Shared fixtures: tiny configs so the suite runs in minutes on 2 cores."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU: torch.cuda.is_available() is False here")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def shakespeare():
    from model.dataset import CharDataset

    return CharDataset.shakespeare()
