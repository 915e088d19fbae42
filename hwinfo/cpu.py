"""CPU probe: vendor, model, microarchitecture, cores, clocks, caches and SIMD/matrix features.

Linux reads {root}/proc/cpuinfo and {root}/sys/devices/system/cpu (so tests pass a fake tree);
other systems use py-cpuinfo and psutil (macOS adds sysctl for Apple's P/E core split).
"""

from __future__ import annotations

import math
import platform
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cpuinfo
import psutil

from hwinfo.cpu_clocks import model_name_base_mhz, resolve_max_clock
from hwinfo.peaks import APPLE_CHIPS, CPU_UARCHS, apple_chip

# Flags reported in cpu["features"], each read only in its architecture's namespace: x86 "sme" is AMD
# Secure Memory Encryption, Arm "sme" the Scalable Matrix Extension.
X86_FEATURES: tuple[str, ...] = (
    "fma",
    "avx2",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
)
ARM_FEATURES: tuple[str, ...] = ("asimd", "asimdhp", "bf16", "sve", "sve2", "sme")
FEATURE_FLAGS: tuple[str, ...] = X86_FEATURES + ARM_FEATURES


_CPU_KEYS = (
    "vendor vendor_id model_name family model stepping arm_part microarchitecture sockets physical_cores "
    "logical_cores core_groups base_mhz max_mhz max_mhz_is_spec current_mhz clock_sources clock_notes caches "
    "llc_bytes features flags_read virtual_machine probe"
).split()
_OPTIONAL_KEYS = {"max_mhz_is_spec", "clock_notes"}


def cpu_section(**fields: Any) -> dict[str, Any]:
    """The snapshot's `cpu` section, in the one key order every probe writes (a missing required key raises)."""
    return {k: fields[k] for k in _CPU_KEYS if k in fields or k not in _OPTIONAL_KEYS}


def features_of(flags: set[str], arch: str) -> list[str]:
    """The tracked features among `flags`, read in the namespace of `arch` ("x86" or "arm")."""
    names = X86_FEATURES if arch == "x86" else ARM_FEATURES if arch == "arm" else ()
    return [f for f in names if f in flags]


