"""hwinfo on real machines: verbatim lscpu, /proc/cpuinfo and lspci dumps from public sources
(tests/data/machines-wild/SOURCES.md), each checked against the right answer and where it comes from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from hwinfo.cpu import probe_cpu
from hwinfo.lscpu import cpu_from_lscpu
from hwinfo.pci import parse_lspci
from hwinfo.peaks import cpu_peaks

WILD = Path(__file__).parent / "data" / "machines-wild"
G = 1e9


def _mock_files(text: str) -> dict[str, str]:
    """{path: content} from pytorch/cpuinfo's mock filesystem entries (.path = "...", .content = "..." "...")."""
    files: dict[str, str] = {}
    for m in re.finditer(r'\.path = "([^"]+)",.*?\.content =\s*((?:"(?:[^"\\]|\\.)*"\s*)+)', text, re.S):
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))
        files[m.group(1)] = "".join(parts).encode().decode("unicode_escape")
    return files


def _fake_root(tmp_path: Path, machine: str) -> Path:
    """A fake / holding only what the dump has: hwinfo must not read anything else."""
    src = WILD / machine
    for dump in src.iterdir():
        if dump.name == "cpuinfo":
            (tmp_path / "proc").mkdir(parents=True, exist_ok=True)
            (tmp_path / "proc/cpuinfo").write_text(dump.read_text())
        elif dump.name.endswith(".mock.h"):
            for path, content in _mock_files(dump.read_text()).items():
                target = tmp_path / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
    return tmp_path


def _lscpu(machine: str) -> dict[str, Any]:
    return cpu_from_lscpu((WILD / machine / "lscpu.txt").read_text())


# machine -> (sockets, physical cores, fp32 peak FLOP/s or None when no datasheet figure is reachable,
#             the label hwinfo must give, where the right answer comes from)
CPU_CASES: dict[str, tuple[int, int, float | None, str, str]] = {
    "epyc-7451-2s": (
        2,
        48,
        48 * 3.2 * G * 16,
        "spec",
        "AMD EPYC 7451: 24 cores, boost 3.2 GHz (amd.com); Zen 2x128-bit FMA",
    ),
    "epyc-7742-2s": (
        2,
        128,
        128 * 3.4 * G * 32,
        "spec",
        "AMD EPYC 7742: 64 cores, boost 3.4 GHz (amd.com); Zen 2 2x256-bit FMA",
    ),
    "ryzen9-5950x": (1, 16, 16 * 4.9 * G * 32, "spec", "Ryzen 9 5950X: 16 cores, boost 4.9 GHz (amd.com)"),
    "xeon-silver-4110": (
        1,
        8,
        8 * 3.0 * G * 32,
        "spec",
        "Xeon Silver 4110: 8 cores, turbo 3.0 GHz, one AVX-512 FMA unit (ark)",
    ),
    "xeon-gold-6130": (
        1,
        16,
        16 * 3.7 * G * 64,
        "spec",
        "Xeon Gold 6130: 16 cores, turbo 3.7 GHz, two AVX-512 FMA units (ark)",
    ),
    "ampere-altra-q80-30": (
        1,
        80,
        80 * 3.0 * G * 16,
        "spec",
        "Ampere Altra Q80-30: 80 Neoverse N1 cores at 3.0 GHz",
    ),
    "apple-m1-asahi": (
        1,
        8,
        4 * 3.204 * G * 32 + 4 * 2.064 * G * 16,
        "spec",
        "Apple M1: 4 Firestorm at 3.2 GHz + 4 Icestorm at 2.064 GHz",
    ),
    "arm-a55-board": (1, 4, 4 * 2.1 * G * 8, "spec", "4 Cortex-A55 at the board's cpufreq maximum 2.1 GHz"),
    # Core Ultra 9 185H: 6 P at 5.1 + 8 E at 3.8 + 2 LP-E at 2.5 GHz (ark 236849); lscpu has one clock for all
    "meteor-lake-185h": (
        1,
        16,
        6 * 5.1 * G * 32 + 8 * 3.8 * G * 16 + 2 * 2.5 * G * 16,
        "derived",
        "ark 236849",
    ),
    # the A510's vector unit is shared by a core pair in a configuration lscpu does not tell
    "phone-a510-a710-a715-x3": (1, 8, None, "unknown", "no datasheet FLOP/cycle for a Cortex-A510 pair"),
}


