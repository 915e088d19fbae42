"""Derived GPU peaks (SMs x clock x per-SM rate), MIG slices, the 4090 D, Apple GPU cores, memory
bandwidth (datasheet, derived, measured) and the ridge point, with fakes for the GPUs this machine lacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hwinfo import snapshot
from hwinfo.apple import IOREG, SYSTEM_PROFILER, apple_gpu_cores
from hwinfo.cpu import probe_cpu_generic
from hwinfo.gpu_table import gpu_table
from hwinfo.peaks import (
    DTYPES,
    bandwidth_for,
    derived_gpu_peaks,
    gpu_bandwidth,
    gpu_peaks,
    lookup_gpu,
    peak_for,
    ridge_for,
    ridge_point,
)

T = 1e12


# --- the per-SM rates reproduce the datasheets of chips of each architecture ----------------------


@pytest.mark.parametrize(
    ("what", "sms", "mhz", "arch", "geforce", "expected"),
    [
        ("A100", 108, 1410, "8.0", False, {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312}),
        ("H100 PCIe tensor", 114, 1620, "9.0", False, {"tf32": 378, "bf16": 756}),
        ("H100 PCIe FP32", 114, 1755, "9.0", False, {"fp32": 51.2}),
        ("V100 SXM2", 80, 1530, "7.0", False, {"fp32": 15.7, "fp16": 125}),
        ("T4", 40, 1590, "7.5", False, {"fp32": 8.1, "fp16": 65}),
        ("RTX A6000", 84, 1800, "8.6", False, {"fp32": 38.7, "tf32": 77.4, "bf16": 154.8}),
        ("RTX 3090", 82, 1695, "8.6", True, {"fp32": 35.6, "tf32": 35.6, "bf16": 71.2}),
        ("L4", 58, 2040, "8.9", False, {"tf32": 60, "bf16": 121}),
        ("RTX 4090", 128, 2520, "8.9", True, {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2}),
        ("RTX 5090", 170, 2407, "12.0", True, {"fp32": 104.8, "bf16": 209.5}),
        ("MI300X", 304, 2100, "gfx942", False, {"fp32": 163.4, "tf32": 653.7, "bf16": 1307.4}),
        ("MI250X GCD", 110, 1700, "gfx90a:sramecc+:xnack-", False, {"fp32": 47.85, "bf16": 191.5}),
        ("MI100", 120, 1502, "gfx908", False, {"fp32": 46.1, "bf16": 92.3, "fp16": 184.6}),
        ("RX 7900 XTX", 96, 2500, "gfx1100", False, {"fp32": 61.4, "fp16": 122.8}),  # amd.com spec page
        ("RX 7900 XT", 84, 2400, "gfx1100", False, {"fp32": 51.6, "fp16": 103.2}),  # amd.com spec page
    ],
)
def test_rates_reproduce_datasheets(
    what: str, sms: int, mhz: int, arch: str, geforce: bool, expected: dict[str, float]
) -> None:
    name = "NVIDIA GeForce Test GPU" if geforce else "Test GPU"
    kwargs = {"gcn_arch": arch} if arch.startswith("gfx") else {"capability": arch}
    peaks = derived_gpu_peaks(name, sm_count=sms, max_clock_mhz=mhz, **kwargs)
    for dtype, tflops in expected.items():
        assert peaks[dtype]["source"] == "derived"
        assert peaks[dtype]["value"] == pytest.approx(tflops * T, rel=0.01), (what, dtype)


def test_derived_peak_shows_its_arithmetic_and_source() -> None:
    """A GPU missing from the table (the A10G) gets SMs x clock x rate, labelled, never another chip's figure."""
    assert lookup_gpu("NVIDIA A10G") is None
    peaks = gpu_peaks("NVIDIA A10G", sm_count=80, max_clock_mhz=1710, capability="8.6")
    bf16 = peaks["bf16"]
    assert bf16["source"] == "derived" and bf16["value"] == 80 * 1710e6 * 1024
    assert "80 SMs x 1710 MHz x 1024 BF16 FLOP/clock/SM" in bf16["detail"]
    assert "llm.c" in bf16["detail"] and "upper bound" in bf16["detail"]
    assert "compute capability 8.6" in bf16["detail"]
    geforce = gpu_peaks("NVIDIA GeForce RTX 3050", sm_count=20, max_clock_mhz=1777, capability="8.6")
    assert geforce["bf16"]["value"] == 20 * 1777e6 * 512 and "GeForce" in geforce["bf16"]["detail"]