_X86_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}
_ARM_IMPLEMENTERS = {
    0x41: "ARM",
    0x42: "Broadcom",
    0x43: "Cavium",
    0x48: "HiSilicon",
    0x4E: "NVIDIA",
    0x51: "Qualcomm",
    0x61: "Apple",
    0x6D: "Microsoft",
    0xC0: "Ampere",
}
# (implementer, part) -> (core name, microarchitecture in peaks.CPU_UARCHS, core type, lscpu's name).
# Sources: Linux arch/arm64/include/asm/cputype.h and util-linux sys-utils/lscpu-arm.c (the part
# numbers), Apple's cores as Asahi Linux reports them (same files).
ARM_PARTS: dict[tuple[int, int], tuple[str, str, str, str]] = {
    (0x41, 0xD03): ("Cortex-A53", "Cortex-A53", "core", "Cortex-A53"),
    (0x41, 0xD05): ("Cortex-A55", "Cortex-A55", "core", "Cortex-A55"),
    (0x41, 0xD08): ("Cortex-A72", "Cortex-A72", "core", "Cortex-A72"),
    (0x41, 0xD0B): ("Cortex-A76", "Cortex-A76", "core", "Cortex-A76"),
    (0x41, 0xD0C): ("Neoverse N1", "Neoverse N1", "core", "Neoverse-N1"),
    (0x41, 0xD0D): ("Cortex-A77", "Cortex-A77", "core", "Cortex-A77"),
    (0x41, 0xD40): ("Neoverse V1", "Neoverse V1", "core", "Neoverse-V1"),
    (0x41, 0xD41): ("Cortex-A78", "Cortex-A78", "core", "Cortex-A78"),
    (0x41, 0xD44): ("Cortex-X1", "Cortex-X1", "core", "Cortex-X1"),
    (0x41, 0xD46): ("Cortex-A510", "Cortex-A510", "core", "Cortex-A510"),
    (0x41, 0xD47): ("Cortex-A710", "Cortex-A710", "core", "Cortex-A710"),
    (0x41, 0xD48): ("Cortex-X2", "Cortex-X2", "core", "Cortex-X2"),
    (0x41, 0xD49): ("Neoverse N2", "Neoverse N2", "core", "Neoverse-N2"),
    (0x41, 0xD4D): ("Cortex-A715", "Cortex-A715", "core", "Cortex-A715"),
    (0x41, 0xD4E): ("Cortex-X3", "Cortex-X3", "core", "Cortex-X3"),
    (0x41, 0xD4F): ("Neoverse V2", "Neoverse V2", "core", "Neoverse-V2"),
    (0x41, 0xD84): ("Neoverse V3", "Neoverse V3", "core", "Neoverse-V3"),
    (0x41, 0xD04): ("Cortex-A35", "Cortex-A35", "core", "Cortex-A35"),
    (0x41, 0xD07): ("Cortex-A57", "Cortex-A57", "core", "Cortex-A57"),
    (0x41, 0xD09): ("Cortex-A73", "Cortex-A73", "core", "Cortex-A73"),
    (0x41, 0xD0A): ("Cortex-A75", "Cortex-A75", "core", "Cortex-A75"),
    (0x41, 0xD0E): ("Cortex-A76AE", "Cortex-A76", "core", "Cortex-A76AE"),
    (0x41, 0xD42): ("Cortex-A78AE", "Cortex-A78", "core", "Cortex-A78AE"),  # NVIDIA Jetson Orin
    (0x41, 0xD4B): ("Cortex-A78C", "Cortex-A78", "core", "Cortex-A78C"),
    (0x41, 0xD4C): ("Cortex-X1C", "Cortex-X1", "core", "Cortex-X1C"),
    (0x41, 0xD80): ("Cortex-A520", "Cortex-A520", "core", "Cortex-A520"),
    (0x41, 0xD81): ("Cortex-A720", "Cortex-A720", "core", "Cortex-A720"),
    (0x41, 0xD82): ("Cortex-X4", "Cortex-X4", "core", "Cortex-X4"),
    (0x41, 0xD85): ("Cortex-X925", "Cortex-X925", "core", "Cortex-X925"),
    (0x41, 0xD87): ("Cortex-A725", "Cortex-A725", "core", "Cortex-A725"),
    (0x41, 0xD8E): ("Neoverse N3", "Neoverse N3", "core", "Neoverse-N3"),
    (0x51, 0x001): ("Oryon", "Oryon", "core", "Oryon"),  # Snapdragon X Elite/Plus
    (0x6D, 0xD49): ("Neoverse N2 (Azure Cobalt 100)", "Neoverse N2", "core", "Azure-Cobalt-100"),
    (0x48, 0xD40): ("Cortex-A76", "Cortex-A76", "core", "Cortex-A76"),  # HiSilicon's number (Kirin 980)
    (0xC0, 0xAC3): ("AmpereOne", "AmpereOne", "core", "Ampere-1"),
    (0xC0, 0xAC4): ("AmpereOne", "AmpereOne", "core", "Ampere-1a"),
    (0xC0, 0xAC5): ("AmpereOne", "AmpereOne", "core", "Ampere-1b"),
    (0x61, 0x022): ("Icestorm (M1)", "Apple M1", "efficiency", "Icestorm-M1"),
    (0x61, 0x023): ("Firestorm (M1)", "Apple M1", "performance", "Firestorm-M1"),
    (0x61, 0x024): ("Icestorm (M1 Pro)", "Apple M1", "efficiency", "Icestorm-M1-Pro"),
    (0x61, 0x025): ("Firestorm (M1 Pro)", "Apple M1", "performance", "Firestorm-M1-Pro"),
    (0x61, 0x028): ("Icestorm (M1 Max)", "Apple M1", "efficiency", "Icestorm-M1-Max"),
    (0x61, 0x029): ("Firestorm (M1 Max)", "Apple M1", "performance", "Firestorm-M1-Max"),
    (0x61, 0x032): ("Blizzard (M2)", "Apple M2", "efficiency", "Blizzard-M2"),
    (0x61, 0x033): ("Avalanche (M2)", "Apple M2", "performance", "Avalanche-M2"),
    (0x61, 0x034): ("Blizzard (M2 Pro)", "Apple M2", "efficiency", "Blizzard-M2-Pro"),
    (0x61, 0x035): ("Avalanche (M2 Pro)", "Apple M2", "performance", "Avalanche-M2-Pro"),
    (0x61, 0x038): ("Blizzard (M2 Max)", "Apple M2", "efficiency", "Blizzard-M2-Max"),
    (0x61, 0x039): ("Avalanche (M2 Max)", "Apple M2", "performance", "Avalanche-M2-Max"),
}
ARM_PARTS_BY_LSCPU_NAME: dict[str, tuple[str, str, str, str]] = {v[3].lower(): v for v in ARM_PARTS.values()}
# Server cores: on these a second physical package is a second socket. On phone and board SoCs, kernels
# before 5.16 put the cluster number in physical_package_id, so there a package is a cluster.
ARM_SERVER_UARCHS = frozenset(
    {"Neoverse N1", "Neoverse N2", "Neoverse N3", "Neoverse V1", "Neoverse V2", "Neoverse V3", "AmpereOne"}
)


