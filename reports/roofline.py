"""The roofline of a profiled step, in words and as the data a plot needs (profile.json schema 2).

profile.json holds the numbers (bench.profile.roofline: each category's FLOPs, bytes, FLOP/byte,
achieved FLOP/s and bytes/s, and its bound); this module reads them defensively (a damaged file gives no
roofline, never a traceback), says what bounds each step and what the lever is (`roofline_findings`),
and gathers the roofs and points of each device's plot (`device_rooflines`). No torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.metrics import BUSY_OTHER_CORES
from reports import fmt
from reports.load import Results
from reports.profile_text import PROFILED_SLOWER

CATEGORIES = ("matmul", "attention", "elementwise_norm", "optimizer", "data", "other")
LABELS = {"elementwise_norm": "elementwise/norm"}
BOUNDS = ("compute", "memory", "overhead")
MIN_SHARE = 0.02  # categories with less of the step are left out of the sentence (still in the evidence)
OVERHEAD_LEVER = 0.3  # this much of the step overhead-bound: name the lever for overhead
OVERHEAD_WARNING = 0.5  # ... and from this much, the finding is a warning
NEAR_COMPUTE_LEVER = 0.6  # matmuls this close to the compute roof: only a faster matmul moves them
BUSY_CORES = BUSY_OTHER_CORES  # other processes this busy during the run: waiting counts as overhead
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


def _roof_name(roof: dict | None, what: str) -> str:
    """ "the measured matmul roof", "measured STREAM triad bandwidth", "the spec peak"."""
    if roof is None:
        return f"the {what}"
    if what == "bandwidth":
        kind = f"STREAM {roof['kind']} " if roof.get("kind") else ""
        return f"{roof['source']} {kind}bandwidth"
    return (
        f"the {roof['source']} matmul roof" if roof["source"] == "measured" else f"the {roof['source']} peak"
    )


def category_clause(cat: str, row: dict, share: float, rl: dict, view: str = "host") -> str:
    """'elementwise/norm: 16.0% of the step at 11.0 GB/s (0.25 FLOP/byte), 45.0% of measured STREAM triad
    bandwidth: memory-bound'."""
    name = LABELS.get(cat, cat)
    head = f"{name}: {fmt.pct(share)} of the step"
    bound, basis = row["bound"], row["bound_basis"]
    if basis == "async_host_view":
        return f"{head} of host launch time: not placed"
    if basis == "fused_by_compile":
        if cat == "other":
            return f"{head} holds torch.compile's fused kernels (not profiled as ops) with Python and dispatch: not placed"
        return f"{head}, fused by torch.compile (its bytes are the eager ops', not the fused kernels'): not placed"
    if cat == "other":
        what = (
            "the device idle (launches, Python, synchronisation)"
            if view == "device"
            else "Python, autograd, dispatch"
        )
        return f"{head} outside every counted op ({what}): overhead"
    if basis == "no_counted_work":
        return f"{head} with no counted work: overhead"
    fc, fm = row["fraction_of_compute_roof"], row["fraction_of_memory_roof"]
    if fc is None and fm is None:
        return f"{head}: " + (f"{bound}-bound" if bound else "not placed") + " (its figures are missing)"
    compute_side = fc is not None and (fm is None or fc >= fm)
    rate = (
        fmt.flops(row["flops_per_s"])
        if compute_side and row["flops_per_s"]
        else fmt.bytes_per_s(row["bytes_per_s"])
    )
    text = f"{head} at {rate}"
    if row["intensity"] is not None:
        text += f" ({fmt.sig(row['intensity'], 2)} FLOP/byte)"
    if compute_side:
        text += f", {fmt.pct(fc)} of {_roof_name(rl['compute_roof'], 'peak')}"
    elif fm is not None:
        text += f", {fmt.pct(fm)} of {_roof_name(rl['memory_roof'], 'bandwidth')}"
        if fm > 1:
            text += " (above it: served from cache)"
    if bound is None:
        missing = "memory bandwidth" if rl["memory_roof"] is None else "peak"
        return f"{text}: bound unknown ({missing} unknown)"
    return f"{text}: {bound}-bound"


def levers(profile: dict, rl: dict) -> list[str]:
    """What would move the step, from what bounds it (each lever once, the biggest share first)."""
    cats, out = rl["categories"], []
    device = str(profile.get("device_type") or profile.get("device") or "")
    compiled = profile.get("compiled") is True
    overhead = rl["bound_fraction"].get("overhead", 0.0)
    batch = profile.get("batch_size")
    at = f" at batch {int(batch)}" if fmt.is_num(batch) else ""
    if overhead >= OVERHEAD_LEVER:
        if profile.get("view") == "device":
            out.append(
                f"{fmt.pct(overhead)} of the step{at} is overhead-bound: CUDA graphs (--compile reduce-overhead) "
                "or a larger batch give each launch more work"
                if device == "cuda"
                else f"{fmt.pct(overhead)} of the step{at} is overhead-bound: fewer, larger kernels "
                "(torch.compile) or a larger batch"
            )
        else:
            out.append(
                f"{fmt.pct(overhead)} of the step{at} is overhead-bound (per-op dispatch, Python, threads waking): "
                + (
                    "a larger batch does more work per op"
                    if compiled
                    else "torch.compile (fewer, fused ops) or a larger batch"
                )
            )
    opt = cats.get("optimizer")
    if opt and opt["bound"] in ("overhead", "memory") and _share(profile, "optimizer") >= 0.1:
        if profile.get("fused_adamw") is False and fmt.is_num(opt.get("ops")):
            out.append(
                f"the optimizer runs {int(opt['ops'])} ops per step: a fused AdamW (AdamW(fused=True) where "
                "the device has it) does the same work in one pass over the parameters"
            )
        elif opt["bound"] == "memory":
            out.append(
                "the optimizer streams every parameter and both moments each step: a larger batch amortises it"
            )
    elt = cats.get("elementwise_norm")
    if elt and elt["bound"] == "memory" and not compiled:
        out.append("elementwise/norm is memory-bound: fusing them (torch.compile) is the lever")
    mm = [c for c in ("matmul", "attention") if (cats.get(c) or {}).get("bound") == "memory"]
    if mm:
        out.append(f"{' and '.join(mm)} below the ridge: a larger batch raises their FLOP per byte")
    mm_row = cats.get("matmul") or {}
    if (
        mm_row.get("bound") == "compute"
        and (mm_row.get("fraction_of_compute_roof") or 0) >= NEAR_COMPUTE_LEVER
        and _share(profile, "matmul") >= 0.3
    ):
        out.append(
            "the matmuls are near the compute roof: only a faster matmul (a dtype the hardware runs natively, "
            "a faster device) moves them"
        )
    return out


