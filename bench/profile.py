"""Where a train step's time goes: a few extra steps under torch.profiler, split into categories.

`profile_steps(trainer)` runs steps of an already warmed-up Trainer under the profiler, each phase of
the step marked with `record_function` ("devicebench.data", ".forward", ".backward", ".clip",
".optimizer"), and returns a JSON-serialisable dict (schema "devicebench-profile/1",
docs/profile-schema.md): per step and averaged, the step's time in matmul, attention,
elementwise_norm, optimizer, data and other. The Trainer is restored afterwards (weights, optimizer,
scaler, batch sampler, RNG), so the profiled steps change nothing a run records.

On the CPU the categories are host time: the self time of each op (exclusive, so nested ops are
never counted twice) inside the forward and backward phases, plus the wall time of the data and
optimizer phases. On CUDA they are device time: each kernel's duration, attributed to the phase that
launched it; what is left of the step is launch overhead and idle device time.

This module imports torch only inside the functions that need it; `summarize_profile` needs none.
"""

from __future__ import annotations

import bisect
import statistics
import time
from typing import Any

from hwinfo.units import flops

SCHEMA = "devicebench-profile/1"
CATEGORIES = ("matmul", "attention", "elementwise_norm", "optimizer", "data", "other")
PHASES = ("data", "forward", "backward", "clip", "optimizer")
MARK = "devicebench."

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
# CUDA kernel names, lower-cased. Attention is tested first: fmha_cutlass* and cudnn's sdpa_sm90 kernels
# would otherwise look like GEMMs.
_ATTENTION_KERNEL = ("flash", "fmha", "attention", "attn", "sdpa", "scaled_dot_product")
_MATMUL_KERNEL = (
    "gemm", "gemv", "cutlass", "xmma", "nvjet", "cublas", "splitk", "ampere_", "sm80_", "sm90_",
    "sm100_", "volta_", "turing_", "triton_tem", "_mm_", "bmm",
)  # fmt: skip
_OPTIMIZER_KERNEL = ("adam", "multi_tensor_apply", "lpnorm", "foreach")


class _Snapshot:
    """Everything a train step changes in a Trainer, to put back after profiling."""

    def __init__(self, trainer: Any) -> None:
        import copy

        import torch

        self.model = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        self.optimizer = copy.deepcopy(trainer.optimizer.state_dict())
        self.scaler = copy.deepcopy(trainer.scaler.state_dict())
        self.sampler = trainer.train_sampler.generator.get_state()
        self.cpu_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state(trainer.device) if trainer.device.type == "cuda" else None

    def restore(self, trainer: Any) -> None:
        import torch

        with torch.no_grad():
            trainer.model.load_state_dict(self.model)
        trainer.optimizer.load_state_dict(self.optimizer)
        trainer.optimizer.zero_grad(set_to_none=True)
        if self.scaler:
            trainer.scaler.load_state_dict(self.scaler)
        trainer.train_sampler.generator.set_state(self.sampler)
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state(self.cuda_rng, trainer.device)


def _profiled_step(trainer: Any, it: int) -> float:
    """Trainer.train_step's body with a record_function marker around each phase; returns host ms
    (time until every kernel is enqueued, before the final synchronisation)."""
    import torch
    from torch.profiler import record_function

    from bench.train import lr_at, synchronize

    lr = lr_at(it, trainer.train_cfg)
    for group in trainer.optimizer.param_groups:
        group["lr"] = lr
    synchronize(trainer.device)
    t0 = time.perf_counter()
    with record_function(MARK + "step"):
        with record_function(MARK + "data"):
            x, y = trainer.train_sampler.next(trainer.device)
        with record_function(MARK + "forward"):
            with trainer.autocast():
                _, loss = trainer.forward(x, y)
        with record_function(MARK + "backward"):
            trainer.scaler.scale(loss).backward()
        if trainer.train_cfg.grad_clip > 0.0:
            with record_function(MARK + "clip"):
                trainer.scaler.unscale_(trainer.optimizer)
                torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), trainer.train_cfg.grad_clip)
        with record_function(MARK + "optimizer"):
            trainer.scaler.step(trainer.optimizer)
            trainer.scaler.update()
            trainer.optimizer.zero_grad(set_to_none=True)
        host_ms = (time.perf_counter() - t0) * 1e3
        synchronize(trainer.device)  # inside the step marker, so the marker spans the device's work
    return host_ms


