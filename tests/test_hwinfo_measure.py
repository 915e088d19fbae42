"""hwinfo.measure asks torch.accelerator, never a device string; the accelerator path runs here with a fake
accelerator (the CPU posing as one), and TF32 is set through fp32_precision and restored."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hwinfo import measure
from hwinfo.measure import measure_bandwidth, stream_array_bytes

torch = pytest.importorskip("torch")

DEVICE_TYPES = {"cpu", "cuda", "mps", "xpu", "hip"}


def test_no_branch_on_a_device_string() -> None:
    tree = ast.parse(Path(measure.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
            strings = {p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)}
            assert not strings & DEVICE_TYPES, ast.unparse(node)
        if isinstance(node, ast.Attribute) and node.attr in DEVICE_TYPES - {"cpu"}:
            assert ast.unparse(node) == "torch.backends.cuda", ast.unparse(node)  # no torch.cuda.* calls
    assert "measure_matmul_flops" not in dir(measure) and "_nothing" not in dir(measure)


def test_accelerator_path_synchronises_through_torch_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda *a, **k: torch.device("cpu"))
    monkeypatch.setattr(torch.accelerator, "synchronize", lambda device=None: calls.append(device))
    monkeypatch.setattr(torch.accelerator, "get_memory_info", lambda device=None: (96 * 2**20, 2**30))
    result = measure_bandwidth("cpu", llc_bytes=50 * 2**20, repeats=2, min_repeat_s=0.001)
    # sized as on a GPU: 512 MiB wanted, capped to a quarter of the (fake) 96 MiB free for 3 arrays
    assert result["array_bytes"] == 8 * 2**20 and "capped" in result["notes"][0]
    assert calls and all(c == torch.device("cpu") for c in calls)
    flops = measure.measure_matmul("cpu", "fp32", n=64, repeats=2, warmup=1, min_repeat_s=0.001)
    assert flops["n"] == 64 and len(calls) > 10


def test_stream_array_sizing() -> None:
    mib = 2**20
    assert stream_array_bytes(32 * mib, 24 * 2**30, accelerator=False) == (128 * mib, [])
    assert stream_array_bytes(4 * mib, 24 * 2**30, accelerator=False) == (64 * mib, [])  # the floor
    assert stream_array_bytes(50 * mib, 80 * 2**30, accelerator=True) == (512 * mib, [])
    size, notes = stream_array_bytes(None, None, accelerator=False)
    assert size == 64 * mib and "unknown" in notes[0]
    size, notes = stream_array_bytes(256 * mib, 2 * 2**30, accelerator=True)
    assert 3 * size <= 2 * 2**30 // 4 and "below 4x the last-level cache" in notes[0]


def test_tf32_set_through_fp32_precision_and_restored() -> None:
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    with measure._matmul_precision(torch, torch.device("cuda", 0), tf32=True):
        assert matmul.fp32_precision == "tf32"
    assert matmul.fp32_precision == before
    with pytest.raises(KeyError), measure._matmul_precision(torch, torch.device("cuda", 0), tf32=False):
        assert matmul.fp32_precision == "ieee"
        raise KeyError("a failing measurement")
    assert matmul.fp32_precision == before
    with measure._matmul_precision(torch, torch.device("cpu"), tf32=True):
        assert matmul.fp32_precision == before  # CPU matmuls have no TF32 mode: untouched