# Brand names that some lscpu versions print instead of the core (SMBIOS "Ampere(R) Altra(R) Processor
# Q80-30 CPU @ 3.0GHz") -> the (implementer, part) of the core inside.
ARM_BRANDS: tuple[tuple[str, tuple[int, int]], ...] = (
    (r"\bAltra\b", (0x41, 0xD0C)),
    (r"AmpereOne", (0xC0, 0xAC3)),
    (r"\bGraviton ?2\b", (0x41, 0xD0C)),
    (r"\bGraviton ?3\b", (0x41, 0xD40)),
    (r"\bGraviton ?4\b", (0x41, 0xD4F)),
    (r"\bGrace\b", (0x41, 0xD4F)),
    (r"\bCobalt 100\b", (0x6D, 0xD49)),
    (r"\bOryon\b|\bSnapdragon\(R\) X\b", (0x51, 0x001)),
)


def arm_brand_part(name: str | None) -> tuple[str, str, str, str] | None:
    """The core of an Arm chip named by its brand (Altra, AmpereOne, Graviton, Grace, Oryon), else None."""
    for pattern, key in ARM_BRANDS:
        if re.search(pattern, name or "", re.IGNORECASE):
            return ARM_PARTS.get(key)
    return None


def arm_part(implementer: int | None, part: int | None) -> tuple[str, str, str, str] | None:
    """(core name, microarchitecture, core type, lscpu name) of an Arm part, else None."""
    if implementer is None or part is None:
        return None
    return ARM_PARTS.get((implementer, part))


_INTEL_FAMILY6: dict[str, tuple[int, ...]] = {
    "Haswell": (0x3C, 0x3F, 0x45, 0x46),
    "Broadwell": (0x3D, 0x47, 0x4F, 0x56),
    "Skylake": (0x4E, 0x5E, 0x8E, 0x9E, 0xA5, 0xA6),  # incl. Kaby/Coffee/Comet Lake
    "Cannon Lake": (0x66,),
    "Ice Lake": (0x7D, 0x7E),
    "Tiger Lake": (0x8C, 0x8D),
    "Rocket Lake": (0xA7,),
    "Ice Lake-SP": (0x6A, 0x6C),
    "Sapphire Rapids": (0x8F,),
    "Emerald Rapids": (0xCF,),
    "Granite Rapids": (0xAD, 0xAE),
    "Sierra Forest": (0xAF,),
    "Alder Lake": (0x97, 0x9A),
    "Alder Lake-N": (0xBE,),
    "Raptor Lake": (0xB7, 0xBA, 0xBF),
    "Meteor Lake": (0xAA, 0xAC),
    "Lunar Lake": (0xBD,),
    "Arrow Lake": (0xC5, 0xC6),
}


def microarchitecture(
    vendor: str | None,
    family: int | None,
    model: int | None,
    stepping: int | None = None,
    model_name: str | None = None,
) -> str | None:
    """The core microarchitecture from CPUID family/model (x86) or brand (Apple); Arm cores are named by
    their part number (arm_part)."""
    if vendor == "Apple" or (model_name or "").startswith("Apple M"):
        chip = apple_chip(model_name)
        return chip.split()[0] + " " + chip.split()[1] if chip else None
    if family is None or model is None:
        return None
    if vendor == "Intel" and family == 6:
        if model == 0x55:
            if stepping is not None and stepping >= 10:
                return "Cooper Lake"
            return "Cascade Lake" if stepping is not None and stepping >= 5 else "Skylake-SP"
        for name, models in _INTEL_FAMILY6.items():
            if model in models:
                return name
        return None
    if vendor == "AMD":
        if family == 0x17:
            return "Zen" if model < 0x30 else "Zen 2"
        if family == 0x19:
            if 0x10 <= model <= 0x1F or 0x60 <= model <= 0x7F or 0xA0 <= model <= 0xAF:
                return "Zen 4"
            return "Zen 3"
        if family == 0x1A:
            if 0x20 <= model <= 0x2F or 0x60 <= model <= 0x6F:
                return "Zen 5 (256-bit datapath)"
            return "Zen 5"
    return None


