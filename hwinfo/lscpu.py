"""The CPU section of a snapshot from `lscpu` text, as people paste it in bug reports and hardware
collections: the same shape as hwinfo.cpu.probe_linux_cpu, the same clock checks and part table.

lscpu prints one block of "Key: value" lines; on Arm SoCs with several core types it repeats "Model
name" and what follows (cores, max clock, flags) once per type. The "-p" tables after a blank line
are ignored.
"""

from __future__ import annotations

import re
from typing import Any

from hwinfo.cpu import (
    _ARM_IMPLEMENTERS,
    _X86_VENDORS,
    ARM_PARTS_BY_LSCPU_NAME,
    ARM_SERVER_UARCHS,
    _size_kib,
    arm_groups,
    arm_model_name,
    arm_uarch,
    features_of,
    microarchitecture,
    plausible_mhz,
)
from hwinfo.cpu_clocks import model_name_base_mhz, resolve_max_clock
from hwinfo.peaks import CPU_UARCHS

_ARM_VENDOR_IDS = {"ARM": 0x41, "Apple": 0x61, "Ampere": 0xC0, "Qualcomm": 0x51, "NVIDIA": 0x4E}
_SECTION_KEYS = (
    "Model",
    "Thread(s) per core",
    "Core(s) per socket",
    "Core(s) per cluster",
    "Socket(s)",
    "Cluster(s)",
    "Stepping",
    "CPU max MHz",
    "CPU min MHz",
    "Flags",
)


