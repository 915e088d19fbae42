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
    "ryzen9-7950x-amd-pstate": (
        1,
        16,
        16 * 5.7 * G * 32,
        "spec",
        "Ryzen 9 7950X: 16 Zen 4 cores, boost 5.7 GHz (amd.com); 2 x 256-bit FMA",
    ),
    "raspberry-pi-5": (1, 4, 4 * 2.4 * G * 16, "spec", "Raspberry Pi 5: BCM2712, 4 Cortex-A76 at 2.4 GHz"),
    # Cluster(s): 2 of 4 cores under "Socket(s): -"; the A78AE is an A78 (2 x 128-bit FMA)
    "jetson-orin-nx-16gb": (
        1,
        8,
        8 * 2.0 * G * 16,
        "spec",
        "Jetson Orin NX 16GB: 8 Cortex-A78AE to 2.0 GHz (NVIDIA datasheet)",
    ),
    # Ice Lake-SP Gold 5318Y: 24 cores, turbo 3.4 GHz, two AVX-512 FMA units (ark 215270)
    "xeon-gold-5318y-2s": (2, 48, 48 * 3.4 * G * 64, "spec", "ark 215270"),
    # i5-12400: 6 P-cores, 2.5 / 4.4 GHz (ark 134586); lscpu's max 2501 is acpi-cpufreq's turbo marker
    "core-i5-12400-acpi-cpufreq": (1, 6, 6 * 4.4 * G * 32, "derived", "ark 134586"),
    # E5-2698B v3 (an OEM part, not on ark): 2 x 16 Haswell cores, base 2.0 GHz in the name, max 2001
    # (its turbo clock is not published by Intel, so the right peak is only known to be above the base's)
    "xeon-e5-2698b-v3-2s-acpi-cpufreq": (2, 32, None, "derived", "model name '@ 2.00GHz'"),
    # Raspberry Pi 4B at 1.8 GHz: the A72's two 64-bit NEON pipes do one 128-bit FMLA per cycle
    "raspberry-pi-4b": (1, 4, 4 * 1.8 * G * 8, "spec", "Raspberry Pi 4B: BCM2711, 4 Cortex-A72 to 1.8 GHz"),
    # Rock 5B: RK3588, 4 Cortex-A76 to 2.4 GHz + 4 Cortex-A55 to 1.8 GHz (Rockchip RK3588 datasheet);
    # this 5.10 kernel puts the two A76 pairs in two "sockets"
    "rock5b-rk3588": (1, 8, 4 * 2.4 * G * 16 + 4 * 1.8 * G * 8, "spec", "Rockchip RK3588 datasheet"),
    # RockPi N10: RK3399Pro, 2 Cortex-A72 to 1.8 GHz + 4 Cortex-A53 to 1.4 GHz (Rockchip RK3399Pro datasheet)
    "rockpi-n10-rk3399pro": (1, 6, 2 * 1.8 * G * 8 + 4 * 1.4 * G * 8, "spec", "Rockchip RK3399Pro datasheet"),
    # zh_CN lscpu (full-width colons, Chinese field names): Core i7-8550U, 4 cores, 1.8 / 4.0 GHz (ark 122589)
    "dell-xps-i7-8550u-zh-cn": (1, 4, 4 * 4.0 * G * 32, "spec", "ark 122589"),
    # Jetson AGX Orin 64GB: 12 Cortex-A78AE in 3 clusters to 2.2 GHz (NVIDIA Jetson AGX Orin datasheet)
    "jetson-agx-orin-64gb": (1, 12, 12 * 2.2 * G * 16, "spec", "NVIDIA Jetson AGX Orin datasheet"),
    # 2x EPYC 9654: 96 Zen 4 cores each, boost 3.7 GHz (amd.com); lscpu from a kernel patch mail (max 3709,
    # CPPC with "Frequency boost: enabled") and an HPC lesson's paste with "[ ... text truncated ... ]" lines
    "epyc-9654-2s-cppc": (2, 192, 192 * 3.7 * G * 32, "spec", "amd.com EPYC 9654"),
    "epyc-9654-2s-truncated": (2, 192, 192 * 3.7 * G * 32, "spec", "amd.com EPYC 9654"),
    # 2x Xeon Platinum 8480+ (Sapphire Rapids): 56 cores each, turbo 3.8 GHz, two AVX-512 FMA units (ark 231746)
    "xeon-8480plus-2s-amx": (2, 112, 112 * 3.8 * G * 64, "spec", "ark 231746"),
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
        assert fp32["detail"].startswith("derived"), fp32["detail"]
        assert right is None or fp32["value"] < right, fp32["detail"]
    else:
        assert fp32["value"] is None and "Cortex-A510" in fp32["detail"]


