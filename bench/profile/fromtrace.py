"""A profiler trace a user already has (bench.profile.kineto) as profile.json: `bench run --profile`'s
breakdown on the trace's own steps (`ProfilerStep#N`, else a user-named marker). Pure, no torch.
"""

from __future__ import annotations

import bisect
import re
import statistics
from collections import Counter
from dataclasses import replace
from typing import Any

from bench.profile.analysis import CATEGORIES, _is_launch, assemble, breakdown, matmul_flops, op_category
from bench.profile.kineto import KinetoTrace, TraceError
from bench.profile.trace import TraceEvent

STEP = re.compile(r"^ProfilerStep#(\d+)$")
_PHASES = (
    ("enumerate(DataLoader)", "data"),
    ("Optimizer.step#", "optimizer"),
    ("Optimizer.zero_grad#", "optimizer"),
)
# torch's names of the matmul inputs' element types -> devicebench's dtypes
_DTYPES = {"float": "fp32", "c10::bfloat16": "bf16", "c10::half": "fp16", "double": "fp64"}
_TF32_KERNEL = ("tf32", "tensorop_s1688", "tensorop_s1684")  # cuBLAS/CUTLASS TF32 GEMMs on fp32 tensors
_COMPILED = (
    "Torch-Compiled Region",
    "CompiledFunction",
    "## Call CompiledFxGraph",
    "## Call CompiledFunction",
)


WHOLE_TRACE = ""  # step_marker value: the whole trace is one step


def find_steps(
    trace: KinetoTrace, marker: str | None = None, dropped: list[str] | None = None
) -> list[tuple[float, float, int]]:
    """(start, end, number) of each step: ProfilerStep#N, else host events whose name starts with `marker`
    (numbered 1, 2, ... in time order); marker WHOLE_TRACE: one step from the first event to the last.
    A step annotation of no duration, or one that holds other steps, is not a step: `dropped` gets a
    sentence for each."""
    if marker == WHOLE_TRACE:
        if not trace.events:
            return []
        return [(min(e.start for e in trace.events), max(e.end for e in trace.events), 1)]
    host = [e for e in trace.events if not e.on_device]
    seen: set[tuple[float, float]] = set()
    found: list[tuple[float, float, int, str]] = []
    for e in host:
        m = STEP.match(e.name) if marker is None else None
        if (m or (marker is not None and e.name.startswith(marker))) and (e.start, e.end) not in seen:
            seen.add((e.start, e.end))
            found.append((e.start, e.end, int(m.group(1)) if m else 0, e.name))
    found.sort()
    notes = dropped if dropped is not None else []
    # A window holds another iff one starting at or after it ends by its end: from the latest start back,
    # the smallest end seen so far says (an item starting after this one's end also ends after it).
    holds: dict[tuple[float, float], str] = {}
    least: tuple[float, str] | None = None
    for a, b, _, name in sorted(found, key=lambda x: (-x[0], x[1])):
        if b <= a:
            continue
        if least is not None and least[0] <= b:
            holds[(a, b)] = least[1]
        if least is None or b < least[0]:
            least = (b, name)
    kept: list[tuple[float, float, int, str]] = []
    for a, b, n, name in found:
        if b <= a:
            notes.append(f"{name} has no duration (no usable `dur`): not a step")
        elif (a, b) in holds:
            notes.append(
                f"{name} holds other steps ({holds[(a, b)]}): not counted as a step, or their kernels would "
                "count twice"
            )
        else:
            kept.append((a, b, n, name))
    for i in range(len(kept) - 1):  # an instant in two steps would count twice: cut at the next start
        a, b, n, name = kept[i]
        if b > kept[i + 1][0]:
            notes.append(
                f"{name} overlaps {kept[i + 1][3]} by {b - kept[i + 1][0]:.0f} us: cut at the next step's start"
            )
            kept[i] = (a, kept[i + 1][0], n, name)
    if marker is not None:
        return [(a, b, i + 1) for i, (a, b, _, _) in enumerate(kept)]
    return [(a, b, n) for a, b, n, _ in kept]


def device_indices(trace: KinetoTrace) -> list[Any]:
    """The GPUs (the device events' pid, which the profiler sets to the device index) the trace's kernels,
    copies and memsets ran on."""
    pids = {
        e.thread[0]
        for e in trace.events
        if e.on_device
        and e.activity in ("kernel", "gpu_memcpy", "gpu_memset")
        and isinstance(e.thread, tuple)
    }
    return sorted(pids, key=lambda p: (not isinstance(p, int), str(p) if not isinstance(p, int) else p))