def profile_steps(
    trainer: Any,
    n_steps: int = 5,
    start_iter: int = 0,
    unprofiled_ms_median: float | None = None,
    peak_flops_per_s: float | None = None,
) -> dict:
    """Profile n_steps extra train steps of a warmed-up Trainer and break each step's time into categories.

    One more step runs first as the profiler's own warm-up and is not recorded. The Trainer's weights,
    optimizer, scaler, batch sampler and RNG are restored afterwards. `start_iter` sets the learning
    rate of the steps (lr_at); `unprofiled_ms_median` (the run's median step) gives the profiler's
    overhead; `peak_flops_per_s` (this device and dtype) gives the matmuls' fraction of peak.
    """
    from torch.profiler import ProfilerActivity, profile, schedule

    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    device = trainer.device
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    wall_ms: list[float] = []
    host_ms: list[float] = []
    snapshot = _Snapshot(trainer)
    try:
        with profile(
            activities=activities,
            schedule=schedule(wait=0, warmup=1, active=n_steps, repeat=1),
            record_shapes=True,
            with_flops=True,
            with_stack=False,
        ) as prof:
            for i in range(n_steps + 1):
                t0 = time.perf_counter()
                host = _profiled_step(trainer, start_iter + i)
                ms = (time.perf_counter() - t0) * 1e3
                if i > 0:
                    wall_ms.append(ms)
                    host_ms.append(host)
                prof.step()
        events = list(prof.events())
    finally:
        snapshot.restore(trainer)

    steps = _breakdown(events, device.type == "cuda")
    if len(steps) != n_steps:
        raise RuntimeError(f"the profiler recorded {len(steps)} of {n_steps} steps")
    for s, wall, host in zip(steps, wall_ms, host_ms, strict=True):
        s["wall_ms"] = wall
        s["host_ms"] = host
    return _assemble(trainer, steps, start_iter, unprofiled_ms_median, peak_flops_per_s)


def _breakdown(events: list, cuda: bool) -> list[dict]:
    """Per-step category ms (and CUDA device figures) from the profiler's events."""
    from torch.autograd import DeviceType

    cpu_events = [e for e in events if e.device_type == DeviceType.CPU]
    marks = [e for e in cpu_events if e.name.startswith(MARK)]
    step_marks = sorted((e for e in marks if e.name == MARK + "step"), key=lambda e: e.time_range.start)
    starts = [e.time_range.start for e in step_marks]
    steps: list[dict] = []
    for sm in step_marks:
        phases = [
            (e.time_range.start, e.time_range.end, e.name[len(MARK) :])
            for e in marks
            if e.name != MARK + "step" and sm.time_range.start <= e.time_range.start <= sm.time_range.end
        ]
        phase_ms = dict.fromkeys(PHASES, 0.0)
        for a, b, name in phases:
            phase_ms[name] = phase_ms.get(name, 0.0) + (b - a) / 1e3
        steps.append(
            {
                "_start": sm.time_range.start,
                "_end": sm.time_range.end,
                "_phases": phases,
                "step_ms": (sm.time_range.end - sm.time_range.start) / 1e3,
                "phases_ms": phase_ms,
                "ms": dict.fromkeys(CATEGORIES, 0.0),
                "matmul_flops": 0,
                "_ops": {},
            }
        )

    def locate(t: float) -> tuple[dict | None, str | None]:
        i = bisect.bisect_right(starts, t) - 1
        if i < 0 or t > steps[i]["_end"]:
            return None, None
        for a, b, name in steps[i]["_phases"]:
            if a <= t <= b:
                return steps[i], name
        return steps[i], None

    # Host view: the self time of every op, so an op nested in another is counted once.
    for e in cpu_events:
        if e.name.startswith(MARK) or e.is_async:
            continue
        step, phase = locate(e.time_range.start)
        if step is None:
            continue
        cat = _cpu_category(e.name)
        if cat == "matmul":
            step["matmul_flops"] += _matmul_flops(e)
        if cuda or phase not in ("forward", "backward"):
            continue
        self_ms = e.self_cpu_time_total / 1e3
        step["ms"][cat] += self_ms
        _add_op(step, e.name, cat, self_ms)

    for step in steps:
        p = step["phases_ms"]
        step["ms"]["data"] = p["data"]
        step["ms"]["optimizer"] = p["clip"] + p["optimizer"] if not cuda else 0.0
    if cuda:
        _device_view(events, cpu_events, steps, locate)
    for step in steps:
        ms = step["ms"]
        known = sum(v for k, v in ms.items() if k != "other")
        ms["other"] = max(0.0, step["step_ms"] - known)
        step["categorised_ms"] = known + ms["other"]
        step["fraction"] = {k: v / step["step_ms"] if step["step_ms"] > 0 else 0.0 for k, v in ms.items()}
    return steps