def test_acpi_cpufreq_base_clock_is_not_taken_for_the_boost() -> None:
    """EPYC 7451: 'CPU max MHz' 2300 (base) while 'CPU MHz' reads 2894; EPYC 7742: 2250 = its base."""
    c7451, c7742 = _lscpu("epyc-7451-2s"), _lscpu("epyc-7742-2s")
    assert c7451["max_mhz"] == 3200 and c7451["base_mhz"] == 2300
    # lscpu says "Frequency boost: enabled" (acpi-cpufreq's boost file) and the max is below 'CPU MHz' 2894
    assert any("acpi-cpufreq with boost on" in n for n in c7451["clock_notes"])
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
    # Dell XPS 15 9570: UHD 630 iGPU (i915) + GTX 1050 Ti Mobile as a 3D controller (nvidia driver)
    "dell-xps15-9570-uhd630-gtx1050ti/lspci-nnk.txt": ({"0000:00:02.0": True, "0000:01:00.0": False}, 0),
    # Azure NC6: Hyper-V synthetic VGA + a Tesla K80 in PCI domain 61f0 on bus 00 (-vnn "Memory at" lines)
    "azure-nc6-k80-hyperv/lspci-vnn.txt": ({"61f0:00:00.0": False}, 1),
    # Azure NVv4: Hyper-V VGA + a Radeon Instinct MI25 MxGPU virtual function on bus 00, amdgpu bound
    "azure-nv4-mi25-hyperv/lspci-nnk.txt": ({"a26d:00:00.0": False}, 1),
    # Ryzen 7000 desktop: RX 6800 card (Navi 21) + the CPU's Raphael iGPU, which sits on bus 13, not 00
    "ryzen7000-raphael-rx6800/lspci-nn.txt": ({"0000:03:00.0": False, "0000:13:00.0": True}, 0),
    # VirtualBox guest: its VMSVGA adapter is VMware's SVGA II id (15ad:0405), not a GPU
    "virtualbox-vm-vmsvga/lspci-nn.txt": ({}, 1),
    # plain `lspci -kk` in a QEMU container (a libkmod error line in the middle): a Virtio GPU with no ids
    "qemu-container-virtio-gpu/lspci-kk.txt": ({}, 1),
}


@pytest.mark.parametrize("dump", sorted(PCI_CASES))
def test_lspci_dumps_gpu_kinds(dump: str) -> None:
    expected, skipped = PCI_CASES[dump]
    gpus, not_gpus = parse_lspci((WILD / dump).read_text())
    assert {g["pci_address"]: g["integrated"] for g in gpus} == expected
    assert len(not_gpus) == skipped
    assert all(
        ("not a GPU" in n and ("ASPEED" in n or "Hyper-V" in n or "VMware" in n)) or "lspci -nn" in n
        for n in not_gpus
    )
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