@pytest.mark.parametrize("machine", sorted(CPU_CASES))
def test_lscpu_machines_against_their_datasheets(machine: str) -> None:
    sockets, cores, right, label, _source = CPU_CASES[machine]
    cpu = _lscpu(machine)
    assert (cpu["sockets"], cpu["physical_cores"]) == (sockets, cores)
    fp32 = cpu_peaks(cpu)["fp32"]
    assert fp32["source"] == label, fp32["detail"]
    if label == "spec":
        assert fp32["value"] == pytest.approx(right, rel=0.05), fp32["detail"]
    elif label == "derived":
        assert fp32["value"] < right and fp32["detail"].startswith("derived"), fp32["detail"]
    else:
        assert fp32["value"] is None and "Cortex-A510" in fp32["detail"]


def test_acpi_cpufreq_base_clock_is_not_taken_for_the_boost() -> None:
    """EPYC 7451: 'CPU max MHz' 2300 (base) while 'CPU MHz' reads 2894; EPYC 7742: 2250 = its base."""
    c7451, c7742 = _lscpu("epyc-7451-2s"), _lscpu("epyc-7742-2s")
    assert c7451["max_mhz"] == 3200 and c7451["base_mhz"] == 2300
    assert any("below the current clock 2894 MHz" in n for n in c7451["clock_notes"])
    assert c7742["max_mhz"] == 3400 and any("datasheet base clock" in n for n in c7742["clock_notes"])
    assert "datasheet" in c7742["clock_sources"]["max_mhz"]


def test_x86_sme_is_memory_encryption_not_arm_sme() -> None:
    cpu = _lscpu("epyc-7742-2s")  # its flags hold AMD's "sme" (Secure Memory Encryption)
    assert "sme" not in cpu["features"] and {"fma", "avx2"} <= set(cpu["features"])


def test_skylake_sp_fma_units_from_the_sku() -> None:
    silver, gold = cpu_peaks(_lscpu("xeon-silver-4110")), cpu_peaks(_lscpu("xeon-gold-6130"))
    assert "1 x 512-bit FMA" in silver["fp32"]["detail"] and "2 x 512-bit FMA" in gold["fp32"]["detail"]


def test_phone_soc_is_one_socket_with_a_group_per_cluster() -> None:
    cpu = _lscpu("phone-a510-a710-a715-x3")
    groups = {(g["part"], g["count"], g["max_mhz"]) for g in cpu["core_groups"]}
    assert groups == {
        ("Cortex-A510", 3, 2016.0),
        ("Cortex-A710", 2, 2803.2),
        ("Cortex-A715", 2, 2803.2),
        ("Cortex-X3", 1, 3187.2),
    }
    assert cpu["model_name"].startswith("ARM 1x Cortex-X3") and "0xd46" not in cpu["model_name"]
    assert set(cpu["features"]) >= {"asimd", "asimdhp", "bf16"}


def test_apple_m1_under_asahi_has_its_p_and_e_clusters() -> None:
    cpu = _lscpu("apple-m1-asahi")
    by_type = {g["type"]: (g["count"], g["max_mhz"]) for g in cpu["core_groups"]}
    assert by_type == {"performance": (4, 3204.0), "efficiency": (4, 2064.0)}


def test_kirin_980_proc_cpuinfo_is_one_soc_of_two_core_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kirin 980 (Huawei Mate 20): 4 Cortex-A55 (ARM 0x41:0xd05) + 4 Cortex-A76 under HiSilicon's own
    implementer/part (0x48:0xd40). This dump has no cpufreq, so no clock and no peak, and the host's
    clock is never borrowed."""
    monkeypatch.setattr("hwinfo.cpu.py_cpuinfo_dict", lambda: pytest.fail("a fake root read the host"))
    cpu = probe_cpu(str(_fake_root(tmp_path, "huawei-mate-20-kirin980")), system="Linux")
    assert (cpu["sockets"], cpu["physical_cores"]) == (1, 8)
    assert sorted((g["part"], g["count"]) for g in cpu["core_groups"]) == [
        ("Cortex-A55", 4),
        ("Cortex-A76", 4),
    ]
    assert "Cortex-A76" in cpu["model_name"] and cpu["max_mhz"] is None
    fp32 = cpu_peaks(cpu)["fp32"]
    assert fp32["value"] is None and fp32["source"] == "unknown"


def test_xiaomi_mi_5c_online_cpus_without_clocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Surge S1 has 8 Cortex-A53; the dump lists the 4 online ones and no clock: 4 cores, peak unknown."""
    monkeypatch.setattr("hwinfo.cpu.py_cpuinfo_dict", lambda: pytest.fail("a fake root read the host"))
    cpu = probe_cpu(str(_fake_root(tmp_path, "xiaomi-mi-5c")), system="Linux")
    assert (cpu["sockets"], cpu["physical_cores"], cpu["microarchitecture"]) == (1, 4, "Cortex-A53")
    assert cpu_peaks(cpu)["fp32"]["source"] == "unknown"


