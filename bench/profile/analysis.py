"""Pure analyses of a profiled step: categories per step, the device view, the figures of profile.json.

Every function here reads TraceEvents (bench.profile.trace) and plain dicts; nothing imports torch.

On the host view (CPU, MPS) the categories are host time: the self time of each op (exclusive, so nested
ops are never counted twice) inside the forward and backward phases, plus the wall time of the data and
optimizer phases. On the device view (CUDA, XPU) they are device time: each kernel's duration,
attributed to the phase that launched it; what is left of the step is launch overhead and idle time.
"""

from __future__ import annotations

import bisect
import statistics
from typing import Any

from bench.profile import roofline as rl
from bench.profile.categories import CATEGORIES
from bench.profile.trace import TraceEvent
from bench.results import PROFILE_SCHEMA as SCHEMA

PHASES = ("data", "forward", "backward", "clip", "optimizer")
MARK = "devicebench."  # bench.train.MARK: the markers the real train step enters when profiled

_MATMUL_OPS = {
    "mm", "addmm", "bmm", "baddbmm", "addbmm", "matmul", "linear", "_addmm_activation",
    "mv", "addmv", "dot", "vdot", "einsum", "_int_mm", "_scaled_mm",
}  # fmt: skip
# Ops that only make views or allocate: framework overhead, counted in "other".
_METADATA_OPS = {
    "view", "reshape", "_reshape_alias", "_unsafe_view", "transpose", "t", "permute", "as_strided",
    "expand", "expand_as", "slice", "select", "narrow", "split", "split_with_sizes", "chunk", "unbind",
    "unsqueeze", "squeeze", "detach", "detach_", "alias", "empty", "empty_strided", "empty_like",
    "resize_", "lift_fresh", "resolve_conj", "resolve_neg", "to", "contiguous", "numpy_T", "flatten",
    "unflatten", "view_as", "_local_scalar_dense", "item", "is_nonzero", "size", "stride",
}  # fmt: skip
# Kernel names, lower-cased. Attention is tested first: fmha_cutlass* and cudnn's sdpa_sm90 kernels
# would otherwise look like GEMMs.
_ATTENTION_KERNEL = ("flash", "fmha", "attention", "attn", "sdpa", "scaled_dot_product")
_MATMUL_KERNEL = (
    "gemm", "gemv", "cutlass", "xmma", "nvjet", "cublas", "splitk", "ampere_", "sm80_", "sm90_",
    "sm100_", "volta_", "turing_", "triton_tem", "_mm_", "bmm",
)  # fmt: skip
_OPTIMIZER_KERNEL = ("adam", "multi_tensor_apply", "lpnorm", "foreach")


def op_category(name: str) -> str:
    """Category of a host op by name ("aten::mm"); autograd nodes, markers and view/alloc ops are "other"."""
    if "::" not in name or name.startswith("autograd::"):
        return "other"
    ns, base = name.split("::", 1)
    lname = name.lower()
    if base in _MATMUL_OPS or "gemm" in lname or ("mkldnn" in lname and ("linear" in lname or "mm" in base)):
        return "matmul"
    if "scaled_dot_product" in lname or "attention" in lname or "flash" in lname:
        return "attention"
    if ns in ("aten", "prims", "mkldnn", "onednn", "quantized") and base not in _METADATA_OPS:
        return "elementwise_norm"
    return "other"


def kernel_category(lname: str) -> str:
    """Category of a device kernel by its lower-cased name."""
    if any(s in lname for s in _ATTENTION_KERNEL):
        return "attention"
    if any(s in lname for s in _MATMUL_KERNEL):
        return "matmul"
    return "elementwise_norm"


