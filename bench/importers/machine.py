"""The machine a log ran on, for its peak FLOP/s: the `hwinfo --json` saved there (--hwinfo), a peak the
user gives (--peak-flops), or a device name hwinfo's tables know (--device-name). Never this machine's
own figures: the log ran elsewhere. No torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.importers.nanogpt import NanoGPTLogError
from bench.userfiles import read_user_bytes
from hwinfo import peaks

HWINFO_SCHEMA = "devicebench-hwinfo/"
HWINFO_SCHEMA_VERSION = 1
MAX_HWINFO_BYTES = 20 * 2**20  # `hwinfo --json` writes a few kB; anything this large is another file
HWINFO_HINT = "--hwinfo FILE (what `hwinfo --json` printed on the machine that made the log)"


def load_hwinfo(path: str | Path) -> dict[str, Any]:
    """What `hwinfo --json` printed, checked. Raises NanoGPTLogError (one line) for anything else."""
    hint = "pass what `hwinfo --json` printed on the machine that made the log"
    raw = read_user_bytes(path, what="--hwinfo", error=NanoGPTLogError, max_bytes=MAX_HWINFO_BYTES, hint=hint)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        where = f" ({e.msg} at line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
        raise NanoGPTLogError(f"--hwinfo {path} is not JSON{where}: {hint}") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, str) or not schema.startswith(HWINFO_SCHEMA):
        raise NanoGPTLogError(f"--hwinfo {path} is not hwinfo JSON (schema {_brief(schema)}): {hint}")
    version = schema.removeprefix(HWINFO_SCHEMA)
    if not version.isdigit() or int(version) > HWINFO_SCHEMA_VERSION:
        raise NanoGPTLogError(
            f"--hwinfo {path} was written by a newer hwinfo ({_brief(schema)}) than this devicebench reads: "
            "upgrade devicebench"
        )
    devices = data.get("devices")
    if (
        not isinstance(data.get("cpu"), dict)
        or not isinstance(devices, list)
        or not all(isinstance(d, dict) and isinstance(d.get("device"), str) for d in devices)
        or not all(isinstance(d.get("peaks"), dict) for d in devices)
    ):
        raise NanoGPTLogError(
            f"--hwinfo {path} is incomplete hwinfo JSON (no cpu or devices with peaks): {hint}"
        )
    return data


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def device_entry(snapshot: dict[str, Any], device: str) -> dict[str, Any] | None:
    """The snapshot's entry for a log's device ("cuda" is cuda:0), or None."""
    wanted = {device, f"{device}:0"} if ":" not in device else {device}
    if device.endswith(":0"):
        wanted.add(device.split(":")[0])
    return next((d for d in snapshot.get("devices") or [] if d.get("device") in wanted), None)


def bf16_supported(snapshot: dict[str, Any] | None, device: str) -> bool | None:
    """Whether train.py's default dtype on this CUDA device is bfloat16: True for compute capability 8.0 or
    newer; None where it depends on the PyTorch version (older GPUs may emulate it) or is not recorded."""
    entry = device_entry(snapshot, device) if snapshot else None
    capability = str((entry or {}).get("capability") or "")
    major = capability.split(".")[0]
    return True if major.isdigit() and int(major) >= 8 else None


def _unknown(detail: str) -> dict[str, Any]:
    return {"value": None, "source": "unknown", "detail": detail}


def peak_from_hwinfo(
    snapshot: dict[str, Any], path: str, device: str, device_type: str, dtype: str, log: str
) -> tuple[dict[str, Any], str | None]:
    """(peak, device name) for a log's device from an hwinfo snapshot, labelled with its source.

    A device the snapshot does not list is refused (the JSON of another machine), except a CUDA GPU that
    hwinfo saw on the PCI bus without a CUDA build of PyTorch: its name still gives the spec peak.
    """
    host = snapshot.get("host") or "the machine"
    where = f"hwinfo of {host}, {Path(path).name}"
    entry = device_entry(snapshot, device)
    if entry is not None:
        peak = dict(peaks.peak_for(snapshot, entry["device"], dtype))
        peak["detail"] = f"{peak.get('detail') or ''} (from {where})".strip()
        return peak, str(entry.get("name") or device)
    gpus = [str(n) for g in snapshot.get("gpus") or [] if isinstance(g, dict) and g.get("vendor") == "NVIDIA"
            if (n := (g.get("nvml") or {}).get("name") or g.get("name"))]  # fmt: skip
    index = int(device.split(":")[1]) if ":" in device else 0
    if device_type == "cuda" and index < len(gpus):
        name = gpus[index]
        peak = dict(peaks.gpu_peaks(name)[dtype])
        peak["detail"] = f"{peak['detail']} (from the GPU list of {where}; PyTorch was not probed there)"
        return peak, name
    listed = [str(d.get("device")) for d in snapshot.get("devices") or []]
    raise NanoGPTLogError(
        f"{log} ran on {device}, but --hwinfo {path} describes {host}, which has no {device} (it lists "
        f"{', '.join(listed) or 'no devices'}): pass the hwinfo JSON of the machine that made the log"
    )


def peak_from_name(device_type: str, dtype: str, device_name: str | None) -> dict[str, Any]:
    """{"value", "source", "detail"} for a named device from hwinfo's tables; unknown said plainly."""
    if not device_name:
        return _unknown(
            f"the log does not name its {device_type} device: pass {HWINFO_HINT} or --peak-flops {dtype}=VALUE"
        )
    if device_type != "cpu":
        return dict(peaks.gpu_peaks(device_name)[dtype])
    chip = peaks.apple_chip(device_name)
    if chip is None:
        return _unknown(
            f"{device_name!r}: a CPU's peak needs its microarchitecture, core count and clock, which its name "
            "alone does not give (only Apple M-series chips are known by name): pass --hwinfo FILE (what "
            f"`hwinfo --json` printed on that machine) or --peak-flops {dtype}=VALUE"
        )
    spec = peaks.APPLE_CHIPS[chip]
    p_cores, e_cores = spec["configs"][0]
    cpu = {
        "model_name": chip,
        "microarchitecture": f"Apple {chip.split()[1]}",
        "max_mhz": spec["p_mhz"],
        "clock_sources": {"max_mhz": "hwinfo's Apple chip table"},
        "core_groups": [
            {"type": "performance", "count": p_cores, "max_mhz": spec["p_mhz"]},
            {"type": "efficiency", "count": e_cores, "max_mhz": spec["e_mhz"]},
        ],
        "features": ["asimd"],
    }
    peak = dict(peaks.cpu_peaks(cpu).get(dtype) or _unknown(f"{chip}: no {dtype} peak"))
    if peak.get("value") is not None:
        peak["detail"] = f"{chip} ({p_cores}P+{e_cores}E, the fullest configuration): {peak['detail']}"
    return peak