def _device_view(events: list, cpu_events: list, steps: list[dict], locate: Any) -> None:
    """CUDA: kernel time per category (attributed to the launching phase), launches, gaps, busy time."""
    from torch.autograd import DeviceType

    launch_at: dict[int, float] = {}  # CUPTI correlation id -> host time of the runtime call
    op_at: dict[int, float] = {}  # op id -> host start, for kernels linked to their op instead
    for e in cpu_events:
        kind = getattr(e, "activity_type", None)
        if kind in ("cuda_runtime", "cuda_driver") or (kind is None and e.name.startswith("cu")):
            launch_at[e.id] = e.time_range.start
        elif kind in (None, "cpu_op"):
            op_at[e.id] = e.time_range.start
    device = []
    for e in events:
        if e.device_type != DeviceType.CUDA or e.name.startswith(MARK):
            continue
        kind = getattr(e, "activity_type", None)
        if kind in ("gpu_user_annotation", "cuda_sync") or getattr(e, "is_user_annotation", False):
            continue
        if kind is None and "sync" in e.name.lower():
            continue
        device.append(e)

    per_step: dict[int, list] = {}
    for e in device:
        t = launch_at.get(e.id)
        if t is None:
            t = op_at.get(getattr(e, "linked_correlation_id", 0) or -1)
        if t is not None:
            step, phase = locate(t)
        else:  # launch not found: the step by the kernel's own start, the phase unknown
            step, phase = locate(e.time_range.start)[0], None
        if step is None:
            continue
        lname = e.name.lower()
        is_copy = (getattr(e, "activity_type", None) in ("gpu_memcpy", "gpu_memset")) or lname.startswith(
            ("memcpy", "memset")
        )
        dur_ms = (e.time_range.end - e.time_range.start) / 1e3
        per_step.setdefault(id(step), []).append((e.time_range.start, e.time_range.end, is_copy))
        if phase == "data":
            continue  # the data phase is counted by its wall time
        if phase in ("clip", "optimizer") or (phase is None and any(s in lname for s in _OPTIMIZER_KERNEL)):
            cat = "optimizer"
        else:
            cat = _kernel_category(lname)
        step["ms"][cat] += dur_ms
        _add_op(step, e.name, cat, dur_ms)

    for step in steps:
        spans = sorted(per_step.get(id(step), []))
        busy_us, kernel_us, gaps, end = 0.0, 0.0, [], None
        for a, b, _ in spans:
            kernel_us += b - a
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
        step["device_kernel_ms"] = kernel_us / 1e3
        step["device_busy_ms"] = busy_us / 1e3
        step["mean_gap_us"] = statistics.fmean(gaps) if gaps else None
        step["device_idle_fraction"] = max(0.0, 1.0 - busy_us / step_us) if step_us > 0 else None


def _cpu_category(name: str) -> str:
    """Category of a host op by name; autograd nodes, markers and view/alloc ops are "other"."""
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


def _kernel_category(lname: str) -> str:
    if any(s in lname for s in _ATTENTION_KERNEL):
        return "attention"
    if any(s in lname for s in _MATMUL_KERNEL):
        return "matmul"
    return "elementwise_norm"


def _matmul_flops(e: Any) -> int:
    """FLOPs of a leaf matmul op: the profiler's count, else 2*M*N*K from the recorded shapes."""
    if e.flops:
        return int(e.flops)
    base = e.name.split("::", 1)[-1]
    shapes = [s for s in (e.input_shapes or []) if isinstance(s, (list, tuple))]
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


def _add_op(step: dict, name: str, cat: str, ms: float) -> None:
    key = (name, cat)
    step["_ops"][key] = step["_ops"].get(key, 0.0) + ms


