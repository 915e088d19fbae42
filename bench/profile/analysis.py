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
    "mv", "addmv", "dot", "vdot", "einsum", "_int_mm", "_scaled_mm", "_scaled_grouped_mm", "_grouped_mm",
    # convolutions are implicit GEMMs and run on the same units
    "convolution", "_convolution", "conv1d", "conv2d", "conv3d", "cudnn_convolution", "miopen_convolution",
    "convolution_backward", "cudnn_convolution_transpose", "miopen_convolution_transpose",
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
    # ROCm: Tensile's GEMMs are Cijk_<layout>_..., hipBLASLt's and Composable Kernel's say gemm
    "cijk_", "hipblaslt", "wvsplitk", "skinny_gemm", "ck::device_gemm",
    # cuDNN's convolutions (implicit GEMMs) and the helpers they launch: winograd transforms, cask offsets,
    # weight-gradient reductions, layout transforms, FFT convolutions (batch norm's cudnn::bn_ kernels are not among them)
    "scudnn", "winograd", "cask_cudnn", "cudnn::cnn::", "cudnn::ops::nchwtonhwc", "cudnn::ops::nhwctonchw",
    "implicit_convolve", "convolve_", "dgrad_engine", "wgrad_alg", "cudnn::ops::scalepackedtensor",
    "fft2d_r2c", "fft2d_c2r",
)  # fmt: skip
_OPTIMIZER_KERNEL = ("adam", "multi_tensor_apply", "lpnorm", "foreach")
_COMM_KERNEL = ("nccl", "rccl", "all_reduce", "allreduce", "all_gather", "allgather", "reduce_scatter")
# Host ops and annotations that decide a launch's category whatever op inside them launched it.
_COMM_OP = ("nccl:", "c10d::", "_c10d_functional::", "c10d_functional::", "record_param_comms", "gloo:", "mpi:",
            "ucc:", "torch.distributed.")  # fmt: skip
_OPTIMIZER_OP = ("optimizer.step#", "optimizer.zero_grad#", "aten::_foreach_", "aten::_fused_adam",
                 "aten::_fused_sgd", "aten::_fused_adagrad", "clip_grad_norm")  # fmt: skip
_DATA_OP = ("enumerate(dataloader)", "dataloader")
_ATTENTION_OP = ("scaled_dot_product", "flash_attention", "_efficient_attention", "flashattn", "flash_attn",
                 "attention", "sdpa", "fmha")  # fmt: skip


def op_category(name: str) -> str:
    """Category of a host op by name ("aten::mm"); autograd nodes, markers and view/alloc ops are "other"."""
    if "::" not in name or name.startswith("autograd::"):
        return "other"
    ns, base = name.split("::", 1)
    lname = name.lower()
    # "gemm" in the op's own name, not FBGEMM's (fbgemm::, fbgemm_gpu::): its ops are embedding lookups,
    # permutes and scans
    if (
        base in _MATMUL_OPS
        or "gemm" in base.lower().replace("fbgemm", "")
        or ("mkldnn" in lname and ("linear" in lname or "mm" in base))
    ):
        return "matmul"
    if "scaled_dot_product" in lname or "attention" in lname or "flash" in lname:
        return "attention"
    if ns in ("aten", "prims", "mkldnn", "onednn", "quantized") and base not in _METADATA_OPS:
        return "elementwise_norm"
    return "other"


def kernel_category(lname: str) -> str:
    """Category of a device kernel by its lower-cased name (the fallback when its launch is not found)."""
    if any(s in lname for s in _COMM_KERNEL):
        return "communication"
    if any(s in lname for s in _ATTENTION_KERNEL):
        return "attention"
    if any(s in lname.replace("fbgemm", "") for s in _MATMUL_KERNEL):  # fbgemm_gpu:: names no GEMM
        return "matmul"
    return "elementwise_norm"


