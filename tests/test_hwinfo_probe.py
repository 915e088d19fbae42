"""hwinfo probes on fake sysfs/proc trees (laptop, AMD APU, 4070 Ti desktop, no GPU) and a fake NVML."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from hwinfo import snapshot
from hwinfo.cpu import parse_cpulist, probe_cpu
from hwinfo.nvml import normalise_bus_id, probe_nvml
from hwinfo.pci import probe_pci

PCI_IDS = """\
# tiny pci.ids for tests
1002  Advanced Micro Devices, Inc. [AMD/ATI]
\t15bf  Phoenix1
\t744c  Navi 31 [Radeon RX 7900 XT/7900 XTX]
10de  NVIDIA Corporation
\t25a0  GA107M [GeForce RTX 3050 Ti Mobile]
\t2782  AD104 [GeForce RTX 4070 Ti]
8086  Intel Corporation
\t9a49  TigerLake-LP GT2 [Iris Xe Graphics, often mislabelled AMD Radeon by lspci parsers]
\t\t1025 1455  Acer laptop
C 00  Unclassified device
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _cpuinfo_x86(
    vendor: str, family: int, model: int, name: str, threads: list[tuple[int, int]], flags: str
) -> str:
    """threads: (physical id, core id) per logical cpu."""
    blocks = []
    for i, (pkg, core) in enumerate(threads):
        blocks.append(
            f"processor\t: {i}\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n"
            f"model name\t: {name}\nstepping\t: 1\ncpu MHz\t\t: 1400.000\nphysical id\t: {pkg}\n"
            f"core id\t\t: {core}\nflags\t\t: {flags}\n"
        )
    return "\n".join(blocks) + "\n"


def make_machine(
    root: Path,
    cpuinfo: str,
    siblings: list[str],
    max_khz: list[int] | None = None,
    base_khz: int | None = None,
    pci: list[dict[str, Any]] | None = None,
    hybrid: tuple[str, str] | None = None,
    pci_ids: bool = True,
) -> Path:
    """A fake / with proc/cpuinfo, sys/devices/system/cpu (topology, cpufreq, caches) and PCI devices."""
    _write(root / "proc/cpuinfo", cpuinfo)
    cpu_dir = root / "sys/devices/system/cpu"
    for i, sib in enumerate(siblings):
        _write(cpu_dir / f"cpu{i}/topology/thread_siblings_list", sib)
        _write(cpu_dir / f"cpu{i}/topology/physical_package_id", "0")
        if max_khz:
            _write(cpu_dir / f"cpu{i}/cpufreq/cpuinfo_max_freq", str(max_khz[i]))
        if base_khz:
            _write(cpu_dir / f"cpu{i}/cpufreq/base_frequency", str(base_khz))
    for index, (level, kind, size) in enumerate(
        [
            ("1", "Data", "48K"),
            ("1", "Instruction", "32K"),
            ("2", "Unified", "1280K"),
            ("3", "Unified", "12288K"),
        ]
    ):
        _write(cpu_dir / f"cpu0/cache/index{index}/level", level)
        _write(cpu_dir / f"cpu0/cache/index{index}/type", kind)
        _write(cpu_dir / f"cpu0/cache/index{index}/size", size)
    if hybrid:
        _write(root / "sys/devices/cpu_core/cpus", hybrid[0])
        _write(root / "sys/devices/cpu_atom/cpus", hybrid[1])
    devices = root / "sys/bus/pci/devices"
    devices.mkdir(parents=True, exist_ok=True)
    # a host bridge and a virtio NIC are never GPUs
    for addr, cls, vendor in (("0000:00:00.0", "0x060000", "0x8086"), ("0000:00:03.0", "0x020000", "0x1af4")):
        _write(devices / addr / "class", cls)
        _write(devices / addr / "vendor", vendor)
        _write(devices / addr / "device", "0x1000")
    for dev in pci or []:
        d = devices / dev["address"]
        for key in ("class", "vendor", "device", "subsystem_vendor", "boot_vga", "mem_info_vram_total"):
            if key in dev:
                _write(d / key, dev[key])
    if pci_ids:
        _write(root / "usr/share/misc/pci.ids", PCI_IDS)
    return root


class FakeNVMLError(Exception):
    pass


