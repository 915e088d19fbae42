"""`bench profile TRACE [TRACE ...]`: PyTorch profiler (Kineto) traces a user already has, read into the
breakdown `bench run --profile` gives; with --out, a results directory (`source: trace`) for `bench report`.
Every trace is read and checked before anything is written. No torch. Reference: docs/profile.md.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import __version__
from bench.importers import machine
from bench.importers.nanogpt import NanoGPTLogError
from bench.metrics import mfu
from bench.profile import fromtrace
from bench.profile.kineto import TraceError, read_trace
from bench.results import ResultsDir, ResultsError, atomic_write_json, dumps_strict, safe_label
from hwinfo.peaks import gpu_peaks, parse_peak_flops, user_peak
from hwinfo.units import flops as fmt_flops


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "traces", nargs="+", metavar="TRACE", help="*.pt.trace.json or .json.gz, one file per rank"
    )
    p.add_mutually_exclusive_group().add_argument("--hwinfo", metavar="FILE", help="what `hwinfo --json` printed "
        "on the machine that made the traces: the GPU's peak FLOP/s come from it")  # fmt: skip
    p.add_argument("--peak-flops", action="append", default=[], metavar="DTYPE=VALUE",
                   help="the GPU's peak FLOP/s for the traces' dtype, e.g. bf16=989T; overrides --hwinfo and the "
                   "trace's device name, labelled `user`")  # fmt: skip
    p.add_argument("--step-marker", metavar="NAME", help="a trace without ProfilerStep#N annotations: the steps "
                   "are the host events whose name starts with NAME (a record_function around each step)")  # fmt: skip
    p.add_argument("--whole-trace", action="store_true",
                   help="a trace of no training loop (a benchmark, one forward): read it whole as one step")  # fmt: skip
    p.add_argument("--device", type=int, metavar="N", help="a trace holding the kernels of several GPUs (one "
                   "process drove them): read GPU N's (default: the lowest index)")  # fmt: skip
    p.add_argument("--out", metavar="DIR", help="write a results directory there (must not hold one)")
    p.add_argument(
        "--json", action="store_true", help="print each profile.json to stdout instead of a summary"
    )


def _unknown(detail: str, dtype: str | None) -> dict:
    return {"value": None, "source": "unknown", "detail": detail, "dtype": dtype}


def _peak(
    trace: Any, info: dict, dtype: str | None, args: argparse.Namespace, user: dict, snapshot: Any
) -> dict:
    name = info.get("name") or "this GPU"
    host_only = not any(e.on_device and e.activity == "kernel" for e in trace.events)
    if user:
        if dtype is None and len(user) == 1:
            dtype = next(iter(user))
        if dtype in user:
            return {**user_peak(user[dtype], dtype, name), "dtype": dtype}
        return _unknown(f"--peak-flops gives {', '.join(user)} but the trace's matmuls ran in {dtype}", dtype)
    if dtype is None:
        return _unknown("the trace records no element type of a matmul or attention op (none ran, or "
                        "record_shapes=False): pass --peak-flops DTYPE=VALUE", None)  # fmt: skip
    if host_only:
        return _unknown(
            f"a CPU-only trace: a CPU's peak is not in a trace; pass --peak-flops {dtype}=VALUE", dtype
        )
    if snapshot is not None:
        device = f"cuda:{info.get('index') or 0}"
        peak, _ = machine.peak_from_hwinfo(snapshot, args.hwinfo, device, "cuda", dtype, trace.path)
        return {**peak, "dtype": dtype}
    if info.get("name"):
        sm = info.get("sm_count") if isinstance(info.get("sm_count"), int) else None
        peak = dict(gpu_peaks(info["name"], sm_count=sm, capability=info.get("capability"))[dtype])
        peak["detail"] = f"{peak.get('detail') or ''} (device name from the trace's deviceProperties)".strip()
        return {**peak, "dtype": dtype}
    return _unknown(f"the trace does not name its GPU (no deviceProperties): pass --hwinfo FILE or --peak-flops "
                    f"{dtype}=VALUE", dtype)  # fmt: skip


def _one_device(trace: Any, path: str, wanted: int | None) -> Any:
    """The trace with one GPU's device events: the union of two GPUs' busy time is no GPU's idle share."""
    found = fromtrace.device_indices(trace)
    if wanted is not None and wanted not in found:
        have = f"the kernels of GPUs {', '.join(map(str, found))}" if found else "no kernels"
        raise TraceError(f"trace {path} holds {have}, none of GPU {wanted}: pass one of them to --device N")
    if len(found) < 2:
        return trace
    index = wanted if wanted is not None else found[0]
    if wanted is None:
        print(f"{path}: kernels of {len(found)} GPUs ({', '.join(map(str, found))}) in one file: GPU {index} is "
              "read (--device N reads another)", file=sys.stderr)  # fmt: skip
    return fromtrace.on_one_device(trace, index)