# ---------------------------------------------------------------------------------------------------
# Linux


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _int(text: str | None, base: int = 10) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip(), base)
    except ValueError:
        return None


def parse_cpulist(text: str | None) -> list[int]:
    """ "0-3,8,10-11" -> [0, 1, 2, 3, 8, 10, 11]."""
    cpus: list[int] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            cpus.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            continue
    return cpus


def parse_proc_cpuinfo(text: str) -> list[dict[str, str]]:
    """One dict per "processor" block (plus any trailing key/value block, as on some Arm kernels)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _size_kib(text: str | None) -> int | None:
    """ "32K" / "1024K" / "32 MiB" / "65536" (bytes) -> KiB."""
    m = re.fullmatch(r"(\d{1,12})\s*([KMG]?)(?:i?B)?", (text or "").strip(), re.IGNORECASE)
    if not m:
        return None
    n = int(m.group(1))
    kib = {"": n // 1024, "K": n, "M": n * 1024, "G": n * 1024 * 1024}[m.group(2).upper()]
    return kib if 0 < kib <= 16 * 2**20 else None  # at most 16 GiB: larger is a broken file


def _caches(cpu_dir: Path) -> dict[str, int]:
    caches: dict[str, int] = {}
    for index in sorted(cpu_dir.glob("cpu0/cache/index*")):
        level, kind, size = (_read(index / f) for f in ("level", "type", "size"))
        kib = _size_kib(size)
        if level is None or kib is None:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind or "", "")
        caches[f"l{level}{suffix}_kib"] = kib
    return caches


def llc_bytes(cpu_dir: Path, ids: list[int]) -> int | None:
    """All instances of the last-level cache together (one per distinct shared_cpu_list), in bytes."""
    levels: dict[str, int] = {}
    for index in cpu_dir.glob("cpu0/cache/index*"):
        level, kind = _int(_read(index / "level")), _read(index / "type")
        if level is not None and kind in ("Unified", "Data"):
            levels[index.name] = level
    if not levels:
        return None
    top = max(levels, key=lambda name: levels[name])
    instances: dict[str, int] = {}
    for i in ids or [0]:
        index = cpu_dir / f"cpu{i}/cache/{top}"
        kib = _size_kib(_read(index / "size"))
        if kib:
            instances[_read(index / "shared_cpu_list") or f"cpu{i}"] = kib * 1024
    return sum(instances.values()) or None


def _cpu_ids(cpu_dir: Path) -> list[int]:
    ids = [_int(p.name[3:]) for p in cpu_dir.glob("cpu[0-9]*")]
    return sorted(i for i in ids if i is not None)


def plausible_mhz(value: float | None) -> float | None:
    """A CPU clock in MHz when it is a finite number in 50 MHz .. 20 GHz, else None (a VM or a broken
    file can report 0, a negative, NaN or garbage)."""
    try:
        mhz = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return mhz if math.isfinite(mhz) and 50 <= mhz <= 20_000 else None


def _khz_to_mhz(text: str | None) -> float | None:
    khz = _int(text)
    return plausible_mhz(khz / 1000) if khz else None


def _arch(vendor_raw: str | None, implementer: int | None, flags: set[str]) -> str:
    if vendor_raw or "sse2" in flags:
        return "x86"
    if implementer is not None or "asimd" in flags or "fp" in flags:
        return "arm"
    return "unknown"


def arm_groups(clusters: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Core groups from Arm clusters ({"implementer", "part", "name", "count", "max_mhz"} each, slowest
    first): one group per (part, max clock), with the part's microarchitecture and core type.
    Returns (groups, names of the parts in the table)."""
    merged: dict[tuple[str, float | None], dict[str, Any]] = {}
    for c in clusters:
        known = c.get("known")
        name = known[0] if known else c["name"]
        key = (name, c.get("max_mhz"))
        if key in merged:
            merged[key]["count"] += c["count"]
            continue
        merged[key] = {
            "type": known[2] if known else "core",
            "part": name,
            "microarchitecture": known[1] if known else None,
            "count": c["count"],
            "max_mhz": c.get("max_mhz"),
        }
    groups = sorted(merged.values(), key=lambda g: (g["max_mhz"] or 0, g["part"]))
    return groups, [g["part"] for g in groups]