def matmul_flops(e: TraceEvent) -> int:
    """FLOPs of a leaf matmul op: the profiler's count, else 2*M*N*K from the recorded shapes."""
    if e.flops:
        return int(e.flops)
    base = e.name.split("::", 1)[-1]
    shapes = [s for s in e.input_shapes if isinstance(s, (list, tuple))]
    try:
        if base == "mm" and len(shapes) >= 2:
            (m, k), (_, n) = shapes[0], shapes[1]
            return 2 * m * n * k
        if base in ("addmm", "_addmm_activation") and len(shapes) >= 3:
            (m, k), (_, n) = shapes[1], shapes[2]
            return 2 * m * n * k
        if base == "bmm" and len(shapes) >= 2:
            (b, m, k), (_, _, n) = shapes[0], shapes[1]
            return 2 * b * m * n * k
        if base == "baddbmm" and len(shapes) >= 3:
            (b, m, k), (_, _, n) = shapes[1], shapes[2]
            return 2 * b * m * n * k
    except (TypeError, ValueError):
        return 0
    return 0  # matmul/linear/einsum dispatch to the ops above, which are counted there


class _Steps:
    """The profiled steps, found by their "devicebench.step" markers, and the phase marked at a time."""

    def __init__(self, events: list[TraceEvent]) -> None:
        marks = [e for e in events if not e.on_device and e.name.startswith(MARK)]
        step_marks = sorted((e for e in marks if e.name == MARK + "step"), key=lambda e: e.start)
        self.starts = [e.start for e in step_marks]
        self.rows: list[dict] = []
        for sm in step_marks:
            phases = [
                (e.start, e.end, e.name[len(MARK) :])
                for e in marks
                if e.name != MARK + "step" and sm.start <= e.start <= sm.end
            ]
            phase_ms = dict.fromkeys(PHASES, 0.0)
            for a, b, name in phases:
                phase_ms[name] = phase_ms.get(name, 0.0) + (b - a) / 1e3
            self.rows.append(
                {
                    "_start": sm.start, "_end": sm.end, "_phases": phases, "_ops": {}, "_spans": [],
                    "step_ms": sm.us / 1e3, "phases_ms": phase_ms, "ms": dict.fromkeys(CATEGORIES, 0.0),
                    "matmul_flops": 0,
                }
            )  # fmt: skip

    def locate(self, t: float) -> tuple[dict | None, str | None]:
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0 or t > self.rows[i]["_end"]:
            return None, None
        for a, b, name in self.rows[i]["_phases"]:
            if a <= t <= b:
                return self.rows[i], name
        return self.rows[i], None


def breakdown(events: list[TraceEvent], device_view: bool) -> list[dict]:
    """Per-step category ms (and, on the device view, kernel figures) from a trace."""
    steps = _Steps(events)
    host = [e for e in events if not e.on_device]
    for e in host:
        if e.name.startswith(MARK) or e.is_async:
            continue
        step, phase = steps.locate(e.start)
        if step is None:
            continue
        cat = op_category(e.name)
        if cat == "matmul":
            step["matmul_flops"] += matmul_flops(e)
        if device_view or phase not in ("forward", "backward"):
            continue
        self_ms = e.self_us / 1e3
        step["ms"][cat] += self_ms
        _add_op(step, e.name, cat, self_ms)
    for step in steps.rows:
        p = step["phases_ms"]
        step["ms"]["data"] = p["data"]
        step["ms"]["optimizer"] = 0.0 if device_view else p["clip"] + p["optimizer"]
    if device_view:
        _device_view(events, host, steps)
    for step in steps.rows:
        ms = step["ms"]
        known = sum(v for k, v in ms.items() if k != "other")
        ms["other"] = max(0.0, step["step_ms"] - known)
        step["categorised_ms"] = known + ms["other"]
        step["fraction"] = {k: v / step["step_ms"] if step["step_ms"] > 0 else 0.0 for k, v in ms.items()}
    return steps.rows


