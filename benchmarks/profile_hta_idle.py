"""GPU idle share of profiler traces: `bench profile`'s figures beside HolisticTraceAnalysis' (HTA's).

    python benchmarks/profile_hta_idle.py TRACE... [--hta-python /tmp/hta-venv/bin/python]

HTA is not a dependency of devicebench: give the python of a throwaway virtual environment where
`pip install HolisticTraceAnalysis` ran. Without it, only devicebench's figures are printed. Per trace:

- ours, per step: the mean over steps of 1 - busy device time / the step's window (profile.json's
  mean.device_idle_fraction);
- ours, HTA's definition: 1 - union of all kernel/copy/memset intervals / (last end - first start), over
  the whole trace (profile.json's trace.hta_idle_fraction);
- HTA: `TraceAnalysis.get_temporal_breakdown()`'s idle_time_pctg for the trace's rank.

Also prints each trace's kernels by category and how many were categorised by their launching op.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.profile import fromtrace  # noqa: E402
from bench.profile.kineto import TraceError, read_trace  # noqa: E402

HTA_CODE = """
import json, sys, logging
logging.disable(logging.CRITICAL)
from hta.trace_analysis import TraceAnalysis
a = TraceAnalysis(trace_dir=sys.argv[1])
df = a.get_temporal_breakdown(visualize=False)
print(json.dumps([float(x) for x in df["idle_time_pctg"]]))
"""


def hta_idle_pct(trace: Path, python: str) -> str:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / trace.name).symlink_to(trace.resolve())
        done = subprocess.run([python, "-c", HTA_CODE, d], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"HTA failed: {last[:80]}"
    return ", ".join(f"{v:.1f}%" for v in json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="+", type=Path)
    p.add_argument("--hta-python", help="python of a venv with HolisticTraceAnalysis installed")
    p.add_argument("--whole-trace", action="store_true", help="read traces without ProfilerStep as one step")
    args = p.parse_args()
    for path in args.traces:
        t0 = time.perf_counter()
        try:
            trace = read_trace(path)
            marker = fromtrace.WHOLE_TRACE if args.whole_trace else None
            prof = fromtrace.profile_trace(trace, {"value": None, "source": "unknown"}, None, marker)
        except TraceError as e:
            print(f"{path.name}: {e}")
            continue
        secs = time.perf_counter() - t0
        avg, tr = prof["mean"], prof["trace"]
        idle = avg.get("device_idle_fraction")
        hta_def = tr.get("hta_idle_fraction")
        print(f"{path.name}  ({prof['n_steps']} steps, {tr['events']} events, read in {secs:.1f} s)")
        if prof["view"] != "device":
            print("  CPU-only trace: host view")
            continue
        print(
            f"  idle: ours per step {idle * 100:.1f}%, ours with HTA's definition {hta_def * 100:.1f}%"
            + (f", HTA {hta_idle_pct(path, args.hta_python)}" if args.hta_python else "")
        )
        kernels = {c: 0 for c in prof["categories"]}
        for op in prof["top_ops"]:
            kernels[op["category"]] = kernels.get(op["category"], 0) + 1
        ms = {c: round(v, 3) for c, v in avg["ms"].items() if v > 0}
        print(
            f"  ms per step by category: {ms}; kernels by launching op {tr['kernels_categorised_by_launching_op']}, "
            f"by name {tr['kernels_categorised_by_name']}"
        )
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