def parse_lscpu(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(the machine-wide fields, one dict per "Model name" section) from lscpu's first block. A long
    value wrapped onto the next lines (lscpu's tree output cuts at the terminal width, even inside a
    word) is joined back."""
    top: dict[str, str] = {}
    sections: list[dict[str, str]] = []
    last: tuple[dict[str, str], str] | None = None
    for line in text.splitlines():
        if not line.strip():
            if top or sections:
                break
            continue
        key, sep, value = line.partition(":")
        if not sep:
            if last is not None and line[:1].isspace():
                target, k = last
                target[k] += line.strip()  # the cut kept its space, if there was one
            continue
        key, value = key.strip(), value.lstrip()
        if key == "Model name":
            sections.append({"Model name": value.strip()})
            last = (sections[-1], key)
        elif sections and key in _SECTION_KEYS and key not in sections[-1]:
            sections[-1][key] = value
            last = (sections[-1], key)
        else:
            top.setdefault(key, value)
            last = (top, key)
    return {k: v.strip() for k, v in top.items()}, [
        {k: v.strip() for k, v in sec.items()} for sec in sections
    ]


def _int(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def _mhz(text: str | None) -> float | None:
    try:
        return plausible_mhz(float(str(text).strip()))
    except (TypeError, ValueError):
        return None


def _count(section: dict[str, str], top: dict[str, str]) -> int | None:
    cores = _int(section.get("Core(s) per socket") or section.get("Core(s) per cluster"))
    cores = cores or _int(top.get("Core(s) per socket") or top.get("Core(s) per cluster"))
    groups = _int(section.get("Socket(s)") or section.get("Cluster(s)")) or 1
    return cores * groups if cores else None


def _caches(top: dict[str, str]) -> tuple[dict[str, int], int | None]:
    """Per-instance cache sizes; lscpu >= 2.37 prints totals ("24 MiB (1 instance)")."""
    caches: dict[str, int] = {}
    llc = None
    for key, out_key in (
        ("L1d cache", "l1d_kib"),
        ("L1i cache", "l1i_kib"),
        ("L2 cache", "l2_kib"),
        ("L3 cache", "l3_kib"),
    ):
        text = top.get(key)
        if not text:
            continue
        m = re.match(r"\s*([\d.]+\s*[KMG]i?B?)\s*(?:\((\d+) instances?\))?", text)
        kib = _size_kib(m.group(1).replace(" ", "").replace(".0", "")) if m else None
        if not kib:
            continue
        instances = int(m.group(2)) if m and m.group(2) else None
        caches[out_key] = kib // instances if instances else kib
        if instances:
            llc = kib * 1024
    return caches, llc


def cpu_from_lscpu(text: str) -> dict[str, Any]:
    """The snapshot's "cpu" section from lscpu output."""
    top, sections = parse_lscpu(text)
    first = sections[0] if sections else {}
    vendor_raw = top.get("Vendor ID")
    implementer = next((v for k, v in _ARM_VENDOR_IDS.items() if (vendor_raw or "").startswith(k)), None)
    x86 = vendor_raw in _X86_VENDORS
    vendor = (
        _X86_VENDORS.get(vendor_raw or "") if x86 else _ARM_IMPLEMENTERS.get(implementer or -1, vendor_raw)
    )
    flags = set((first.get("Flags") or top.get("Flags") or "").split())
    arch = "x86" if x86 else "arm" if implementer is not None or "asimd" in flags else "unknown"
    logical = _int(top.get("CPU(s)"))
    current_mhz = _mhz(top.get("CPU MHz"))
    clock_sources: dict[str, str] = {}
    if current_mhz:
        clock_sources["current_mhz"] = "lscpu 'CPU MHz'"
    family, model = _int(top.get("CPU family")), _int(first.get("Model") or top.get("Model"))
    stepping = _int(first.get("Stepping") or top.get("Stepping"))
    model_name = first.get("Model name")
    sockets = _int(first.get("Socket(s)") or top.get("Socket(s)")) or 1
    reported = max(
        (m for m in (_mhz(s.get("CPU max MHz") or top.get("CPU max MHz")) for s in sections or [top]) if m),
        default=None,
    )
    groups: list[dict[str, Any]]
    notes: list[str] = []
    max_is_spec = True

    if arch == "arm":
        clusters = []
        for s in sections:
            known = ARM_PARTS_BY_LSCPU_NAME.get((s.get("Model name") or "").lower())
            clusters.append(
                {
                    "known": known,
                    "name": s.get("Model name") or "core",
                    "count": _count(s, top) or 0,
                    "max_mhz": _mhz(s.get("CPU max MHz")),
                }
            )
        groups, _names = arm_groups(clusters)
        uarch = arm_uarch(groups)
        server = len(groups) == 1 and uarch in ARM_SERVER_UARCHS
        sockets = sockets if server else 1
        physical: int | None = sum(g["count"] for g in groups) or None
        model_name = arm_model_name(vendor, groups)
    else:
        uarch = microarchitecture(vendor, family, model, stepping, model_name)
        per_socket = _int(top.get("Core(s) per socket") or first.get("Core(s) per socket"))
        physical = per_socket * sockets if per_socket else None
        groups = [{"type": "core", "count": physical, "max_mhz": None}]
        rates = CPU_UARCHS.get(uarch or "")
        if (
            rates
            and "efficiency" in rates.rates
            and physical
            and logical
            and physical < logical < 2 * physical
        ):
            # Hybrid: P-cores run two threads, E-cores one, so P = threads - cores.
            p = logical - physical
            groups = [
                {"type": "performance", "count": p, "max_mhz": None},
                {"type": "efficiency", "count": physical - p, "max_mhz": None},
            ]
            max_is_spec = False
            notes.append(
                "lscpu gives one max clock for all core types of this hybrid CPU (the P/E split is from its "
                "thread count): the peak is derived, not spec"
            )

    resolved = resolve_max_clock(
        model_name=model_name,
        uarch=uarch,
        reported_max_mhz=reported,
        reported_source="lscpu 'CPU max MHz'",
        current_mhz=current_mhz,
    )
    notes[:0] = resolved["notes"]
    max_mhz = resolved["max_mhz"]
    if max_mhz:
        clock_sources["max_mhz"] = resolved["max_source"]
        if arch != "arm" and len(groups) == 1:
            groups[0]["max_mhz"] = max_mhz
    if arch == "arm" and len(groups) == 1 and max_mhz:
        groups[0]["max_mhz"] = max_mhz
    base_mhz, base_source = resolved["base_mhz"], resolved["base_source"]
    if not base_mhz:
        base_mhz, base_source = plausible_mhz(model_name_base_mhz(model_name)), "the model name (@ ... GHz)"
    if base_mhz:
        clock_sources["base_mhz"] = str(base_source)
    caches, llc = _caches(top)
    return {
        "vendor": vendor,
        "vendor_id": vendor_raw,
        "model_name": model_name,
        "family": family,
        "model": model,
        "stepping": stepping,
        "arm_part": None,
        "microarchitecture": uarch,
        "sockets": sockets,
        "physical_cores": physical,
        "logical_cores": logical,
        "core_groups": groups,
        "base_mhz": base_mhz,
        "max_mhz": max_mhz,
        "max_mhz_is_spec": bool(max_mhz) and max_is_spec,
        "current_mhz": current_mhz,
        "clock_sources": clock_sources,
        "clock_notes": notes,
        "caches": caches,
        "llc_bytes": llc,
        "features": features_of(flags, arch),
        "probe": "lscpu text",
    }
