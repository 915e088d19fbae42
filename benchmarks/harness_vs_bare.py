"""Harness overhead: the reference recipe through `bench run` against a bare PyTorch loop, on the CPU.

Alternates the two, one fresh process each, ROUNDS times, and prints two ratios (goal <= 1.03):
- timed step: median ms/iter of bench's timed steps / the bare loop's median step;
- loop wall per iter: (bench's run wall time - its evals) / iters against the bare loop's wall / iters,
  which also charges what the harness does between steps (CSV rows, RSS sampling, progress).

    python benchmarks/harness_vs_bare.py [--rounds 5] [--iters 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bench(iters: int, out: Path) -> tuple[float, float]:
    subprocess.run(
        [sys.executable, "-m", "bench", "run", "--devices", "cpu", "--iters", str(iters), "--eval-interval",
         str(iters), "--eval-iters", "2", "--timing-warmup-iters", "10", "--out", str(out), "--no-progress"],
        check=True, cwd=ROOT, capture_output=True,
    )  # fmt: skip
    run = json.loads(next((out / "runs").glob("*/run.json")).read_text())
    s = run["summary"]
    wall_per_iter_ms = (s["wall_s"] * 1e3 - s["eval_ms_total"]) / s["iters_done"]
    return s["ms_median"], wall_per_iter_ms


def run_bare(iters: int) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bare_loop.py"), "--iters", str(iters)],
        check=True, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    data = json.loads(out.stdout)
    return statistics.median(data["ms"][10:]), data["loop_s"] * 1e3 / iters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--iters", type=int, default=300)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            bench_step, bench_wall = run_bench(args.iters, Path(tmp) / f"r{r}")
            bare_step, bare_wall = run_bare(args.iters)
            rows.append((bench_step, bare_step, bench_wall, bare_wall))
            print(f"round {r + 1}: bench {bench_step:.2f} ms/step ({bench_wall:.2f} wall/iter), "
                  f"bare {bare_step:.2f} ms/step ({bare_wall:.2f} wall/iter)", file=sys.stderr)  # fmt: skip
    step_ratio = statistics.median(b / a for b, a, _, _ in rows)
    wall_ratio = statistics.median(b / a for _, _, b, a in rows)
    print(f"reference recipe on cpu, {args.rounds} alternating rounds x {args.iters} iters")
    print(
        f"  median ms/step   bench {statistics.median(r[0] for r in rows):.2f}   bare {statistics.median(r[1] for r in rows):.2f}"
    )
    print(f"  harness/bare, timed step:         {step_ratio:.3f}  (goal <= 1.03)")
    print(f"  harness/bare, loop wall per iter: {wall_ratio:.3f}  (goal <= 1.03)")


if __name__ == "__main__":
    main()
