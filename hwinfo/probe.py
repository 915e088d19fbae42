"""Assemble the hwinfo snapshot (schema devicebench-hwinfo/2): host, OS, torch, CPU, GPUs, devices with
their peaks, memory bandwidth and ridge points, and the energy counters the machine offers."""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Callable
from typing import Any

from hwinfo import SCHEMA, torch_probe
from hwinfo.apple import Runner, apple_gpu_cores
from hwinfo.cpu import probe_cpu
from hwinfo.energy import probe_energy, unsupported_reason
from hwinfo.measure import NotMeasurable, measure_bandwidth, measure_matmul
from hwinfo.nvml import normalise_bus_id, probe_nvml
from hwinfo.pci import probe_display
from hwinfo.peaks import DTYPES, bandwidth_for, cpu_peaks, gpu_bandwidth, gpu_peaks, peak_for, ridge_point
from hwinfo.units import bytes_per_s, is_num

_NVML_UNSET: Any = object()


def _cross_check(cpu: dict[str, Any]) -> list[str]:
    """Notes where PyTorch's CPU dispatch disagrees with the CPU's flags."""
    cap = (cpu.get("torch_capability") or "").upper()
    features = set(cpu.get("features") or [])
    if not cap:
        return []
    if "avx512f" in features and cap == "AVX2":
        return [
            "CPU has AVX-512 but PyTorch dispatches AVX2 kernels (ATEN_CPU_CAPABILITY or the build); "
            "MKL/oneDNN matmuls choose their own ISA"
        ]
    if cap.startswith("AVX512") and "avx512f" not in features:
        return [f"PyTorch reports {cap} but /proc/cpuinfo lists no avx512f"]
    if cap == "DEFAULT" and "avx2" in features:
        return ["CPU has AVX2 but PyTorch dispatches its DEFAULT (non-vectorised) kernels"]
    return []


def _attach_nvml(gpus: list[dict[str, Any]], nvml: dict[str, Any]) -> None:
    """Put each NVML device on its PCI GPU (matched by bus id); NVML-only devices are appended."""
    for dev in nvml["devices"]:
        match = next(
            (
                g
                for g in gpus
                if dev.get("pci_bus_id") and normalise_bus_id(g["pci_address"]) == dev["pci_bus_id"]
            ),
            None,
        )
        if match is None:
            gpus.append(
                {
                    "pci_address": dev.get("pci_bus_id"),
                    "vendor_id": "0x10de",
                    "vendor": "NVIDIA",
                    "device_id": None,
                    "subsystem_vendor_id": None,
                    "class": None,
                    "boot_vga": False,
                    "name": dev.get("name"),
                    "integrated": False,
                    "integrated_reason": "an NVIDIA GPU that NVML reports (not in the PCI tree read)",
                    "driver": None,
                    "nvml": dev,
                }
            )
        else:
            match["nvml"] = dev
            match["name"] = match["name"] or dev.get("name")


def _attach_torch(gpus: list[dict[str, Any]], accelerators: list[dict[str, Any]]) -> None:
    """SM counts from torch onto the NVML entries, matched by PCI bus id, then UUID, then a lone GPU."""
    cuda = [a for a in accelerators if a["kind"] == "cuda" and not a.get("rocm")]
    with_nvml = [g for g in gpus if g.get("nvml")]
    for acc in cuda:
        target = None
        for g in with_nvml:
            n = g["nvml"]
            if acc.get("pci_bus_id") and n.get("pci_bus_id") == acc["pci_bus_id"]:
                target = g
            elif acc.get("uuid") and n.get("uuid") and acc["uuid"] in n["uuid"]:
                target = g
            if target:
                break
        if target is None and len(cuda) == 1 and len(with_nvml) == 1:
            target = with_nvml[0]
        if target is not None:
            target["nvml"]["sm_count"] = acc.get("sm_count")
            acc["pci_address"] = target["pci_address"]


def _mps_name(cpu: dict[str, Any], cores: int | None) -> str:
    chip = cpu.get("model_name") or "Apple"
    return f"{chip} ({cores}-core GPU)" if cores else f"{chip} GPU"


_CPU_BANDWIDTH = (
    "no datasheet figure for a CPU's memory bandwidth (it depends on the memory fitted and populated "
    "channels): hwinfo --measure measures it"
)


def _bandwidth_entry(figure: dict[str, Any]) -> dict[str, Any]:
    return {**figure, "measured": None, "measured_detail": None, "stream": None}


