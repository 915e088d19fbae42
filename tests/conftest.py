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


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep the tests' caches (hwinfo's PyTorch probe, downloads) out of the user's ~/.cache."""
    import os

    old = os.environ.get("DEVICEBENCH_CACHE")
    os.environ["DEVICEBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("DEVICEBENCH_CACHE", None)
    else:
        os.environ["DEVICEBENCH_CACHE"] = old


@pytest.fixture(scope="session")
def shakespeare():
    from model.dataset import CharDataset

    return CharDataset.shakespeare()
