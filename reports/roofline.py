"""The roofline of a profiled step, as a finding's table and as the data a plot needs (profile.json schema 2).

profile.json holds the numbers (bench.profile.roofline: each category's FLOPs, bytes, FLOP/byte,
achieved FLOP/s and bytes/s, and its bound); this module reads them defensively (a damaged file gives no
roofline, never a traceback), finds what bounds each step and the lever per category (`roofline_findings`:
a table of category, share, intensity, achieved, bound, lever; reports/words.py words it), and gathers the
roofs and points of each device's plot (`device_rooflines`). No torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hwinfo.dtypes import CPU_NATIVE_FEATURES
from reports import fmt
from reports.finding import Finding
from reports.load import Results
from reports.profile_text import CATEGORIES, LABELS, PROFILED_SLOWER

BOUNDS = ("compute", "memory", "overhead")
MIN_SHARE = 0.02  # a category with less of the step does not give the finding its lever
OVERHEAD_WARNING = 0.5  # ... and from this much, the finding is a warning
_NUMBERS = (
    "flops", "flops_floor", "bytes", "ops", "intensity", "flops_per_s", "bytes_per_s",
    "fraction_of_compute_roof", "fraction_of_memory_roof",
)  # fmt: skip


# What a figure can be on any device that exists (wider than any): outside, a file is damaged.
_PLAUSIBLE = {
    "intensity": 1e6, "ridge_flop_per_byte": 1e6, "flops_per_s": 1e18, "bytes_per_s": 1e16, "flops": 1e21,
    "flops_floor": 1e21, "bytes": 1e21, "fraction_of_compute_roof": 1e3, "fraction_of_memory_roof": 1e3,
}  # fmt: skip
_ROOF_RANGE = {"compute": (1e6, 1e18), "memory": (1e3, 1e16)}


def _num(x: Any, most: float = float("inf")) -> float | None:
    """A number from a file: a JSON number in [0, most] (not a string that looks like one), else None."""
    return float(x) if isinstance(x, (int, float)) and fmt.is_num(x) and 0 <= x <= most else None


def _roof(r: Any, kind: str = "compute") -> dict | None:
    least, most = _ROOF_RANGE[kind]
    if not isinstance(r, dict) or (_num(r.get("value"), most) or 0) < least:
        return None
    return {
        "value": float(r["value"]),
        "source": str(r.get("source") or "unknown"),
        "label": str(r.get("label") or r.get("source") or ""),
        "kind": str(r["kind"]) if r.get("kind") else None,
        "detail": str(r.get("detail") or ""),
    }


def _roofs(items: Any, kind: str) -> list[dict]:
    return [r for r in (_roof(i, kind) for i in items) if r] if isinstance(items, list) else []


def roofline_of(profile: dict | None) -> dict | None:
    """A profile's roofline section with every figure checked (a wrong type reads as absent), or None
    when the profile has none (schema 1, or a damaged section)."""
    rl = (profile or {}).get("roofline")
    if not isinstance(rl, dict) or not isinstance(rl.get("categories"), dict):
        return None
    cats = {}
    for cat, row in rl["categories"].items():
        if not isinstance(row, dict):
            continue
        clean = {k: _num(row.get(k), _PLAUSIBLE.get(k, float("inf"))) for k in _NUMBERS}
        clean["bound"] = row.get("bound") if row.get("bound") in BOUNDS else None
        clean["bound_basis"] = str(row.get("bound_basis") or "")
        cats[str(cat)] = clean
    if not cats:
        return None
    roofs = rl.get("roofs") if isinstance(rl.get("roofs"), dict) else {}
    shares = rl.get("bound_fraction") if isinstance(rl.get("bound_fraction"), dict) else {}
    return {
        "categories": cats,
        "compute_roof": _roof(rl.get("compute_roof")),
        "contradicted_compute_roof": _roof(rl.get("contradicted_compute_roof")),
        "memory_roof": _roof(rl.get("memory_roof"), "memory"),
        "roofs": {kind: _roofs(roofs.get(kind), kind) for kind in ("compute", "memory")},
        "ridge_flop_per_byte": _num(rl.get("ridge_flop_per_byte"), _PLAUSIBLE["ridge_flop_per_byte"]),
        "near_roof": _num(rl.get("near_roof")),
        "bound_fraction": {
            k: v for k, v in ((k, _num(shares.get(k))) for k in (*BOUNDS, "unknown")) if v is not None
        },
        "uncounted_ops": sorted(
            re.sub(r"[^\w.:-]", "?", str(op))[:60]
            for op in (rl.get("uncounted_ops") if isinstance(rl.get("uncounted_ops"), dict) else {})
        ),
    }


def _share(profile: dict, cat: str) -> float:
    v = (profile.get("mean") or {}).get("fraction", {}).get(cat)
    return float(v) if fmt.is_num(v) else 0.0


# Which CPU features run a reduced dtype natively; without them PyTorch emulates it through fp32 (slower).
NATIVE_CPU_FEATURES = CPU_NATIVE_FEATURES  # the one definition: hwinfo.dtypes


def compute_lever(device_type: Any, dtype: Any, features: Any) -> str:
    """The lever for compute-bound work (a reports.words.LEVERS id): a faster device, or a lower-precision
    dtype only where the device runs one natively: on a CPU without avx512_bf16/AMX (or avx512_fp16) bf16 and
    fp16 are emulated and slower than fp32, so "use bf16" there would send the user the wrong way."""
    if device_type != "cpu" or dtype != "fp32":
        return "faster_device_or_native_dtype"
    have = {str(f).lower() for f in features or []}
    if not have:
        return "faster_device_features_unknown"
    native = [d for d, need in NATIVE_CPU_FEATURES.items() if have & set(need)]
    return f"faster_device_or_{'_or_'.join(native)}" if native else "faster_device_no_native"


def category_lever(cat: str, row: dict, profile: dict, features: Any = None) -> str | None:
    """What would move one category's time (a reports.words.LEVERS id), from what bounds it."""
    bound, compiled = row.get("bound"), profile.get("compiled") is True
    device = str(profile.get("device_type") or profile.get("device") or "")
    if cat == "optimizer" and bound in ("overhead", "memory"):  # a foreach AdamW: many ops, one pass each
        return "fused_adamw" if profile.get("fused_adamw") is False else "larger_batch"
    if bound == "overhead":
        if profile.get("view") == "device":
            return "cuda_graphs" if device == "cuda" else "fewer_kernels"
        return "larger_batch" if compiled else "compile_or_batch"

    if cat == "elementwise_norm" and bound == "memory":
        return "larger_batch" if compiled else "fuse_elementwise"
    if cat in ("matmul", "attention") and bound == "memory":
        return "larger_batch"
    if bound == "compute":
        dtype = profile.get("dtype")
        return compute_lever(device.split(":")[0], dtype, features)
    return None


