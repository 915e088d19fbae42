"""What PyTorch can use here: version, CPU dispatch, and the cuda / mps / xpu devices with names."""

from __future__ import annotations

from typing import Any


def probe_torch() -> dict[str, Any]:
    """{"torch": dict | None, "cpu": {...torch CPU fields}, "accelerators": [...], "notes": [...]}.

    Imports torch (about a second); torch missing gives torch None and a note.
    """
    out: dict[str, Any] = {
        "torch": None,
        "cpu": {"torch_capability": None, "torch_threads": None, "mkl": None, "mkldnn": None},
        "accelerators": [],
        "notes": [],
    }
    try:
        import torch
    except ImportError as exc:
        out["notes"].append(f"PyTorch is not installed ({exc}): no torch devices, no --measure")
        return out

    hip = getattr(torch.version, "hip", None)
    available: dict[str, Any] = {"cpu": True, "cuda": [], "mps": False, "xpu": []}
    info: dict[str, Any] = {
        "version": torch.__version__,
        "cuda": getattr(torch.version, "cuda", None),
        "hip": hip,
        "available": available,
    }
    out["torch"] = info
    cpu = out["cpu"]
    cpu["torch_capability"] = _safe(lambda: str(torch.backends.cpu.get_cpu_capability()))
    cpu["torch_threads"] = _safe(torch.get_num_threads)
    cpu["mkl"] = _safe(torch.backends.mkl.is_available)
    cpu["mkldnn"] = _safe(torch.backends.mkldnn.is_available)

    accelerators: list[dict[str, Any]] = out["accelerators"]
    try:
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                available["cuda"].append(props.name)
                accelerators.append(
                    {
                        "device": f"cuda:{i}",
                        "kind": "cuda",
                        "name": props.name,
                        "rocm": hip is not None,
                        "sm_count": getattr(props, "multi_processor_count", None),
                        "memory_total_bytes": getattr(props, "total_memory", None),
                        "capability": f"{props.major}.{props.minor}" if hip is None else None,
                        "gcn_arch": getattr(props, "gcnArchName", None) if hip is not None else None,
                        "pci_bus_id": _torch_bus_id(props),
                        "uuid": _safe(lambda p=props: str(p.uuid)) if hasattr(props, "uuid") else None,
                    }
                )
    except Exception as exc:
        out["notes"].append(f"torch.cuda failed: {type(exc).__name__}: {exc}")
    try:
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            available["mps"] = True
            accelerators.append({"device": "mps", "kind": "mps", "name": None})
    except Exception as exc:
        out["notes"].append(f"torch.backends.mps failed: {type(exc).__name__}: {exc}")
    try:
        xpu = getattr(torch, "xpu", None)
        if xpu is not None and xpu.is_available():
            for i in range(xpu.device_count()):
                name = xpu.get_device_name(i)
                available["xpu"].append(name)
                accelerators.append({"device": f"xpu:{i}", "kind": "xpu", "name": name})
    except Exception as exc:
        out["notes"].append(f"torch.xpu failed: {type(exc).__name__}: {exc}")
    return out


def _torch_bus_id(props: Any) -> str | None:
    bus = getattr(props, "pci_bus_id", None)
    dev = getattr(props, "pci_device_id", None)
    domain = getattr(props, "pci_domain_id", None)
    if bus is None or dev is None:
        return None
    return f"{int(domain or 0):04x}:{int(bus):02x}:{int(dev):02x}.0"


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except Exception:
        return None
