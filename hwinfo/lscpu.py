"""The CPU section of a snapshot from `lscpu` text, as people paste it in bug reports and hardware
collections: the same shape as hwinfo.cpu.probe_linux_cpu, the same clock checks and part table.

lscpu prints one block of "Key: value" lines; on Arm SoCs with several core types it repeats "Model
name" and what follows (cores, max clock, flags) once per type. The "-p" tables after a blank line
are ignored.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from hwinfo.cpu import (
    _ARM_IMPLEMENTERS,
    _X86_VENDORS,
    ARM_PARTS_BY_LSCPU_NAME,
    ARM_SERVER_UARCHS,
    P_ONLY_NOTE,
    _int,
    _size_kib,
    arm_brand_part,
    arm_groups,
    arm_model_name,
    arm_uarch,
    cpu_section,
    features_of,
    microarchitecture,
    plausible_mhz,
)
from hwinfo.cpu_clocks import model_name_base_mhz, resolve_max_clock
from hwinfo.peaks import CPU_UARCHS

_ARM_VENDOR_IDS = {
    "ARM": 0x41,
    "Broadcom": 0x42,
    "Cavium": 0x43,
    "HiSilicon": 0x48,
    "NVIDIA": 0x4E,
    "Qualcomm": 0x51,
    "Apple": 0x61,
    "Microsoft": 0x6D,
    "Ampere": 0xC0,
}
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


# lscpu's field names in the zh_CN locale (util-linux po/zh_CN.po), which also uses a full-width colon.
# Other languages are not read: LC_ALL=C lscpu prints the English names.
LOCALE_KEYS: dict[str, str] = {
    "架构": "Architecture",
    "CPU 运行模式": "CPU op-mode(s)",
    "字节序": "Byte Order",
    "CPU": "CPU(s)",
    "在线 CPU 列表": "On-line CPU(s) list",
    "厂商 ID": "Vendor ID",
    "型号名称": "Model name",
    "CPU 系列": "CPU family",
    "型号": "Model",
    "每个核的线程数": "Thread(s) per core",
    "每个座的核数": "Core(s) per socket",
    "座": "Socket(s)",
    "步进": "Stepping",
    "CPU 最大 MHz": "CPU max MHz",
    "CPU 最小 MHz": "CPU min MHz",
    "CPU MHz": "CPU MHz",
    "标记": "Flags",
    "超管理器厂商": "Hypervisor vendor",
}


def parse_lscpu(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(the machine-wide fields, one dict per "Model name" section) from lscpu's first block. A long
    value wrapped onto the next lines (lscpu's tree output cuts at the terminal width, even inside a
    word) is joined back."""
    top: dict[str, str] = {}
    sections: list[dict[str, str]] = []
    last: tuple[dict[str, str], str, int] | None = None
    lines = text.splitlines()
    wrapped_width = _wrapped_width(lines)
    previous_width = 0
    for line in lines:
        if not line.strip():
            if top or sections:
                break
            continue
        key, sep, value = line.replace("：", ":").partition(":")
        if not sep:
            if last is not None and line[:1].isspace():
                target, k, column = last
                # A continuation indented to the value's column continues a cut word; one space more
                # carries the space the cut fell on. A line above that ends short of the terminal width
                # lost its trailing space in the paste: a word ended there.
                indent = _width(line[: len(line) - len(line.lstrip())])
                joint = " " if indent > column or previous_width < wrapped_width else ""
                target[k] += joint + _rejoin(line.lstrip(), column)
                previous_width = _width(line.rstrip())
            continue
        previous_width = _width(line.rstrip())
        column = _width(line[: len(line) - len(value.lstrip())])  # on screen: CJK characters are 2 wide
        key, value = key.strip(), _rejoin(value.lstrip(), column)
        key = LOCALE_KEYS.get(key, key)
        if key == "Model name":
            sections.append({"Model name": value.strip()})
            last = (sections[-1], key, column)
        elif sections and key in _SECTION_KEYS and key not in sections[-1]:
            sections[-1][key] = value
            last = (sections[-1], key, column)
        else:
            top.setdefault(key, value)
            last = (top, key, column)
    return {k: v.strip() for k, v in top.items()}, [
        {k: v.strip() for k, v in sec.items()} for sec in sections
    ]


def _wrapped_width(lines: list[str]) -> int:
    """The terminal width lscpu cut its long values at: the widest line followed by a continuation."""
    widths = [
        _width(line.rstrip())
        for line, after in zip(lines, lines[1:], strict=False)
        if after[:1].isspace() and after.strip() and ":" not in after and "：" not in after
    ]
    return max(widths, default=0)