def roofline_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """One `roofline` finding per profiled run whose profile has a roofline: the share of the step under
    each bound, and per category its share, FLOP/byte, achieved rate, bound and lever (the table the HTML
    and `--details` show); the lever of the largest category is the finding's."""
    out = []
    for key in ok.index:
        prof = results.profiles.get(key)
        rl = roofline_of(prof)
        if rl is None:
            continue
        shares = rl["bound_fraction"]
        host_only = all(row["bound_basis"] == "async_host_view" for row in rl["categories"].values())
        features = (results.hwinfo_for(key).get("cpu") or {}).get("features")
        prof = {**prof, "dtype": prof.get("dtype") or ok.loc[key].get("dtype")}
        table = {}
        for c in sorted(rl["categories"], key=lambda c: -_share(prof, c)):
            row = rl["categories"][c]
            compute_side = row["fraction_of_compute_roof"] is not None and (
                row["fraction_of_memory_roof"] is None
                or row["fraction_of_compute_roof"] >= row["fraction_of_memory_roof"]
            )
            table[c] = {
                "share": _share(prof, c), "intensity": row["intensity"],
                "flops_per_s": row["flops_per_s"] if compute_side else None,
                "bytes_per_s": None if compute_side else row["bytes_per_s"],
                "of_roof": row["fraction_of_compute_roof"] if compute_side else row["fraction_of_memory_roof"],
                "bound": row["bound"] or ("not placed" if row["bound_basis"] else "unknown"),
                "lever": None if host_only else category_lever(c, row, prof, features),
            }  # fmt: skip
        # the finding's lever: the largest category under the bound that holds most of the step
        bounds = {b: v for b, v in shares.items() if b in BOUNDS}
        top_bound = max(bounds, key=lambda b: bounds[b]) if bounds else None
        placed = [c for c, row in table.items() if row["lever"] and row["share"] >= MIN_SHARE]
        top = next((c for c in placed if table[c]["bound"] == top_bound), placed[0] if placed else None)
        load = ((results.run_meta.get(key) or {}).get("summary") or {}).get("host_load") or {}
        overhead_x = prof.get("profiler_overhead")
        evidence = {
            "host_only": host_only, "bound_fraction": shares, "categories": table,
            "top_category": {"name": top, "share": table[top]["share"]} if top else None,
            "lever": table[top]["lever"] if top else None,
            "device": prof.get("device") or ok.loc[key].get("device"), "batch_size": prof.get("batch_size"),
            "ridge_flop_per_byte": rl["ridge_flop_per_byte"], "near_roof": rl["near_roof"],
            "compute_roof": rl["compute_roof"], "memory_roof": rl["memory_roof"],
            "contradicted_compute_roof": rl["contradicted_compute_roof"], "uncounted_ops": rl["uncounted_ops"],
            "other_processes_cpu_cores": load.get("other_processes_cpu_cores"),
            "profiler_overhead": overhead_x if fmt.is_num(overhead_x) and overhead_x > PROFILED_SLOWER else None,
        }  # fmt: skip
        severity = "warning" if shares.get("overhead", 0.0) >= OVERHEAD_WARNING else "info"
        explains = max((v for b, v in shares.items() if b != "unknown"), default=None)
        out.append(Finding("roofline", severity, evidence=evidence, runs=[key], explains=explains))
    return out


