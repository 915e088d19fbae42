"""Timed matmul per dtype: achieved FLOP/s of torch.matmul on a device (2 n^3 FLOP per n x n product)."""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_TORCH_DTYPES = {"fp32": "float32", "tf32": "float32", "bf16": "bfloat16", "fp16": "float16"}

# (first n, largest n, seconds one matmul should take before n stops doubling)
_SIZING = {"cpu": (256, 2048, 0.03), "gpu": (1024, 8192, 0.01)}


def _sync(torch: Any, device: str) -> None:
    kind = device.split(":")[0]
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()
    elif kind == "xpu":
        torch.xpu.synchronize(device)


@contextmanager
def _tf32(torch: Any, allow: bool) -> Iterator[None]:
    """Set TF32 for CUDA matmuls for one measurement and restore the previous setting."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = allow
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cuda.matmul.allow_tf32 = previous


def measure_matmul(
    device: str,
    dtype: str,
    n: int | None = None,
    repeats: int = 5,
    warmup: int = 2,
    min_repeat_s: float | None = None,
) -> dict[str, Any]:
    """Time n x n matmuls: {"flops_per_s", "n", "matmuls_per_repeat", "repeats", "median_s"}.

    Without `n`, n doubles from a small size until one matmul takes long enough to fill the device
    (CPU: 256..2048, GPU: 1024..8192). Each repeat runs enough matmuls to last `min_repeat_s`;
    the device is synchronised before every clock read; warm-up runs are not timed; median of repeats.
    """
    import torch

    if dtype not in _TORCH_DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose from {', '.join(_TORCH_DTYPES)}")
    kind = device.split(":")[0]
    if dtype == "tf32" and kind != "cuda":
        raise ValueError(f"tf32 is a CUDA matmul mode; there is no tf32 on {device}")
    torch_dtype = getattr(torch, _TORCH_DTYPES[dtype])
    start_n, max_n, target_s = _SIZING["cpu" if kind == "cpu" else "gpu"]
    min_repeat_s = target_s if min_repeat_s is None else min_repeat_s

    def timed(a: Any, b: Any, count: int) -> float:
        _sync(torch, device)
        t0 = time.perf_counter()
        for _ in range(count):
            torch.matmul(a, b)
        _sync(torch, device)
        return time.perf_counter() - t0

    tf32_context = _tf32(torch, dtype == "tf32") if kind == "cuda" else _nothing()
    with tf32_context, torch.no_grad():
        size = n or start_n
        while True:
            a = torch.randn(size, size, device=device, dtype=torch_dtype)
            b = torch.randn(size, size, device=device, dtype=torch_dtype)
            timed(a, b, 1)  # first call: allocation, kernel selection
            one = timed(a, b, 1)
            if one >= target_s and n is None and size < max_n:
                one = min(one, timed(a, b, 1), timed(a, b, 1))  # a busy machine only ever adds time
            if n is not None or one >= target_s or size >= max_n:
                break
            size *= 2
        per_repeat = max(1, math.ceil(min_repeat_s / max(one, 1e-9)))
        for _ in range(warmup):
            timed(a, b, per_repeat)
        times = [timed(a, b, per_repeat) for _ in range(repeats)]
    median_s = statistics.median(times)
    return {
        "flops_per_s": 2.0 * size**3 * per_repeat / median_s,
        "n": size,
        "matmuls_per_repeat": per_repeat,
        "repeats": repeats,
        "median_s": median_s,
    }


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def measure_matmul_flops(
    device: str,
    dtype: str,
    n: int | None = None,
    repeats: int = 5,
    warmup: int = 2,
) -> float:
    """Achieved FLOP/s of an n x n matmul in `dtype` on `device` (median of `repeats`)."""
    return float(measure_matmul(device, dtype, n=n, repeats=repeats, warmup=warmup)["flops_per_s"])
