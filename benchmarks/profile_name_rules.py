"""The kernel-name rules checked against the launching ops, on real traces.

    python benchmarks/profile_name_rules.py TRACE...

`bench profile` decides a kernel's category by the host op that launched it and falls back to the kernel's
name only where no op says (a CUDA-graph replay, a compiled graph's kernels, a launch before the trace
began). For every kernel name that a trace links to an op, this prints the categories its ops gave it
beside the one its name gives: a disagreement is a name rule that would be wrong wherever that kernel runs
unlinked. Counts per name are kernels.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.profile.analysis import _is_launch, kernel_category, launch_index  # noqa: E402
from bench.profile.kineto import read_trace  # noqa: E402

DECIDED = ("matmul", "attention", "elementwise_norm", "communication")


def disagreements(path: str) -> tuple[int, list[tuple[str, dict, str]]]:
    trace = read_trace(path)
    host = [e for e in trace.events if not e.on_device]
    launches = launch_index(host)
    launch = {e.id: e for e in host if _is_launch(e) and e.id}
    by_op: dict[str, Counter] = defaultdict(Counter)
    for k in trace.events:
        if not (k.on_device and k.activity == "kernel"):
            continue
        found = launch.get(k.id)
        if found is None or found.name == "cudaGraphLaunch":  # a graph's launch says nothing of each kernel
            continue
        cat = launches[k.id][0][1]
        if cat in DECIDED:
            by_op[k.name][cat] += 1
    out = [
        (n, dict(c), kernel_category(n.lower()))
        for n, c in by_op.items()
        if set(c) != {kernel_category(n.lower())}
    ]
    return len(by_op), sorted(out, key=lambda x: -sum(x[1].values()))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("traces", nargs="+")
    args = p.parse_args()
    for path in args.traces:
        names, bad = disagreements(path)
        print(f"{path}: {names} kernel names linked to an op, {len(bad)} whose name rule disagrees")
        for name, ops, by_name in bad:
            print(f"  {name[:90]}: by op {ops}, by name {by_name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
