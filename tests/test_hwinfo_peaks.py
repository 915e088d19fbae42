"""Peak arithmetic for known CPUs, the GPU spec table lookup, and peak_for on a snapshot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hwinfo.cpu import microarchitecture, probe_cpu_generic
from hwinfo.gpu_table import gpu_table
from hwinfo.peaks import A100_BF16_PEAK_FLOPS, DTYPES, cpu_peaks, gpu_peaks, lookup_gpu, peak_for

REPO = Path(__file__).resolve().parents[1]


def _cpu(
    uarch: str | None, cores: int, mhz: float, features: list[str], model_name: str = "", **extra: Any
) -> dict[str, Any]:
    cpu = {
        "model_name": model_name,
        "microarchitecture": uarch,
        "physical_cores": cores,
        "core_groups": [{"type": "core", "count": cores, "max_mhz": mhz}],
        "max_mhz": mhz,
        "clock_sources": {"max_mhz": "sysfs cpufreq cpuinfo_max_freq"},
        "features": features,
    }
    cpu.update(extra)
    return cpu


def test_zen4_epyc_genoa() -> None:
    assert microarchitecture("AMD", 25, 0x11) == "Zen 4"  # EPYC 9004 (this machine's family/model)
    assert microarchitecture("AMD", 25, 0x01) == "Zen 3"
    assert microarchitecture("AMD", 26, 0x02) == "Zen 5"
    peaks = cpu_peaks(_cpu("Zen 4", 96, 3700, ["fma", "avx2", "avx512f", "avx512_bf16"], "AMD EPYC 9654"))
    assert peaks["fp32"]["value"] == pytest.approx(96 * 3.7e9 * 32)
    assert peaks["bf16"]["value"] == pytest.approx(96 * 3.7e9 * 64)
    assert peaks["fp16"]["value"] == peaks["fp32"]["value"] and peaks["fp16"]["emulated"]
    assert "emulated" in peaks["fp16"]["detail"]
    assert peaks["tf32"] == {
        "value": None,
        "source": "unknown",
        "detail": "tf32 is a CUDA tensor-core matmul mode, not a CPU dtype",
    }
    assert "Zen 4" in peaks["fp32"]["detail"] and "AMD Software Optimization Guide" in peaks["fp32"]["detail"]


def test_sapphire_rapids_amx() -> None:
    assert microarchitecture("Intel", 6, 0x8F) == "Sapphire Rapids"
    features = ["fma", "avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"]
    peaks = cpu_peaks(_cpu("Sapphire Rapids", 56, 3800, features, "Intel(R) Xeon(R) Platinum 8480+"))
    assert peaks["fp32"]["value"] == pytest.approx(56 * 3.8e9 * 64)
    assert peaks["bf16"]["value"] == pytest.approx(56 * 3.8e9 * 1024)  # AMX
    assert "AMX" in peaks["bf16"]["detail"]
    assert peaks["fp16"]["value"] == pytest.approx(56 * 3.8e9 * 128)  # AVX512-FP16, no AMX-FP16
    assert not peaks["fp16"].get("emulated")


@pytest.mark.parametrize(
    ("name", "flop_per_cycle"),
    [
        ("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", 64),  # 2 AVX-512 FMA units
        ("Intel(R) Xeon(R) Platinum 8168 CPU @ 2.70GHz", 64),
        ("Intel(R) Core(TM) i9-7900X CPU @ 3.30GHz", 64),
        ("Intel(R) Xeon(R) Silver 4114 CPU @ 2.20GHz", 32),  # 1 unit
        ("Intel(R) Xeon(R) Gold 5118 CPU @ 2.30GHz", 32),
        ("Intel(R) Xeon(R) Gold 5122 CPU @ 3.60GHz", 64),  # the Gold 5 exception
    ],
)
def test_skylake_x_fma_units(name: str, flop_per_cycle: int) -> None:
    assert microarchitecture("Intel", 6, 0x55, stepping=4) == "Skylake-SP"
    assert microarchitecture("Intel", 6, 0x55, stepping=7) == "Cascade Lake"
    peaks = cpu_peaks(_cpu("Skylake-SP", 10, 3000, ["fma", "avx2", "avx512f"], name))
    assert peaks["fp32"]["value"] == pytest.approx(10 * 3e9 * flop_per_cycle)
    assert peaks["bf16"]["emulated"] is True and peaks["bf16"]["value"] == peaks["fp32"]["value"]


def test_haswell_avx2() -> None:
    assert microarchitecture("Intel", 6, 0x3C) == "Haswell"
    peaks = cpu_peaks(_cpu("Haswell", 4, 3900, ["fma", "avx2"], "Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz"))
    assert peaks["fp32"]["value"] == pytest.approx(4 * 3.9e9 * 32)
    assert peaks["bf16"]["emulated"] and "emulated" in peaks["bf16"]["detail"]


def test_alder_lake_hybrid_and_unknown_split() -> None:
    assert microarchitecture("Intel", 6, 0x97) == "Alder Lake"
    cpu = _cpu("Alder Lake", 14, 4700, ["fma", "avx2"], "12th Gen Intel(R) Core(TM) i7-12700H")
    cpu["core_groups"] = [
        {"type": "performance", "count": 6, "max_mhz": 4700},
        {"type": "efficiency", "count": 8, "max_mhz": 3500},
    ]
    assert cpu_peaks(cpu)["fp32"]["value"] == pytest.approx(6 * 4.7e9 * 32 + 8 * 3.5e9 * 16)
    # P-only SKU (no cpu_atom in sysfs): one group of P-cores
    p_only = _cpu("Alder Lake", 6, 4400, ["fma", "avx2"], "12th Gen Intel(R) Core(TM) i5-12400")
    assert cpu_peaks(p_only)["fp32"]["value"] == pytest.approx(6 * 4.4e9 * 32)


def test_apple_m2_from_py_cpuinfo_without_sysctl() -> None:
    info = {"brand_raw": "Apple M2", "arch": "ARM_8", "arch_string_raw": "arm64", "count": 8, "flags": []}
    cpu = probe_cpu_generic(info, physical=8, logical=8, system="Darwin", sysctl=None)
    assert cpu["vendor"] == "Apple" and cpu["microarchitecture"] == "Apple M2"
    assert cpu["core_groups"] == [
        {"type": "performance", "count": 4, "max_mhz": 3504.0},
        {"type": "efficiency", "count": 4, "max_mhz": 2424.0},
    ]
    assert {"asimd", "asimdhp", "bf16"} <= set(cpu["features"])
    peaks = cpu_peaks(cpu)
    fp32 = 4 * 3.504e9 * 32 + 4 * 2.424e9 * 16
    assert peaks["fp32"]["value"] == pytest.approx(fp32)
    assert peaks["fp16"]["value"] == pytest.approx(2 * fp32)  # NEON FP16
    assert peaks["bf16"]["value"] == pytest.approx(2 * fp32)  # BFDOT


def test_apple_sysctl_split_wins_over_table() -> None:
    values = {"hw.perflevel0.physicalcpu": "6", "hw.perflevel1.physicalcpu": "4"}
    cpu = probe_cpu_generic({"brand_raw": "Apple M2 Pro"}, 10, 10, "Darwin", sysctl=values.get)
    assert [g["count"] for g in cpu["core_groups"]] == [6, 4]
    assert "sysctl" in cpu["clock_sources"]["max_mhz"]


def test_windows_intel_without_crashing() -> None:
    info = {
        "brand_raw": "Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz",
        "vendor_id_raw": "GenuineIntel",
        "family": 6,
        "model": 60,
        "hz_advertised": [3400000000, 0],
        "flags": ["fma", "avx2", "sse2"],
        "l2_cache_size": 1048576,
    }
    cpu = probe_cpu_generic(info, physical=4, logical=8, system="Windows", max_mhz=3401.0)
    assert (cpu["vendor"], cpu["microarchitecture"], cpu["base_mhz"]) == ("Intel", "Haswell", 3400.0)
    assert cpu["caches"] == {"l2_kib": 1024}
    assert cpu_peaks(cpu)["fp32"]["value"] == pytest.approx(4 * 3.401e9 * 32)
    empty = probe_cpu_generic({}, None, None, "Windows")
    assert all(p["value"] is None for p in cpu_peaks(empty).values())


def test_unknown_cpu_is_unknown_not_borrowed() -> None:
    peaks = cpu_peaks(_cpu(None, 8, 3000, ["fma", "avx2"], "Some Future CPU"))
    assert all(p["value"] is None and p["source"] == "unknown" for p in peaks.values())
    assert "not in the FLOP/cycle table" in peaks["fp32"]["detail"]
    no_clock = _cpu("Zen 3", 8, 0, ["fma", "avx2"])
    no_clock["max_mhz"] = None
    no_clock["core_groups"][0]["max_mhz"] = None
    assert cpu_peaks(no_clock)["fp32"]["detail"].startswith("clock unknown")


def test_base_clock_is_said_when_no_max() -> None:
    cpu = _cpu("Haswell", 4, 3400, ["fma", "avx2"])
    cpu.update(max_mhz=None, base_mhz=3400.0, clock_sources={"base_mhz": "the model name (@ ... GHz)"})
    cpu["core_groups"][0]["max_mhz"] = None
    fp32 = cpu_peaks(cpu)["fp32"]
    assert "base clock 3400 MHz from the model name" in fp32["detail"] and "may be higher" in fp32["detail"]
    assert fp32["source"] == "derived" and fp32["detail"].startswith("derived")  # a datasheet max, it is not


# --- GPUs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("H100 SXM", "H100 SXM"),  # exact key
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA H200", "H200"),
        ("NVIDIA A100-SXM4-80GB", "A100"),
        ("NVIDIA A100 80GB PCIe", "A100"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40S", "L40S"),
        ("Tesla T4", "T4"),
        ("Tesla V100-SXM2-16GB", "V100 SXM2"),
        ("Tesla V100-PCIE-32GB", "V100 PCIe"),
        ("NVIDIA A10", "A10"),
        ("NVIDIA RTX A6000", "RTX A6000"),
        ("NVIDIA GeForce RTX 3060", "RTX 3060"),
        ("NVIDIA GeForce RTX 3060 Ti", "RTX 3060 Ti"),
        ("NVIDIA GeForce RTX 3070", "RTX 3070"),
        ("NVIDIA GeForce RTX 3080", "RTX 3080"),
        ("NVIDIA GeForce RTX 3090", "RTX 3090"),
        ("NVIDIA GeForce RTX 4060", "RTX 4060"),
        ("NVIDIA GeForce RTX 4070", "RTX 4070"),
        ("NVIDIA GeForce RTX 4070 Ti", "RTX 4070 Ti"),
        ("NVIDIA GeForce RTX 4070 Ti SUPER", "RTX 4070 Ti Super"),
        ("NVIDIA GeForce RTX 4080", "RTX 4080"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("NVIDIA GeForce RTX 5090", "RTX 5090"),
        ("AMD Instinct MI250X", "MI250X (one GCD)"),
        ("AMD Instinct MI300X", "MI300X"),
        ("Apple M1", "Apple M1 GPU"),
        ("Apple M2 Pro", "Apple M2 Pro GPU"),
        ("Apple M3 Max GPU", "Apple M3 Max GPU"),
        ("Apple M4", "Apple M4 GPU"),
    ],
)
def test_lookup_gpu(name: str, key: str) -> None:
    entry = lookup_gpu(name)
    assert entry is not None and entry["key"] == key
    assert entry["source"]
    assert entry["peaks"]["fp32"] > 0


@pytest.mark.parametrize(
    "name",
    [
        "NVIDIA A10G",
        "NVIDIA GeForce RTX 4070 Laptop GPU",
        "Intel(R) Arc(TM) A770 Graphics",
        "NVIDIA H20",
        "",
        "AMD Radeon Graphics",
    ],
)
def test_unknown_gpu_is_unknown(name: str) -> None:
    assert lookup_gpu(name) is None
    peaks = gpu_peaks(name)
    assert all(p == {"value": None, "source": "unknown", "detail": p["detail"]} for p in peaks.values())
    assert "not in the GPU spec table" in peaks["fp32"]["detail"]


def test_gpu_figures() -> None:
    h100 = gpu_peaks("NVIDIA H100 80GB HBM3")
    assert h100["bf16"]["value"] == pytest.approx(989.4e12) and h100["fp32"]["value"] == pytest.approx(
        66.9e12
    )
    assert "whitepaper" in h100["bf16"]["detail"]
    assert gpu_peaks("NVIDIA A100-SXM4-40GB")["bf16"]["value"] == A100_BF16_PEAK_FLOPS == 312e12
    ti = lookup_gpu("NVIDIA GeForce RTX 4070 Ti")
    assert ti is not None
    assert ti["peaks"]["fp32"] == pytest.approx(40.1e12) and ti["peaks"]["bf16"] == pytest.approx(80.2e12)
    assert lookup_gpu("NVIDIA GeForce RTX 4090")["peaks"]["bf16"] == pytest.approx(165.2e12)  # type: ignore[index]
    t4 = gpu_peaks("Tesla T4")
    assert t4["bf16"]["value"] is None and "no BF16" in t4["bf16"]["detail"]
    assert t4["fp16"]["value"] == pytest.approx(65e12)
    m2_8 = lookup_gpu("Apple M2 GPU (8-core)")
    assert m2_8 is not None and m2_8["peaks"]["fp32"] == pytest.approx(3.6e12 * 8 / 10)
    assert "scaled from 10 to 8 GPU cores" in m2_8["source"]


def test_table_is_sane() -> None:
    keys = [row["key"] for row in gpu_table().rows]
    assert len(keys) == len(set(keys))
    for row in gpu_table().rows:
        t = row["tflops"]
        assert set(t) == set(DTYPES) and row["source"], row["key"]
        assert t["fp32"] and t["fp32"] > 0
        for dtype in ("tf32", "bf16", "fp16"):
            if t[dtype] is None:
                assert dtype in row.get("notes", {}), (row["key"], dtype)
            else:
                assert t[dtype] >= t["fp32"], (row["key"], dtype)


# --- peak_for ---------------------------------------------------------------------------------------


def _snap() -> dict[str, Any]:
    def peak(value: float | None, measured: float | None, detail: str) -> dict[str, Any]:
        return {
            "value": value,
            "source": "spec" if value else "unknown",
            "detail": detail,
            "measured": measured,
        }

    return {
        "devices": [
            {
                "device": "cpu",
                "kind": "cpu",
                "name": "AMD EPYC",
                "peaks": {"fp32": peak(166e9, 150e9, "cpu spec")},
            },
            {
                "device": "cuda:0",
                "kind": "cuda",
                "name": "NVIDIA A10G",
                "peaks": {
                    "bf16": peak(None, 60e12, "'NVIDIA A10G' is not in the GPU spec table"),
                    "fp32": peak(None, None, "nope"),
                },
            },
        ]
    }


def test_peak_for() -> None:
    snap = _snap()
    assert peak_for(snap, "cpu", "fp32") == {"value": 166e9, "source": "spec", "detail": "cpu spec"}
    measured = peak_for(snap, "cuda", "bf16")
    assert measured["value"] == 60e12 and measured["source"] == "measured"
    assert "not in the GPU spec table" in measured["detail"]
    assert peak_for(snap, "cuda:0", "fp32") == {"value": None, "source": "unknown", "detail": "nope"}
    missing = peak_for(snap, "mps", "fp32")
    assert missing["value"] is None and missing["source"] == "unknown" and "mps" in missing["detail"]
    assert peak_for(snap, "cpu", "fp16")["source"] == "unknown"


def test_peaks_and_package_import_no_torch_bench_or_reports() -> None:
    code = (
        "import sys, hwinfo, hwinfo.peaks, hwinfo.cli, hwinfo.cpu, hwinfo.pci, hwinfo.nvml, hwinfo.render, "
        "hwinfo.energy, hwinfo.apple, hwinfo.measure, hwinfo.probe, hwinfo.gpu_table, hwinfo.units; "
        "bad = [m for m in ('torch', 'bench', 'reports') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    for path in (REPO / "hwinfo").glob("*.py"):
        text = path.read_text()
        assert "import bench" not in text and "from bench" not in text, path
        assert "import reports" not in text and "from reports" not in text, path


@pytest.mark.parametrize("bad", [0, -5, "1e12", -1.0])
def test_peak_for_never_returns_a_stored_peak_at_or_below_zero(bad: Any) -> None:
    # a hand-edited or damaged hwinfo JSON (bench import --hwinfo): such a peak is no peak
    entry = {"device": "cpu", "kind": "cpu", "name": "x", "peaks": {"fp32": {"value": bad, "source": "spec"}}}
    entry["peaks"]["fp32"]["measured"] = bad
    entry["memory_bandwidth"] = {"value": bad, "source": "spec", "measured": bad}
    snapshot = {"schema": "devicebench-hwinfo/2", "devices": [entry]}
    assert peak_for(snapshot, "cpu", "fp32")["value"] is None
    from hwinfo.peaks import bandwidth_for

    assert bandwidth_for(snapshot, "cpu")["value"] is None
