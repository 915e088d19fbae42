"""Timed kernels on one device: torch.matmul per dtype (FLOP/s) and STREAM copy and triad (bytes/s).

Device differences are asked of torch.accelerator (synchronisation, free memory); the only thing
kept per device type is which ones have a TF32 matmul mode. torch is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psutil

from hwinfo.interrupts import check, checked

_TORCH_DTYPES = {"fp32": "float32", "tf32": "float32", "bf16": "bfloat16", "fp16": "float16"}

# Device types whose matmuls have a TF32 mode (torch.backends.cuda: NVIDIA and ROCm builds).
_TF32_DEVICE_TYPES = frozenset({"cuda"})

# (first n, largest n, seconds one matmul should take before n stops doubling)
_MATMUL_SIZING = {"host": (256, 2048, 0.03), "accelerator": (1024, 8192, 0.01)}

# STREAM arrays: at least 4x the last-level cache and at least this many bytes each.
_STREAM_FLOOR_BYTES = {"host": 64 * 2**20, "accelerator": 512 * 2**20}
_STREAM_SCALAR = 3.0


class NotMeasurable(ValueError):
    """The measurement does not exist on this device (tf32 off CUDA): said, not a failure."""


@dataclass(frozen=True)
class _Device:
    """What the measurements need to know of a device, asked of torch.accelerator once."""

    device: Any  # torch.device
    synchronize: Callable[[], None]
    accelerator: bool

    @property
    def sizing(self) -> str:
        return "accelerator" if self.accelerator else "host"


def _device(torch: Any, device: str) -> _Device:
    dev = torch.device(device)
    current = torch.accelerator.current_accelerator() if hasattr(torch, "accelerator") else None
    if current is not None and dev.type == current.type:
        return _Device(dev, lambda: torch.accelerator.synchronize(dev), True)
    # The host (CPU): its kernels return when done. A device type that is not this build's
    # accelerator fails in torch at the first allocation, with torch's own message.
    return _Device(dev, lambda: None, False)


@contextlib.contextmanager
def _matmul_precision(torch: Any, dev: Any, tf32: bool) -> Iterator[None]:
    """TF32 on or off for this device's fp32 matmuls during one measurement, restored after
    (through the fp32_precision API: torch 2.13 refuses the legacy allow_tf32 flags once it is used)."""
    if dev.type not in _TF32_DEVICE_TYPES:
        yield
        return
    matmul = torch.backends.cuda.matmul
    previous = matmul.fp32_precision
    matmul.fp32_precision = "tf32" if tf32 else "ieee"
    try:
        yield
    finally:
        matmul.fp32_precision = previous


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
    (host: 256..2048, accelerator: 1024..8192). Each repeat runs enough matmuls to last
    `min_repeat_s`; the device is synchronised before every clock read; warm-up runs are not timed;
    median of repeats. Raises NotMeasurable for tf32 on a device without a TF32 mode.
    """
    import torch

    if dtype not in _TORCH_DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose from {', '.join(_TORCH_DTYPES)}")
    dev = _device(torch, device)
    if dtype == "tf32" and dev.device.type not in _TF32_DEVICE_TYPES:
        raise NotMeasurable(f"tf32 is a CUDA matmul mode; there is no tf32 on {device}")
    torch_dtype = getattr(torch, _TORCH_DTYPES[dtype])
    start_n, max_n, target_s = _MATMUL_SIZING[dev.sizing]
    min_repeat_s = target_s if min_repeat_s is None else min_repeat_s

    def timed(a: Any, b: Any, count: int) -> float:
        check()  # a signal ends the measurement between repeats (hwinfo.interrupts)
        dev.synchronize()
        t0 = time.perf_counter()
        for _ in range(count):
            torch.matmul(a, b)
        dev.synchronize()
        return time.perf_counter() - t0

    # checked(): a signal is held until the next timed repeat (nothing half-measured is ever reported)
    with _matmul_precision(torch, dev.device, dtype == "tf32"), torch.no_grad(), checked():
        size = n or start_n
        while True:
            a = torch.randn(size, size, device=dev.device, dtype=torch_dtype)
            b = torch.randn(size, size, device=dev.device, dtype=torch_dtype)
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