def on_one_device(trace: KinetoTrace, index: Any) -> KinetoTrace:
    """The trace with the device events of GPU `index` only (host events all kept)."""
    events = [
        e for e in trace.events if not e.on_device or not isinstance(e.thread, tuple) or e.thread[0] == index
    ]
    return replace(trace, events=events)


def _phases(trace: KinetoTrace) -> list[tuple[float, float, str]]:
    out = []
    for e in trace.events:
        if e.on_device:
            continue
        for prefix, phase in _PHASES:
            if e.name.startswith(prefix):
                out.append((e.start, e.end, phase))
    return out


def _dtype(trace: KinetoTrace) -> str | None:
    """The matmuls' (else attention ops') element type, weighted by their FLOPs (by count where none are known)."""
    votes: Counter[str] = Counter()
    for e in trace.events:
        if e.on_device or op_category(e.name) not in ("matmul", "attention") or not e.input_types:
            continue
        t = str(e.input_types[0]).lower()
        if t in _DTYPES:
            votes[_DTYPES[t]] += max(1, matmul_flops(e))
    if not votes:
        return None
    dtype = votes.most_common(1)[0][0]
    if dtype == "fp32" and any(
        e.on_device and any(k in e.name.lower() for k in _TF32_KERNEL) for e in trace.events
    ):
        return "tf32"  # fp32 tensors, TF32 tensor-core GEMMs (torch.backends.cuda.matmul.allow_tf32)
    return dtype


def device_info(trace: KinetoTrace) -> dict[str, Any]:
    """The GPU the trace ran on, as the trace records it: index, name, SMs, capability, runtime."""
    kernels = [e for e in trace.events if e.on_device and e.activity == "kernel"]
    if not kernels:  # a CPU-only trace: the GPUs it lists did not run it
        return {"index": None, "name": None, "sm_count": None, "capability": None, "runtime": None}
    index = None
    if kernels and isinstance(kernels[0].thread, tuple) and isinstance(kernels[0].thread[0], int):
        index = kernels[0].thread[0]
    props = trace.meta.get("deviceProperties", trace.meta.get("computeProperties"))
    entry: dict = {}
    if isinstance(props, list):
        dicts = [p for p in props if isinstance(p, dict)]
        entry = next((p for p in dicts if p.get("id") == index), dicts[0] if dicts else {})
    host_names = {e.name for e in trace.events if not e.on_device and (e.activity or "").endswith("_runtime")}
    runtime = "ROCm" if any(n.startswith("hip") for n in host_names) else ("CUDA" if host_names else None)
    major, minor = (
        entry.get("computeMajor", entry.get("major")),
        entry.get("computeMinor", entry.get("minor")),
    )
    return {
        "index": index,
        "name": entry.get("name") if isinstance(entry.get("name"), str) else None,
        "sm_count": entry.get("numSms", entry.get("multiProcessorCount")),
        "capability": f"{major}.{minor}" if isinstance(major, int) and isinstance(minor, int) else None,
        "runtime": runtime,
    }


def is_compiled(trace: KinetoTrace) -> bool:
    return any(
        (e.on_device and e.name.startswith("triton_")) or (not e.on_device and e.name.startswith(_COMPILED))
        for e in trace.events
    )


def hta_idle_fraction(trace: KinetoTrace, steps: list[tuple[float, float, int]]) -> float | None:
    """HolisticTraceAnalysis' idle share (its temporal breakdown): 1 - (union of the device activities'
    intervals) / (last end - first start). As HTA reads a trace with two or more ProfilerSteps, only the
    kernels, copies and memsets whose host launch (by correlation id) began before the last step's start."""
    kinds = ("kernel", "gpu_memcpy", "gpu_memset")
    device = [e for e in trace.events if e.on_device and e.activity in kinds]
    if len(steps) >= 2:
        last_start = max(a for a, _, _ in steps)
        launched = {e.id: e.start for e in trace.events if not e.on_device and _is_launch(e) and e.id}
        device = [e for e in device if e.id in launched and launched[e.id] < last_start]
    spans = sorted((e.start, e.end) for e in device)
    if not spans:
        return None
    busy, end = 0.0, None
    for a, b in spans:
        if end is None or a > end:
            busy += b - a
            end = b
        elif b > end:
            busy += b - end
            end = b
    total = max(b for _, b in spans) - spans[0][0]
    return 1.0 - busy / total if total > 0 else None