class FakeNVML:
    """Enough of pynvml for probe_nvml: one device per entry of `devices`."""

    NVML_CLOCK_SM = 1
    NVMLError = FakeNVMLError

    def __init__(
        self, devices: list[dict[str, Any]], fail_init: bool = False, fail_power: bool = False
    ) -> None:
        self.devices = devices
        self.fail_init = fail_init
        self.fail_power = fail_power
        self.shutdown_called = False

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise FakeNVMLError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        self.shutdown_called = True

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"550.54.14"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12040

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:
        return self.devices[index]

    def nvmlDeviceGetName(self, h: dict[str, Any]) -> str:
        return h["name"]

    def nvmlDeviceGetMemoryInfo(self, h: dict[str, Any]) -> Any:
        return type("Mem", (), {"total": h["memory"]})()

    def nvmlDeviceGetMaxClockInfo(self, h: dict[str, Any], clock: int) -> int:
        assert clock == self.NVML_CLOCK_SM
        return h["sm_clock"]

    def nvmlDeviceGetPowerManagementLimit(self, h: dict[str, Any]) -> int:
        if self.fail_power:
            raise FakeNVMLError("Not Supported")
        return h["power_mw"]

    def nvmlDeviceGetPciInfo(self, h: dict[str, Any]) -> Any:
        return type("Pci", (), {"busId": h["bus"]})()

    def nvmlDeviceGetUUID(self, h: dict[str, Any]) -> str:
        return "GPU-1234"


TIGER_LAKE_FLAGS = "fpu sse sse2 fma avx avx2 avx512f avx512bw avx512vl"
RAPTOR_LAKE_FLAGS = "fpu sse sse2 fma avx avx2"
PHOENIX_FLAGS = "fpu sse sse2 fma avx avx2 avx512f avx512_bf16"


@pytest.fixture
def laptop(tmp_path: Path) -> Path:
    """i7-1165G7 (Tiger Lake, 4 cores / 8 threads), Intel Iris Xe iGPU + NVIDIA RTX 3050 Ti Laptop."""
    threads = [(0, c) for c in range(4)] * 2
    return make_machine(
        tmp_path,
        _cpuinfo_x86(
            "GenuineIntel",
            6,
            0x8C,
            "11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz",
            threads,
            TIGER_LAKE_FLAGS,
        ),
        siblings=["0,4", "1,5", "2,6", "3,7"] * 2,
        max_khz=[4700000] * 8,
        base_khz=2800000,
        pci=[
            # subsystem vendor AMD on purpose: the vendor must come from the vendor id alone
            {
                "address": "0000:00:02.0",
                "class": "0x030000",
                "vendor": "0x8086",
                "device": "0x9a49",
                "subsystem_vendor": "0x1002",
                "boot_vga": "1",
            },
            {
                "address": "0000:01:00.0",
                "class": "0x030200",
                "vendor": "0x10de",
                "device": "0x25a0",
                "subsystem_vendor": "0x1025",
                "boot_vga": "0",
            },
        ],
    )


def test_laptop_intel_igpu_is_intel_and_nvidia_dgpu_is_discrete(laptop: Path) -> None:
    gpus = probe_pci(str(laptop))
    assert [g["pci_address"] for g in gpus] == ["0000:00:02.0", "0000:01:00.0"]
    igpu, dgpu = gpus
    assert (igpu["vendor_id"], igpu["vendor"], igpu["integrated"]) == ("0x8086", "Intel", True)
    assert "Iris Xe" in igpu["name"]  # the name from pci.ids; the vendor never from it
    assert (dgpu["vendor_id"], dgpu["vendor"], dgpu["integrated"]) == ("0x10de", "NVIDIA", False)
    assert dgpu["name"] == "GA107M [GeForce RTX 3050 Ti Mobile]"


def test_laptop_cpu_tiger_lake_uses_sysfs_max_clock(laptop: Path) -> None:
    cpu = probe_cpu(str(laptop), system="Linux")
    assert cpu["vendor"] == "Intel"
    assert cpu["microarchitecture"] == "Tiger Lake"
    assert (cpu["sockets"], cpu["physical_cores"], cpu["logical_cores"]) == (1, 4, 8)
    assert cpu["max_mhz"] == 4700 and cpu["base_mhz"] == 2800
    assert cpu["clock_sources"]["max_mhz"].startswith("sysfs")
    assert cpu["caches"] == {"l1d_kib": 48, "l1i_kib": 32, "l2_kib": 1280, "l3_kib": 12288}
    assert cpu["features"] == ["fma", "avx2", "avx512f"]