def imported_hwinfo(snapshot: dict[str, Any], path: str) -> dict[str, Any]:
    """The snapshot to keep in sweep.json, saying where it came from."""
    notes = [str(n) for n in snapshot.get("notes") or []]
    notes.append(f"imported with nanoGPT logs from {path}: probed on the machine that made the logs")
    return {**snapshot, "notes": notes}


def minimal_hwinfo(host: str, device_name: str | None, metas: list[dict]) -> dict[str, Any]:
    """What is known of a machine without its hwinfo JSON: its label and the named device. Nothing probed."""
    first: dict[tuple, dict] = {}  # the first run of each device and dtype
    for m in metas:
        first.setdefault((m["device"], m["dtype"]), m)
    devices = [{"device": m["device"], "kind": m["device_type"], "name": m["device_name"],
                "peaks": {m["dtype"]: m["peak_flops"]}} for m in first.values()]  # fmt: skip
    kinds = {m["device_type"] for m in metas}
    return {
        "schema": "devicebench-hwinfo/1",
        "host": host,
        "os": None,
        "torch": None,
        "cpu": {"model_name": device_name} if device_name and kinds == {"cpu"} else {},
        "gpus": [{"name": device_name}] if device_name and "cuda" in kinds else [],
        "devices": devices,
        "notes": ["imported from nanoGPT train.py logs: this machine was not probed (no --hwinfo)"],
    }