def test_zen4_amd_pstate_max_is_within_5_percent_without_the_datasheet_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Zen 4 part missing from the datasheet table: amd-pstate's 'CPU max MHz' 5879.9 (its highest
    performance level) is 3% above the 7950X's 5.7 GHz boost, so the rule stays within 5%; avx512_bf16
    doubles bf16. The paste lost some wrap newlines ("ra" + 25 spaces + "pl"): the flags are rejoined."""
    monkeypatch.setattr("hwinfo.cpu_clocks.CPU_DATASHEET", ())
    cpu = _lscpu("ryzen9-7950x-amd-pstate")
    peaks = cpu_peaks(cpu)
    assert cpu["max_mhz"] == pytest.approx(5879.8818) and peaks["fp32"]["source"] == "spec"
    assert peaks["fp32"]["value"] == pytest.approx(16 * 5.7 * G * 32, rel=0.05)
    assert peaks["bf16"]["value"] == 2 * peaks["fp32"]["value"]
    from hwinfo.lscpu import parse_lscpu

    flags = set(parse_lscpu((WILD / "ryzen9-7950x-amd-pstate/lscpu.txt").read_text())[1][0]["Flags"].split())
    assert {"rapl", "perfctr_core", "fsgsbase", "cqm_mbm_local", "overflow_recov", "nx"} <= flags
    assert not flags & {"ra", "pl", "perfct", "r_core"}


def test_a_vm_or_hidden_isa_is_never_a_spec_peak_at_the_full_rate() -> None:
    """Hostile variants of real dumps: the same 7950X seen from a guest (hypervisor flag), with FMA
    hidden, and a Xeon Gold 6130 with AVX-512 hidden. The table's rate assumes the widest FMA the core
    has; code can only use what the flags expose."""
    text = (WILD / "ryzen9-7950x-amd-pstate/lscpu.txt").read_text()
    guest = cpu_peaks(cpu_from_lscpu(text.replace(" ht syscall", " ht hypervisor syscall")))["fp32"]
    assert guest["source"] == "derived" and "virtual machine" in guest["detail"]
    no_fma = cpu_peaks(cpu_from_lscpu(text.replace(" ssse3 fma ", " ssse3 ")))["fp32"]
    assert no_fma["source"] == "derived" and no_fma["value"] == pytest.approx(16 * 5700e6 * 16)
    gold = (WILD / "xeon-gold-6130/lscpu.txt").read_text()
    assert " avx512f " in gold
    no_avx512 = cpu_peaks(cpu_from_lscpu(gold.replace(" avx512f ", " ")))["fp32"]
    assert no_avx512["value"] == pytest.approx(16 * 3700e6 * 32) and "no avx512f flag" in no_avx512["detail"]


def test_vms_without_a_clock_are_unknown_and_a_hybrid_without_its_split_is_not_spec() -> None:
    """Oracle Ampere A1 (4 Neoverse N1 vCPUs, 'Socket(s): -', no clock) and a KVM guest of a Core
    i7-12700H (12 vCPUs, one thread each, no clock, FMA hidden): counts right, peaks unknown. Given a
    clock, the 12700H guest is still no spec peak: its vCPUs may sit on P- or E-cores."""
    a1 = _lscpu("oracle-a1-neoverse-n1-vm")
    assert (a1["sockets"], a1["physical_cores"], a1["microarchitecture"]) == (1, 4, "Neoverse N1")
    assert cpu_peaks(a1)["fp32"]["source"] == "unknown"
    adl = _lscpu("alder-lake-12700h-kvm")
    assert (adl["sockets"], adl["physical_cores"], adl["microarchitecture"]) == (1, 12, "Alder Lake")
    assert adl["virtual_machine"] and "fma" not in adl["features"]
    assert cpu_peaks(adl)["fp32"]["source"] == "unknown"
    clocked = cpu_peaks({**adl, "max_mhz": 4700.0, "clock_sources": {"max_mhz": "test"}})["fp32"]
    assert clocked["source"] == "derived" and "P/E core split is not known" in clocked["detail"]


def test_cards_on_bus_00_of_a_vm_are_discrete_and_keep_their_driver() -> None:
    """In Azure VMs the GPU sits on bus 00 of its own PCI domain: bus 00 alone never makes it an iGPU.
    The K80's 16 GiB BAR comes from `lspci -v` ("Memory at ... [size=16G]", no "Region N:")."""
    (k80,), _ = parse_lspci((WILD / "azure-nc6-k80-hyperv/lspci-vnn.txt").read_text())
    assert "16 GiB memory BAR" in k80["integrated_reason"]
    (mi25,), skipped = parse_lspci((WILD / "azure-nv4-mi25-hyperv/lspci-nnk.txt").read_text())
    assert mi25["driver"] == "amdgpu" and "0x686c" in mi25["integrated_reason"]
    assert skipped == [
        "Hyper-V synthetic display at 0000:00:08.0 (1414:5353) is a display adapter, not a GPU"
    ]
    gpus, _ = parse_lspci((WILD / "dell-xps15-9570-uhd630-gtx1050ti/lspci-nnk.txt").read_text())
    assert [g["driver"] for g in gpus] == ["i915", "nvidia"]