def test_derived_keeps_missing_arithmetic_unknown() -> None:
    volta = derived_gpu_peaks("NVIDIA TITAN V", sm_count=80, max_clock_mhz=1455, capability="7.0")
    assert volta["bf16"]["value"] is None and "no BF16" in volta["bf16"]["detail"]
    assert volta["tf32"]["value"] == volta["fp32"]["value"]  # TF32 matmuls run in FP32 there
    pro_blackwell = derived_gpu_peaks(
        "NVIDIA RTX PRO 6000", sm_count=188, max_clock_mhz=2617, capability="12.0"
    )
    assert pro_blackwell["fp32"]["value"] == 188 * 2617e6 * 256
    assert pro_blackwell["bf16"]["value"] is None and "non-GeForce" in pro_blackwell["bf16"]["detail"]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"max_clock_mhz": 1980, "capability": "9.0"}, "SM count unknown"),
        ({"sm_count": 132, "capability": "9.0"}, "max clock unknown"),
        ({"sm_count": 132, "max_clock_mhz": 1e9, "capability": "9.0"}, "max clock unknown"),
        ({"sm_count": 132, "max_clock_mhz": 1980}, "architecture unknown"),
        ({"sm_count": 148, "max_clock_mhz": 1965, "capability": "10.0"}, "compute capability 10.0"),
        ({"sm_count": 80, "max_clock_mhz": 2100, "gcn_arch": "gfx1030"}, "no per-CU rate for gfx1030"),
        ({"sm_count": -3, "max_clock_mhz": 1980, "capability": "9.0"}, "SM count unknown"),
        ({"sm_count": True, "max_clock_mhz": 1980, "capability": "9.0"}, "SM count unknown"),
        (
            {"sm_count": "many", "max_clock_mhz": "fast", "capability": "9.0"},
            "SM count unknown, max clock unknown",
        ),
    ],
)
def test_no_derived_peak_without_every_factor(kwargs: dict[str, Any], reason: str) -> None:
    peaks = gpu_peaks("NVIDIA Future GPU", **kwargs)
    for p in peaks.values():
        assert p["value"] is None and p["source"] == "unknown"
        assert "not in the GPU spec table" in p["detail"] and reason in p["detail"]


# --- MIG slices, the 4090 D --------------------------------------------------------------------------


def test_mig_slice_gets_its_sm_share_or_stays_unknown() -> None:
    name = "NVIDIA A100-SXM4-80GB MIG 1g.10gb"
    full = gpu_peaks("NVIDIA A100-SXM4-80GB")["bf16"]["value"]
    share = gpu_peaks(name, sm_count=14, max_clock_mhz=1410, capability="8.0")
    assert share["bf16"]["value"] == pytest.approx(312 * T * 14 / 108)
    assert share["bf16"]["source"] == "derived" and "14/108 SMs" in share["bf16"]["detail"]
    assert "MIG slice" in share["bf16"]["detail"]
    # the SM share and SMs x clock x rate agree for a slice of an A100
    derived = derived_gpu_peaks("some A100 slice", sm_count=14, max_clock_mhz=1410, capability="8.0")
    assert derived["bf16"]["value"] == pytest.approx(share["bf16"]["value"], rel=0.005)
    unknown = gpu_peaks(name)
    assert all(p["value"] is None for p in unknown.values())
    assert "MIG slice" in unknown["bf16"]["detail"] and "overstate" in unknown["bf16"]["detail"]
    assert full not in {p["value"] for p in unknown.values()}
    h100 = gpu_peaks("NVIDIA H100 80GB HBM3 MIG 3g.40gb", sm_count=60)
    assert h100["bf16"]["value"] == pytest.approx(989.4 * T * 60 / 132)
    assert gpu_bandwidth(name)["value"] is None and "MIG" in gpu_bandwidth(name)["detail"]


def test_rtx_4090_d_has_its_own_row() -> None:
    d = lookup_gpu("NVIDIA GeForce RTX 4090 D")
    assert d is not None and d["key"] == "RTX 4090 D" and d["sms"] == 114
    assert d["peaks"]["bf16"] == pytest.approx(114 * 2.52e9 * 512, rel=1e-3)
    assert d["peaks"]["fp32"] == pytest.approx(114 * 2.52e9 * 256, rel=1e-3)
    full = lookup_gpu("NVIDIA GeForce RTX 4090")
    assert (
        full is not None and full["key"] == "RTX 4090" and full["peaks"]["bf16"] == pytest.approx(165.2 * T)
    )
    assert gpu_peaks("NVIDIA GeForce RTX 4090 D", sm_count=114)["bf16"]["source"] == "spec"