# --- the plot's data --------------------------------------------------------------------------------


@dataclass
class Point:
    """One category of one run on the roofline."""

    run: str  # the run's label
    category: str
    intensity: float  # FLOP/byte
    flops_per_s: float
    share: float  # of the step
    bound: str | None


@dataclass
class DeviceRoofline:
    """What one device's roofline plot draws."""

    title: str
    compute: list[dict] = field(default_factory=list)  # roofs {"value", "source", "label", ...}, deduplicated
    memory: list[dict] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # the runs drawn, in order
    unplaced: list[str] = field(default_factory=list)  # "run: other 3% (no FLOPs)"


def _add_roof(roofs: list[dict], roof: dict) -> None:
    for r in roofs:
        if r["label"] == roof["label"] and abs(r["value"] - roof["value"]) <= 1e-6 * r["value"]:
            return
    roofs.append(roof)


def device_rooflines(results: Results, keys: list[str]) -> list[DeviceRoofline]:
    """One DeviceRoofline per (host, device) among the profiled runs `keys`, in their order."""
    groups: dict[tuple[str, str], DeviceRoofline] = {}
    for key in keys:
        prof = results.profiles.get(key)
        rl = roofline_of(prof)
        if rl is None:
            continue
        r = results.runs.loc[key]
        group = groups.get((str(r.get("host")), str(r.get("device"))))
        if group is None:
            group = DeviceRoofline(results.device_label(key))
            groups[str(r.get("host")), str(r.get("device"))] = group
        label = results.label(key)
        group.runs.append(label)
        for roof in rl["roofs"]["compute"]:
            _add_roof(group.compute, roof)
        for roof in rl["roofs"]["memory"]:
            _add_roof(group.memory, roof)
        for cat in CATEGORIES:
            row = rl["categories"].get(cat)
            share = _share(prof, cat)
            if row is None or share <= 0:
                continue
            if row["intensity"] and row["flops_per_s"]:
                group.points.append(
                    Point(label, cat, row["intensity"], row["flops_per_s"], share, row["bound"])
                )
            elif share >= MIN_SHARE:
                why = "no FLOPs" if not row["flops"] else "no time"
                group.unplaced.append(f"{label}: {LABELS.get(cat, cat)} {fmt.pct(share)} ({why})")
    return list(groups.values())
