"""hwinfo on odd machines: broken /proc/cpuinfo and sysfs files, NVML answering nonsense or raising, GPU
names with control characters, NaN from anywhere: never a traceback, a NaN in JSON or a figure from garbage."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import hwinfo.probe
from hwinfo import snapshot
from hwinfo.cli import main, strict_json
from hwinfo.cpu import plausible_mhz, probe_cpu
from hwinfo.nvml import probe_nvml
from hwinfo.render import render_text

REPO = Path(__file__).resolve().parents[1]


def _cpuinfo(mhz: str = "2400.000", extra: str = "") -> str:
    return (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7713 64-Core Processor\n"
        f"stepping\t: 1\ncpu MHz\t\t: {mhz}\nflags\t\t: fma avx2\n{extra}"
    )


def _machine(root: Path, cpuinfo: str, max_freq: str | None = None, cache_size: str = "32768K") -> Path:
    (root / "proc").mkdir(parents=True)
    (root / "proc/cpuinfo").write_text(cpuinfo)
    cpu0 = root / "sys/devices/system/cpu/cpu0"
    (cpu0 / "topology").mkdir(parents=True)
    (cpu0 / "topology/thread_siblings_list").write_text("0")
    if max_freq is not None:
        (cpu0 / "cpufreq").mkdir()
        (cpu0 / "cpufreq/cpuinfo_max_freq").write_text(max_freq)
    index = cpu0 / "cache/index3"
    index.mkdir(parents=True)
    for name, value in (("level", "3"), ("type", "Unified"), ("size", cache_size), ("shared_cpu_list", "0")):
        (index / name).write_text(value)
    return root


def _strict(snap: dict[str, Any]) -> str:
    return json.dumps(snap, allow_nan=False)  # raises on NaN or inf anywhere


@pytest.mark.parametrize("mhz", ["nan", "inf", "-5", "1e300", "0", "2.4 GHz", ""])
def test_nonsense_cpu_mhz_is_not_a_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mhz: str) -> None:
    monkeypatch.setattr("hwinfo.cpu.py_cpuinfo_dict", lambda: {})  # no fallback to this machine's clock
    root = _machine(tmp_path, _cpuinfo(mhz))
    cpu = probe_cpu(str(root), system="Linux")
    assert cpu["current_mhz"] is None and "current_mhz" not in cpu["clock_sources"]
    snap = snapshot(root=str(root), use_torch=False, nvml_module=None)
    _strict(snap)
    fp32 = snap["devices"][0]["peaks"]["fp32"]
    assert fp32["value"] is None and "clock unknown" in fp32["detail"]


@pytest.mark.parametrize("max_freq", ["garbage", "0", "-100", "99999999999999999", "nan"])
def test_nonsense_cpufreq_is_ignored(tmp_path: Path, max_freq: str) -> None:
    cpu = probe_cpu(str(_machine(tmp_path, _cpuinfo(), max_freq=max_freq)), system="Linux")
    assert cpu["max_mhz"] is None and cpu["current_mhz"] == 2400.0


@pytest.mark.parametrize("size", ["abc", "99999999999999999999G", "-1K", "0K"])
def test_nonsense_cache_size_is_ignored(tmp_path: Path, size: str) -> None:
    cpu = probe_cpu(str(_machine(tmp_path, _cpuinfo(), cache_size=size)), system="Linux")
    assert "l3_kib" not in cpu["caches"] and cpu["llc_bytes"] is None


def test_binary_cpuinfo_does_not_break_hwinfo(tmp_path: Path) -> None:
    root = _machine(tmp_path, "\x00\xff garbage\n:::\n\nprocessor : x\nflags : \x01\x02\n")
    snap = snapshot(root=str(root), use_torch=False, nvml_module=None)
    _strict(snap)
    assert "Peak FLOP/s" in render_text(snap)


def test_plausible_mhz() -> None:
    assert plausible_mhz(3400.0) == 3400.0
    for bad in (None, "x", math.nan, math.inf, -1, 0, 49, 20_001, 1e300):
        assert plausible_mhz(bad) is None  # type: ignore[arg-type]


class _NVML:
    """NVML returning nonsense: a name with control characters, a negative clock, no memory info."""

    NVML_CLOCK_SM = 1

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"\xff\xfe"

    def nvmlSystemGetCudaDriverVersion(self) -> str:
        return "abc"

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return b"NVIDIA\nGeForce\x1b[31m RTX [4090"

    def nvmlDeviceGetMaxClockInfo(self, h: int, c: int) -> int:
        return -1

    def nvmlDeviceGetMemoryInfo(self, h: int) -> None:
        return None

    def nvmlDeviceGetPowerManagementLimit(self, h: int) -> float:
        return math.nan

    def nvmlDeviceGetPciInfo(self, h: int) -> Any:
        return type("P", (), {"busId": b"zz:yy"})()

    def nvmlDeviceGetUUID(self, h: int) -> None:
        raise OSError("gone")


def test_nvml_nonsense_becomes_unknown_not_a_number() -> None:
    result = probe_nvml(_NVML())
    (dev,) = result["devices"]
    assert dev["max_sm_clock_mhz"] is None and dev["memory_total_bytes"] is None
    assert dev["power_limit_w"] is None and dev["uuid"] is None and dev["cuda_driver_version"] is None
    assert dev["energy"]["source"] == "unavailable"


def test_nvml_raising_everywhere_is_a_note() -> None:
    class Raising(_NVML):
        def __getattribute__(self, name: str) -> Any:
            if name.startswith(("nvmlDevice", "nvmlSystem")):
                raise RuntimeError(f"boom {name}")
            return object.__getattribute__(self, name)

    result = probe_nvml(Raising())
    assert result["devices"] == [] and "NVML query failed" in result["note"]


def _odd_gpu_torch_part(**acc: Any) -> dict[str, Any]:
    return {
        "torch": {
            "version": "2.13.0",
            "cuda": "12.8",
            "hip": None,
            "available": {"cpu": True, "cuda": ["x"], "mps": False, "xpu": []},
        },
        "cpu": {"torch_capability": None, "torch_threads": None, "mkl": None, "mkldnn": None},
        "accelerators": [
            {
                "device": "cuda:0",
                "kind": "cuda",
                "name": "NVIDIA\x1b[31m RTX (odd) [name]\nsecond line",
                "rocm": False,
                "sm_count": 80,
                "capability": "8.6",
                "pci_bus_id": None,
                "uuid": None,
                **acc,
            }
        ],
        "notes": ["a note with\na newline"],
    }


def test_odd_gpu_name_and_nan_fields(tmp_path: Path) -> None:
    part = _odd_gpu_torch_part(max_clock_mhz=math.nan, memory_clock_mhz=-1, memory_bus_width_bits=0)
    snap = snapshot(root=str(_machine(tmp_path, _cpuinfo())), torch_part=part, nvml_module=None)
    _strict(snap)
    cuda = snap["devices"][1]
    assert "max_clock_mhz" not in cuda and cuda["peaks"]["bf16"]["value"] is None
    assert "max clock unknown" in cuda["peaks"]["bf16"]["detail"]
    text = render_text(snap)
    assert "\x1b" not in text and "NVIDIA?[31m RTX (odd) [name]?second line" in text
    assert "a note with?a newline" in text


def test_regex_characters_in_a_name_are_plain_text() -> None:
    from hwinfo.peaks import gpu_bandwidth, gpu_peaks, lookup_gpu

    for name in ("[", "(*)", "a100\\", "NVIDIA A100 (*+?)", "\x00", "x" * 10_000, 42, None):
        lookup_gpu(name)  # type: ignore[arg-type]
        gpu_peaks(name)  # type: ignore[arg-type]
        gpu_bandwidth(name)  # type: ignore[arg-type]


def test_json_output_never_holds_nan(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = hwinfo.probe.build_snapshot

    def with_nan(**_kwargs: Any) -> dict[str, Any]:
        snap = real(use_torch=False, nvml_module=None)
        snap["devices"][0]["peaks"]["fp32"]["measured"] = math.nan
        snap["devices"][0]["peaks"]["fp32"]["value"] = math.inf
        return snap

    monkeypatch.setattr(hwinfo.probe, "build_snapshot", with_nan)
    assert main(["--json"]) == 0
    fp32 = json.loads(capsys.readouterr().out)["devices"][0]["peaks"]["fp32"]
    assert fp32["measured"] is None and fp32["value"] is None
    assert strict_json({"a": [1.0, math.nan, {"b": -math.inf}]}) == {"a": [1.0, None, {"b": None}]}


def test_duplicate_dtypes_are_listed_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "--dtypes", "fp32,fp32,bf16,fp32"]) == 0
    assert json.loads(capsys.readouterr().out)["dtypes"] == ["fp32", "bf16"]


def test_output_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    code = "import sys; from hwinfo.cli import main; sys.exit(main(['--json']))"
    env = {**os.environ, "DEVICEBENCH_CACHE": str(tmp_path)}  # a cache of its own: this process's threads
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before hwinfo writes, as in `hwinfo --json | true`
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "BrokenPipe" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    "text", ["", "garbage\n\x00\x01", "CPU(s): lots\nModel name:\nCPU max MHz: nan\n", "Flags: avx2\n" * 3]
)
def test_lscpu_text_that_is_not_lscpu_gives_unknowns_not_a_traceback(text: str) -> None:
    from hwinfo.lscpu import cpu_from_lscpu
    from hwinfo.peaks import cpu_peaks

    cpu = cpu_from_lscpu(text)
    assert cpu["max_mhz"] is None and cpu_peaks(cpu)["fp32"]["value"] is None
    json.dumps(cpu, allow_nan=False)


def test_lspci_text_with_odd_lines_keeps_only_display_controllers() -> None:
    from hwinfo.pci import parse_lspci

    text = (
        "not lspci at all\n"
        "00:02.0 VGA compatible controller [0300]: Intel Corporation UHD Graphics [8086:9bc8] (rev 05)\n"
        "\tRegion 0: Memory at de000000 (64-bit, non-prefetchable) [size=nonsense]\n"
        "01:00.0 Ethernet controller [0200]: Intel Corporation I210 [8086:1533]\n"
        "\tKernel driver in use: igb\n"
        "00:01.0 VGA compatible controller [0300]: Device [1234:1111] (rev 02)\n"
    )
    gpus, skipped = parse_lspci(text)
    assert [(g["pci_address"], g["integrated"], g["driver"]) for g in gpus] == [("0000:00:02.0", True, None)]
    assert len(skipped) == 1 and "QEMU" in skipped[0]
