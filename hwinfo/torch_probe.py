"""What PyTorch can use here: version, CPU dispatch, and the cuda / mps / xpu devices with names."""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any


def probe_torch() -> dict[str, Any]:
    """{"torch": dict | None, "cpu": {...torch CPU fields}, "accelerators": [...], "notes": [...]}.

    Imports torch (about a second); torch missing gives torch None and a note.
    """
    out = no_torch([])
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
                        # kHz in the device properties; max SM (or engine) clock and memory clock
                        "max_clock_mhz": _khz_to_mhz(getattr(props, "clock_rate", None)),
                        "memory_clock_mhz": _khz_to_mhz(getattr(props, "memory_clock_rate", None)),
                        "memory_bus_width_bits": _int_or_none(getattr(props, "memory_bus_width", None)),
                        "l2_cache_bytes": _int_or_none(getattr(props, "L2_cache_size", None)),
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


def no_torch(notes: list[str]) -> dict[str, Any]:
    """The torch part of a snapshot without PyTorch: no torch, no devices, the CPU's torch fields None."""
    cpu = {"torch_capability": None, "torch_threads": None, "mkl": None, "mkldnn": None}
    return {"torch": None, "cpu": cpu, "accelerators": [], "notes": notes}


def _torch_bus_id(props: Any) -> str | None:
    bus = getattr(props, "pci_bus_id", None)
    dev = getattr(props, "pci_device_id", None)
    domain = getattr(props, "pci_domain_id", None)
    if bus is None or dev is None:
        return None
    return f"{int(domain or 0):04x}:{int(bus):02x}:{int(dev):02x}.0"


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _khz_to_mhz(value: Any) -> float | None:
    khz = _int_or_none(value)
    return khz / 1000 if khz else None


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except Exception:
        return None


CACHE_VERSION = 2
# What can change PyTorch's answer without changing its install: thread settings, visible devices.
_ENV_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
             "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK", "PYTORCH_ENABLE_MPS_FALLBACK")  # fmt: skip


def cache_dir() -> Path:
    """$DEVICEBENCH_CACHE, else $XDG_CACHE_HOME/devicebench, else ~/.cache/devicebench."""
    if os.environ.get("DEVICEBENCH_CACHE"):
        return Path(os.environ["DEVICEBENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "devicebench"


def _fingerprint() -> str | None:
    """What PyTorch's view depends on: this interpreter, torch's installed files, the environment and
    the device nodes and driver. None when torch is not installed (nothing to cache)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return None
    torch_dir = Path(spec.origin).parent
    parts = [sys.executable, str(torch_dir), str(CACHE_VERSION), platform.platform()]
    for f in ("version.py", "__init__.py"):
        try:
            st = (torch_dir / f).stat()
            parts.append(f"{f}:{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append(f"{f}:missing")
    parts += [f"{k}={os.environ.get(k, '')}" for k in _ENV_KEYS]
    parts += sorted(glob.glob("/dev/nvidia*") + glob.glob("/dev/dri/*") + glob.glob("/dev/kfd"))
    try:
        parts.append(Path("/proc/driver/nvidia/version").read_text())
    except OSError:
        pass
    try:
        parts.append(str(os.cpu_count()) + ":" + str(sorted(os.sched_getaffinity(0))))
    except (AttributeError, OSError):
        parts.append(str(os.cpu_count()))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def _torch_imported() -> bool:
    return "torch" in sys.modules


def probe_torch_cached(refresh: bool = False, directory: Path | None = None) -> dict[str, Any]:
    """probe_torch(), remembered per interpreter, torch install, environment and device nodes.

    `import torch` costs a second or more; with the answer cached, `hwinfo` answers in well under one.
    Anything that could change the answer (a new torch, a driver, CUDA_VISIBLE_DEVICES, threads)
    changes the fingerprint, so a stale answer is never reused.
    """
    key = _fingerprint()
    if key is None:
        return probe_torch()
    path = (directory or cache_dir()) / f"torch-probe-{key}.json"
    if not refresh:
        part = _read_cache(path)
        if part is not None:
            return part
    pristine = (
        not _torch_imported()
    )  # a process that may have changed torch's threads must not cache its view
    part = probe_torch()
    if not pristine:
        return part
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    try:
        _atomic_write_text(
            path, json.dumps({"cache_version": CACHE_VERSION, "created": created, "probe": part})
        )
    except (OSError, ValueError):
        pass  # a read-only home: no cache, just slower
    return part


def _read_cache(path: Path) -> dict[str, Any] | None:
    """The cached probe, or None when the file is missing, unreadable or of any other shape."""
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(cached, dict) or cached.get("cache_version") != CACHE_VERSION:
        return None
    part, created = cached.get("probe"), cached.get("created")
    if not isinstance(created, str) or not valid_probe(part):
        return None
    note = f"PyTorch's view cached {created} (hwinfo --refresh asks PyTorch again)"
    return {**part, "notes": [*part["notes"], note]}


def valid_probe(part: Any) -> bool:
    """True when `part` has the shape probe_torch returns (so a cache of any other shape is ignored)."""
    if not isinstance(part, dict) or set(part) != {"torch", "cpu", "accelerators", "notes"}:
        return False
    if not isinstance(part["notes"], list) or not all(isinstance(n, str) for n in part["notes"]):
        return False
    if not isinstance(part["cpu"], dict) or set(part["cpu"]) != _CPU_KEYS or not _valid_cpu(part["cpu"]):
        return False
    accs = part["accelerators"]
    if not isinstance(accs, list) or not all(_valid_accelerator(a) for a in accs):
        return False
    info = part["torch"]
    if info is None:
        return not accs
    if not isinstance(info, dict) or not isinstance(info.get("version"), str):
        return False
    avail = info.get("available")
    return (
        isinstance(avail, dict)
        and avail.get("cpu") is True
        and isinstance(avail.get("mps"), bool)
        and all(
            isinstance(avail.get(k), list) and all(isinstance(n, str) for n in avail[k])
            for k in ("cuda", "xpu")
        )
    )


_CPU_KEYS = {"torch_capability", "torch_threads", "mkl", "mkldnn"}
MAX_THREADS = 1 << 16  # more threads than any machine has CPUs: a cache that says so is damaged


def _valid_cpu(cpu: dict) -> bool:
    """The types probe_torch gives each CPU field (each may be None when PyTorch could not say)."""
    threads = cpu["torch_threads"]
    return (
        (threads is None or (type(threads) is int and 1 <= threads <= MAX_THREADS))
        and (cpu["torch_capability"] is None or isinstance(cpu["torch_capability"], str))
        and all(cpu[k] is None or isinstance(cpu[k], bool) for k in ("mkl", "mkldnn"))
    )


def _valid_accelerator(acc: Any) -> bool:
    return (
        isinstance(acc, dict)
        and acc.get("kind") in ("cuda", "mps", "xpu")
        and isinstance(acc.get("device"), str)
        and (acc.get("name") is None or isinstance(acc.get("name"), str))
    )


def _atomic_write_text(path: Path, text: str) -> None:
    """Write beside the target, fsync, rename; the file honours the umask."""
    # Deliberate copy of the results module's atomic write: hwinfo never imports bench (layering).
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