def test_wrapped_flags_keep_the_space_a_cut_fell_on() -> None:
    """lscpu cuts at the terminal width; a cut on a space moves the space to the next line (one column
    further in), a cut inside a word does not. Xeon Gold 5318Y (80 columns, tree output) and a GCP c3
    guest (old flat output, column 33): every flag comes back whole."""
    from hwinfo.lscpu import parse_lscpu

    _top, (sec,) = parse_lscpu((WILD / "xeon-gold-5318y-2s/lscpu.txt").read_text())
    flags = sec["Flags"].split()
    assert {"art", "arch_perfmon", "nonstop_tsc", "ds_cpl", "avx512bw", "avx512_vnni", "md_clear"} <= set(
        flags
    )
    assert not {"artarch_perfmon", "fsrmmd_clear", "smapavx512ifma"} & set(flags)
    _top, (gcp_sec,) = parse_lscpu((WILD / "gcp-c3-xeon-8481c-kvm/lscpu.txt").read_text())
    gcp = set(gcp_sec["Flags"].split())
    assert {"ht", "syscall", "pni", "pclmulqdq", "lahf_lm", "avx2", "sha_ni", "md_clear"} <= gcp
    assert not {"htsyscall", "pnipclmulqdq"} & gcp


def test_gcp_c3_guest_peak_is_a_derived_lower_bound() -> None:
    """GCP c3 (2x Xeon Platinum 8481C, Sapphire Rapids, 44 cores each, KVM): no max clock, only the
    '@ 2.70GHz' of the name (the base) and 'CPU MHz'; no amx flags in this guest, avx512_bf16 yes."""
    cpu = _lscpu("gcp-c3-xeon-8481c-kvm")
    assert (cpu["sockets"], cpu["physical_cores"], cpu["microarchitecture"]) == (2, 88, "Sapphire Rapids")
    assert cpu["virtual_machine"] and "amx_bf16" not in cpu["features"]
    peaks = cpu_peaks(cpu)
    assert peaks["fp32"]["source"] == "derived" and peaks["fp32"]["value"] == pytest.approx(88 * 2.7e9 * 64)
    assert (
        "virtual machine" in peaks["fp32"]["detail"] and peaks["bf16"]["value"] == 2 * peaks["fp32"]["value"]
    )


def test_apple_silicon_guest_without_a_part_name_is_unknown() -> None:
    """Linux in a VM on an Apple M-series Mac: 'Model name: -', 'Model: 0', 2 vCPUs. Which chip and which
    core type the vCPUs run on is not in the dump: core count right, peak unknown, not a table guess."""
    cpu = _lscpu("apple-silicon-vm-2vcpu")
    assert (cpu["vendor"], cpu["physical_cores"], cpu["sockets"]) == ("Apple", 2, 1)
    assert "-" not in cpu["model_name"] and {"bf16", "asimdhp"} <= set(cpu["features"])
    assert cpu_peaks(cpu)["fp32"]["source"] == "unknown"