def run(args: argparse.Namespace) -> int:
    out = ResultsDir(Path(args.out)) if args.out else None
    if out is not None and out.exists():
        raise ResultsError(f"{args.out} already holds a results directory: choose another --out")
    try:
        user = parse_peak_flops(args.peak_flops)
    except ValueError as e:
        raise TraceError(str(e)) from None
    try:
        snapshot = machine.load_hwinfo(args.hwinfo) if args.hwinfo else None
    except NanoGPTLogError as e:
        raise TraceError(str(e).replace("made the log", "made the traces")) from None

    profiles = []
    for path in args.traces:
        trace = read_trace(path)
        if trace.truncated:
            print(f"{path}: partial: {trace.truncated}; the steps read are used", file=sys.stderr)
        for problem in fromtrace.event_problems(trace):
            print(f"{path}: {problem}", file=sys.stderr)
        trace = _one_device(trace, path, args.device)
        if not any(e.on_device and e.activity == "kernel" for e in trace.events):
            runtime = [e for e in trace.events if not e.on_device and (e.activity or "").endswith(("_runtime", "_driver"))]  # fmt: skip
            ranges = trace.dropped.get("cuda_profiler_range", 0)
            if trace.truncated:
                why = "none before the cut (a profiler writes the device's events after the host's)"
            elif ranges:
                why = (
                    f"the trace holds {ranges} CUPTI profiler range{'s' if ranges != 1 else ''} instead: "
                    "profiler_metrics replays each kernel to count it, so their times are not the run's"
                )
            elif runtime:
                api = "ROCm" if any(e.name.startswith("hip") for e in runtime) else "CUDA"
                ops = sum(1 for e in trace.events if not e.on_device and e.activity in ("cpu_op", "user_annotation"))  # fmt: skip
                why = (
                    f"no kernel, copy or memset ran: the trace holds {len(runtime)} {api} runtime calls and "
                    f"{ops or 'no'} op{'s' if ops != 1 else ''}"
                )
            else:
                why = "a CPU-only trace: the profiler did not record CUDA/ROCm activity"
            print(f"{path}: no device events ({why}): the host view follows", file=sys.stderr)
        dtype = fromtrace._dtype(trace)
        info = fromtrace.device_info(trace)
        try:
            peak = _peak(trace, info, dtype, args, user, snapshot)
        except NanoGPTLogError as e:
            raise TraceError(str(e)) from None
        dtype = peak.pop("dtype")
        marker = fromtrace.WHOLE_TRACE if args.whole_trace else args.step_marker
        prof = fromtrace.profile_trace(trace, peak, dtype, marker)
        if peak.get("value") is None:
            print(f"{path}: no MFU against the device's own peak: {peak.get('detail')}", file=sys.stderr)
        profiles.append((path, trace, prof, peak))

    counts = {t.rank if t.rank is not None else p: len(prof["steps"]) for p, t, prof, _ in profiles}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{'rank ' if isinstance(k, int) else ''}{k}: {n}" for k, n in counts.items())
        print(f"the traces hold different numbers of steps ({listed}): each is read as its own run of its own "
              "steps; compare them by step number", file=sys.stderr)  # fmt: skip
    for path, _trace, prof, _ in profiles:
        print(dumps_strict(prof) if args.json else describe(path, prof))
    if out is None:
        return 0

    host = safe_label((snapshot or {}).get("host") or Path(args.traces[0]).name.split(".")[0] or "trace")
    now = datetime.now(UTC)
    sweep = {
        "sweep_id": now.strftime("%Y%m%dT%H%M%SZ") + "-" + host,
        "created": now.isoformat(timespec="seconds"),
        "host": host,
        "source": "trace",
        "hwinfo": machine.imported_hwinfo(snapshot, args.hwinfo) if snapshot is not None else None,
        "software": dict.fromkeys(("python", "torch", "cuda", "hip", "cudnn", "numpy", "platform")),
        "project_version": __version__,
        "spec": {
            "source": "trace",
            "traces": [str(Path(p).resolve()) for p in args.traces],
            "hwinfo_file": str(Path(args.hwinfo).resolve()) if args.hwinfo else None,
            "peak_flops": user,
            "step_marker": args.step_marker,
            "whole_trace": args.whole_trace,
        },
        "command": " ".join(["bench", *getattr(args, "argv", [])]),
    }
    root = out.root.resolve()
    used: set[str] = set()
    try:
        out.write_sweep(sweep)
        for path, trace, prof, peak in profiles:
            stem = Path(path).name.split(".")[0]
            base = safe_label(f"trace-rank{trace.rank}" if trace.rank is not None else f"trace-{stem}")
            rid, n = base, 1
            while rid in used:
                n += 1
                rid = f"{base}-{n}"
            used.add(rid)
            if not out.run_dir(rid).resolve().is_relative_to(root):
                raise ResultsError(f"{out.run_dir(rid)} resolves outside {out.root}: refusing to write there")
            meta = run_meta(path, prof, peak, host)
            writer = out.new_run(rid, meta)
            try:
                for s in prof["steps"]:
                    writer.step(int(s["iter"]), float(s["step_ms"]), float("nan"), float("nan"), "timed")
            finally:
                writer.close()
            writer.write_meta()
            atomic_write_json(out.run_dir(rid) / "profile.json", {**prof, "run_id": rid})
    except OSError as e:
        raise ResultsError(f"cannot write the results: {e.filename or args.out}: {e.strerror or e}") from None
    print(
        f"wrote {out.root}: `bench report {out.root}` shows it (beside other results directories)",
        file=sys.stderr,
    )
    return 0


