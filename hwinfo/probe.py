"""Assemble the hwinfo snapshot (schema devicebench-hwinfo/1): host, OS, torch, CPU, GPUs, devices, peaks."""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Callable
from typing import Any

from hwinfo import SCHEMA
from hwinfo.cpu import probe_cpu
from hwinfo.nvml import normalise_bus_id, probe_nvml
from hwinfo.pci import probe_pci
from hwinfo.peaks import DTYPES, cpu_peaks, gpu_peaks

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


def _mps_name(cpu: dict[str, Any]) -> str:
    chip = cpu.get("model_name") or "Apple GPU"
    return f"{chip} GPU"


def _device_entries(cpu: dict[str, Any], accelerators: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries = [
        {"device": "cpu", "kind": "cpu", "name": cpu.get("model_name") or "CPU", "peaks": cpu_peaks(cpu)}
    ]
    for acc in accelerators:
        name = acc.get("name") or (_mps_name(cpu) if acc["kind"] == "mps" else acc["device"])
        entry = {"device": acc["device"], "kind": acc["kind"], "name": name, "peaks": gpu_peaks(name)}
        for key in ("sm_count", "memory_total_bytes", "capability", "gcn_arch", "pci_address"):
            if acc.get(key) is not None:
                entry[key] = acc[key]
        entries.append(entry)
    for entry in entries:
        for peak in entry["peaks"].values():
            peak.setdefault("measured", None)
            peak.setdefault("measured_over_spec", None)
    return entries


def _measure_into(
    devices: list[dict[str, Any]],
    dtypes: list[str],
    progress: Callable[[str], None],
    notes: list[str],
) -> None:
    from hwinfo.measure import measure_matmul

    if hasattr(os, "getloadavg") and any(e["kind"] == "cpu" for e in devices):
        load, cpus = os.getloadavg()[0], os.cpu_count() or 1
        if load >= 0.75 * cpus:
            notes.append(
                f"load average {load:.1f} on {cpus} CPUs while measuring: other processes compete "
                "for the cores, so the measured CPU figures are low"
            )
    for entry in devices:
        for dtype in dtypes:
            peak = entry["peaks"][dtype]
            if dtype == "tf32" and entry["kind"] != "cuda":
                peak["measured_detail"] = "not measured: tf32 is a CUDA matmul mode"
                continue
            progress(f"measuring {entry['device']} {dtype} matmul ...")
            try:
                result = measure_matmul(entry["device"], dtype)
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
) -> dict[str, Any]:
    """The snapshot dict (see `hwinfo.snapshot`).

    `nvml_module=None` skips NVML; tests pass a fake module. `torch_part` replaces the torch probe
    (the shape `hwinfo.torch_probe.probe_torch` returns), so tests can describe a CUDA machine.
    `torch_cache=True` reuses PyTorch's answer from an earlier call (see probe_torch_cached) unless
    `refresh` or `measure` (which imports torch anyway).
    """
    dtypes = list(dtypes or DTYPES)
    bad = [d for d in dtypes if d not in DTYPES]
    if bad:
        raise ValueError(f"unknown dtype {', '.join(bad)}; choose from {','.join(DTYPES)}")
    notes: list[str] = []
    cpu = probe_cpu(root)
    gpus = probe_pci(root)

    no_torch: dict[str, Any] = {
        "torch": None,
        "cpu": {"torch_capability": None, "torch_threads": None, "mkl": None, "mkldnn": None},
        "accelerators": [],
        "notes": ["PyTorch not probed (use_torch=False)"],
    }
    if torch_part is None and use_torch:
        from hwinfo.torch_probe import probe_torch, probe_torch_cached

        torch_part = probe_torch_cached(refresh=refresh) if torch_cache and not measure else probe_torch()
    torch_part = torch_part or no_torch
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
        notes.append(
            "CPU max/boost clock unknown (no sysfs cpufreq, e.g. in a VM): the CPU peak uses "
            + ("the base clock" if cpu.get("base_mhz") else "the current clock")
            + ", so the real peak may be higher"
        )

    devices = _device_entries(cpu, accelerators)
    if measure:
        if torch_info is None:
            notes.append("--measure needs PyTorch; nothing measured")
        else:
            _measure_into(devices, dtypes, progress or (lambda _msg: None), notes)

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
        "notes": notes,
    }