def test_laptop_snapshot_with_fake_nvml(laptop: Path) -> None:
    nvml = FakeNVML(
        [
            {
                "name": "NVIDIA GeForce RTX 3050 Ti Laptop GPU",
                "memory": 4 * 2**30,
                "sm_clock": 2100,
                "power_mw": 60000,
                "bus": "00000000:01:00.0",
            }
        ],
        fail_power=True,  # laptops often refuse the power query: that field is None, the rest stays
    )
    snap = snapshot(root=str(laptop), use_torch=False, nvml_module=nvml)
    json.dumps(snap)  # serialisable
    dgpu = snap["gpus"][1]
    assert dgpu["nvml"]["name"] == "NVIDIA GeForce RTX 3050 Ti Laptop GPU"
    assert dgpu["nvml"]["memory_total_bytes"] == 4 * 2**30
    assert dgpu["nvml"]["max_sm_clock_mhz"] == 2100
    assert dgpu["nvml"]["power_limit_w"] is None
    assert dgpu["nvml"]["driver_version"] == "550.54.14"
    assert dgpu["nvml"]["cuda_driver_version"] == "12.4"
    assert snap["gpus"][0]["nvml"] is None
    assert nvml.shutdown_called
    # CPU peak: 4 cores x 4700 MHz x 32 (Tiger Lake client core: one 512-bit FMA)
    fp32 = snap["devices"][0]["peaks"]["fp32"]
    assert fp32["value"] == pytest.approx(4 * 4.7e9 * 32)
    assert "max/boost clock 4700 MHz" in fp32["detail"]


