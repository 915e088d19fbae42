"""NVIDIA GPU details through NVML (nvidia-ml-py, `import pynvml`).

`probe_nvml` takes the module as an argument so tests pass a fake one. NVML missing or failing gives a
note, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hwinfo.energy import MIG_NO_ENERGY, mig_enabled, nvml_energy_support
from hwinfo.units import positive


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def normalise_bus_id(bus_id: str) -> str:
    """ "00000000:01:00.0" (NVML) and "0000:01:00.0" (sysfs) -> "0000:01:00.0"."""
    text = _text(bus_id).strip().lower()
    domain, sep, rest = text.partition(":")
    if not sep:
        return text
    if rest.count(":") == 0:  # no domain given: "01:00.0"
        return f"0000:{text}"
    return f"{int(domain, 16):04x}:{rest}" if all(c in "0123456789abcdef" for c in domain) else text


def _cuda_version(value: int) -> str:
    return f"{value // 1000}.{(value % 1000) // 10}"


def probe_nvml(nvml_module: Any = None) -> dict[str, Any]:
    """{"available": bool, "driver_version", "cuda_driver_version", "devices": [...], "note": str | None}.

    Each device: index, name, memory_total_bytes, max_sm_clock_mhz, power_limit_w, pci_bus_id, uuid,
    capability (CUDA compute capability), energy {source, reason} (which energy reading NVML offers).
    A field NVML cannot give (e.g. the power limit on many laptops) is None.
    """
    result: dict[str, Any] = {
        "available": False,
        "driver_version": None,
        "cuda_driver_version": None,
        "devices": [],
        "note": None,
    }
    nvml = nvml_module
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError as exc:
            result["note"] = f"NVML not available: nvidia-ml-py is not installed ({exc})"
            return result
    try:
        nvml.nvmlInit()
    except Exception as exc:
        result["note"] = f"NVML not available: {type(exc).__name__}: {exc}"
        return result
    try:
        result["available"] = True
        result["driver_version"] = _call(lambda: _text(nvml.nvmlSystemGetDriverVersion()))
        result["cuda_driver_version"] = _call(
            lambda: _cuda_version(int(nvml.nvmlSystemGetCudaDriverVersion()))
        )
        count = int(nvml.nvmlDeviceGetCount())
        clock_sm = getattr(nvml, "NVML_CLOCK_SM", 1)
        for index in range(count):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            power_mw = _call(lambda h=handle: nvml.nvmlDeviceGetPowerManagementLimit(h))
            result["devices"].append(
                {
                    "index": index,
                    "name": _call(lambda h=handle: _text(nvml.nvmlDeviceGetName(h))),
                    "memory_total_bytes": _positive(
                        _call(lambda h=handle: int(nvml.nvmlDeviceGetMemoryInfo(h).total))
                    ),
                    "max_sm_clock_mhz": _positive(
                        _call(lambda h=handle: int(nvml.nvmlDeviceGetMaxClockInfo(h, clock_sm))), 10_000
                    ),
                    "power_limit_w": None if _positive(power_mw) is None else power_mw / 1000,
                    "pci_bus_id": _call(
                        lambda h=handle: normalise_bus_id(nvml.nvmlDeviceGetPciInfo(h).busId)
                    ),
                    "uuid": _call(lambda h=handle: _text(nvml.nvmlDeviceGetUUID(h))),
                    "capability": _call(
                        lambda h=handle: _capability(nvml.nvmlDeviceGetCudaComputeCapability(h))
                    ),
                    "energy": _energy(nvml, handle),
                    "driver_version": result["driver_version"],
                    "cuda_driver_version": result["cuda_driver_version"],
                    "sm_count": None,
                }
            )
    except Exception as exc:
        result["note"] = f"NVML query failed: {type(exc).__name__}: {exc}"
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
    return result


def _positive(value: Any, most: float = float("inf")) -> Any:
    """A number NVML returned when it is a positive int or float up to `most`, else None."""
    return value if positive(value, most) is not None else None


def _capability(value: Any) -> str:
    major, minor = value
    return f"{int(major)}.{int(minor)}"


def _energy(nvml: Any, handle: Any) -> dict[str, Any]:
    if mig_enabled(nvml, handle):
        return {"source": "unavailable", "reason": MIG_NO_ENERGY}
    source, reason = nvml_energy_support(nvml, handle)
    return {"source": source, "reason": reason}


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:
        return None
