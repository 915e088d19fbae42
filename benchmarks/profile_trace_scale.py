"""Peak memory and time of `bench profile` on a large trace: streamed reading, memory bounded by the kept events.

    python benchmarks/profile_trace_scale.py [--mb 200] [--gz] [TRACE ...]

Writes a synthetic Kineto trace of about --mb megabytes to a temporary directory (steps of a training
loop: per step 300 aten ops, each with a cudaLaunchKernel, its kernel and the ac2g flows, and 1,200
python_function events, which a with_stack trace is mostly made of), then runs `bench profile` on it in a
child process and prints the child's peak RSS and wall time; the same for each TRACE given (e.g. the
largest public traces). The figures are for this machine; the bound they show is the shape: python_function
events and flows cost nothing kept, ops/launches/kernels a few hundred bytes each.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_trace(path: Path, mb: float, gz: bool) -> int:
    """A synthetic trace of about `mb` megabytes; returns its number of events."""
    opener = gzip.open if gz else open
    n, t, corr, written = 0, 1_000_000.0, 1, 0
    target = mb * 1e6
    with opener(path, "wt") as f:
        f.write('{"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}],\n')
        f.write('"traceEvents": [\n')
        step = 0
        first = True
        while written < target:
            step += 1
            events = [{"ph": "X", "cat": "user_annotation", "name": f"ProfilerStep#{step}", "pid": 1, "tid": 1,
                       "ts": t, "dur": 3000.0}]  # fmt: skip
            for i in range(300):
                ts = t + i * 10
                name = "aten::mm" if i % 3 == 0 else "aten::add"
                events.append({"ph": "X", "cat": "cpu_op", "name": name, "pid": 1, "tid": 1, "ts": ts, "dur": 8,
                               "args": {"External id": corr, "Input Dims": [[64, 64], [64, 64]],
                                        "Input type": ["float", "float"]}})  # fmt: skip
                events.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1,
                               "ts": ts + 2, "dur": 3, "args": {"correlation": corr}})  # fmt: skip
                events.append(
                    {"ph": "s", "cat": "ac2g", "name": "ac2g", "id": corr, "pid": 1, "tid": 1, "ts": ts + 2}
                )
                kernel = "sm90_xmma_gemm_f32f32" if name == "aten::mm" else "vectorized_elementwise_kernel"
                events.append({"ph": "X", "cat": "kernel", "name": kernel, "pid": 0, "tid": 7, "ts": ts + 5,
                               "dur": 6, "args": {"correlation": corr, "stream": 7, "device": 0}})  # fmt: skip
                events.append({"ph": "f", "cat": "ac2g", "name": "ac2g", "id": corr, "pid": 0, "tid": 7, "ts": ts + 5,
                               "bp": "e"})  # fmt: skip
                for j in range(4):
                    events.append({"ph": "X", "cat": "python_function", "name": f"model.py({i * 4 + j}): forward",
                                   "pid": 1, "tid": 1, "ts": ts, "dur": 1,
                                   "args": {"Python id": corr * 4 + j}})  # fmt: skip
                corr += 1
            for e in events:
                text = ("" if first else ",\n") + json.dumps(e)
                first = False
                f.write(text)
                written += len(text)
                n += 1
            t += 3000
        f.write("\n]}\n")
    return n


def measure(trace: Path) -> str:
    code = (
        "import resource, sys, time\n"
        "from bench.profile.kineto import read_trace\n"
        "from bench.profile import fromtrace\n"
        "t0 = time.perf_counter()\n"
        "tr = read_trace(sys.argv[1])\n"
        "p = fromtrace.profile_trace(tr, {'value': None, 'source': 'unknown'}, None)\n"
        "s = time.perf_counter() - t0\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(f'{tr.n_events} events ({len(tr.events)} kept), {p[\"n_steps\"]} steps, {s:.1f} s, '\n"
        "      f'peak RSS {rss:.0f} MiB')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code, str(trace)], capture_output=True, text=True, env=env)
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="*", type=Path)
    p.add_argument("--mb", type=float, default=200.0, help="size of the synthetic trace (JSON text)")
    p.add_argument("--gz", action="store_true", help="write the synthetic trace gzipped")
    args = p.parse_args()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process before: {base:.0f} MiB)")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("synthetic.pt.trace.json" + (".gz" if args.gz else ""))
        t0 = time.perf_counter()
        n = write_trace(path, args.mb, args.gz)
        print(f"synthetic: {path.stat().st_size / 1e6:.0f} MB on disk, {n} events, written in "
              f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
        print(f"  {measure(path)}")
    for trace in args.traces:
        print(f"{trace.name} ({trace.stat().st_size / 1e6:.1f} MB on disk): {measure(trace)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
