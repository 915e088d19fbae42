"""hwinfo's cached PyTorch probe: reused while nothing it depends on changes, asked again otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hwinfo import torch_probe


def _probe_answer() -> dict:
    """What probe_torch returns on a CPU-only build (the shape the cache must hold)."""
    return {
        "torch": {
            "version": "x",
            "cuda": None,
            "hip": None,
            "available": {"cpu": True, "cuda": [], "mps": False, "xpu": []},
        },
        "cpu": {"torch_capability": "AVX2", "torch_threads": 2, "mkl": True, "mkldnn": True},
        "accelerators": [],
        "notes": [],
    }


def _counting_probe(monkeypatch):
    calls = []

    def probe():
        calls.append(1)
        return _probe_answer()

    monkeypatch.setattr(torch_probe, "probe_torch", probe)
    monkeypatch.setattr(torch_probe, "_torch_imported", lambda: False)  # as in a fresh `hwinfo` process
    return calls


def test_second_call_reuses_the_answer_and_says_so(tmp_path, monkeypatch):
    calls = _counting_probe(monkeypatch)
    first = torch_probe.probe_torch_cached(directory=tmp_path)
    second = torch_probe.probe_torch_cached(directory=tmp_path)
    assert len(calls) == 1
    assert first["torch"] == second["torch"]
    assert any("cached" in n and "--refresh" in n for n in second["notes"])
    assert not any("cached" in n for n in first["notes"])


def test_refresh_and_a_changed_environment_ask_again(tmp_path, monkeypatch):
    calls = _counting_probe(monkeypatch)
    torch_probe.probe_torch_cached(directory=tmp_path)
    torch_probe.probe_torch_cached(directory=tmp_path, refresh=True)
    assert len(calls) == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    torch_probe.probe_torch_cached(directory=tmp_path)
    assert len(calls) == 3
    assert len(list(tmp_path.glob("torch-probe-*.json"))) == 2


def test_corrupt_cache_is_ignored(tmp_path, monkeypatch):
    calls = _counting_probe(monkeypatch)
    torch_probe.probe_torch_cached(directory=tmp_path)
    (cache,) = tmp_path.glob("torch-probe-*.json")
    cache.write_text("{not json")
    assert torch_probe.probe_torch_cached(directory=tmp_path)["torch"]["version"] == "x"
    assert len(calls) == 2


def test_hwinfo_with_a_warm_cache_does_not_import_torch(tmp_path):
    env_code = (
        "import sys, os; from hwinfo.cli import main; rc = main([]); "
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH', file=sys.stderr); sys.exit(rc)"
    )
    env = {**os.environ, "DEVICEBENCH_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    cold = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, env=env)
    warm = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, env=env)
    assert cold.returncode == 0 and warm.returncode == 0, cold.stderr + warm.stderr
    assert cold.stderr.strip().endswith("TORCH")
    assert warm.stderr.strip().endswith("NOTORCH")
    assert "Peak FLOP/s" in warm.stdout and "cached" in warm.stdout


def test_a_process_that_already_imported_torch_does_not_write_the_cache(tmp_path, monkeypatch):
    import torch  # noqa: F401 - the point: torch is already in sys.modules, threads may have been changed

    assert torch_probe.probe_torch_cached(directory=tmp_path)["torch"]["version"]
    assert not list(tmp_path.glob("torch-probe-*.json"))


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        "null",
        '"probe"',
        '{"probe": {}}',
        '{"cache_version": 2, "created": "2025-01-01 10:00", "probe": {}}',
        '{"cache_version": 2, "created": "2025-01-01 10:00", "probe": []}',
        '{"cache_version": 2, "created": 5, "probe": PROBE}',
        '{"cache_version": 2, "created": "x", "probe": {"torch": null, "cpu": {}, "accelerators": [], "notes": []}}',
        '{"cache_version": 2, "created": "x", "probe": {"torch": {"version": 3}, "cpu": CPU, "accelerators": [], "notes": []}}',
        '{"cache_version": 2, "created": "x", "probe": {"torch": TORCH, "cpu": CPU, "accelerators": [{"kind": "tpu"}], "notes": []}}',
        '{"cache_version": 2, "created": "x", "probe": {"torch": TORCH, "cpu": CPU, "accelerators": {}, "notes": []}}',
        '{"cache_version": 2, "created": "x", "probe": {"torch": TORCH, "cpu": CPU, "accelerators": [], "notes": "x"}}',
        '{"cache_version": 2, "created": "x", "probe": PROBE',
        '{"cache_version": 2, "created": "x", "probe": {"torch": TORCH, "cpu": {"torch_capability": "AVX2", '
        '"torch_threads": -5, "mkl": true, "mkldnn": true}, "accelerators": [], "notes": []}}',
        '{"cache_version": 2, "created": "x", "probe": {"torch": TORCH, "cpu": {"torch_capability": 7, '
        '"torch_threads": "abc", "mkl": "yes", "mkldnn": true}, "accelerators": [], "notes": []}}',
        '{"cache_version": 2, "created": "x", "probe": {"torch": TORCH, "cpu": {"torch_capability": "AVX2", '
        '"torch_threads": 1000000000000000000000000000000, "mkl": true, "mkldnn": true}, "accelerators": [], '
        '"notes": []}}',
        "\xff\xfe garbage",
    ],
)
def test_a_cache_of_the_wrong_shape_is_ignored_and_rebuilt(tmp_path, monkeypatch, content):
    calls = _counting_probe(monkeypatch)
    torch_probe.probe_torch_cached(directory=tmp_path)
    (cache,) = tmp_path.glob("torch-probe-*.json")
    answer = _probe_answer()
    text = (
        content.replace("PROBE", json.dumps(answer))
        .replace("TORCH", json.dumps(answer["torch"]))
        .replace("CPU", json.dumps(answer["cpu"]))
    )
    cache.write_bytes(text.encode("latin-1"))
    part = torch_probe.probe_torch_cached(directory=tmp_path)
    assert part["torch"]["version"] == "x" and len(calls) == 2  # asked PyTorch again
    assert json.loads(cache.read_text())["probe"] == answer  # and rebuilt the cache
    third = torch_probe.probe_torch_cached(directory=tmp_path)
    assert len(calls) == 2 and any("cached" in n for n in third["notes"])


def test_hwinfo_survives_a_broken_cache_end_to_end(tmp_path):
    """`[]` in the cache file broke every `hwinfo` until --refresh; now it is ignored and rebuilt."""
    cache = tmp_path / f"torch-probe-{torch_probe._fingerprint()}.json"  # the file the child will read
    cache.write_text("[]")
    env = {**os.environ, "DEVICEBENCH_CACHE": str(tmp_path)}
    code = "import sys; from hwinfo.cli import main; sys.exit(main(['--json']))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["devices"][0]["device"] == "cpu"
    assert torch_probe.valid_probe(json.loads(cache.read_text())["probe"])  # rebuilt


def test_cache_file_honours_the_umask(tmp_path, monkeypatch):
    _counting_probe(monkeypatch)
    old = os.umask(0o022)
    try:
        torch_probe.probe_torch_cached(directory=tmp_path)
    finally:
        os.umask(old)
    (cache,) = tmp_path.glob("torch-probe-*.json")
    assert cache.stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob(".*.tmp"))