def test_nvml_missing_and_failing_give_notes(laptop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = probe_nvml(FakeNVML([], fail_init=True))
    assert failing["available"] is False
    assert "NVML not available" in failing["note"] and "Driver Not Loaded" in failing["note"]

    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml now raises ImportError
    missing = probe_nvml()
    assert missing["available"] is False and "not installed" in missing["note"]

    snap = snapshot(root=str(laptop), use_torch=False)
    assert any("NVML not available" in n for n in snap["notes"])
    assert snap["gpus"][1]["nvml"] is None and snap["gpus"][1]["vendor"] == "NVIDIA"


def test_nvml_query_that_raises_midway_is_a_note() -> None:
    class Broken(FakeNVML):
        def nvmlDeviceGetCount(self) -> int:
            raise FakeNVMLError("GPU is lost")

    result = probe_nvml(Broken([]))
    assert result["note"] == "NVML query failed: FakeNVMLError: GPU is lost"


def test_amd_apu(tmp_path: Path) -> None:
    """Ryzen 7 7840U (Phoenix, Zen 4): iGPU 0x15bf behind a bridge on bus c4, plus an unlisted APU id."""
    threads = [(0, c) for c in range(8)] * 2
    root = make_machine(
        tmp_path,
        _cpuinfo_x86(
            "AuthenticAMD", 25, 0x74, "AMD Ryzen 7 7840U w/ Radeon 780M Graphics", threads, PHOENIX_FLAGS
        ),
        siblings=[f"{c},{c + 8}" for c in range(8)] * 2,
        max_khz=[5132000] * 16,
        pci=[
            {
                "address": "0000:c4:00.0",
                "class": "0x030000",
                "vendor": "0x1002",
                "device": "0x15bf",
                "boot_vga": "1",
            }
        ],
    )
    gpus = probe_pci(str(root))
    assert len(gpus) == 1
    assert (gpus[0]["vendor"], gpus[0]["integrated"], gpus[0]["name"]) == ("AMD", True, "Phoenix1")
    cpu = probe_cpu(str(root), system="Linux")
    assert cpu["microarchitecture"] == "Zen 4" and cpu["physical_cores"] == 8
    snap = snapshot(root=str(root), use_torch=False, nvml_module=None)
    assert snap["devices"][0]["peaks"]["fp32"]["value"] == pytest.approx(8 * 5.132e9 * 32)
    assert snap["devices"][0]["peaks"]["bf16"]["value"] == pytest.approx(8 * 5.132e9 * 64)


def test_amd_integrated_heuristics(tmp_path: Path) -> None:
    root = make_machine(
        tmp_path,
        _cpuinfo_x86("AuthenticAMD", 25, 0x61, "AMD Ryzen 9 7950X", [(0, 0)], "fma avx2"),
        siblings=["0"],
        pci=[
            # unknown APU id, boot VGA, 512 MiB carve-out: integrated
            {
                "address": "0000:0e:00.0",
                "class": "0x030000",
                "vendor": "0x1002",
                "device": "0x1999",
                "boot_vga": "1",
                "mem_info_vram_total": str(512 * 2**20),
            },
            # Radeon RX 7900 XTX with 24 GiB: discrete even though it is not boot VGA
            {
                "address": "0000:03:00.0",
                "class": "0x030000",
                "vendor": "0x1002",
                "device": "0x744c",
                "boot_vga": "0",
                "mem_info_vram_total": str(24 * 2**30),
            },
        ],
    )
    by_addr = {g["pci_address"]: g for g in probe_pci(str(root))}
    assert by_addr["0000:0e:00.0"]["integrated"] is True
    assert by_addr["0000:03:00.0"]["integrated"] is False
    assert by_addr["0000:03:00.0"]["name"].startswith("Navi 31")
    assert by_addr["0000:0e:00.0"]["name"] is None  # not in pci.ids


def test_desktop_4070_ti_hybrid_raptor_lake(tmp_path: Path) -> None:
    """i7-13700K: 8 P-cores (2 threads each, 5.4 GHz) + 8 E-cores (4.2 GHz), RTX 4070 Ti."""
    p_threads = [(0, c) for c in range(8) for _ in range(2)]
    e_threads = [(0, 8 + c) for c in range(8)]
    siblings = [f"{2 * c},{2 * c + 1}" for c in range(8) for _ in range(2)] + [str(16 + c) for c in range(8)]
    root = make_machine(
        tmp_path,
        _cpuinfo_x86(
            "GenuineIntel",
            6,
            0xB7,
            "13th Gen Intel(R) Core(TM) i7-13700K",
            p_threads + e_threads,
            RAPTOR_LAKE_FLAGS,
        ),
        siblings=siblings,
        max_khz=[5400000] * 16 + [4200000] * 8,
        pci=[
            {
                "address": "0000:01:00.0",
                "class": "0x030000",
                "vendor": "0x10de",
                "device": "0x2782",
                "boot_vga": "1",
            }
        ],
        hybrid=("0-15", "16-23"),
    )
    cpu = probe_cpu(str(root), system="Linux")
    assert cpu["microarchitecture"] == "Raptor Lake"
    assert (cpu["physical_cores"], cpu["logical_cores"]) == (16, 24)
    assert cpu["core_groups"] == [
        {"type": "performance", "count": 8, "max_mhz": 5400.0},
        {"type": "efficiency", "count": 8, "max_mhz": 4200.0},
    ]
    nvml = FakeNVML(
        [
            {
                "name": "NVIDIA GeForce RTX 4070 Ti",
                "memory": 12 * 2**30,
                "sm_clock": 3105,
                "power_mw": 285000,
                "bus": "00000000:01:00.0",
            }
        ]
    )
    snap = snapshot(root=str(root), use_torch=False, nvml_module=nvml)
    gpu = snap["gpus"][0]
    assert (gpu["vendor"], gpu["integrated"], gpu["name"]) == ("NVIDIA", False, "AD104 [GeForce RTX 4070 Ti]")
    assert gpu["nvml"]["power_limit_w"] == 285.0
    fp32 = snap["devices"][0]["peaks"]["fp32"]
    assert fp32["value"] == pytest.approx(8 * 5.4e9 * 32 + 8 * 4.2e9 * 16)
    assert "8 P-cores x 5400 MHz x 32" in fp32["detail"] and "8 E-cores x 4200 MHz x 16" in fp32["detail"]
    assert snap["devices"][0]["peaks"]["bf16"]["emulated"] is True
    assert any("cannot use it" in n and "PyTorch is not available" in n for n in snap["notes"])


def test_no_gpu(tmp_path: Path) -> None:
    root = make_machine(
        tmp_path,
        _cpuinfo_x86("AuthenticAMD", 25, 17, "AMD EPYC", [(0, 0), (0, 1)], PHOENIX_FLAGS),
        siblings=["0", "1"],
        pci_ids=False,
    )
    assert probe_pci(str(root)) == []
    calls: list[str] = []

    class Spy(FakeNVML):
        def nvmlInit(self) -> None:
            calls.append("init")

    snap = snapshot(root=str(root), use_torch=False, nvml_module=Spy([]))
    assert snap["gpus"] == [] and calls == []  # no NVIDIA device, so NVML is not asked
    assert [d["device"] for d in snap["devices"]] == ["cpu"]
    cpu = snap["cpu"]
    assert cpu["max_mhz"] is None and cpu["current_mhz"] == 1400.0
    detail = snap["devices"][0]["peaks"]["fp32"]["detail"]
    assert "current clock 1400 MHz from /proc/cpuinfo 'cpu MHz'" in detail and "may be higher" in detail
    assert any("max/boost clock unknown" in n for n in snap["notes"])


def test_missing_sysfs_and_pci_tree(tmp_path: Path) -> None:
    _write(
        tmp_path / "proc/cpuinfo",
        _cpuinfo_x86(
            "GenuineIntel", 6, 0x3C, "Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz", [(0, 0), (0, 1)], "fma avx2"
        ),
    )
    cpu = probe_cpu(str(tmp_path), system="Linux")
    assert cpu["physical_cores"] == 2 and cpu["base_mhz"] == 3400.0
    assert cpu["clock_sources"]["base_mhz"] == "the model name (@ ... GHz)"
    assert probe_pci(str(tmp_path)) == []


def test_small_parsers() -> None:
    assert parse_cpulist("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpulist("") == []
    assert normalise_bus_id("00000000:01:00.0") == "0000:01:00.0"
    assert normalise_bus_id("0000:C1:00.0") == "0000:c1:00.0"


def test_desktop_with_cuda_torch_gets_a_cuda_device(tmp_path: Path) -> None:
    """The 4070 Ti desktop as a CUDA build of torch would see it: cuda:0 with the table's peaks."""
    from hwinfo.peaks import peak_for

    root = make_machine(
        tmp_path,
        _cpuinfo_x86(
            "AuthenticAMD",
            25,
            0x61,
            "AMD Ryzen 9 7950X 16-Core Processor",
            [(0, c) for c in range(16)],
            PHOENIX_FLAGS,
        ),
        siblings=[str(c) for c in range(16)],
        max_khz=[5881000] * 16,
        pci=[
            {
                "address": "0000:01:00.0",
                "class": "0x030000",
                "vendor": "0x10de",
                "device": "0x2782",
                "boot_vga": "1",
            }
        ],
    )
    torch_part = {
        "torch": {
            "version": "2.5.1+cu124",
            "cuda": "12.4",
            "hip": None,
            "available": {"cpu": True, "cuda": ["NVIDIA GeForce RTX 4070 Ti"], "mps": False, "xpu": []},
        },
        "cpu": {"torch_capability": "AVX2", "torch_threads": 16, "mkl": True, "mkldnn": True},
        "accelerators": [
            {
                "device": "cuda:0",
                "kind": "cuda",
                "name": "NVIDIA GeForce RTX 4070 Ti",
                "rocm": False,
                "sm_count": 60,
                "pci_bus_id": "0000:01:00.0",
                "uuid": None,
            }
        ],
        "notes": [],
    }
    nvml = FakeNVML(
        [
            {
                "name": "NVIDIA GeForce RTX 4070 Ti",
                "memory": 12 * 2**30,
                "sm_clock": 3105,
                "power_mw": 285000,
                "bus": "00000000:01:00.0",
            }
        ]
    )
    snap = snapshot(root=str(root), torch_part=torch_part, nvml_module=nvml)
    assert [d["device"] for d in snap["devices"]] == ["cpu", "cuda:0"]
    cuda = snap["devices"][1]
    assert cuda["peaks"]["bf16"]["value"] == pytest.approx(80.2e12)
    assert cuda["peaks"]["fp32"]["source"] == "spec" and "RTX 4070 Ti" in cuda["peaks"]["fp32"]["detail"]
    assert snap["gpus"][0]["nvml"]["sm_count"] == 60
    assert peak_for(snap, "cuda", "bf16")["value"] == pytest.approx(80.2e12)
    assert not any("cannot use it" in n for n in snap["notes"])
    # CPU has AVX-512 but torch says AVX2: said in a note
    assert any("dispatches AVX2" in n for n in snap["notes"])
    from hwinfo.render import render_text

    text = render_text(snap)
    assert "cuda:0" in text and "80.2 TFLOP/s" in text and "SMs 60" in text


def test_arm_graviton2_from_proc(tmp_path: Path) -> None:
    """Arm Linux: no "model name"; the core comes from CPU implementer/part, features from "Features"."""
    block = (
        "processor\t: {i}\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull crc32 atomics fphp asimdhp "
        "cpuid asimdrdm lrcpc dcpop asimddp ssbs\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\n"
        "CPU part\t: 0xd0c\nCPU revision\t: 1\n"
    )
    root = make_machine(
        tmp_path,
        "\n".join(block.format(i=i) for i in range(4)),
        siblings=["0", "1", "2", "3"],
        max_khz=[2500000] * 4,
    )
    cpu = probe_cpu(str(root), system="Linux")
    assert (cpu["vendor"], cpu["model_name"], cpu["microarchitecture"]) == (
        "ARM",
        "ARM Neoverse N1",
        "Neoverse N1",
    )
    assert cpu["features"] == ["asimd", "asimdhp"]
    from hwinfo.peaks import cpu_peaks

    peaks = cpu_peaks(cpu)
    assert peaks["fp32"]["value"] == pytest.approx(4 * 2.5e9 * 16)
    assert peaks["fp16"]["value"] == pytest.approx(2 * 4 * 2.5e9 * 16)
    assert peaks["bf16"]["emulated"] is True
