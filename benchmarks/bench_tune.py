"""`bench tune --devices cpu` on the reference recipe: how long it takes, the load it ran under, and the best
configuration's tokens/s over nanoGPT's default recipe with its interval (a benchmark that prints).

PYTHONPATH=. python benchmarks/bench_tune.py [--out DIR] [-- extra `bench tune` flags, e.g. --tips threads]

The ratio is trustworthy on a shared machine because the variants alternate with the default in blocks;
the wall time is not (it is whatever the machine gave): the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="results directory (default: a temporary one)")
    p.add_argument("extra", nargs="*", help="more `bench tune` flags (after --)")
    args = p.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-tune-")) / "tune"
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "tune",
        "--devices",
        "cpu",
        "--out",
        str(out),
        "--no-progress",
        *args.extra,
    ]
    print(f"load average before (1, 5, 15 min): {_load()} on {os.cpu_count()} CPUs", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, check=False).returncode
    wall = time.perf_counter() - t0
    print(f"load average after: {_load()}")
    print(f"`{' '.join(cmd[1:])}`: exit {rc}, {wall / 60:.1f} min")
    report = subprocess.run([sys.executable, "-m", "bench", "report", str(out), "--format", "json"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if report.returncode != 0:
        print(report.stderr, file=sys.stderr)
        return 1
    data = json.loads(report.stdout)
    for f in data["findings"]:
        if f["kind"] == "best_config":
            g = f["evidence"]["gain_over_default"]
            ttl = f["evidence"]["time_to_loss_gain"]
            print(f"best configuration: {', '.join(f['evidence']['changed']) or 'the recipe as it is'}")
            print(f"  tokens/s over the default: {g['ratio']:.3f}x [{g['low'] or float('nan'):.3f}, "
                  f"{g['high'] or float('nan'):.3f}] (95% interval; target 1.2x)")  # fmt: skip
            if ttl:
                hi = f"{ttl['high']:.3f}" if ttl.get("high") else "?"
                ratio = f"{ttl['ratio']:.3f}x" if ttl.get("ratio") else "target not reached"
                print(
                    f"  time to the default's final val loss: {ratio} faster [{ttl.get('low') or 0:.3f}, {hi}]"
                )
    for t in data["tips"]:
        print(f"  {t['title']:45s} {t['effect_text']:45s} {t['verdict']}")
    # issue 32's figure: how many measured verdicts are conclusive (not inconclusive, not available, failed)
    measured = [t["verdict"] for t in data["tips"] if t["verdict"] not in ("not available", "failed")]
    counts = {v: measured.count(v) for v in dict.fromkeys(measured)}
    conclusive = sum(n for v, n in counts.items() if v != "inconclusive")
    print(f"verdicts: {conclusive} conclusive of {len(measured)} measured "
          f"({', '.join(f'{v} {n}' for v, n in counts.items())})")  # fmt: skip
    return rc


if __name__ == "__main__":
    sys.exit(main())
