"""Each category of a profiled step on a roofline: its FLOP/byte, achieved FLOP/s and bytes/s, and what
bounds it (compute, memory or overhead, by NEAR_ROOF). Pure: numbers in, numbers out. docs/roofline.md says
why NEAR_ROOF sits well below 1 and which roofs (measured, else spec) are used.
"""

from __future__ import annotations

from typing import Any

from bench.metrics import positive
from bench.profile.categories import CATEGORIES

NEAR_ROOF = 0.3  # fraction of a roof from which a category counts as bound by it
ROOF_PREFERENCE = ("measured", "spec", "derived", "user")  # the roof a category is classified against
BOUNDS = ("compute", "memory", "overhead")
# Why a category has the bound it has (or none): reports turn these into words.
BASES = (
    "roofs",  # its achieved FLOP/s and bytes/s against the roofs
    "remainder",  # `other`: the step's time outside every counted category
    "no_counted_work",  # time, but no op that moves bytes or does FLOPs
    "no_time",  # no time in the step
    "async_host_view",  # MPS/XPU host view: category times are launch times, not the work
    "fused_by_compile",  # compiled: Inductor fuses these ops (on the host view its kernels' time is in other)
    "roofs_unknown",  # a roof it might be near is unknown
)


def pick_roof(roofs: list[dict]) -> dict | None:
    """The roof to classify against: measured first, then spec, derived, user; None when none has a value."""
    usable = [r for r in roofs if positive(r.get("value")) is not None]
    for source in ROOF_PREFERENCE:
        for r in usable:
            if r.get("source") == source:
                return r
    return usable[0] if usable else None


def classify(
    flops_per_s: float | None,
    bytes_per_s: float | None,
    compute_roof: float | None,
    memory_roof: float | None,
    near: float = NEAR_ROOF,
) -> tuple[str | None, float | None, float | None]:
    """(bound, fraction of the compute roof, fraction of the bandwidth roof).

    bound: "compute" or "memory" when the category reaches `near` of the roof it is closest to,
    "overhead" when it reaches neither, None when a roof it might be near is unknown.
    """
    fc = flops_per_s / compute_roof if flops_per_s is not None and compute_roof else None
    fm = bytes_per_s / memory_roof if bytes_per_s is not None and memory_roof else None
    known = {k: v for k, v in (("compute", fc), ("memory", fm)) if v is not None}
    if known:
        best = max(known, key=lambda k: known[k])
        if known[best] >= near:
            return best, fc, fm
    if compute_roof and memory_roof:
        return "overhead", fc, fm
    return None, fc, fm


def roofline(
    mean_ms: dict[str, float], step_ms: float, counts: dict, roofs: dict, view: str, compiled: bool
) -> dict:
    """profile.json's "roofline": per category figures and bound, the roofs, the ridge, the share of the
    step under each bound (docs/profile-schema.md).

    mean_ms: category -> ms per step (profile mean); counts: bench.profile.traffic.count_step's result;
    roofs: {"compute": [roof...], "memory": [roof...]}, each {"value", "source", "detail", ...}.
    """
    compute, contradicted = _compute_roof(roofs.get("compute") or [], mean_ms, counts)
    memory = pick_roof(roofs.get("memory") or [])
    peak = positive(compute.get("value")) if compute else None
    bandwidth = positive(memory.get("value")) if memory else None
    cats: dict[str, dict] = {}
    shares = dict.fromkeys((*BOUNDS, "unknown"), 0.0)
    for cat in CATEGORIES:
        c = (counts.get("categories") or {}).get(cat) or {}
        flops, nbytes = int(c.get("flops") or 0), int(c.get("bytes") or 0)
        ms = float(mean_ms.get(cat) or 0.0)
        s = ms / 1e3
        row: dict[str, Any] = {
            "flops": flops,
            "flops_floor": int(c.get("flops_floor") or 0),
            "bytes": nbytes,
            "ops": int(c.get("ops") or 0),
            "intensity": flops / nbytes if nbytes > 0 else None,
            "flops_per_s": flops / s if s > 0 and flops > 0 else None,
            "bytes_per_s": nbytes / s if s > 0 and nbytes > 0 else None,
            "fraction_of_compute_roof": None,
            "fraction_of_memory_roof": None,
        }
        bound, basis = _bound(cat, ms, flops, nbytes, view, compiled)
        if basis == "roofs":
            bound, row["fraction_of_compute_roof"], row["fraction_of_memory_roof"] = classify(
                row["flops_per_s"], row["bytes_per_s"], peak, bandwidth
            )
            if bound is None:
                basis = "roofs_unknown"
        row["bound"], row["bound_basis"] = bound, basis
        cats[cat] = row
        if step_ms > 0 and ms > 0:
            shares[bound or "unknown"] += ms / step_ms
    return {
        "near_roof": NEAR_ROOF,
        "counted_iter": counts.get("iter"),
        "compute_roof": compute,
        "contradicted_compute_roof": contradicted,
        "memory_roof": memory,
        "roofs": {"compute": list(roofs.get("compute") or []), "memory": list(roofs.get("memory") or [])},
        "ridge_flop_per_byte": peak / bandwidth if peak and bandwidth else None,
        "categories": cats,
        "bound_fraction": shares,
        "top_ops": list(counts.get("top_ops") or []),
        "uncounted_ops": dict(counts.get("uncounted_ops") or {}),
    }