def _number(value: Any) -> Any:
    """A positive finite number, else None: what PyTorch or NVML reported, kept only when it is sane."""
    return value if is_num(value) and value > 0 else None


def _gpu_entry(acc: dict[str, Any], name: str, gpus: list[dict[str, Any]]) -> dict[str, Any]:
    """A cuda/xpu/mps device: spec peaks, else derived from SMs x clock x per-SM rate; bandwidth."""
    nvml = next(
        (
            g["nvml"]
            for g in gpus
            if g.get("nvml") and acc.get("pci_address") and g["pci_address"] == acc["pci_address"]
        ),
        None,
    )
    clock, clock_source = _number((nvml or {}).get("max_sm_clock_mhz")), "NVML (max SM clock)"
    if not clock:
        clock, clock_source = _number(acc.get("max_clock_mhz")), "PyTorch's device properties (clock_rate)"
    capability = acc.get("capability") or (nvml or {}).get("capability")
    entry: dict[str, Any] = {"device": acc["device"], "kind": acc["kind"], "name": name}
    entry["peaks"] = gpu_peaks(
        name,
        sm_count=acc.get("sm_count"),
        max_clock_mhz=clock,
        capability=capability,
        gcn_arch=acc.get("gcn_arch"),
        clock_source=clock_source,
    )
    rocm = bool(acc.get("rocm"))  # HIP reports its memory clock differently: no derived bandwidth there
    entry["memory_bandwidth"] = _bandwidth_entry(
        gpu_bandwidth(
            name,
            memory_clock_mhz=None if rocm else _number(acc.get("memory_clock_mhz")),
            memory_bus_width_bits=None if rocm else _number(acc.get("memory_bus_width_bits")),
        )
    )
    fields = {
        "sm_count": _number(acc.get("sm_count")),
        "max_clock_mhz": clock,
        "clock_source": clock_source if clock else None,
        "memory_total_bytes": _number(acc.get("memory_total_bytes")),
        "capability": capability,
        "gcn_arch": acc.get("gcn_arch"),
        "pci_address": acc.get("pci_address"),
        "llc_bytes": _number(acc.get("l2_cache_bytes")),
        "gpu_cores": acc.get("gpu_cores"),
    }
    entry.update({k: v for k, v in fields.items() if v is not None})
    return entry


def _device_entries(
    cpu: dict[str, Any],
    accelerators: list[dict[str, Any]],
    gpus: list[dict[str, Any]],
    run_command: Runner | None,
) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = [
        {
            "device": "cpu",
            "kind": "cpu",
            "name": cpu.get("model_name") or "CPU",
            "peaks": cpu_peaks(cpu),
            "memory_bandwidth": _bandwidth_entry(
                {"value": None, "source": "unknown", "detail": _CPU_BANDWIDTH}
            ),
            "llc_bytes": cpu.get("llc_bytes"),
        }
    ]
    for acc in accelerators:
        name = acc.get("name")
        if acc["kind"] == "mps" and not name:
            cores, _where = apple_gpu_cores(run_command)
            acc["gpu_cores"] = cores
            name = _mps_name(cpu, cores)
        entries.append(_gpu_entry(acc, str(name or acc["device"]), gpus))
    for entry in entries:
        for peak in entry["peaks"].values():
            peak.setdefault("measured", None)
            peak.setdefault("measured_over_spec", None)
    return entries


def _ridges(devices: list[dict[str, Any]]) -> None:
    """Each device's ridge point per dtype: peak FLOP/s / memory bandwidth (FLOP/byte)."""
    snap = {"devices": devices}
    for entry in devices:
        bw = bandwidth_for(snap, entry["device"])["value"]
        entry["ridge_flop_per_byte"] = {
            dtype: ridge_point(peak_for(snap, entry["device"], dtype)["value"], bw)
            for dtype in entry["peaks"]
        }