def stack_category(stack: list[tuple[str, str | None]]) -> str | None:
    """Category of a kernel from the host ops around its launch, (name, activity) outermost first.

    A collective, the optimizer (its step and zero_grad annotations, the foreach/fused kernels it and
    clip_grad_norm call) and a DataLoader's next batch decide it wherever the launch is inside them;
    attention next (an SDPA op or its autograd node, even where it runs as bmm + softmax); else the
    innermost op that computes: matmul (mm, addmm, bmm, linear, convolution, ...) or elementwise/norm.
    None when no op says (a kernel launched from Python, e.g. a compiled graph's Triton kernels).
    """
    ops = [(n, a) for n, a in stack if not n.startswith(MARK) and not n.startswith("ProfilerStep#")]
    lowers = [n.lower() for n, _ in ops]
    if any(n.startswith(_COMM_OP) or n.startswith("aten::_c10d") for n in lowers):
        return "communication"
    if any(n.startswith(_OPTIMIZER_OP) for n in lowers):
        return "optimizer"
    if any(n.startswith(_DATA_OP) for n in lowers):
        return "data"
    # attention by op names only: a user annotation or nn.Module named "...Attention" also holds the
    # q/k/v projections, which are matmuls
    if any(
        any(s in n for s in _ATTENTION_OP)
        for n, (_, a) in zip(lowers, ops, strict=True)
        if a != "user_annotation"
    ):
        return "attention"
    for name, activity in reversed(ops):
        if activity == "user_annotation":
            continue
        cat = op_category(name)
        if cat in ("matmul", "elementwise_norm"):
            return cat
    return None


def launch_index(host: list[TraceEvent]) -> dict[int, list[tuple[float, str | None]]]:
    """correlation id -> (host start, `stack_category`) of each runtime launch with that id, by start. One
    launch per id in a trace as the profiler writes it; more where traces were merged or ids reused."""
    by_thread: dict[Any, list[tuple[float, int, float, TraceEvent]]] = {}
    for e in host:
        if _is_launch(e):
            by_thread.setdefault(e.thread, []).append((e.start, 1, 0.0, e))
        elif e.activity in (None, "cpu_op", "user_annotation") and not e.is_async:
            by_thread.setdefault(e.thread, []).append((e.start, 0, -e.us, e))
    out: dict[int, list[tuple[float, str | None]]] = {}
    for items in by_thread.values():
        items.sort(key=lambda x: x[:3])
        stack: list[TraceEvent] = []
        memo: dict[tuple, str | None] = {}  # the same stack of names recurs every step
        for start, is_launch, _, e in items:
            while stack and stack[-1].end < start:
                stack.pop()
            if is_launch:
                if e.id:
                    key = tuple((s.name, s.activity) for s in stack)
                    if key not in memo:
                        memo[key] = stack_category(list(key))
                    out.setdefault(e.id, []).append((start, memo[key]))
            else:
                stack.append(e)
        del items[:]
    for found in out.values():
        found.sort(key=lambda x: x[0])
    return out


def _launch_for(found: list[tuple[float, str | None]] | None, kernel_start: float) -> tuple | None:
    """Of the launches that share a kernel's correlation id, the latest that began before the kernel (a
    kernel cannot start before its launch); the first where none did (clocks that disagree)."""
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    i = bisect.bisect_right([a for a, _ in found], kernel_start) - 1
    return found[max(i, 0)]