def _device_view(events: list[TraceEvent], host: list[TraceEvent], steps: _Steps) -> None:
    """Kernel time per category (attributed to the launching phase), launches, gaps, busy time."""
    launch_at: dict[int, float] = {}  # correlation id -> host time of the runtime call
    op_at: dict[int, float] = {}  # op id -> host start, for kernels linked to their op instead
    for e in host:
        if e.activity in ("cuda_runtime", "cuda_driver", "xpu_runtime", "xpu_driver") or (
            e.activity is None and e.name.startswith("cu")
        ):
            launch_at[e.id] = e.start
        elif e.activity in (None, "cpu_op"):
            op_at[e.id] = e.start
    for e in events:
        if not e.on_device or e.name.startswith(MARK) or e.is_annotation:
            continue
        if e.activity in ("gpu_user_annotation", "cuda_sync") or (
            e.activity is None and "sync" in e.name.lower()
        ):
            continue
        t = launch_at.get(e.id)
        if t is None:
            t = op_at.get(e.linked_id or -1)
        if t is not None:
            step, phase = steps.locate(t)
        else:  # launch not found: the step by the kernel's own start, the phase unknown
            step, phase = steps.locate(e.start)[0], None
        if step is None:
            continue
        lname = e.name.lower()
        is_copy = e.activity in ("gpu_memcpy", "gpu_memset") or lname.startswith(("memcpy", "memset"))
        step["_spans"].append((e.start, e.end, is_copy))
        if phase == "data":
            continue  # the data phase is counted by its wall time
        if phase in ("clip", "optimizer") or (phase is None and any(s in lname for s in _OPTIMIZER_KERNEL)):
            cat = "optimizer"
        else:
            cat = kernel_category(lname)
        step["ms"][cat] += e.us / 1e3
        _add_op(step, e.name, cat, e.us / 1e3)
    for step in steps.rows:
        busy_us, gaps, end = 0.0, [], None
        spans = sorted(step["_spans"])
        for a, b, _ in spans:
            if end is None:
                busy_us += b - a
                end = b
                continue
            gaps.append(max(0.0, a - end))
            if b > end:
                busy_us += b - max(a, end)
                end = b
        step_us = step["_end"] - step["_start"]
        step["kernel_launches"] = sum(1 for *_, copy in spans if not copy)
        step["memcpy_memset"] = sum(1 for *_, copy in spans if copy)
        step["device_kernel_ms"] = sum(b - a for a, b, _ in spans) / 1e3
        step["device_busy_ms"] = busy_us / 1e3
        step["mean_gap_us"] = statistics.fmean(gaps) if gaps else None
        step["device_idle_fraction"] = max(0.0, 1.0 - busy_us / step_us) if step_us > 0 else None


def _add_op(step: dict, name: str, cat: str, ms: float) -> None:
    key = (name, cat)
    step["_ops"][key] = step["_ops"].get(key, 0.0) + ms