def arm_model_name(vendor: str | None, groups: list[dict[str, Any]]) -> str:
    """ "ARM Cortex-A76" or, for a SoC with several core types, "ARM 4x Cortex-A76 + 4x Cortex-A55"."""
    if len(groups) == 1:
        return f"{vendor or 'Arm'} {groups[0]['part']}"
    fastest = sorted(groups, key=lambda g: -(g["max_mhz"] or 0))
    return f"{vendor or 'Arm'} " + " + ".join(f"{g['count']}x {g['part']}" for g in fastest)


def arm_uarch(groups: list[dict[str, Any]]) -> str | None:
    """The microarchitecture of the whole chip: the fastest group's (each group keeps its own)."""
    known = [g for g in groups if g.get("microarchitecture")]
    return max(known, key=lambda g: g["max_mhz"] or 0)["microarchitecture"] if known else None


def probe_linux_cpu(root: str = "/") -> dict[str, Any]:
    """CPU facts from {root}/proc/cpuinfo and {root}/sys/devices/system/cpu. Never reads outside root."""
    base = Path(root)
    blocks = parse_proc_cpuinfo(_read(base / "proc/cpuinfo") or "")
    procs = [b for b in blocks if "processor" in b and len(b) > 1] or blocks
    first = procs[0] if procs else {}
    trailer = blocks[-1] if blocks and "processor" not in blocks[-1] else {}
    cpu_dir = base / "sys/devices/system/cpu"

    vendor_raw = first.get("vendor_id")
    implementer = _int(first.get("CPU implementer"), 16)
    part = _int(first.get("CPU part"), 16)
    if vendor_raw:
        vendor = _X86_VENDORS.get(vendor_raw, vendor_raw)
    elif implementer is not None:
        vendor = _ARM_IMPLEMENTERS.get(implementer, f"0x{implementer:02x}")
    else:
        vendor = None
    model_name = first.get("model name") or first.get("Model name")
    family, model, stepping = (
        _int(first.get("cpu family")),
        _int(first.get("model")),
        _int(first.get("stepping")),
    )
    flags = set((first.get("flags") or first.get("Features") or "").split())
    arch = _arch(vendor_raw, implementer, flags)
    features = features_of(flags, arch)

    # Topology: a physical core is one set of thread siblings.
    ids = _cpu_ids(cpu_dir)
    siblings: dict[int, str] = {}
    packages: set[str] = set()
    for i in ids:
        topo = cpu_dir / f"cpu{i}/topology"
        sib = _read(topo / "core_cpus_list") or _read(topo / "thread_siblings_list")
        if sib:
            siblings[i] = sib
        pkg = _read(topo / "physical_package_id")
        if pkg is not None:
            packages.add(pkg)
    logical = len(procs) or len(ids) or None
    if siblings:
        physical: int | None = len(set(siblings.values()))
    elif any("core id" in b for b in procs):
        physical = len({(b.get("physical id"), b.get("core id")) for b in procs})
    else:
        physical = logical
    proc_packages = {b["physical id"] for b in procs if "physical id" in b}
    sockets = len(packages) or len(proc_packages) or 1

    # Clocks: per-CPU sysfs cpufreq; the driver and boost say what cpuinfo_max_freq means.
    clock_sources: dict[str, str] = {}
    clock_notes: list[str] = []
    max_by_cpu = {i: _khz_to_mhz(_read(cpu_dir / f"cpu{i}/cpufreq/cpuinfo_max_freq")) for i in ids}
    reported_max = max((m for m in max_by_cpu.values() if m), default=None)
    pstate_max = max(
        (m for m in (_khz_to_mhz(_read(cpu_dir / f"cpu{i}/cpufreq/amd_pstate_max_freq")) for i in ids) if m),
        default=None,
    )
    driver = _read(cpu_dir / f"cpu{ids[0]}/cpufreq/scaling_driver") if ids else None
    boost_text = _read(cpu_dir / "cpufreq/boost")
    boost_on = None if boost_text is None else boost_text == "1"
    current = [m for m in (plausible_mhz(b.get("cpu MHz")) for b in procs) if m]
    current_mhz = round(max(current), 1) if current else None
    if current_mhz:
        clock_sources["current_mhz"] = "/proc/cpuinfo 'cpu MHz'"

    groups: list[dict[str, Any]] | None = None
    uarch: str | None
    if arch == "arm":
        groups, sockets, uarch, model_name = _arm_topology(
            procs, ids, cpu_dir, max_by_cpu, packages, vendor, model_name, implementer, part, physical
        )
    else:
        uarch = microarchitecture(vendor, family, model, stepping, model_name)
    resolved = resolve_max_clock(
        model_name=model_name,
        uarch=uarch,
        reported_max_mhz=reported_max,
        reported_source="sysfs cpufreq cpuinfo_max_freq" + (f" ({driver})" if driver else ""),
        current_mhz=current_mhz,
        amd_pstate_max_mhz=pstate_max,
        driver=driver,
        boost_on=boost_on,
        x86=arch == "x86",
    )
    max_mhz = resolved["max_mhz"]
    clock_notes.extend(resolved["notes"])
    if max_mhz:
        clock_sources["max_mhz"] = resolved["max_source"]
    base_mhz = _khz_to_mhz(_read(cpu_dir / f"cpu{ids[0]}/cpufreq/base_frequency")) if ids else None
    if base_mhz:
        clock_sources["base_mhz"] = "sysfs cpufreq base_frequency"
    elif resolved["base_mhz"]:
        base_mhz = resolved["base_mhz"]
        clock_sources["base_mhz"] = resolved["base_source"]
    else:
        base_mhz = plausible_mhz(model_name_base_mhz(model_name))
        if base_mhz:
            clock_sources["base_mhz"] = "the model name (@ ... GHz)"
    if not (max_mhz or base_mhz or current_mhz) and root in ("/", ""):
        info = py_cpuinfo_dict()  # this host only: a fake root must never see the machine it runs on
        hz = _first_hz(info.get("hz_advertised")) or _first_hz(info.get("hz_actual"))
        current_mhz = plausible_mhz(hz / 1e6) if hz else None
        if current_mhz:
            clock_sources["current_mhz"] = "py-cpuinfo"

    if groups is None:
        groups = _hybrid_groups(base, siblings, max_by_cpu)
    vm = arch == "x86" and "hypervisor" in flags
    if groups is None and is_p_only_hybrid(uarch, physical, logical, vm):
        groups = [{"type": "performance", "count": physical, "max_mhz": max_mhz}]
        clock_notes.append(P_ONLY_NOTE)
    if groups is None:
        groups = [{"type": "core", "count": physical, "max_mhz": max_mhz}]

    return cpu_section(
        vendor=vendor,
        vendor_id=vendor_raw or (f"0x{implementer:02x}" if implementer is not None else None),
        model_name=model_name or trailer.get("Model") or trailer.get("Hardware"),
        family=family,
        model=model,
        stepping=stepping,
        arm_part=f"0x{part:03x}" if part is not None else None,
        microarchitecture=uarch,
        sockets=sockets,
        physical_cores=physical,
        logical_cores=logical,
        core_groups=groups,
        base_mhz=base_mhz,
        max_mhz=max_mhz,
        current_mhz=current_mhz,
        clock_sources=clock_sources,
        clock_notes=clock_notes,
        caches=_caches(cpu_dir),
        llc_bytes=llc_bytes(cpu_dir, ids),
        features=features,
        flags_read=bool(flags),
        virtual_machine=vm,
        probe="linux /proc/cpuinfo + sysfs",
    )