def _is_launch(e: TraceEvent) -> bool:
    a = e.activity or ""
    return a.endswith(("_runtime", "_driver")) or (e.activity is None and e.name.startswith(("cu", "hip")))


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
    """The profiled steps (their time windows) and the phase marked at a time.

    Default: the "devicebench.step" markers of `bench run --profile` and its phase markers. A trace read
    from a file gives its own windows (ProfilerStep#N) and phases (DataLoader, optimizer annotations).
    """

    def __init__(
        self,
        events: list[TraceEvent],
        windows: list[tuple[float, float]] | None = None,
        phases: list[tuple[float, float, str]] | None = None,
    ) -> None:
        if windows is None:
            marks = [e for e in events if not e.on_device and e.name.startswith(MARK)]
            step_marks = sorted((e for e in marks if e.name == MARK + "step"), key=lambda e: e.start)
            windows = [(e.start, e.end) for e in step_marks]
            phases = [(e.start, e.end, e.name[len(MARK) :]) for e in marks if e.name != MARK + "step"]
        windows = sorted(windows)
        phases = phases or []
        self.starts = [a for a, _ in windows]
        self.rows: list[dict] = []
        for start, end in windows:
            inside = [(a, b, name) for a, b, name in phases if start <= a <= end]
            phase_ms = dict.fromkeys(PHASES, 0.0)
            for name in {n for *_, n in inside}:  # union per phase: nested or repeated marks count once
                covered, reach = 0.0, None
                for a, b in sorted((a, min(b, end)) for a, b, n in inside if n == name):
                    if reach is None or a > reach:
                        covered += b - a
                        reach = b
                    elif b > reach:
                        covered += b - reach
                        reach = b
                phase_ms[name] = covered / 1e3
            self.rows.append(
                {
                    "_start": start, "_end": end, "_phases": inside, "_ops": {}, "_launched": [],
                    "step_ms": (end - start) / 1e3, "phases_ms": phase_ms, "ms": dict.fromkeys(CATEGORIES, 0.0),
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


def breakdown(
    events: list[TraceEvent],
    device_view: bool,
    windows: list[tuple[float, float]] | None = None,
    phases: list[tuple[float, float, str]] | None = None,
) -> list[dict]:
    """Per-step category ms (and, on the device view, kernel figures) from a trace.

    Steps and phases default to devicebench's own markers (bench run --profile), where the host view counts
    the forward and backward phases' ops; given `windows` (a trace's steps), the host view counts every
    op outside the data and optimizer phases, as a trace has no forward/backward markers.
    """
    steps = _Steps(events, windows, phases)
    counted_phases = ("forward", "backward") if windows is None else (None, "forward", "backward")
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
        if device_view or phase not in counted_phases:
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


# When device activities overlap (a collective on its own stream under a GEMM), the time goes to the first
# category here that is running: compute hides communication, communication shows only where it is exposed.
DEVICE_PRIORITY = ("matmul", "attention", "elementwise_norm", "optimizer", "communication")


def _device_view(events: list[TraceEvent], host: list[TraceEvent], steps: _Steps) -> None:
    """Device time per category, launches, gaps, busy time.

    A kernel's category comes from the host ops around its launch (correlation id: the runtime launch and
    the kernel share it; `stack_category`), within the phase that launched it (data: not counted, the
    phase's wall time is; clip, optimizer: optimizer). Only where no op says, its name decides
    (`kernel_category`). A kernel whose launch is not in the trace is placed by its own start time.

    Time is what the device did inside each step's window, exclusive: every activity is clipped to the
    window, and where several run at once (streams) the instant goes to one category (DEVICE_PRIORITY), so
    the categories and the idle time add up to the window. Launch counts go to the step that launched.
    """
    op_at: dict[int, float] = {}  # op id -> host start, for kernels linked to their op instead
    for e in host:
        if not _is_launch(e) and e.activity in (None, "cpu_op"):
            op_at[e.id] = e.start
    launches = launch_index(host)  # correlation id -> (host time of the runtime call, category), by time
    spans: list[tuple[float, float, str | None]] = []  # every device activity: start, end, category
    for e in events:
        if not e.on_device or e.name.startswith(MARK) or e.is_annotation:
            continue
        if e.activity in ("gpu_user_annotation", "cuda_sync") or (
            e.activity is None and "sync" in e.name.lower()
        ):
            continue
        launch = _launch_for(launches.get(e.id), e.start) if e.id else None
        t = launch[0] if launch is not None else None
        if t is None and e.linked_id:
            t = op_at.get(e.linked_id)
        if t is not None:
            step, phase = steps.locate(t)
        else:  # launch not found: the step by the kernel's own start, the phase unknown
            step, phase = steps.locate(e.start)[0], None
        lname = e.name.lower()
        is_copy = e.activity in ("gpu_memcpy", "gpu_memset") or lname.startswith(("memcpy", "memset"))
        from_ops = launch[1] if launch is not None else None
        if phase == "data" or (from_ops == "data" and phase not in ("clip", "optimizer")):
            cat = None  # the data phase is counted by its wall time
        elif phase in ("clip", "optimizer"):
            cat = "optimizer"
        elif from_ops is not None:
            cat = from_ops
        elif phase is None and any(s in lname for s in _OPTIMIZER_KERNEL):
            cat = "optimizer"
        elif is_copy and phase is None:
            cat = "copy"  # a copy no computing op asked for: device busy, in no category (other)
        else:
            cat = kernel_category(lname)
        spans.append((e.start, e.end, cat))
        if step is None:
            continue
        step["_launched"].append((e.us, is_copy))
        if not is_copy and cat is not None:
            key = "_by_op" if from_ops is not None else "_by_name"
            step[key] = step.get(key, 0) + 1
        if cat in CATEGORIES:
            _add_op(step, e.name, cat, e.us / 1e3)
    spans.sort()
    starts = [a for a, _, _ in spans]
    longest = max((b - a for a, b, _ in spans), default=0.0)
    for step in steps.rows:
        lo, hi = step["_start"], step["_end"]
        first = bisect.bisect_left(starts, lo - longest)
        inside = []
        for a, b, c in spans[first:]:
            if a >= hi:
                break
            if b > lo:
                inside.append((max(a, lo), min(b, hi), c))
        _sweep(step, inside)
        launched = step["_launched"]
        step["kernel_launches"] = sum(1 for _, copy in launched if not copy)
        step["memcpy_memset"] = sum(1 for _, copy in launched if copy)
        step["device_kernel_ms"] = sum(us for us, _ in launched) / 1e3
        step_us = hi - lo
        step["device_idle_fraction"] = (
            max(0.0, 1.0 - step["device_busy_ms"] * 1e3 / step_us) if step_us > 0 else None
        )


def _sweep(step: dict, inside: list[tuple[float, float, str | None]]) -> None:
    """Busy time, gaps and exclusive category time of the device activities clipped to a step's window."""
    bounds = sorted({x for a, b, _ in inside for x in (a, b)})
    if not bounds:
        step["device_busy_ms"], step["mean_gap_us"] = 0.0, None
        return
    opens: dict[float, list[str | None]] = {}
    closes: dict[float, list[str | None]] = {}
    for a, b, c in inside:
        if b <= a:  # a zero-length activity (a kernel of no recorded duration) holds no instant
            continue
        opens.setdefault(a, []).append(c)
        closes.setdefault(b, []).append(c)
    running: dict[str | None, int] = {}
    busy_us, gaps, idle_from = 0.0, [], None
    for x, nxt in zip(bounds, [*bounds[1:], bounds[-1]], strict=True):
        for c in closes.get(x, []):
            running[c] -= 1
        for c in opens.get(x, []):
            running[c] = running.get(c, 0) + 1
        active = [c for c, n in running.items() if n > 0]
        if not active:
            if idle_from is None:
                idle_from = x
            continue
        if idle_from is not None:
            gaps.append(x - idle_from)
            idle_from = None
        dt = nxt - x
        busy_us += dt
        cat = next((c for c in DEVICE_PRIORITY if c in active), None)
        if cat is not None:
            step["ms"][cat] += dt / 1e3
    step["device_busy_ms"] = busy_us / 1e3
    step["mean_gap_us"] = statistics.fmean(gaps) if gaps else None


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
            "device view: categories are device time in the step, each kernel by the host op that launched it "
            "(its name where no op says) within its launching phase, overlapping streams counted once; data is "
            "the data phase's wall time; other is the step's time with the device idle (launch overhead, "
            "Python, sync)"
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
