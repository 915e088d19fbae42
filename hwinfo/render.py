"""The readable text form of a snapshot."""

from __future__ import annotations

import re
from typing import Any

from hwinfo.units import bytes_per_s, flops, sig

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean(value: Any) -> str:
    """Text from the machine (names, NVML strings) with control characters shown as '?', one line."""
    return _CONTROL.sub("?", str(value))


def _mhz(value: float | None) -> str:
    return "unknown" if not value else f"{value:.0f} MHz"


def _yes(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def render_text(snap: dict[str, Any]) -> str:
    """A few readable sections: system, CPU, GPUs, what PyTorch can use, peaks, notes."""
    lines: list[str] = []
    os_ = snap["os"]
    torch = snap.get("torch")
    torch_text = "not installed" if torch is None else torch["version"]
    lines.append(
        f"host {snap['host']}: {os_['system']} {os_['release']} {os_['machine']}, "
        f"Python {os_['python']}, torch {torch_text}"
    )
    cpu = snap["cpu"]
    lines.append("")
    uarch = f" ({cpu['microarchitecture']})" if cpu.get("microarchitecture") else ""
    ident = ""
    if cpu.get("family") is not None:
        ident = f", family {cpu['family']} model {cpu['model']}"
    lines.append(
        f"CPU    {_clean(cpu.get('model_name') or 'unknown')}{uarch} [{_clean(cpu.get('vendor') or 'unknown vendor')}{ident}]"
    )
    groups = cpu.get("core_groups") or []
    split = ""
    if len(groups) > 1:
        split = " (" + " + ".join(f"{g['count']} {g.get('part') or g['type']}" for g in groups) + ")"
    lines.append(
        f"       {cpu.get('sockets')} socket(s), {cpu.get('physical_cores')} physical{split} / "
        f"{cpu.get('logical_cores')} logical cores"
    )
    sources = cpu.get("clock_sources") or {}
    clocks = [
        f"{label} {_mhz(cpu.get(key))}" + (f" ({sources[key]})" if key in sources else "")
        for key, label in (("base_mhz", "base"), ("max_mhz", "max"), ("current_mhz", "current"))
        if cpu.get(key) or key != "current_mhz"
    ]
    lines.append("       clock: " + ", ".join(clocks))
    caches = cpu.get("caches") or {}
    if caches:
        lines.append(
            "       caches: "
            + ", ".join(f"{k.removesuffix('_kib').upper()} {v} KiB" for k, v in caches.items())
            + " (per instance)"
        )
    lines.append("       features: " + (" ".join(cpu.get("features") or []) or "none of the tracked ones"))
    lines.append(
        f"       PyTorch: dispatch {cpu.get('torch_capability') or 'unknown'}, {cpu.get('torch_threads') or '?'} "
        f"threads, MKL {_yes(cpu.get('mkl'))}, oneDNN {_yes(cpu.get('mkldnn'))}"
    )

    lines.append("")
    gpus = snap.get("gpus") or []
    if not gpus:
        lines.append("GPUs   none on the PCI bus")
    for i, g in enumerate(gpus):
        kind = "integrated" if g.get("integrated") else "discrete"
        name = _clean(g.get("name") or f"device {g.get('device_id')}")
        head = "GPUs  " if i == 0 else "      "
        lines.append(
            f"{head} {g.get('pci_address')}  {g['vendor']} {name} ({kind}, {g['vendor_id']}:{g.get('device_id')})"
        )
        nv = g.get("nvml")
        if nv:
            mem = nv.get("memory_total_bytes")
            mem_text = f"{mem / 2**30:.1f} GiB" if mem else "? GiB"
            power = nv.get("power_limit_w")
            lines.append(
                f"         NVML: {_clean(nv.get('name'))}, {mem_text}, max SM clock {_mhz(nv.get('max_sm_clock_mhz'))}, "
                f"power limit {'unknown' if power is None else f'{power:.0f} W'}, driver {nv.get('driver_version')}, "
                f"CUDA {nv.get('cuda_driver_version')}, SMs {nv.get('sm_count') or '?'}"
            )

    lines.append("")
    if torch is None:
        lines.append("PyTorch: not installed")
    else:
        avail = torch["available"]
        build = (
            f"CUDA {torch['cuda']}"
            if torch.get("cuda")
            else (f"ROCm {torch['hip']}" if torch.get("hip") else "CPU-only build")
        )
        lines.append(
            f"PyTorch {torch['version']} ({build}) can use: cpu; "
            f"cuda: {', '.join(avail['cuda']) or 'no'}; mps: {_yes(avail['mps'])}; xpu: {', '.join(avail['xpu']) or 'no'}"
        )

    lines.append("")
    lines.append("Peak FLOP/s per dtype (dense)" + (", with a timed matmul" if snap.get("measured") else ""))
    header = ["device", "name", "dtype", "peak", "source", "measured", "measured/peak"]
    rows = [header]
    details: list[str] = []
    for dev in snap["devices"]:
        for dtype in snap.get("dtypes") or dev["peaks"]:
            peak = dev["peaks"][dtype]
            value = flops(peak.get("value"))
            if peak.get("emulated"):
                value += " (emulated)"
            measured = flops(peak.get("measured")) if peak.get("measured") is not None else "-"
            ratio = peak.get("measured_over_spec")
            rows.append(
                [
                    dev["device"],
                    _clean(dev["name"]),
                    dtype,
                    value,
                    str(peak.get("source")),
                    measured,
                    "-" if ratio is None else f"{ratio:.2f}",
                ]
            )
            details.append(f"  {dev['device']} {dtype}: {_clean(peak.get('detail'))}")
            if peak.get("measured_detail"):
                details.append(f"      measured: {_clean(peak['measured_detail'])}")
    lines.extend(_table(rows))
    lines.append("")
    lines.append("Where each peak comes from:")
    lines.extend(details)
    lines.extend(_bandwidth_lines(snap))
    lines.extend(_energy_lines(snap))
    if snap.get("notes"):
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"  - {_clean(n)}" for n in snap["notes"])
    return "\n".join(lines) + "\n"