def _free_bytes(torch: Any, dev: _Device) -> int | None:
    """Memory free for the arrays: the accelerator's (torch.accelerator), else the host's (psutil)."""
    try:
        if dev.accelerator:
            return int(torch.accelerator.get_memory_info(dev.device)[0])
        return int(psutil.virtual_memory().available)
    except Exception:
        return None


def stream_array_bytes(
    llc_bytes: int | None, free_bytes: int | None, accelerator: bool
) -> tuple[int, list[str]]:
    """Bytes per STREAM array: at least 4x the last-level cache (and a floor), at most a quarter of the
    free memory for all three arrays. Returns (bytes, notes on what limited it)."""
    floor = _STREAM_FLOOR_BYTES["accelerator" if accelerator else "host"]
    notes: list[str] = []
    if llc_bytes and llc_bytes > 0:
        wanted = max(4 * llc_bytes, floor)
    else:
        wanted = floor
        notes.append("last-level cache size unknown: arrays sized by a fixed floor")
    if free_bytes and 3 * wanted > free_bytes // 4:
        capped = max(free_bytes // 12, 1 << 20)
        notes.append(
            f"arrays capped at {capped / 1e6:.0f} MB by free memory ({free_bytes / 1e9:.1f} GB)"
            + (", below 4x the last-level cache: the figure may include cache hits" if llc_bytes else "")
        )
        wanted = capped
    return int(wanted) // 4096 * 4096, notes


def measure_bandwidth(
    device: str,
    llc_bytes: int | None = None,
    array_bytes: int | None = None,
    repeats: int = 7,
    min_repeat_s: float = 0.02,
) -> dict[str, Any]:
    """STREAM-style memory bandwidth of a device: copy (c = a) and triad (a = b + 3c) on float32 arrays.

    Arrays are at least 4x `llc_bytes` (the last-level cache, all instances together) unless
    `array_bytes` is given; every page is touched before timing; the device is synchronised before
    each clock read; median of `repeats`. Bytes are counted as STREAM does: copy 2 arrays, triad 3 (no
    write-allocate traffic). Returns {"copy_bytes_per_s", "triad_bytes_per_s", "array_bytes",
    "passes_per_repeat", "repeats", "notes"}.
    """
    import torch

    dev = _device(torch, device)
    notes: list[str] = []
    if array_bytes is None:
        array_bytes, notes = stream_array_bytes(llc_bytes, _free_bytes(torch, dev), dev.accelerator)
    n = max(int(array_bytes) // 4, 1024)
    with torch.no_grad(), checked():
        # full/zeros write every element, so every page is touched before timing
        arrays = {
            "a": torch.full((n,), 1.0, device=dev.device, dtype=torch.float32),
            "b": torch.full((n,), 2.0, device=dev.device, dtype=torch.float32),
            "c": torch.zeros(n, device=dev.device, dtype=torch.float32),
        }

        def copy() -> None:
            arrays["c"].copy_(arrays["a"])

        def triad() -> None:
            torch.add(arrays["b"], arrays["c"], alpha=_STREAM_SCALAR, out=arrays["a"])

        results: dict[str, float] = {}
        passes: dict[str, int] = {}
        for name, kernel, count in (("copy", copy, 2), ("triad", triad, 3)):
            median_s, passes[name] = _time_kernel(kernel, dev.synchronize, repeats, min_repeat_s)
            results[name] = count * n * 4 * passes[name] / median_s
        arrays.clear()
    return {
        "copy_bytes_per_s": results["copy"],
        "triad_bytes_per_s": results["triad"],
        "array_bytes": n * 4,
        "passes_per_repeat": passes,
        "repeats": repeats,
        "notes": notes,
    }


def _time_kernel(
    kernel: Callable[[], None], sync: Callable[[], None], repeats: int, min_repeat_s: float
) -> tuple[float, int]:
    """(median seconds of one repeat, kernels per repeat) after one untimed warm-up call."""

    def timed(count: int) -> float:
        check()  # a signal ends the measurement between repeats (hwinfo.interrupts)
        sync()
        t0 = time.perf_counter()
        for _ in range(count):
            kernel()
        sync()
        return time.perf_counter() - t0

    one = min(timed(1), timed(1))  # the first call warms caches and allocators; keep the faster
    count = max(1, math.ceil(min_repeat_s / max(one, 1e-9)))
    return statistics.median(timed(count) for _ in range(max(1, repeats))), count