# machine -> {pci address: integrated?}, and how many display adapters are not GPUs
PCI_CASES: dict[str, tuple[dict[str, bool], int]] = {
    "asus-aio-lucienne-apu/lspci-vvnn.txt": ({"0000:04:00.0": True}, 0),  # Lucienne APU (Ryzen 5000U)
    "pve-7900xtx-passthrough/lspci-nn.txt": ({"0000:01:00.0": False, "0000:05:00.0": False}, 0),
    "pve-7900xtx-passthrough/lspci-nnk.txt": ({"0000:05:00.0": False}, 0),  # bound to vfio-pci, no amdgpu
    "epyc-aspeed-nvidia-server/lspci-nn.txt": ({"0000:c1:00.0": False}, 1),
    "ryzen-arc-a310-aspeed/lspci-nn.txt": ({"0000:09:00.0": False}, 1),  # Arc A310 (DG2) + ASPEED BMC
    # Coffee Lake laptop: UHD 630 iGPU, GeForce MX130 (a "3D controller") and a GTX 970 in an eGPU box
    "laptop-uhd630-mx130-egpu-gtx970/lspci-nn.txt": (
        {"0000:00:02.0": True, "0000:02:00.0": False, "0000:08:00.0": False},
        0,
    ),
}


@pytest.mark.parametrize("dump", sorted(PCI_CASES))
def test_lspci_dumps_gpu_kinds(dump: str) -> None:
    expected, skipped = PCI_CASES[dump]
    gpus, not_gpus = parse_lspci((WILD / dump).read_text())
    assert {g["pci_address"]: g["integrated"] for g in gpus} == expected
    assert len(not_gpus) == skipped and all("ASPEED" in n for n in not_gpus)
    assert all(g["integrated_reason"] for g in gpus)


def test_passthrough_card_keeps_its_driver_and_is_discrete() -> None:
    (gpu,), _ = parse_lspci((WILD / "pve-7900xtx-passthrough/lspci-nnk.txt").read_text())
    assert gpu["driver"] == "vfio-pci" and not gpu["integrated"] and "0x744c" in gpu["integrated_reason"]


def test_every_dump_is_listed_in_sources() -> None:
    sources = (WILD / "SOURCES.md").read_text()
    for machine in WILD.iterdir():
        if machine.is_dir():
            assert f"`{machine.name}/" in sources, machine.name


def test_graviton3_without_a_clock_is_unknown_but_its_flags_are_read() -> None:
    """AWS hpc7g (Graviton3, 64 Neoverse V1 at 2.6 GHz per AWS): lscpu shows no max clock, so no peak;
    bf16 sits on the wrapped second line of the Flags."""
    cpu = _lscpu("graviton3-hpc7g")
    assert (cpu["sockets"], cpu["physical_cores"], cpu["microarchitecture"]) == (1, 64, "Neoverse V1")
    assert {"sve", "bf16", "asimdhp"} <= set(cpu["features"])
    fp32 = cpu_peaks(cpu)["fp32"]
    assert fp32["value"] is None and "clock unknown" in fp32["detail"]


def test_sapphire_rapids_vms_amx_flags_and_a_current_clock_peak_labelled_derived() -> None:
    """AWS m7i (llama.cpp#2555): AMX and AVX-512 BF16/FP16 read from the pasted flags; the paste has no
    family/model or core split, so no peak. AWS r7iz (cpu_features#296): family 6 model 143, one core,
    only the current clock (3667 MHz; the all-core turbo of its Xeon Gold 6455B is 3.9 GHz per AWS):
    a derived lower bound, never spec."""
    m7i = _lscpu("aws-m7i-sapphire-rapids")
    assert {"amx_tile", "amx_bf16", "avx512_bf16", "avx512_fp16"} <= set(m7i["features"])
    assert m7i["logical_cores"] == 8 and cpu_peaks(m7i)["fp32"]["value"] is None
    r7iz = _lscpu("aws-r7iz-sapphire-rapids")
    fp32 = cpu_peaks(r7iz)["fp32"]
    assert r7iz["microarchitecture"] == "Sapphire Rapids" and r7iz["physical_cores"] == 1
    assert fp32["source"] == "derived" and fp32["value"] == pytest.approx(3667.317e6 * 64)
    assert fp32["value"] < 3.9e9 * 64