def test_a_chip_reporting_other_sm_count_than_its_row_is_scaled() -> None:
    """The RTX 3080 row is the 10 GB card (68 SMs); the 12 GB card reports 70 under the same name."""
    p = gpu_peaks("NVIDIA GeForce RTX 3080", sm_count=70)
    row = lookup_gpu("NVIDIA GeForce RTX 3080")
    assert row is not None and row["sms"] == 68
    assert p["fp32"]["value"] == pytest.approx(row["peaks"]["fp32"] * 70 / 68)
    assert p["fp32"]["source"] == "derived" and "70/68 SMs" in p["fp32"]["detail"]


# --- Apple GPU core counts -----------------------------------------------------------------------------


def _runner(outputs: dict[str, str | None]) -> Any:
    calls: list[str] = []

    def run(cmd: list[str]) -> str | None:
        calls.append(cmd[0])
        return outputs.get(cmd[0])

    run.calls = calls  # type: ignore[attr-defined]
    return run


def test_apple_gpu_cores_from_ioreg_then_system_profiler() -> None:
    ioreg = '+-o AGXAcceleratorG14X  <class AGXAcceleratorG14X>\n    {\n      "gpu-core-count" = 19\n'
    assert apple_gpu_cores(_runner({IOREG[0]: ioreg})) == (19, "ioreg gpu-core-count")
    profiler = json.dumps({"SPDisplaysDataType": [{"sppci_model": "Apple M2 Pro", "sppci_cores": "16"}]})
    run = _runner({IOREG[0]: "no such key", SYSTEM_PROFILER[0]: profiler})
    assert apple_gpu_cores(run)[0] == 16 and run.calls == ["ioreg", "system_profiler"]
    for bad in (None, "", "{not json", "[]", '{"SPDisplaysDataType": [{"sppci_cores": "lots"}]}'):
        cores, why = apple_gpu_cores(_runner({SYSTEM_PROFILER[0]: bad}))
        assert cores is None and "unknown" in why


def _apple_machine(monkeypatch: pytest.MonkeyPatch, chip: str) -> dict[str, Any]:
    import hwinfo.probe

    cpu = probe_cpu_generic({"brand_raw": chip}, 10, 10, "Darwin", sysctl=None)
    monkeypatch.setattr(hwinfo.probe, "probe_cpu", lambda root: dict(cpu))
    monkeypatch.setattr(hwinfo.probe, "probe_display", lambda root: ([], []))
    return {
        "torch": {
            "version": "2.13.0",
            "cuda": None,
            "hip": None,
            "available": {"cpu": True, "cuda": [], "mps": True, "xpu": []},
        },
        "cpu": {"torch_capability": "DEFAULT", "torch_threads": 10, "mkl": False, "mkldnn": True},
        "accelerators": [{"device": "mps", "kind": "mps", "name": None}],
        "notes": [],
    }


