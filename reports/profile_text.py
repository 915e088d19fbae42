"""The words for a step breakdown (profile.json's numbers, docs/profile-schema.md): one sentence.

Words belong to reports/: a profile holds numbers only, and any "sentence" stored in it is ignored.
"""

from __future__ import annotations

from typing import Any

from reports.fmt import count, flops, is_num, ms, pct, sig

CATEGORIES = ("matmul", "attention", "elementwise_norm", "optimizer", "data", "other")
LABELS = {"elementwise_norm": "elementwise/norm"}

# Profiled steps this many times slower than unprofiled ones get a note: the step breakdown's says "read
# shares, not times", the roofline's says "the real rates are higher" (two findings, two uses of one fact).
PROFILED_SLOWER = 1.3


def summarize_profile(profile: dict, device: str | None = None, batch_size: Any = None) -> str:
    """Where the step's time goes, e.g. "on cpu at batch 12, 62.0% of the step is matmul at 140 GFLOP/s,
    18.1% elementwise/norm, 9.20% optimizer, 1.70% data, 9.00% other".

    profile: as bench.results.read_profile returns it (mean.step_ms and mean.fraction checked); device
    and batch_size: the run's, used where the profile does not say.
    """
    avg = profile["mean"]
    frac = {k: float(v) for k, v in avg["fraction"].items() if is_num(v)}
    device = profile.get("device") or device or "this device"
    batch = profile.get("batch_size") if is_num(profile.get("batch_size")) else batch_size
    where = f"on {device}" + (f" at batch {int(float(batch))}" if is_num(batch) else "")
    if profile.get("compiled") is True:
        where += " (compiled)"
    known = [c for c in CATEGORIES if c in frac] + sorted(c for c in frac if c not in CATEGORIES)
    parts = []
    for cat in sorted(known, key=lambda c: -frac[c]):
        text = f"{pct(frac[cat])} {LABELS.get(cat, cat)}"
        if (
            cat == "matmul"
            and is_num(profile.get("matmul_flops_per_s"))
            and profile["matmul_flops_per_s"] > 0
        ):
            text += f" at {flops(profile['matmul_flops_per_s'])}"
            if is_num(profile.get("matmul_fraction_of_peak")) and profile["matmul_fraction_of_peak"] > 0:
                text += f" ({pct(profile['matmul_fraction_of_peak'])} of peak)"
        parts.append(text)
    idle = avg.get("device_idle_fraction")
    if profile.get("view") == "device" and is_num(idle):
        launches = avg.get("kernel_launches_per_step")
        gap = avg.get("mean_gap_us")
        head = f"{where}, {pct(idle)} of the step is launch overhead/idle device"
        if is_num(launches):
            head += f": {count(launches)} kernels" + (f", {sig(gap, 2)} us mean gap" if is_num(gap) else "")
        host, step = avg.get("host_ms"), avg["step_ms"]
        if is_num(host) and host >= 0.8 * step:
            head += f" (the host needs {ms(host)} of the {ms(step)} ms to launch them)"
        busy = [p for p in parts if not p.endswith(" other")]
        return f"{head}; device time: {', '.join(busy)}" if busy else head
    first, rest = parts[0].split(" ", 1), parts[1:]
    return f"{where}, {first[0]} of the step is {first[1]}" + "".join(f", {p}" for p in rest)