def _bandwidth_lines(snap: dict[str, Any]) -> list[str]:
    """Memory bandwidth per device and the ridge point (peak / bandwidth) per dtype."""
    lines = [
        "",
        "Memory bandwidth and ridge point (peak FLOP/s / bandwidth: a kernel doing fewer FLOP per byte is memory-bound)",
    ]
    rows = [["device", "bandwidth", "source", "measured", "ridge point (FLOP/byte)"]]
    details: list[str] = []
    for dev in snap["devices"]:
        bw = dev.get("memory_bandwidth") or {}
        ridges = dev.get("ridge_flop_per_byte") or {}
        ridge = ", ".join(
            f"{d} {sig(ridges.get(d))}" for d in snap.get("dtypes") or ridges if ridges.get(d) is not None
        )
        measured = bytes_per_s(bw.get("measured")) if bw.get("measured") is not None else "-"
        rows.append(
            [dev["device"], bytes_per_s(bw.get("value")), str(bw.get("source")), measured, ridge or "-"]
        )
        details.append(f"  {dev['device']}: {_clean(bw.get('detail'))}")
        if bw.get("measured_detail") and bw.get("source") != "measured":
            details.append(f"      measured: {_clean(bw['measured_detail'])}")
    return [*lines, *_table(rows), *details]


def _energy_lines(snap: dict[str, Any]) -> list[str]:
    """Which energy counters the machine offers and whether this user can read them."""
    counters = (snap.get("energy") or {}).get("counters") or []
    if not counters:
        return []
    lines = ["", "Energy counters (never an estimate: a device without one says why)"]
    for c in counters:
        if c.get("available"):
            domains = f" ({', '.join(c['domains'])})" if c.get("domains") else ""
            extra = f": {_clean(c['reason'])}" if c.get("reason") else ""
            lines.append(f"  {c['device']}: {c['source']}{domains}, readable{extra}")
        else:
            offered = f" (offers {', '.join(c['domains'])})" if c.get("domains") else ""
            lines.append(f"  {c['device']}: unavailable{offered}: {_clean(c.get('reason'))}")
    return lines
