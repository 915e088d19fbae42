"""hwinfo's cached PyTorch probe: reused while nothing it depends on changes, asked again otherwise."""

from __future__ import annotations

import subprocess
import sys

from hwinfo import torch_probe


def _counting_probe(monkeypatch):
    calls = []

    def probe():
        calls.append(1)
        return {
            "torch": {"version": "x", "available": {"cpu": True}},
            "cpu": {},
            "accelerators": [],
            "notes": [],
        }

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
    env = {"DEVICEBENCH_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
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