def _energy_section(
    root: str, gpus: list[dict[str, Any]], accelerators: list[dict[str, Any]]
) -> dict[str, Any]:
    """Which energy counters the machine offers and whether this user can read them."""
    counters = [probe_energy(root)]
    for acc in accelerators:
        if acc["kind"] == "cuda" and not acc.get("rocm"):
            nvml = next(
                (g["nvml"] for g in gpus if g.get("nvml") and g["pci_address"] == acc.get("pci_address")),
                None,
            )
            energy = (nvml or {}).get("energy") or {
                "source": "unavailable",
                "reason": "NVML did not answer for this GPU (see the notes)",
            }
        else:
            kind = "rocm" if acc.get("rocm") else acc["kind"]
            energy = {"source": "unavailable", "reason": unsupported_reason(kind)}
        available = energy["source"] != "unavailable"
        counters.append(
            _counter(acc["device"], energy, [acc["device"]] if available else [], energy["reason"])
        )
    listed = {
        g["pci_address"] for g in gpus if any(a.get("pci_address") == g["pci_address"] for a in accelerators)
    }
    for g in gpus:
        nvml = g.get("nvml")
        if nvml and g["pci_address"] not in listed:
            energy = nvml.get("energy") or {"source": "unavailable", "reason": "NVML did not answer"}
            why = (energy["reason"] or "") + " (a GPU PyTorch does not use here)"
            counters.append(_counter(f"nvml:{nvml.get('index')}", energy, [], why))
    return {"counters": counters}


def _counter(device: str, energy: dict[str, Any], domains: list[str], reason: str | None) -> dict[str, Any]:
    source = energy["source"]
    return {
        "device": device,
        "source": source,
        "available": source != "unavailable",
        "domains": domains,
        "skipped": [],
        "reason": reason,
    }


def _measure_into(
    devices: list[dict[str, Any]], dtypes: list[str], progress: Callable[[str], None], notes: list[str]
) -> None:
    if hasattr(os, "getloadavg") and any(e["kind"] == "cpu" for e in devices):
        load, cpus = os.getloadavg()[0], os.cpu_count() or 1
        if load >= 0.75 * cpus:
            notes.append(
                f"load average {load:.1f} on {cpus} CPUs while measuring: other processes compete "
                "for the cores and memory, so the measured CPU figures are low"
            )
    for entry in devices:
        for dtype in dtypes:
            peak = entry["peaks"][dtype]
            progress(f"measuring {entry['device']} {dtype} matmul ...")
            try:
                result = measure_matmul(entry["device"], dtype)
            except NotMeasurable as exc:
                peak["measured_detail"] = f"not measured: {exc}"
                continue
            except Exception as exc:
                peak["measured_detail"] = f"measurement failed: {type(exc).__name__}: {exc}"
                progress(f"  {entry['device']} {dtype}: failed ({exc})")
                continue
            flops = result["flops_per_s"]
            peak["measured"] = flops
            peak["measured_detail"] = (
                f"torch.matmul {result['n']}x{result['n']}, median of {result['repeats']} repeats of "
                f"{result['matmuls_per_repeat']} after warm-up"
            )
            if peak.get("value"):
                peak["measured_over_spec"] = flops / peak["value"]
            progress(f"  {entry['device']} {dtype}: {flops / 1e9:.1f} GFLOP/s (n={result['n']})")
        _measure_bandwidth_into(entry, progress)


def _measure_bandwidth_into(entry: dict[str, Any], progress: Callable[[str], None]) -> None:
    bw = entry["memory_bandwidth"]
    progress(f"measuring {entry['device']} memory bandwidth (STREAM copy and triad) ...")
    try:
        result = measure_bandwidth(entry["device"], llc_bytes=entry.get("llc_bytes"))
    except Exception as exc:
        bw["measured_detail"] = f"measurement failed: {type(exc).__name__}: {exc}"
        progress(f"  {entry['device']} bandwidth: failed ({exc})")
        return
    triad, copy = result["triad_bytes_per_s"], result["copy_bytes_per_s"]
    llc = entry.get("llc_bytes")
    sized = f"4x the {llc / 1e6:.1f} MB last-level cache or more" if llc else "last-level cache unknown"
    detail = (
        f"STREAM triad (a = b + 3c) {bytes_per_s(triad)}, copy (c = a) {bytes_per_s(copy)}: float32 arrays "
        f"of {result['array_bytes'] / 1e6:.0f} MB each ({sized}), median of {result['repeats']} repeats; bytes "
        "counted as STREAM does (no write-allocate traffic)"
    )
    if result["notes"]:
        detail += "; " + "; ".join(result["notes"])
    bw.update(
        measured=triad,
        measured_detail=detail,
        stream={"copy_bytes_per_s": copy, "triad_bytes_per_s": triad, "array_bytes": result["array_bytes"]},
    )
    if bw.get("value") is None:
        bw.update(value=triad, source="measured", detail=f"measured: {detail}")
    elif bw.get("value"):
        bw["measured_over_spec"] = triad / bw["value"]
    progress(f"  {entry['device']}: triad {bytes_per_s(triad)}, copy {bytes_per_s(copy)}")