def roofline_findings(results: Results, ok: pd.DataFrame) -> list:
    """One `roofline` finding per profiled run whose profile has a roofline: the share of the step under
    each bound, each category's figures and bound, the levers."""
    from reports.finding import Finding

    out = []
    for key in ok.index:
        prof = results.profiles.get(key)
        rl = roofline_of(prof)
        if rl is None:
            continue
        shares = rl["bound_fraction"]
        split = ", ".join(f"{fmt.pct(shares[b])} {b}-bound" for b in BOUNDS if shares.get(b, 0) >= 0.005)
        where = f"on {prof.get('device') or ok.loc[key].get('device')}"
        if fmt.is_num(prof.get("batch_size")):
            where += f" at batch {int(prof['batch_size'])}"
        ridge = rl["ridge_flop_per_byte"]
        head = f"{results.label(key)}: roofline {where}" + (
            f" (ridge {fmt.sig(ridge, 2)} FLOP/byte: {rl['compute_roof']['source']} "
            f"{fmt.flops(rl['compute_roof']['value'])} / {rl['memory_roof']['source']} "
            f"{fmt.bytes_per_s(rl['memory_roof']['value'])})"
            if ridge and rl["compute_roof"] and rl["memory_roof"]
            else ""
        )
        low = rl["contradicted_compute_roof"]
        if low and rl["compute_roof"]:
            head += (
                f" (the {low['label'] or 'measured roof'}, {fmt.flops(low['value'])}, is below what this step "
                f"reached, so it was measured low, on a busy machine: the {rl['compute_roof']['source']} peak is "
                "the roof here)"
            )
        host_only = all(row["bound_basis"] == "async_host_view" for row in rl["categories"].values())
        if host_only:
            head += (
                ": the profile sees host launch times only (the device runs asynchronously), so no category is "
                "placed; FLOP/byte: "
                + ", ".join(
                    f"{LABELS.get(c, c)} {fmt.sig(row['intensity'], 2)}"
                    for c, row in rl["categories"].items()
                    if row["intensity"]
                )
            )
        else:
            head += f": {split}" if split else ": no category could be placed"
        order = (
            []
            if host_only
            else sorted(
                (c for c in rl["categories"] if _share(prof, c) >= MIN_SHARE), key=lambda c: -_share(prof, c)
            )
        )
        view = str(prof.get("view") or "host")
        clauses = [category_clause(c, rl["categories"][c], _share(prof, c), rl, view) for c in order]
        sentence = head + (". " + "; ".join(clauses) if clauses else "") + "."
        sentence += "".join(f" {t[0].upper()}{t[1:]}." for t in levers(prof, rl))
        load = ((results.run_meta.get(key) or {}).get("summary") or {}).get("host_load") or {}
        busy = load.get("other_processes_cpu_cores")
        if shares.get("overhead", 0.0) >= OVERHEAD_LEVER and fmt.is_num(busy) and busy > BUSY_CORES:
            sentence += (
                f" Other processes used {fmt.sig(busy, 2)} cores' worth of CPU during the run: time an op spends "
                "waiting for a descheduled thread counts as overhead here, so on a quiet machine less of the step "
                "is overhead-bound."
            )
        overhead_x = prof.get("profiler_overhead")
        if fmt.is_num(overhead_x) and overhead_x > PROFILED_SLOWER:
            sentence += (
                f" (Rates are from profiled steps, {fmt.sig(overhead_x, 2)}x slower than unprofiled ones: "
                "the real rates are higher.)"
            )
        if rl["uncounted_ops"]:
            n, names = len(rl["uncounted_ops"]), ", ".join(rl["uncounted_ops"][:3])
            sentence += (
                f" {n} op{'s' if n != 1 else ''} could not be counted ({names}{', ...' if n > 3 else ''}): "
                "their bytes and FLOPs are left out of these figures."
            )
        severity = "warning" if shares.get("overhead", 0.0) >= OVERHEAD_WARNING else "info"
        evidence = {
            "uncounted_ops": rl["uncounted_ops"],
            "ridge_flop_per_byte": ridge,
            "near_roof": rl["near_roof"],
            "compute_roof": rl["compute_roof"],
            "memory_roof": rl["memory_roof"],
            "bound_fraction": shares,
            "categories": {c: {**row, "fraction": _share(prof, c)} for c, row in rl["categories"].items()},
        }
        out.append(Finding("roofline", severity, sentence, evidence, [key]))
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
