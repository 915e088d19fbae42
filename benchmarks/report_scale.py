"""`bench report` at scale: 50, 500 and 1,500 runs, text and HTML, this tree beside another (today's main).

    PYTHONPATH=. python benchmarks/report_scale.py [--sizes 50,500,1500] [--before /work/main] [--cache DIR]

Results directories are written once by the tests' fixture writer (benchmarks/bench_report_speed.build:
two hosts, batch sweeps, 2000 iters a run) under --cache and reused. Each report is the whole command
(Python start-up and imports included), run once per size, format and tree (they take seconds to
minutes: a median of several would take longer than this machine's budget). Targets (issue 33): 1,500 runs
under 5 s as text and under 15 s as HTML.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS_S = {"text": 5.0, "html": 15.0}


def dirs_for(cache: Path, runs: int, iters: int) -> list[Path]:
    """The two results directories of `runs` runs, built once under cache."""
    sys.path.insert(0, str(REPO))
    from benchmarks.bench_report_speed import build

    root = cache / f"runs{runs}-iters{iters}"
    done = root / ".complete"
    if not done.exists():
        t0 = time.perf_counter()
        build(root, runs, iters)
        done.write_text("ok\n")
        print(f"built {runs} runs in {time.perf_counter() - t0:.0f} s under {root}", file=sys.stderr)
    return [root / "laptop", root / "desktop"]


def time_report(
    tree: Path, dirs: list[Path], fmt: str, out: Path, timeout_s: float
) -> tuple[float | None, float, int]:
    """Wall seconds `bench report` takes from `tree` (None past the timeout), its CPU seconds (user + system:
    steadier than wall time on a shared machine), and the HTML page's bytes."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "bench", "report", *map(str, dirs)]
    if fmt == "html":
        cmd += ["--html", str(out)]
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        subprocess.run(cmd, check=True, env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=timeout_s)  # fmt: skip
    except subprocess.TimeoutExpired:
        return None, math.nan, 0
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    size = out.stat().st_size if fmt == "html" else 0
    if fmt == "html":
        out.unlink()
    return seconds, cpu, size


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="50,500,1500")
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--before", type=Path, default=Path("/work/main"), help="the tree to compare with")
    p.add_argument("--cache", type=Path, default=Path("/tmp/devicebench-report-scale"))
    p.add_argument("--formats", default="text,html")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds before a report counts as '>'")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    trees = {"before": args.before.resolve(), "after": REPO}
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'runs':>6} {'format':>6} {'before s':>9} {'after s':>8} {'before cpu':>10} {'after cpu':>9} "
          f"{'before MB':>10} {'after MB':>9}  target (wall)")  # fmt: skip
    ok = True
    for runs in sizes:
        dirs = dirs_for(args.cache, runs, args.iters)
        for fmt in args.formats.split(","):
            got = {}
            for name, tree in trees.items():
                got[name] = time_report(tree, dirs, fmt, args.cache / f"report-{name}.html", args.timeout)
            (tb, cb, sb), (ta, ca, sa) = got["before"], got["after"]
            target = TARGETS_S[fmt] if runs >= 1500 else None
            verdict = (
                ""
                if target is None
                else (f"< {target:g} s " + ("ok" if ta is not None and ta < target else "MISSED"))
            )
            ok &= not verdict.endswith("MISSED")

            def cell(t: float | None) -> str:
                return f"{t:.1f}" if t is not None else f">{args.timeout:.0f}"

            mb = lambda s: f"{s / 1e6:.1f}" if s else "-"  # noqa: E731
            print(f"{runs:>6} {fmt:>6} {cell(tb):>9} {cell(ta):>8} {cb:>10.1f} {ca:>9.1f} {mb(sb):>10} {mb(sa):>9}  "
                  f"{verdict}", flush=True)  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