def _assemble(
    trainer: Any,
    steps: list[dict],
    start_iter: int,
    unprofiled_ms_median: float | None,
    peak_flops_per_s: float | None,
) -> dict:
    import torch

    cuda = trainer.device.type == "cuda"
    n = len(steps)
    ops: dict[tuple[str, str], float] = {}
    for s in steps:
        for key, ms in s["_ops"].items():
            ops[key] = ops.get(key, 0.0) + ms / n
    out_steps = []
    for i, s in enumerate(steps):
        row = {k: v for k, v in s.items() if not k.startswith("_")}
        out_steps.append({"iter": start_iter + 1 + i, **row})

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
    if cuda:
        for key in ("kernel_launches", "memcpy_memset", "device_kernel_ms", "device_busy_ms", "mean_gap_us"):
            avg[key] = mean(key)
        avg["kernel_launches_per_step"] = avg.pop("kernel_launches")
        busy = avg["device_busy_ms"]
        avg["device_idle_fraction"] = max(0.0, 1.0 - busy / step_ms) if step_ms and busy is not None else None
    matmul_s = mean_ms["matmul"] / 1e3
    matmul_flops_per_s = avg["matmul_flops"] / matmul_s if matmul_s > 0 and avg["matmul_flops"] else None
    wall_median = statistics.median(s["wall_ms"] for s in out_steps)
    compiled = trainer.forward is not trainer.model
    return {
        "schema": SCHEMA,
        "device": str(trainer.device),
        "device_type": trainer.device.type,
        "dtype": trainer.dtype,
        "batch_size": trainer.batch_size,
        "block_size": trainer.model.config.block_size,
        "compiled": compiled,
        "threads": torch.get_num_threads() if trainer.device.type == "cpu" else None,
        "torch": torch.__version__,
        "view": "device" if cuda else "host",
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
        "notes": _notes(trainer.device.type, compiled),
    }


def _notes(device_type: str, compiled: bool) -> list[str]:
    notes = ["clip_grad_norm (and the GradScaler's unscale) is counted in optimizer"]
    if device_type == "cuda":
        notes.append(
            "device view: categories are kernel time by launching phase; data is the data phase's wall "
            "time; other is the step's time with the device idle (launch overhead, Python, sync)"
        )
    elif device_type == "cpu":
        notes.append(
            "host view: forward/backward ops by self time; view and allocation ops and autograd "
            "bookkeeping are in other"
        )
        if compiled:
            notes.append("compiled: Inductor's fused CPU kernels are not profiled as ops and land in other")
    else:
        notes.append(f"{device_type}: host view only (ops are asynchronous; device time not profiled)")
    return notes


def _pct(x: float | None) -> str:
    return f"{100 * (x or 0.0):.0f}%"


_LABEL = {"elementwise_norm": "elementwise/norm"}


def summarize_profile(profile: dict) -> str:
    """One sentence: where the step's time goes, e.g. "on cpu at batch 12, 62% of the step is matmul
    at 140 GFLOP/s, 18% elementwise/norm, 9% optimizer, 2% data, 9% other". Needs no torch."""
    avg = profile["mean"]
    frac = avg["fraction"]
    where = f"on {profile['device']} at batch {profile['batch_size']}"
    if profile.get("compiled"):
        where += " (compiled)"
    parts = []
    for cat in sorted(CATEGORIES, key=lambda c: -frac.get(c, 0.0)):
        text = f"{_pct(frac.get(cat))} {_LABEL.get(cat, cat)}"
        if cat == "matmul" and profile.get("matmul_flops_per_s"):
            text += f" at {flops(profile['matmul_flops_per_s'])}"
            if profile.get("matmul_fraction_of_peak"):
                text += f" ({_pct(profile['matmul_fraction_of_peak'])} of peak)"
        parts.append(text)
    idle = avg.get("device_idle_fraction")
    if profile.get("view") == "device" and idle is not None:
        launches = avg.get("kernel_launches_per_step") or 0
        gap = avg.get("mean_gap_us")
        gap_text = f", {gap:.0f} us mean gap" if gap is not None else ""
        head = f"{where}, {_pct(idle)} of the step is launch overhead/idle device: {launches:.0f} kernels{gap_text}"
        host = avg.get("host_ms")
        if host and avg.get("step_ms") and host >= 0.8 * avg["step_ms"]:
            head += f" (the host needs {host:.1f} of the {avg['step_ms']:.1f} ms to launch them)"
        busy = [p for p in parts if not p.endswith(" other")]
        return f"{head}; device time: {', '.join(busy)}"
    first, rest = parts[0], parts[1:]
    return f"{where}, {first.split(' ', 1)[0]} of the step is {first.split(' ', 1)[1]}, " + ", ".join(rest)


def load_profile(path: Any) -> dict | None:
    """A run's profile.json, checked to be "devicebench-profile/1"; None when the run has none.

    Raises bench.results.ResultsError when it is corrupt or from a newer schema. Needs no torch.
    """
    import json
    from pathlib import Path

    from bench.results import ResultsError

    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path} is corrupt ({e.msg} at line {e.lineno}): remove it or rerun") from None
    tag = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(tag, str) or not tag.startswith("devicebench-profile/"):
        raise ResultsError(f"{path}: not a devicebench profile (schema {tag!r})")
    if tag != SCHEMA:
        raise ResultsError(
            f"{path} was written with schema {tag}, newer than this devicebench reads ({SCHEMA})"
        )
    return data