def _arm_topology(
    procs: list[dict[str, str]],
    ids: list[int],
    cpu_dir: Path,
    max_by_cpu: dict[int, float | None],
    packages: set[str],
    vendor: str | None,
    model_name: str | None,
    implementer: int | None,
    part: int | None,
    physical: int | None,
) -> tuple[list[dict[str, Any]], int, str | None, str | None]:
    """(core groups, sockets, microarchitecture, model name) of an Arm chip: one group per core type
    and max clock (the clusters of a big.LITTLE SoC), one socket unless a server core says otherwise."""
    clusters: dict[tuple[int | None, int | None, float | None], dict[str, Any]] = {}
    for n, b in enumerate(procs):
        cpu = _int(b.get("processor"))
        cpu = n if cpu is None else cpu
        impl, prt = _int(b.get("CPU implementer"), 16), _int(b.get("CPU part"), 16)
        impl, prt = (implementer, part) if impl is None else (impl, prt)
        mhz = max_by_cpu.get(cpu)
        key = (impl, prt, mhz)
        if key not in clusters:
            known = arm_part(impl, prt)
            name = known[0] if known else (f"part 0x{prt:03x}" if prt is not None else "core")
            clusters[key] = {"known": known, "name": name, "count": 0, "max_mhz": mhz}
        clusters[key]["count"] += 1
    if not clusters:
        clusters[(implementer, part, None)] = {
            "known": arm_part(implementer, part),
            "name": "core",
            "count": physical or len(ids) or 1,
            "max_mhz": None,
        }
    groups, _names = arm_groups(list(clusters.values()))
    uarch = arm_uarch(groups)
    server = len(groups) == 1 and uarch in ARM_SERVER_UARCHS
    sockets = len(packages) if server and packages else 1
    if not model_name or model_name.startswith("ARMv"):
        model_name = arm_model_name(vendor, groups)
    return groups, sockets, uarch, model_name