def test_mps_name_carries_the_core_count_and_the_table_scales(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    torch_part = _apple_machine(monkeypatch, "Apple M2 Pro")
    run = _runner({IOREG[0]: '"gpu-core-count" = 16'})
    snap = snapshot(root=str(tmp_path), torch_part=torch_part, run_command=run)
    mps = snap["devices"][1]
    assert mps["name"] == "Apple M2 Pro (16-core GPU)" and mps["gpu_cores"] == 16
    assert mps["peaks"]["fp32"]["value"] == pytest.approx(6.8 * T * 16 / 19)
    assert "scaled from 19 to 16 GPU cores" in mps["peaks"]["fp32"]["detail"]
    assert mps["memory_bandwidth"]["value"] == 200e9 and mps["memory_bandwidth"]["source"] == "spec"
    assert peak_for(snap, "mps", "fp32")["value"] == pytest.approx(6.8 * T * 16 / 19)
    energy = {c["device"]: c for c in snap["energy"]["counters"]}
    assert energy["mps"]["available"] is False and "powermetrics" in energy["mps"]["reason"]


def test_mps_core_count_unknown_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    torch_part = _apple_machine(monkeypatch, "Apple M3 Max")
    snap = snapshot(root=str(tmp_path), torch_part=torch_part, run_command=_runner({}))
    mps = snap["devices"][1]
    assert mps["name"] == "Apple M3 Max GPU"
    assert "core count is unknown" in mps["peaks"]["fp32"]["detail"]
    # the M3 Max's bandwidth follows its GPU core count (30: 300 GB/s, 40: 400 GB/s): unknown here
    assert mps["memory_bandwidth"]["value"] is None
    binned = snapshot(
        root=str(tmp_path), torch_part=torch_part, run_command=_runner({IOREG[0]: '"gpu-core-count"=30'})
    )
    assert binned["devices"][1]["memory_bandwidth"]["value"] == 300e9


# --- a CUDA machine with a GPU missing from the table (fake torch answer and fake NVML) --------------


class _NVML:
    NVML_CLOCK_SM = 1

    def __init__(self, energy: bool = True) -> None:
        self.energy = energy

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlSystemGetDriverVersion(self) -> str:
        return "570.1"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12080

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> str:
        return "NVIDIA A10G"

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        return type("M", (), {"total": 24 * 2**30})()

    def nvmlDeviceGetMaxClockInfo(self, h: int, clock: int) -> int:
        return 1710

    def nvmlDeviceGetPowerManagementLimit(self, h: int) -> int:
        return 300000

    def nvmlDeviceGetPciInfo(self, h: int) -> Any:
        return type("P", (), {"busId": "00000000:00:1E.0"})()

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return "GPU-a10g"

    def nvmlDeviceGetCudaComputeCapability(self, h: int) -> tuple[int, int]:
        return (8, 6)

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:
        if not self.energy:
            raise RuntimeError("Not Supported")
        return 123456

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return 150000


def _cuda_torch_part(**acc: Any) -> dict[str, Any]:
    return {
        "torch": {
            "version": "2.13.0+cu128",
            "cuda": "12.8",
            "hip": None,
            "available": {"cpu": True, "cuda": ["NVIDIA A10G"], "mps": False, "xpu": []},
        },
        "cpu": {"torch_capability": "AVX2", "torch_threads": 4, "mkl": True, "mkldnn": True},
        "accelerators": [
            {
                "device": "cuda:0",
                "kind": "cuda",
                "name": "NVIDIA A10G",
                "rocm": False,
                "sm_count": 80,
                "capability": "8.6",
                "pci_bus_id": "0000:00:1e.0",
                "uuid": None,
                "max_clock_mhz": 1710.0,
                "memory_clock_mhz": 6251.0,
                "memory_bus_width_bits": 384,
                "l2_cache_bytes": 6 * 2**20,
                **acc,
            }
        ],
        "notes": [],
    }


def test_peak_for_returns_the_derived_peak_of_an_unlisted_gpu(tmp_path: Path) -> None:
    snap = snapshot(root=str(tmp_path), torch_part=_cuda_torch_part(), nvml_module=_NVML())
    json.dumps(snap, allow_nan=False)
    cuda = snap["devices"][1]
    assert cuda["max_clock_mhz"] == 1710 and "NVML" in cuda["clock_source"]
    peak = peak_for(snap, "cuda", "bf16")
    assert peak["source"] == "derived" and peak["value"] == 80 * 1710e6 * 1024
    bw = bandwidth_for(snap, "cuda:0")
    assert bw["source"] == "derived" and bw["value"] == pytest.approx(2 * 6251e6 * 384 / 8)
    assert cuda["ridge_flop_per_byte"]["bf16"] == pytest.approx(peak["value"] / bw["value"])
    assert ridge_for(snap, "cuda", "bf16")["value"] == pytest.approx(peak["value"] / bw["value"])
    energy = {c["device"]: c for c in snap["energy"]["counters"]}
    assert energy["cuda:0"]["source"] == "nvml_energy" and energy["cuda:0"]["available"]


def test_torch_clock_is_used_when_nvml_is_missing(tmp_path: Path) -> None:
    snap = snapshot(root=str(tmp_path), torch_part=_cuda_torch_part(max_clock_mhz=1695.0), nvml_module=None)
    cuda = snap["devices"][1]
    assert cuda["peaks"]["fp32"]["value"] == 80 * 1695e6 * 256
    assert "PyTorch" in cuda["clock_source"]
    no_clock = snapshot(root=str(tmp_path), torch_part=_cuda_torch_part(max_clock_mhz=None), nvml_module=None)
    assert peak_for(no_clock, "cuda", "bf16")["value"] is None
    assert "max clock unknown" in peak_for(no_clock, "cuda", "bf16")["detail"]


def test_peak_for_derives_from_an_older_snapshot() -> None:
    """A snapshot written before hwinfo derived peaks still has the GPU's SM count, clock and capability."""
    old = {
        "devices": [
            {
                "device": "cuda:0",
                "kind": "cuda",
                "name": "NVIDIA A10G",
                "sm_count": 80,
                "max_clock_mhz": 1710,
                "capability": "8.6",
                "peaks": {
                    "bf16": {
                        "value": None,
                        "source": "unknown",
                        "detail": "not in the table",
                        "measured": 9e13,
                    }
                },
            }
        ]
    }
    peak = peak_for(old, "cuda", "bf16")
    assert peak["source"] == "derived" and peak["value"] == 80 * 1710e6 * 1024
    del old["devices"][0]["max_clock_mhz"]
    assert peak_for(old, "cuda", "bf16") == {
        "value": 9e13,
        "source": "measured",
        "detail": "measured bf16 matmul on NVIDIA A10G (no spec or derived peak: not in the table)",
    }


# --- memory bandwidth ---------------------------------------------------------------------------------


def test_datasheet_bandwidth_per_row() -> None:
    for row in gpu_table().rows:
        assert row.get("bandwidth") and row.get("bandwidth_source"), row["key"]
        assert all(0 < gbs < 20_000 for _, gbs in row["bandwidth"]), row["key"]
    assert gpu_bandwidth("NVIDIA H100 80GB HBM3") == {
        "value": 3350e9,
        "source": "spec",
        "detail": "H100 SXM: 3.35 TB/s (NVIDIA H100 Tensor Core GPU datasheet)",
    }
    assert gpu_bandwidth("NVIDIA A100-SXM4-80GB")["value"] == 2039e9
    assert gpu_bandwidth("NVIDIA A100 80GB PCIe")["value"] == 1935e9
    assert gpu_bandwidth("NVIDIA A100-PCIE-40GB")["value"] == 1555e9
    assert gpu_bandwidth("NVIDIA A100")["value"] is None  # which memory: the name does not say
    assert gpu_bandwidth("NVIDIA GeForce RTX 4090")["value"] == 1008e9
    assert gpu_bandwidth("AMD Instinct MI300X")["value"] == 5300e9
    unknown = gpu_bandwidth("NVIDIA Future GPU")
    assert unknown["value"] is None and "hwinfo --measure" in unknown["detail"]
    assert gpu_bandwidth("x", memory_clock_mhz=1e12, memory_bus_width_bits=384)["value"] is None


def test_bandwidth_for_and_ridge_on_a_snapshot() -> None:
    snap = {
        "devices": [
            {
                "device": "cpu",
                "kind": "cpu",
                "peaks": {"fp32": {"value": 160e9, "source": "spec", "detail": "cpu"}},
                "memory_bandwidth": {
                    "value": 20e9,
                    "source": "measured",
                    "detail": "STREAM triad",
                    "measured": 20e9,
                },
            },
            {"device": "mps", "kind": "mps", "peaks": {}},
        ]
    }
    assert bandwidth_for(snap, "cpu") == {"value": 20e9, "source": "measured", "detail": "STREAM triad"}
    assert ridge_for(snap, "cpu", "fp32")["value"] == 8.0
    assert "160 GFLOP/s (spec) / 20.0 GB/s (measured)" in ridge_for(snap, "cpu", "fp32")["detail"]
    assert bandwidth_for(snap, "mps")["source"] == "unknown"
    assert bandwidth_for(snap, "cuda:3")["value"] is None
    assert ridge_for(snap, "cpu", "bf16")["value"] is None
    assert ridge_point(1e12, 0) is None and ridge_point(None, 1e9) is None and ridge_point(2e12, 1e12) == 2.0
    assert bandwidth_for({"devices": "garbage"}, "cpu")["value"] is None


def test_rate_tables_are_sane() -> None:
    for table in (gpu_table().nvidia_sm_rates, gpu_table().amd_cu_rates):
        for key, row in table.items():
            rates = row["rates"]
            assert set(rates) == set(DTYPES) and row["source"] and row["arch"], key
            for dtype, rate in {**rates, **row.get("geforce", {})}.items():
                if rate is None:
                    assert dtype in row.get("notes", {}), (key, dtype)
                else:
                    assert rate >= rates["fp32"] and rate & (rate - 1) == 0, (key, dtype)  # powers of two
    for row in gpu_table().rows:
        assert row.get("sms") is None or row["sms"] > 0