def _width(text: str) -> int:
    """Terminal columns of `text`: wide (CJK, full-width) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _rejoin(value: str, column: int) -> str:
    """A wrapped value pasted with its newlines lost keeps each continuation's indentation inside the
    line: a run of exactly `column` spaces is a cut inside a word ("ra" + 25 spaces + "pl" is "rapl"),
    one more is a cut at a space."""
    if column < 8:
        return value
    return re.sub(f" {{{column},}}", lambda m: "" if len(m.group()) == column else " ", value)


def _first_int(*texts: str | None) -> int | None:
    """The first of `texts` that is a number: lscpu prints "Socket(s): -" on Arm SoCs, where the
    cluster count is the one to use."""
    for text in texts:
        n = _int(text)
        if n is not None and n > 0:
            return n
    return None


def _count(section: dict[str, str], top: dict[str, str]) -> int | None:
    cores = _first_int(
        section.get("Core(s) per socket"),
        section.get("Core(s) per cluster"),
        top.get("Core(s) per socket"),
        top.get("Core(s) per cluster"),
    )
    groups = _first_int(section.get("Socket(s)"), section.get("Cluster(s)")) or 1
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
    unread = (
        []
        if top.get("Vendor ID") or sections
        else [
            "the lscpu text has none of the English field names hwinfo reads (another language?): "
            "run it as LC_ALL=C lscpu"
        ]
    )
    vendor_raw = top.get("Vendor ID")
    implementer = next((v for k, v in _ARM_VENDOR_IDS.items() if (vendor_raw or "").startswith(k)), None)
    x86 = vendor_raw in _X86_VENDORS
    vendor = (
        _X86_VENDORS.get(vendor_raw or "") if x86 else _ARM_IMPLEMENTERS.get(implementer or -1, vendor_raw)
    )
    flags = set((first.get("Flags") or top.get("Flags") or "").split())
    vm = "hypervisor" in flags or bool(top.get("Hypervisor vendor"))
    arch = "x86" if x86 else "arm" if implementer is not None or "asimd" in flags else "unknown"
    logical = _int(top.get("CPU(s)"))
    current_mhz = plausible_mhz(top.get("CPU MHz"))
    clock_sources: dict[str, str] = {}
    if current_mhz:
        clock_sources["current_mhz"] = "lscpu 'CPU MHz'"
    family, model = _int(top.get("CPU family")), _int(first.get("Model") or top.get("Model"))
    stepping = _int(first.get("Stepping") or top.get("Stepping"))
    model_name = first.get("Model name")
    sockets = _first_int(first.get("Socket(s)"), top.get("Socket(s)")) or 1
    reported = max(
        (
            m
            for m in (
                plausible_mhz(s.get("CPU max MHz") or top.get("CPU max MHz")) for s in sections or [top]
            )
            if m
        ),
        default=None,
    )
    groups: list[dict[str, Any]]
    notes: list[str] = []
    max_is_spec = True

    if arch == "arm":
        clusters = []
        for s in sections:
            known = ARM_PARTS_BY_LSCPU_NAME.get((s.get("Model name") or "").lower()) or next(
                (
                    part
                    for name in (
                        s.get("Model name"),
                        top.get("BIOS Model name"),
                        top.get("SMCCC SOC_ID name"),
                    )
                    if (part := arm_brand_part(name))
                ),
                None,
            )
            clusters.append(
                {
                    "known": known,
                    "name": s.get("Model name")
                    if s.get("Model name") not in (None, "", "-")
                    else "unknown part",
                    "count": _count(s, top) or 0,
                    "max_mhz": plausible_mhz(s.get("CPU max MHz")),
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
        per_socket = _first_int(top.get("Core(s) per socket"), first.get("Core(s) per socket"))
        physical = per_socket * sockets if per_socket else None
        groups = [{"type": "core", "count": physical, "max_mhz": None}]
        rates = CPU_UARCHS.get(uarch or "")
        hybrid = bool(rates and "efficiency" in rates.rates and physical and logical and not vm)
        if hybrid and logical == 2 * physical:
            groups = [{"type": "performance", "count": physical, "max_mhz": None}]
            notes.append(P_ONLY_NOTE)
        elif hybrid and physical < logical < 2 * physical:  # type: ignore[operator]
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
        # lscpu prints "Frequency boost" from cpufreq/boost, which acpi-cpufreq provides
        boost_on=(top.get("Frequency boost") or "").lower() == "enabled" or None,
        x86=arch == "x86",
    )
    notes[:0] = unread + resolved["notes"]
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
    return cpu_section(
        vendor=vendor,
        vendor_id=vendor_raw,
        model_name=model_name,
        family=family,
        model=model,
        stepping=stepping,
        arm_part=None,
        microarchitecture=uarch,
        sockets=sockets,
        physical_cores=physical,
        logical_cores=logical,
        core_groups=groups,
        base_mhz=base_mhz,
        max_mhz=max_mhz,
        max_mhz_is_spec=bool(max_mhz) and max_is_spec,
        current_mhz=current_mhz,
        clock_sources=clock_sources,
        clock_notes=notes,
        caches=caches,
        llc_bytes=llc,
        features=features_of(flags, arch),
        flags_read=bool(flags),
        virtual_machine=vm,
        probe="lscpu text",
    )