def _compute_roof(
    roofs: list[dict], mean_ms: dict[str, float], counts: dict
) -> tuple[dict | None, dict | None]:
    """(the compute roof to classify against, the measured roof it replaces or None).

    A measured roof that a category of this step exceeds was measured low (on a busy machine, or for a
    shape the device runs worse): it is contradicted, and the next roof (spec, derived, user) is used. A
    bandwidth roof is never replaced that way: a category above it is served from cache.
    """
    roof = pick_roof(roofs)
    if roof is None or roof.get("source") != "measured":
        return roof, None
    achieved = max(
        (
            float((counts.get("categories") or {}).get(cat, {}).get("flops") or 0) / (ms / 1e3)
            for cat, ms in mean_ms.items()
            if ms and ms > 0
        ),
        default=0.0,
    )
    if achieved <= float(roof["value"]):
        return roof, None
    higher = [r for r in roofs if r is not roof and (positive(r.get("value")) or 0) > float(roof["value"])]
    better = pick_roof(higher)
    return (better, roof) if better is not None else (roof, None)


def _bound(cat: str, ms: float, flops: int, nbytes: int, view: str, compiled: bool) -> tuple[str | None, str]:
    """(bound, basis) before the roofs are consulted; basis "roofs" means: classify by the roofs."""
    if view == "host_async":
        return None, "async_host_view"
    if ms <= 0:
        return None, "no_time"
    if compiled and (cat == "elementwise_norm" or (cat == "other" and view == "host")):
        return (
            None,
            "fused_by_compile",
        )  # on the host view Inductor's kernels are not ops: their time is in other
    if cat == "other":
        return "overhead", "remainder"
    if flops == 0 and nbytes == 0:
        return "overhead", "no_counted_work"
    return None, "roofs"


def notes(view: str, compiled: bool) -> list[str]:
    """What the roofline figures mean (stored in profile.json's notes beside the time breakdown's)."""
    out = [
        "roofline: bytes are each aten op's tensor inputs plus outputs, counted once per op in one extra "
        "step (not timed): a lower bound of the memory traffic (cache misses, re-reads and write-allocate "
        "not counted), so intensities are upper bounds and achieved bandwidths lower bounds",
        "roofline: FLOPs are torch.utils.flop_counter's formulas (matmul, attention; the CPU's fused "
        "attention kernel, which flop_counter does not count, with the same formula as CUDA's); ops without "
        "a formula count one FLOP per element of their largest operand (flops_floor, a floor)",
        f"roofline: bound is compute or memory from {NEAR_ROOF:.0%} of the nearer roof (measured roofs when "
        "there are), overhead below both; achieved rates use the profiled steps' category times",
    ]
    if view == "device":
        out.append(
            "roofline: on the device view a category's rates are per kernel time; an overhead-bound category "
            "runs kernels too small to fill the device, and other (the device idle) is launch overhead"
        )
    if view == "host_async":
        out.append(
            "roofline: host view of an asynchronous device: category times are launch costs, so no bound"
        )
    if compiled:
        out.append(
            "roofline: compiled: the counting step runs the model's eager ops (same FLOPs); Inductor's fused "
            "elementwise kernels move fewer bytes than those ops, so elementwise/norm has no bound"
            + (
                "; nor has other, which holds the fused kernels' time on the host view"
                if view == "host"
                else ""
            )
        )
    return out