def test_the_acpi_turbo_marker_is_the_base_clock_never_the_max() -> None:
    """acpi-cpufreq on Intel reports the _PSS turbo entry, base + 1 MHz, as the max: 2501 on a Core
    i5-12400 (turbo 4.4 GHz), 2001 on a Xeon E5-2698B v3. Taken as the max, both were spec peaks at the
    base clock (-43% on the i5). Now: base 2500 / 2000, peak derived, the reason in the notes. And an
    Alder Lake die whose every core runs two threads has no E-cores: all 6 are P-cores."""
    i5 = _lscpu("core-i5-12400-acpi-cpufreq")
    assert (i5["max_mhz"], i5["base_mhz"]) == (None, 2500.0)
    assert any("turbo marker" in n for n in i5["clock_notes"])
    assert [(g["type"], g["count"]) for g in i5["core_groups"]] == [("performance", 6)]
    fp32 = cpu_peaks(i5)["fp32"]
    assert fp32["value"] == pytest.approx(6 * 2500e6 * 32) and "P/E core split" not in fp32["detail"]
    xeon = _lscpu("xeon-e5-2698b-v3-2s-acpi-cpufreq")
    assert (xeon["max_mhz"], xeon["base_mhz"], xeon["microarchitecture"]) == (None, 2000.0, "Haswell")


def test_a_non_round_cppc_max_under_acpi_cpufreq_boost_is_kept() -> None:
    """Since Linux 5.12, acpi-cpufreq on AMD reports CPPC's highest performance as the max (5879.88 MHz on
    a Ryzen 9 7950X, 'Frequency boost: enabled'): not a P-state table value, so not the base."""
    from hwinfo.cpu_clocks import resolve_max_clock

    got = resolve_max_clock(
        model_name="AMD Ryzen 7 7700X 8-Core Processor",
        uarch="Zen 4",
        reported_max_mhz=5879.8818,
        reported_source="lscpu",
        boost_on=True,
    )
    assert got["max_mhz"] == pytest.approx(5879.8818)
    base = resolve_max_clock(
        model_name="x", uarch="Zen 4", reported_max_mhz=4500.0, reported_source="lscpu", boost_on=True
    )
    assert base["max_mhz"] is None and base["base_mhz"] == 4500.0


def test_a_big_little_board_is_one_soc_with_each_cluster_at_its_clock() -> None:
    """RK3588 on a 5.10 kernel: lscpu shows the A76s as 2 sockets of 2 cores. One SoC, one socket; the
    A55 and A76 groups keep their own max clocks, and the peak sums the two."""
    cpu = _lscpu("rock5b-rk3588")
    assert cpu["sockets"] == 1 and cpu["model_name"] == "ARM 4x Cortex-A76 + 4x Cortex-A55"
    assert {(g["part"], g["count"], g["max_mhz"]) for g in cpu["core_groups"]} == {
        ("Cortex-A55", 4, 1800.0),
        ("Cortex-A76", 4, 2400.0),
    }


def test_lscpu_in_chinese_is_read_and_another_language_is_a_labelled_unknown() -> None:
    """zh_CN lscpu: full-width colons (two columns wide, so the wrapped Flags are rejoined by screen
    width) and translated field names. A language hwinfo does not read gives unknowns and one note."""
    cpu = _lscpu("dell-xps-i7-8550u-zh-cn")
    assert (cpu["vendor"], cpu["microarchitecture"], cpu["physical_cores"], cpu["max_mhz"]) == (
        "Intel",
        "Skylake",
        4,
        4000.0,
    )
    from hwinfo.lscpu import parse_lscpu

    _top, (sec,) = parse_lscpu((WILD / "dell-xps-i7-8550u-zh-cn/lscpu.txt").read_text())
    assert {"xtopology", "nonstop_tsc", "tsc_adjust", "bmi1", "3dnowprefetch", "dtherm", "pcid"} <= set(
        sec["Flags"].split()
    )
    # the same dump with German field names (a language hwinfo has no table for): unknowns and one note
    text = (WILD / "dell-xps-i7-8550u-zh-cn/lscpu.txt").read_text()
    for zh, de in (
        ("架构", "Architektur"),
        ("厂商 ID", "Anbieterkennung"),
        ("型号名称", "Modellname"),
        ("CPU 系列", "Prozessorfamilie"),
        ("型号", "Modell"),
        ("每个核的线程数", "Thread(s) pro Kern"),
        ("每个座的核数", "Kern(e) pro Sockel"),
        ("座", "Sockel"),
        ("CPU 最大 MHz", "Maximale Taktfrequenz der CPU"),
        ("标记", "Markierungen"),
    ):
        text = text.replace(zh + "：", de + ":")
    other = cpu_from_lscpu(text)
    assert other["microarchitecture"] is None and cpu_peaks(other)["fp32"]["source"] == "unknown"
    assert any("LC_ALL=C lscpu" in n for n in other["clock_notes"])