P_ONLY_NOTE = (
    "every core runs two threads and E-cores have none: all cores are P-cores (a hybrid family's die "
    "without E-cores)"
)


def is_p_only_hybrid(uarch: str | None, physical: int | None, logical: int | None, vm: bool) -> bool:
    """A chip of a hybrid family (Alder/Raptor Lake) whose every core runs two threads has no E-cores:
    E-cores never have SMT (Core i5-12400: 6 cores, 12 threads). Not in a VM, whose topology is made up."""
    rates = CPU_UARCHS.get(uarch or "")
    return bool(rates and "efficiency" in rates.rates and physical and logical == 2 * physical and not vm)


def _hybrid_groups(
    base: Path, siblings: dict[int, str], max_by_cpu: dict[int, float | None]
) -> list[dict[str, Any]] | None:
    """Intel hybrid parts list P-cores in /sys/devices/cpu_core/cpus and E-cores in cpu_atom/cpus."""
    p_cpus = parse_cpulist(_read(base / "sys/devices/cpu_core/cpus"))
    e_cpus = parse_cpulist(_read(base / "sys/devices/cpu_atom/cpus"))
    if not p_cpus or not e_cpus:
        return None
    groups = []
    for kind, cpus in (("performance", p_cpus), ("efficiency", e_cpus)):
        cores = {siblings.get(c, str(c)) for c in cpus}
        clocks = [max_by_cpu.get(c) for c in cpus if max_by_cpu.get(c)]
        groups.append({"type": kind, "count": len(cores), "max_mhz": max(clocks) if clocks else None})
    return groups


def _first_hz(value: Any) -> float | None:
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (int, float)) and value[0] > 0:
        return float(value[0]) * (10 ** value[1] if len(value) > 1 and value[1] else 1)
    return None


# ---------------------------------------------------------------------------------------------------
# macOS, Windows and anything else: py-cpuinfo and psutil


def py_cpuinfo_dict() -> dict[str, Any]:
    """py-cpuinfo's get_cpu_info(), or {} when it is missing or fails (it may take a second)."""
    try:
        return dict(cpuinfo.get_cpu_info())
    except Exception:
        return {}


