"""Max clocks with their provenance on fake sysfs trees built for the rule under test: acpi-cpufreq's
base-as-max, amd-pstate, firmware nonsense, Arm clusters in physical_package_id, and a fake root that
must never see the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwinfo import snapshot
from hwinfo.cpu import probe_cpu
from hwinfo.cpu_clocks import resolve_max_clock
from hwinfo.peaks import cpu_peaks


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _amd(
    root: Path, name: str, family: int, model: int, cores: int, mhz: str, flags: str = "fma avx2 sme"
) -> Path:
    blocks = [
        f"processor\t: {i}\nvendor_id\t: AuthenticAMD\ncpu family\t: {family}\nmodel\t\t: {model}\n"
        f"model name\t: {name}\nstepping\t: 0\ncpu MHz\t\t: {mhz}\nphysical id\t: 0\ncore id\t\t: {i}\n"
        f"flags\t\t: {flags}\n"
        for i in range(cores)
    ]
    _write(root / "proc/cpuinfo", "\n".join(blocks) + "\n")
    for i in range(cores):
        _write(root / f"sys/devices/system/cpu/cpu{i}/topology/thread_siblings_list", str(i))
        _write(root / f"sys/devices/system/cpu/cpu{i}/topology/physical_package_id", "0")
    return root


def _cpufreq(root: Path, cores: int, **files: str) -> None:
    for i in range(cores):
        for name, value in files.items():
            _write(root / f"sys/devices/system/cpu/cpu{i}/cpufreq/{name}", value)


def test_acpi_cpufreq_with_boost_reports_base_as_max(tmp_path: Path) -> None:
    root = _amd(tmp_path, "AMD EPYC 7713 64-Core Processor", 25, 1, 4, "3100.000")
    _cpufreq(root, 4, cpuinfo_max_freq="2000000", scaling_driver="acpi-cpufreq")
    _write(root / "sys/devices/system/cpu/cpufreq/boost", "1")
    cpu = probe_cpu(str(root), system="Linux")
    assert cpu["max_mhz"] is None and cpu["base_mhz"] == 2000
    assert any("acpi-cpufreq with boost on" in n for n in cpu["clock_notes"])
    fp32 = cpu_peaks(cpu)["fp32"]
    assert fp32["source"] == "derived" and "base clock 2000 MHz" in fp32["detail"]


def test_acpi_cpufreq_without_boost_is_the_max(tmp_path: Path) -> None:
    root = _amd(tmp_path, "AMD EPYC 7713 64-Core Processor", 25, 1, 4, "1500.000")
    _cpufreq(root, 4, cpuinfo_max_freq="2000000", scaling_driver="acpi-cpufreq")
    _write(root / "sys/devices/system/cpu/cpufreq/boost", "0")
    cpu = probe_cpu(str(root), system="Linux")
    assert cpu["max_mhz"] == 2000 and cpu_peaks(cpu)["fp32"]["source"] == "spec"


def test_amd_pstate_max_freq_is_the_boost(tmp_path: Path) -> None:
    root = _amd(tmp_path, "AMD Ryzen 7 7840U w/ Radeon 780M Graphics", 25, 0x74, 8, "1400.000")
    _cpufreq(
        root, 8, cpuinfo_max_freq="3300000", amd_pstate_max_freq="5132000", scaling_driver="amd-pstate-epp"
    )
    cpu = probe_cpu(str(root), system="Linux")
    assert cpu["max_mhz"] == 5132 and "amd_pstate_max_freq" in cpu["clock_sources"]["max_mhz"]
    assert cpu["microarchitecture"] == "Zen 4" and cpu_peaks(cpu)["fp32"]["value"] == pytest.approx(
        8 * 5.132e9 * 32
    )


def test_a_max_far_above_the_family_is_rejected(tmp_path: Path) -> None:
    root = _amd(tmp_path, "AMD Ryzen 9 5900X 12-Core Processor", 25, 0x21, 4, "3700.000")
    _cpufreq(root, 4, cpuinfo_max_freq="7228000", scaling_driver="acpi-cpufreq")
    cpu = probe_cpu(str(root), system="Linux")
    assert cpu["max_mhz"] is None and any("firmware error" in n for n in cpu["clock_notes"])
    fp32 = cpu_peaks(cpu)["fp32"]
    assert fp32["source"] == "derived" and "current clock 3700 MHz" in fp32["detail"]


def test_the_datasheet_wins_over_a_bogus_max_and_the_note_says_so(tmp_path: Path) -> None:
    root = _amd(tmp_path, "AMD Ryzen 9 5950X 16-Core Processor", 25, 0x21, 4, "3400.000")
    _cpufreq(root, 4, cpuinfo_max_freq="7228000", scaling_driver="acpi-cpufreq")
    cpu = probe_cpu(str(root), system="Linux")
    assert cpu["max_mhz"] == 4900 and cpu_peaks(cpu)["fp32"]["source"] == "spec"
    assert any("7228 MHz" in n for n in cpu["clock_notes"])


def test_model_name_ghz_is_the_base_never_the_max() -> None:
    out = resolve_max_clock(
        model_name="Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", uarch="Broadwell", reported_max_mhz=None,
        reported_source="x",
    )  # fmt: skip
    assert out["max_mhz"] is None


def test_x86_sme_flag_is_not_a_feature(tmp_path: Path) -> None:
    cpu = probe_cpu(
        str(_amd(tmp_path, "AMD EPYC 9654 96-Core Processor", 25, 0x11, 2, "2400.000")), system="Linux"
    )
    assert "sme" not in cpu["features"] and "avx2" in cpu["features"]


def _arm_soc(root: Path, clusters: list[tuple[int, int, int]]) -> Path:
    """clusters: (CPU part, count, max kHz); physical_package_id holds the cluster, as on kernels < 5.16."""
    blocks, cpu = [], 0
    for pkg, (part, count, khz) in enumerate(clusters):
        for _ in range(count):
            blocks.append(
                f"processor\t: {cpu}\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd asimdhp bf16 sme\n"
                f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0x{part:03x}\n"
                "CPU revision\t: 0\n"
            )
            base = root / f"sys/devices/system/cpu/cpu{cpu}"
            _write(base / "topology/physical_package_id", str(pkg))
            _write(base / "topology/thread_siblings_list", str(cpu))
            _write(base / "cpufreq/cpuinfo_max_freq", str(khz))
            cpu += 1
    _write(root / "proc/cpuinfo", "\n".join(blocks) + "\n")
    return root


def test_arm_soc_clusters_are_one_socket_with_their_own_clocks(tmp_path: Path) -> None:
    """RK3588-like: 4 Cortex-A55 at 1.8 GHz + 2 + 2 Cortex-A76 at 2.4 GHz in three packages."""
    root = _arm_soc(tmp_path, [(0xD05, 4, 1800000), (0xD0B, 2, 2400000), (0xD0B, 2, 2400000)])
    cpu = probe_cpu(str(root), system="Linux")
    assert cpu["sockets"] == 1 and cpu["physical_cores"] == 8
    assert [(g["part"], g["count"], g["max_mhz"]) for g in cpu["core_groups"]] == [
        ("Cortex-A55", 4, 1800.0),
        ("Cortex-A76", 4, 2400.0),
    ]
    assert cpu["model_name"] == "ARM 4x Cortex-A76 + 4x Cortex-A55"
    fp32 = cpu_peaks(cpu)["fp32"]
    assert fp32["source"] == "spec" and fp32["value"] == pytest.approx(4 * 1.8e9 * 8 + 4 * 2.4e9 * 16)
    assert "sme" in cpu["features"]  # Arm's SME, read in the Arm namespace


def test_two_socket_arm_server_keeps_its_sockets(tmp_path: Path) -> None:
    cpu = probe_cpu(str(_arm_soc(tmp_path, [(0xD0C, 4, 3000000), (0xD0C, 4, 3000000)])), system="Linux")
    assert cpu["sockets"] == 2 and cpu["core_groups"][0]["count"] == 8


def test_a_fake_root_never_reads_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "hwinfo.cpu.py_cpuinfo_dict", lambda: pytest.fail("the fake root read this host's CPU")
    )
    root = _arm_soc(tmp_path, [(0xD08, 4, 0)])
    snap = snapshot(root=str(root), use_torch=False, nvml_module=None)
    assert snap["cpu"]["max_mhz"] is None and snap["devices"][0]["peaks"]["fp32"]["value"] is None


def _intel(root: Path, name: str, model: int, cores: int, threads: int, flags: str) -> Path:
    """An Intel family-6 part with `threads` hardware threads per core, in /proc/cpuinfo and sysfs."""
    n = cores * threads
    blocks = [
        f"processor\t: {i}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: {model}\nmodel name\t: {name}\n"
        f"stepping\t: 5\ncpu MHz\t\t: 800.000\nphysical id\t: 0\ncore id\t\t: {i % cores}\nflags\t\t: {flags}\n"
        for i in range(n)
    ]
    _write(root / "proc/cpuinfo", "\n".join(blocks) + "\n")
    for i in range(n):
        siblings = ",".join(str(i % cores + k * cores) for k in range(threads))
        _write(root / f"sys/devices/system/cpu/cpu{i}/topology/thread_siblings_list", siblings)
        _write(root / f"sys/devices/system/cpu/cpu{i}/topology/physical_package_id", "0")
    return root


def test_sysfs_turbo_marker_and_a_p_only_alder_lake(tmp_path: Path) -> None:
    """The same rules from sysfs as from lscpu: acpi-cpufreq's 2501000 kHz on a Core i5-12400 is the base +
    1 MHz, and its 6 cores x 2 threads are all P-cores (no cpu_core/cpu_atom PMUs on a die without E-cores)."""
    root = _intel(tmp_path, "12th Gen Intel(R) Core(TM) i5-12400", 151, 6, 2, "fma avx2")
    _cpufreq(root, 12, cpuinfo_max_freq="2501000", scaling_driver="acpi-cpufreq")
    _write(root / "sys/devices/system/cpu/cpufreq/boost", "1")
    cpu = probe_cpu(str(root), system="Linux")
    assert (cpu["max_mhz"], cpu["base_mhz"], cpu["physical_cores"]) == (None, 2500, 6)
    assert [(g["type"], g["count"]) for g in cpu["core_groups"]] == [("performance", 6)]
    fp32 = cpu_peaks(cpu)["fp32"]
    assert fp32["source"] == "derived" and fp32["value"] == pytest.approx(6 * 2500e6 * 32)


def test_sysfs_guest_with_fma_hidden_is_derived_at_half_rate(tmp_path: Path) -> None:
    """A KVM guest of a Skylake whose flags lack fma (and carry 'hypervisor'): half the FMA rate, derived."""
    root = _intel(tmp_path, "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", 0x9E, 4, 1, "avx avx2 hypervisor")
    _cpufreq(root, 4, cpuinfo_max_freq="4600000", scaling_driver="intel_pstate")
    cpu = probe_cpu(str(root), system="Linux")
    assert cpu["virtual_machine"] and cpu["max_mhz"] == 4600
    fp32 = cpu_peaks(cpu)["fp32"]
    assert fp32["source"] == "derived" and fp32["value"] == pytest.approx(4 * 4600e6 * 16)
    assert "no fma flag" in fp32["detail"] and "virtual machine" in fp32["detail"]