def _hostile_variants(text: str) -> dict[str, str]:
    """Real dumps damaged the ways pastes are: cut short (in a line too), CRLF line ends, tabs for
    spaces, every second line lost, values emptied, the colons gone."""
    lines = text.splitlines()
    return {
        "first third": "\n".join(lines[: max(1, len(lines) // 3)]),
        "cut mid-line": text[: len(text) // 2],
        "crlf": text.replace("\n", "\r\n"),
        "tabs": text.replace("    ", "\t"),
        "every second line": "\n".join(lines[::2]),
        "values emptied": "\n".join(line.partition(":")[0] + ":" for line in lines),
        "no colons": text.replace(":", " "),
        "one line": text.replace("\n", " "),
    }


_DUMPS = sorted(p.relative_to(WILD).as_posix() for p in WILD.glob("*/*") if p.name != "SOURCES.md")


@pytest.mark.parametrize("dump", _DUMPS)
def test_damaged_real_dumps_give_values_or_labelled_unknowns_never_a_traceback(
    dump: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hwinfo.cpu.py_cpuinfo_dict", lambda: pytest.fail("a fake root read the host"))
    text = (WILD / dump).read_text()
    for n, (how, damaged) in enumerate(_hostile_variants(text).items()):
        if dump.endswith(("lscpu.txt", "cpuinfo")):
            if dump.endswith("cpuinfo"):
                (tmp_path / f"{n}/proc").mkdir(parents=True)
                (tmp_path / f"{n}/proc/cpuinfo").write_text(damaged)
                cpu = probe_cpu(str(tmp_path / str(n)), system="Linux")
            else:
                cpu = cpu_from_lscpu(damaged)
            peaks = cpu_peaks(cpu)
            for dtype, peak in peaks.items():
                assert peak["source"] in ("spec", "derived", "unknown"), (how, dtype)
                assert (peak["value"] is None) == (peak["source"] == "unknown"), (how, dtype, peak)
                assert peak["value"] is None or peak["value"] > 0, (how, dtype)
                assert peak["detail"], (how, dtype)
            assert cpu["physical_cores"] is None or cpu["physical_cores"] > 0, how
        elif "lspci" in dump:
            gpus, skipped = parse_lspci(damaged)
            assert all(g["integrated_reason"] and g["vendor_id"].startswith("0x") for g in gpus), how
            assert all(isinstance(n, str) for n in skipped), how


def test_ampereone_excerpt_names_its_core_and_leaves_the_rest_unknown() -> None:
    """Five lscpu lines of an AmpereOne A192-32X (util-linux patch mail): 'Ampere-1a' is an AmpereOne
    core (Ampere: 192 cores to 3.2 GHz, 2 x 128-bit FMA); the excerpt has no core count or clock, so the
    peak is unknown, not a guess from the truncated '3.2GH' of the BIOS name."""
    cpu = _lscpu("ampereone-a192-32x")
    assert (cpu["vendor"], cpu["microarchitecture"], cpu["model_name"]) == (
        "Ampere",
        "AmpereOne",
        "Ampere AmpereOne",
    )
    assert cpu["max_mhz"] is None and cpu["base_mhz"] is None
    assert cpu_peaks(cpu)["fp32"]["source"] == "unknown"


def test_epyc_9654_cppc_max_under_boost_is_kept_without_the_datasheet_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """'Frequency boost: enabled' with a non-round 3709 MHz: CPPC's boost figure, not acpi-cpufreq's base
    (2400): within 5% of the 3.7 GHz datasheet boost even when the model is not in hwinfo's table."""
    monkeypatch.setattr("hwinfo.cpu_clocks.CPU_DATASHEET", ())
    cpu = _lscpu("epyc-9654-2s-cppc")
    fp32 = cpu_peaks(cpu)["fp32"]
    assert cpu["max_mhz"] == 3709.0 and fp32["source"] == "spec"
    assert fp32["value"] == pytest.approx(192 * 3.7e9 * 32, rel=0.05)


def test_zen5_guest_full_datapath_but_never_spec() -> None:
    """A 2-vCPU KVM slice of a Ryzen 9 9950X (family 26 model 68, Granite Ridge: a full 512-bit datapath,
    64 FP32 FLOP/cycle per core; boost 5.7 GHz, amd.com): the flags (a paste that lost its newlines) give
    avx512f and avx512_bf16, and the peak is derived, an upper bound for two vCPUs."""
    cpu = _lscpu("ryzen9-9950x-kvm-2vcpu")
    assert (cpu["microarchitecture"], cpu["physical_cores"], cpu["virtual_machine"]) == ("Zen 5", 2, True)
    assert {"avx512f", "avx512_bf16", "fma"} <= set(cpu["features"])
    peaks = cpu_peaks(cpu)
    assert peaks["fp32"]["source"] == "derived" and peaks["fp32"]["value"] == pytest.approx(2 * 5.7e9 * 64)
    assert peaks["bf16"]["value"] == 2 * peaks["fp32"]["value"]


def test_sapphire_rapids_bare_metal_amx_peak_from_family_model_and_flags() -> None:
    """2x Xeon Platinum 8480+ (Intel Developer Cloud, Hugging Face blog): family 6 model 143, amx_bf16 and
    amx_tile in the flags: bf16 at the AMX rate (1024 FLOP/cycle/core), fp16 at AVX512-FP16's 2x."""
    cpu = _lscpu("xeon-8480plus-2s-amx")
    assert cpu["microarchitecture"] == "Sapphire Rapids" and not cpu["virtual_machine"]
    assert {"amx_tile", "amx_bf16", "avx512_fp16"} <= set(cpu["features"])
    peaks = cpu_peaks(cpu)
    assert peaks["bf16"]["source"] == "spec" and peaks["bf16"]["value"] == pytest.approx(112 * 3.8e9 * 1024)
    assert peaks["fp16"]["value"] == pytest.approx(2 * peaks["fp32"]["value"])


@pytest.mark.parametrize(
    "brand",
    ["Ampere(R) Altra(R) Processor Q80-30 CPU @ 3.0GHz", "Ampere(R) Altra(R) Processor Q00-00 CPU @ 3.0GHz"],
)
def test_an_arm_brand_name_in_place_of_the_core_is_read(brand: str) -> None:
    """Some lscpu versions print the SMBIOS brand as the Model name of an Ampere Altra (quoted in a util-linux
    review: "Ampere(R) Altra(R) Processor Q00-00 CPU @ 3.0GHz"): the core is still a Neoverse N1."""
    text = (WILD / "ampere-altra-q80-30/lscpu.txt").read_text().replace("Neoverse-N1", brand)
    cpu = cpu_from_lscpu(text)
    assert (cpu["microarchitecture"], cpu["physical_cores"]) == ("Neoverse N1", 80)
    assert cpu_peaks(cpu)["fp32"]["value"] == pytest.approx(80 * 3.0e9 * 16)