def profile_trace(
    trace: KinetoTrace, peak: dict[str, Any], dtype: str | None, step_marker: str | None = None
) -> dict:
    """profile.json (docs/profile-schema.md, `source: trace`) of one trace file. `peak`: {"value",
    "source", "detail"} for `dtype` (the caller picks it: --peak-flops, --hwinfo, the trace's device)."""
    not_steps: list[str] = []
    steps_found = find_steps(trace, step_marker, not_steps)
    if not steps_found:
        if step_marker == WHOLE_TRACE:
            raise TraceError(f"trace {trace.path} holds no events this reads (no ops, launches or kernels)")
        what = f"no host event named {step_marker}*" if step_marker else "no ProfilerStep#N annotations"
        if not_steps:
            what = f"no step to read ({not_steps[0]})"
        raise TraceError(
            f"trace {trace.path} has {what}, so its steps are unknown: "
            + (
                "pass --step-marker NAME (a record_function around each step) or --whole-trace"
                if not step_marker
                else "check the name (a record_function's name as the trace shows it)"
            )
        )
    device_view = any(e.on_device and e.activity == "kernel" for e in trace.events)
    windows = [(a, b) for a, b, _ in steps_found]
    steps = breakdown(trace.events, device_view, windows=windows, phases=_phases(trace))
    for s in steps:
        s["wall_ms"] = s["step_ms"]
        s["host_ms"] = None
    info = device_info(trace)
    compiled = is_compiled(trace)
    meta = {
        "source": "trace",
        "source_file": trace.path,
        "device": f"cuda:{info['index']}"
        if device_view and info["index"] is not None
        else ("cuda" if device_view else "cpu"),
        "device_type": "cuda" if device_view else "cpu",
        "device_name": info["name"],
        "gpu_runtime": info["runtime"],
        "rank": trace.rank,
        "dtype": dtype,
        "batch_size": None,
        "block_size": None,
        "compiled": compiled,
        "fused_adamw": any(e.name.startswith("aten::_fused_adamw") for e in trace.events if not e.on_device),
        "threads": None,
        "torch": None,
    }
    peak_value = peak.get("value") if isinstance(peak.get("value"), (int, float)) else None
    counts = _counts(trace, steps_found)
    roofs = {
        "compute": [{**peak, "label": f"peak ({peak.get('source')})"}] if peak_value else [],
        "memory": [],
    }
    view = "device" if device_view else "host"
    first = steps_found[0][2]
    prof = assemble(meta, steps, first - 1, view, None, peak_value, counts, roofs)
    for row, (_, _, number) in zip(prof["steps"], steps_found, strict=True):
        row["iter"] = number
    by_op = sum(s.get("_by_op", 0) for s in steps)
    by_name = sum(s.get("_by_name", 0) for s in steps)
    prof["profiler_warmup_steps"] = None
    prof["peak_flops"] = peak
    prof["trace"] = {
        "file": trace.path,
        "events": trace.n_events,
        "kept_events": len(trace.events),
        "truncated": trace.truncated,
        "steps_from": (
            "the whole trace"
            if step_marker == WHOLE_TRACE
            else f"names starting with {step_marker!r}"
            if step_marker
            else "ProfilerStep#N"
        ),
        "kernels_categorised_by_launching_op": by_op,
        "kernels_categorised_by_name": by_name,
        "hta_idle_fraction": hta_idle_fraction(trace, steps_found) if device_view else None,
        "device": info,
        "events_without_time": trace.without_time,
        "events_without_duration": trace.without_duration,
        "reused_correlation_ids": reused_correlation_ids(trace),
        "not_steps": not_steps,
    }
    launch_only: list[str] = []
    gpu_listed = view == "host" and bool(
        trace.meta.get("deviceProperties") or trace.meta.get("computeProperties")
    )
    if gpu_listed:  # the ops ran on the GPU: their host time is the launch's, no FLOP/s of it
        for row in (prof.get("roofline") or {}).get("categories", {}).values():
            row["flops_per_s"] = None
            row["fraction_of_compute_roof"] = None
        prof["matmul_flops_per_s"] = None
        launch_only = [
            "the trace lists a GPU (deviceProperties) but holds no device events: its ops' host times are "
            "their launches' (the work ran on the GPU), so no FLOP/s are shown"
        ]
    prof["notes"] = (
        trace_notes(trace, view, compiled, bool(peak_value))
        + not_steps
        + launch_only
        + ([n for n in prof["notes"] if n.startswith("clip_grad_norm")])
    )
    return prof


def attention_flops(e: TraceEvent) -> int:
    """FLOPs of a forward `aten::scaled_dot_product_attention` from its shapes ([B, H, L, D] query, key):
    4*B*H*Lq*Lk*D (torch.utils.flop_counter's sdpa formula; a causal mask not halved). Its inner ops and the
    backward count nothing here, so nothing is counted twice."""
    if e.flops:
        return int(e.flops)
    if e.name != "aten::scaled_dot_product_attention":
        return 0
    q, k = (e.input_shapes + [None, None])[:2]
    try:
        (b, h, lq, d), (_, _, lk, _) = q, k
        return 4 * int(b) * int(h) * int(lq) * int(lk) * int(d)
    except (TypeError, ValueError):
        return 0