def _default_sysctl(key: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def probe_cpu_generic(
    info: dict[str, Any],
    physical: int | None,
    logical: int | None,
    system: str,
    sysctl: Callable[[str], str | None] | None = None,
    max_mhz: float | None = None,
) -> dict[str, Any]:
    """CPU facts from a py-cpuinfo dict and psutil core counts (macOS, Windows, or no /proc)."""
    model_name = info.get("brand_raw") or info.get("brand") or None
    vendor_raw = info.get("vendor_id_raw") or None
    vendor = _X86_VENDORS.get(vendor_raw or "", vendor_raw)
    chip = apple_chip(model_name)
    if chip:
        vendor = "Apple"
    family, model, stepping = (
        info.get(k) if isinstance(info.get(k), int) else None for k in ("family", "model", "stepping")
    )
    flags = {str(f).lower() for f in info.get("flags") or []}
    features = features_of(flags, "arm" if chip else _arch(vendor_raw, None, flags))
    clock_sources: dict[str, str] = {}
    max_mhz = plausible_mhz(max_mhz)
    if max_mhz:
        clock_sources["max_mhz"] = "psutil.cpu_freq().max"
    hz = _first_hz(info.get("hz_advertised"))
    base_mhz = plausible_mhz(hz / 1e6) if hz else None
    if base_mhz:
        clock_sources["base_mhz"] = "py-cpuinfo hz_advertised"
    caches: dict[str, int] = {}
    for key, out_key in (
        ("l1_data_cache_size", "l1d_kib"),
        ("l2_cache_size", "l2_kib"),
        ("l3_cache_size", "l3_kib"),
    ):
        kib = _size_kib(str(info.get(key) or ""))
        if kib:
            caches[out_key] = kib

    groups: list[dict[str, Any]] | None = None
    if chip:
        features = sorted(
            set(features) | {"asimd", "asimdhp"} | ({"bf16"} if not chip.startswith("Apple M1") else set())
        )
        features = [f for f in FEATURE_FLAGS if f in features]
        groups, where = _apple_groups(chip, physical, sysctl)
        clock_sources["max_mhz"] = f"Apple {chip} spec table (P/E core max clocks); split from {where}"
        max_mhz = float(APPLE_CHIPS[chip]["p_mhz"])
    if groups is None:
        groups = [{"type": "core", "count": physical, "max_mhz": max_mhz}]
    return cpu_section(
        vendor=vendor,
        vendor_id=vendor_raw,
        model_name=model_name,
        family=family,
        model=model,
        stepping=stepping,
        arm_part=None,
        microarchitecture=microarchitecture(vendor, family, model, stepping, model_name),
        sockets=1,
        physical_cores=physical,
        logical_cores=logical,
        core_groups=groups,
        base_mhz=base_mhz,
        max_mhz=max_mhz,
        current_mhz=None,
        clock_sources=clock_sources,
        caches=caches,
        llc_bytes=max(caches.values()) * 1024 if caches else None,
        features=features,
        flags_read=bool(flags),
        virtual_machine="hypervisor" in flags,
        probe=f"py-cpuinfo + psutil ({system})",
    )


def _apple_groups(
    chip: str, physical: int | None, sysctl: Callable[[str], str | None] | None
) -> tuple[list[dict[str, Any]], str]:
    data = APPLE_CHIPS[chip]
    p = e = None
    where = "the chip table"
    if sysctl is not None:
        p, e = _int(sysctl("hw.perflevel0.physicalcpu")), _int(sysctl("hw.perflevel1.physicalcpu"))
        if p and e is not None:
            where = "sysctl hw.perflevel*"
    if not p:
        p, e = data["configs"][0]
        for cp, ce in data["configs"]:
            if physical == cp + ce:
                p, e = cp, ce
                where = "the chip table (matched to the core count)"
                break
    groups = [{"type": "performance", "count": p, "max_mhz": float(data["p_mhz"])}]
    if e:
        groups.append({"type": "efficiency", "count": e, "max_mhz": float(data["e_mhz"])})
    return groups, where


def probe_cpu(root: str = "/", system: str | None = None) -> dict[str, Any]:
    """CPU facts for this machine (or for the fake tree under `root` on Linux)."""
    system = system or platform.system()
    if system == "Linux" and Path(root, "proc/cpuinfo").exists():
        return probe_linux_cpu(root)
    physical = logical = None
    max_mhz = None
    try:
        physical, logical = psutil.cpu_count(logical=False), psutil.cpu_count(logical=True)
        freq = psutil.cpu_freq()
        max_mhz = float(freq.max) if freq and freq.max else None
    except Exception:
        pass
    sysctl = _default_sysctl if system == "Darwin" else None
    return probe_cpu_generic(py_cpuinfo_dict(), physical, logical, system, sysctl=sysctl, max_mhz=max_mhz)