def assemble(
    meta: dict,
    steps: list[dict],
    start_iter: int,
    view: str,
    unprofiled_ms_median: float | None,
    peak_flops_per_s: float | None,
    counts: dict | None = None,
    roofs: dict | None = None,
) -> dict:
    """profile.json from the per-step breakdown: every step, their mean, the matmuls' FLOP/s, top ops,
    and, given the counted step (bench.profile.traffic.count_step), each category on the roofline.

    view: "device", "host" or "host_async" (bench.devices.Device.profile_view); roofs: {"compute": [...],
    "memory": [...]} (bench.profile.roofs.RoofMeter), else the compute roof is peak_flops_per_s alone.
    """
    device_view = view == "device"
    n = len(steps)
    ops: dict[tuple[str, str], float] = {}
    for s in steps:
        for key, ms in s["_ops"].items():
            ops[key] = ops.get(key, 0.0) + ms / n
    out_steps = [
        {"iter": start_iter + 1 + i, **{k: v for k, v in s.items() if not k.startswith("_")}}
        for i, s in enumerate(steps)
    ]

    def mean(key: str) -> float | None:
        vals = [s[key] for s in out_steps if s.get(key) is not None]
        return statistics.fmean(vals) if vals else None

    step_ms = mean("step_ms")
    mean_ms = {c: statistics.fmean(s["ms"][c] for s in out_steps) for c in CATEGORIES}
    avg: dict[str, Any] = {
        "step_ms": step_ms,
        "wall_ms": mean("wall_ms"),
        "host_ms": mean("host_ms"),
        "ms": mean_ms,
        "fraction": {c: v / step_ms if step_ms else 0.0 for c, v in mean_ms.items()},
        "phases_ms": {p: statistics.fmean(s["phases_ms"].get(p, 0.0) for s in out_steps) for p in PHASES},
        "matmul_flops": mean("matmul_flops"),
    }
    if device_view:
        for key in ("kernel_launches", "memcpy_memset", "device_kernel_ms", "device_busy_ms", "mean_gap_us"):
            avg[key] = mean(key)
        avg["kernel_launches_per_step"] = avg.pop("kernel_launches")
        busy = avg["device_busy_ms"]
        avg["device_idle_fraction"] = max(0.0, 1.0 - busy / step_ms) if step_ms and busy is not None else None
    matmul_s = mean_ms["matmul"] / 1e3
    matmul_flops_per_s = avg["matmul_flops"] / matmul_s if matmul_s > 0 and avg["matmul_flops"] else None
    wall_median = statistics.median(s["wall_ms"] for s in out_steps)
    compiled = bool(meta.get("compiled"))
    if roofs is None:
        given = {"value": peak_flops_per_s, "source": "given", "label": "peak (given)", "detail": ""}
        roofs = {"compute": [given] if peak_flops_per_s else [], "memory": []}
    roofline = (
        rl.roofline(mean_ms, step_ms or 0.0, counts, roofs, view, compiled) if counts is not None else None
    )
    return {
        "schema": SCHEMA,
        **meta,
        "view": "device" if device_view else "host",
        "clip_in": "optimizer",
        "categories": list(CATEGORIES),
        "n_steps": n,
        "profiler_warmup_steps": 1,
        "start_iter": start_iter,
        "steps": out_steps,
        "mean": avg,
        "wall_ms_median": wall_median,
        "unprofiled_ms_median": unprofiled_ms_median,
        "profiler_overhead": wall_median / unprofiled_ms_median if unprofiled_ms_median else None,
        "matmul_flops_per_s": matmul_flops_per_s,
        "peak_flops_per_s": peak_flops_per_s,
        "matmul_fraction_of_peak": (
            matmul_flops_per_s / peak_flops_per_s if matmul_flops_per_s and peak_flops_per_s else None
        ),
        "top_ops": [
            {"name": name, "category": cat, "ms_per_step": ms}
            for (name, cat), ms in sorted(ops.items(), key=lambda kv: -kv[1])[:15]
        ],
        "roofline": roofline,
        "notes": notes(view, meta.get("device_type", "?"), compiled)
        + (rl.notes(view, compiled) if roofline is not None else []),
    }


def notes(view: str, device_type: str, compiled: bool) -> list[str]:
    """What the categories mean for this view (stored with the numbers; reports decide what to say)."""
    out = ["clip_grad_norm (and the GradScaler's unscale) is counted in optimizer"]
    if view == "device":
        out.append(
            "device view: categories are kernel time by launching phase; data is the data phase's wall "
            "time; other is the step's time with the device idle (launch overhead, Python, sync)"
        )
    elif view == "host":
        out.append(
            "host view: forward/backward ops by self time; view and allocation ops and autograd "
            "bookkeeping are in other"
        )
        if compiled:
            out.append("compiled: Inductor's fused CPU kernels are not profiled as ops and land in other")
    else:
        out.append(f"{device_type}: host view only (ops are asynchronous; device time not profiled)")
    return out