def _counts(trace: KinetoTrace, steps_found: list[tuple[float, float, int]]) -> dict:
    """FLOPs per step of the recorded matmul and attention ops (the profiler's count, else from the
    shapes), for the roofline; bytes are not in a trace, so none are counted."""
    starts = [a for a, _, _ in steps_found]
    flops = {c: 0 for c in CATEGORIES}
    ops = {c: 0 for c in CATEGORIES}
    for e in trace.events:
        if e.on_device:
            continue
        i = bisect.bisect_right(starts, e.start) - 1
        if i < 0 or e.start > steps_found[i][1]:
            continue
        cat = op_category(e.name)
        f = matmul_flops(e) if cat == "matmul" else (attention_flops(e) if cat == "attention" else 0)
        if f:
            flops[cat] += f
            ops[cat] += 1
    n = len(steps_found)
    cats = {c: {"flops": flops[c] // n, "flops_floor": 0, "bytes": 0, "ops": ops[c] // n} for c in CATEGORIES}
    return {"iter": None, "categories": cats, "top_ops": [], "uncounted_ops": {}}


def trace_notes(trace: KinetoTrace, view: str, compiled: bool, has_peak: bool) -> list[str]:
    """What the figures of a profile read from a trace mean."""
    out = [
        "source: a profiler trace read from a file (bench profile); steps are the trace's own "
        "(ProfilerStep#N or --step-marker), each step's time its annotation on the host"
    ]
    if view == "device":
        out += [
            "device view: a kernel's category is the host op that launched it (correlation id: runtime "
            "launch -> kernel; the ops around the launch decide), its name only where no op says; data is "
            "the DataLoader annotations' wall time; other is the step with the device idle",
            "device_idle_fraction per step: 1 - busy device time / the step's host window; "
            "trace.hta_idle_fraction is HolisticTraceAnalysis' figure (1 - busy / first kernel start to last "
            "kernel end, over the kernels launched before the last step when there are two or more steps)",
        ]
    else:
        out.append(
            "CPU-only trace (no kernels): host view, each op's self time; data and optimizer are their "
            "annotations' wall time"
        )
    out.append(
        "roofline: FLOPs are the recorded matmul ops' (the profiler's count or 2*M*N*K from the shapes); a "
        "trace records no bytes, so no memory bound"
        + ("" if has_peak else "; no compute roof: the peak is unknown")
    )
    if compiled:
        out.append(
            "compiled: Triton kernels launched by a compiled graph have no aten op: their names decide"
        )
    if trace.truncated:
        out.append(f"partial: {trace.truncated}; steps whose window ends after the cut are left out")
    out += event_problems(trace)
    reused = reused_correlation_ids(trace)
    if reused:
        out.append(
            f"{reused} correlation id{'s' if reused > 1 else ''} name two or more runtime launches (traces merged "
            "or ids reused): each kernel is linked to the latest launch with its id that began before it"
        )
    return out


def event_problems(trace: KinetoTrace) -> list[str]:
    """Sentences for the events the reader could not take as written (each counted, none raised)."""
    out = []
    if trace.without_time:
        n = trace.without_time
        out.append(
            f"{n} event{'s have' if n > 1 else ' has'} no usable start time (`ts` missing, not a number or not "
            "finite): left out"
        )
    if trace.without_duration:
        n = trace.without_duration
        out.append(
            f"{n} event{'s have' if n > 1 else ' has'} no usable duration (`dur` missing, negative or not "
            "finite): read as 0 us"
        )
    return out


def reused_correlation_ids(trace: KinetoTrace) -> int:
    """How many correlation ids more than one runtime launch carries."""
    seen: Counter[int] = Counter(e.id for e in trace.events if not e.on_device and e.id and _is_launch(e))
    return sum(1 for n in seen.values() if n > 1)


def ms_summary(prof: dict) -> dict:
    """run.json's summary from a trace's steps (no loss, no tokens: the trace does not record them)."""
    times = [s["step_ms"] for s in prof["steps"] if s.get("step_ms")]
    if not times:
        return {}
    qs = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else [times[0]] * 9
    return {
        "ms_median": statistics.median(times),
        "ms_p10": qs[0],
        "ms_p90": qs[-1],
        "ms_mean": statistics.fmean(times),
        "iters_done": len(times),
        "warmup_iters": 0,
    }