def build_snapshot(
    measure: bool = False,
    dtypes: list[str] | None = None,
    root: str = "/",
    *,
    use_torch: bool = True,
    nvml_module: Any = _NVML_UNSET,
    torch_part: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    torch_cache: bool = False,
    refresh: bool = False,
    run_command: Runner | None = None,
) -> dict[str, Any]:
    """The snapshot dict (see `hwinfo.snapshot`).

    `nvml_module=None` skips NVML; tests pass a fake module. `torch_part` replaces the torch probe
    (the shape `hwinfo.torch_probe.probe_torch` returns), so tests can describe a CUDA machine.
    `torch_cache=True` reuses PyTorch's answer from an earlier call (see probe_torch_cached) unless
    `refresh` or `measure` (which imports torch anyway). `run_command` runs macOS's ioreg /
    system_profiler for the Apple GPU core count (tests pass a fake).
    """
    dtypes = list(dtypes or DTYPES)
    bad = [d for d in dtypes if d not in DTYPES]
    if bad:
        raise ValueError(f"unknown dtype {', '.join(bad)}; choose from {','.join(DTYPES)}")
    notes: list[str] = []
    cpu = probe_cpu(root)
    gpus, not_gpus = probe_display(root)
    notes.extend(not_gpus)
    notes.extend(cpu.get("clock_notes") or [])

    if torch_part is None and use_torch:
        cached = torch_cache and not measure
        torch_part = torch_probe.probe_torch_cached(refresh=refresh) if cached else torch_probe.probe_torch()
    torch_part = torch_part or torch_probe.no_torch(["PyTorch not probed (use_torch=False)"])
    notes.extend(torch_part["notes"])
    cpu.update(torch_part["cpu"])
    notes.extend(_cross_check(cpu))
    accelerators = torch_part["accelerators"]

    torch_info = torch_part["torch"]
    nvidia_torch = bool(torch_info and torch_info["available"]["cuda"] and not torch_info.get("hip"))
    if any(g["vendor_id"] == "0x10de" for g in gpus) or nvidia_torch:
        if nvml_module is not None:
            nvml = probe_nvml(None if nvml_module is _NVML_UNSET else nvml_module)
            if nvml["note"]:
                notes.append(nvml["note"])
            _attach_nvml(gpus, nvml)
    _attach_torch(gpus, accelerators)

    backends = {"NVIDIA": ("CUDA", False), "AMD": ("ROCm", True), "Intel": ("XPU", None)}
    for g in gpus:
        if g["vendor"] not in backends:
            continue
        backend, rocm = backends[g["vendor"]]
        kind = "xpu" if rocm is None else "cuda"
        if any(a["kind"] == kind and (rocm is None or bool(a.get("rocm")) == rocm) for a in accelerators):
            continue
        label = g["name"] or f"device {g['device_id']}"
        why = (
            "PyTorch is not available"
            if torch_info is None
            else f"torch {torch_info['version']} sees no {backend} device"
        )
        notes.append(
            f"{g['vendor']} GPU {label} at {g['pci_address']} is on the PCI bus but PyTorch cannot use it ({why})"
        )
    if not cpu.get("max_mhz"):
        why = (
            "no max clock passed the checks above"
            if cpu.get("clock_notes")
            else "no sysfs cpufreq, e.g. in a VM"
        )
        notes.append(
            f"CPU max/boost clock unknown ({why}): the CPU peak uses "
            + ("the base clock" if cpu.get("base_mhz") else "the current clock")
            + ", so the real peak may be higher; it is labelled derived, not spec"
        )

    devices = _device_entries(cpu, accelerators, gpus, run_command)
    if measure:
        if torch_info is None:
            notes.append("--measure needs PyTorch; nothing measured")
        else:
            _measure_into(devices, dtypes, progress or (lambda _msg: None), notes)
    _ridges(devices)

    return {
        "schema": SCHEMA,
        "host": socket.gethostname(),
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        "torch": torch_info,
        "cpu": cpu,
        "gpus": gpus,
        "devices": devices,
        "dtypes": dtypes,
        "measured": bool(measure and torch_info is not None),
        "energy": _energy_section(root, gpus, accelerators),
        "notes": notes,
    }