def run_meta(path: str, prof: dict, peak: dict, host: str) -> dict:
    """run.json of a trace: what the trace says, nothing it does not (no loss, model, batch or tokens)."""
    summary = fromtrace.ms_summary(prof)
    flops = prof["mean"].get("matmul_flops") or 0
    step_ms = summary.get("ms_median")
    achieved = flops / (step_ms / 1e3) if flops and step_ms else None
    summary["achieved_flops_per_s"] = achieved
    summary["achieved_flops_source"] = "trace: FLOPs of the recorded matmul ops per step over the median step"
    summary["mfu"] = mfu(achieved, peak.get("value")) if achieved else None
    summary["mfu_vs_a100"] = None
    return {
        "status": "ok", "error": None, "source": "trace", "source_file": str(Path(path).resolve()), "host": host,
        "device": prof["device"], "device_type": prof["device_type"],
        "device_name": prof.get("device_name") or prof["device"], "dtype": prof.get("dtype"), "batch_size": None,
        "block_size": None, "compile": "on" if prof.get("compiled") else "off", "threads": None, "seed": None,
        "model": None, "train": None, "flops_per_iter": flops or None, "tokens_per_iter": None, "peak_flops": peak,
        "started": None, "finished": None, "summary": summary,
    }  # fmt: skip


def describe(path: str, prof: dict) -> str:
    """A few lines per trace for stdout: the mean step, its categories, launches, idle share."""
    avg = prof["mean"]
    step = avg["step_ms"]
    name = prof.get("device_name") or prof["device"]
    head = f"{path}: {prof['n_steps']} steps, {step:.2f} ms mean step on {name}"
    if prof.get("dtype"):
        head += f" ({prof['dtype']})"
    if prof["view"] != "device":
        head += ", CPU-only trace: host view"
    parts = [f"{c} {avg['fraction'][c] * 100:.1f}%" for c in prof["categories"] if avg["ms"].get(c, 0) > 0]
    lines = [head, "  " + ", ".join(parts)]
    if prof["view"] == "device":
        t = prof["trace"]
        idle = avg.get("device_idle_fraction")
        hta = t.get("hta_idle_fraction")
        lines.append(
            f"  {avg['kernel_launches_per_step']:.0f} kernel launches per step; GPU idle "
            + (f"{idle * 100:.1f}% of the step" if idle is not None else "unknown")
            + (f" (HTA's definition, whole trace: {hta * 100:.1f}%)" if hta is not None else "")
            + f"; {t['kernels_categorised_by_launching_op']} kernels categorised by their launching op, "
            f"{t['kernels_categorised_by_name']} by name"
        )
    rl = prof.get("roofline") or {}
    peak = prof.get("peak_flops") or {}
    for cat, row in (rl.get("categories") or {}).items():
        if not row.get("flops_per_s"):
            continue
        text = f"  {cat}: {fmt_flops(row['flops_per_s'])} over its kernel time"
        frac = row.get("fraction_of_compute_roof")
        if frac is not None and frac <= 1:
            text += f", {frac * 100:.1f}% of the {peak.get('source')} {prof.get('dtype')} peak"
        elif frac is not None:
            text += f" (above the {peak.get('source')} peak: the peak or the dtype is wrong)"
        lines.append(text)
    return "\n".join(lines)
