"""`timeout -s TERM T bench <command> ...` N times per command: how often each ends with exit 143, and how long
from the signal to the exit (issue 25: "a hundred times out of a hundred").

    python benchmarks/signal_loop.py [--n 100] [--after 0.5,1,2,3,5] [--commands run,tune,gate,hwinfo,report,import]

Each try sends SIGTERM after one of the --after delays (cycled, so the signal lands in start-up, a compile of
the imports, the first steps, an eval...), through coreutils `timeout`, and records the exit code and the
seconds from the signal to the exit. Tiny configs; every child is killed by `timeout -k` if it ignores the signal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--threads", "1"]
KILL_AFTER_S = 60  # `timeout -k`: a command that ignored SIGTERM this long counts as a failure (exit 137)


def commands(tmp: Path, i: int) -> dict[str, list[str]]:
    """Each command with a workload longer than any --after delay; outputs in a fresh directory per try."""
    sys.path.insert(0, str(ROOT))
    log = tmp / "train.log"
    if not log.exists():  # a nanoGPT train.py log of 400,000 iterations, as the importer's tests make them
        from tests.test_import_nanogpt import Recipe, train_py_log

        log.write_text(train_py_log(Recipe(args=[("max_iters", 400_000), ("lr_decay_iters", 400_000)]))[0])
    results = tmp / "results"
    if not results.exists():  # 300 runs: a report that takes seconds
        from tests import fixtures

        fixtures.write_sweep(results)
        for k in range(300):
            fixtures.write_run(results, f"cpu-fp32-b{k + 1}-eager", batch_size=k + 1)
    d = tmp / f"try{i}"
    bench = [sys.executable, "-m", "bench"]
    return {
        "run": [*bench, "run", "--devices", "cpu", *TINY, "--iters", "100000", "--eval-interval", "50",
                "--eval-iters", "2", "--no-progress", "--out", str(d / "run")],
        "tune": [*bench, "tune", "--devices", "cpu", *TINY, "--iters", "100000", "--eval-interval", "50",
                 "--eval-iters", "2", "--no-progress", "--tips", "fused_adamw", "--out", str(d / "tune")],
        "gate": [*bench, "gate", "--baseline", str(d / "baseline.json"), "--update-baseline", *TINY,
                 "--batch-size", "2", "--trials", "100000", "--steps", "5", "--no-progress"],
        "hwinfo": [sys.executable, "-m", "hwinfo", "--measure", "--refresh"],
        "report": [*bench, "report", str(results), "--html", str(d / "report.html")],
        "import": [*bench, "import", "nanogpt", str(log), "--out", str(d / "imp")],
    }  # fmt: skip


def one(cmd: list[str], after: float) -> tuple[int, float | None]:
    """(exit code, seconds from the signal to the exit, None when it ended before the signal)."""
    t0 = time.monotonic()
    proc = subprocess.run(["timeout", "--preserve-status", "-s", "TERM", "-k", str(KILL_AFTER_S), str(after), *cmd],
                          cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False)  # fmt: skip
    took = time.monotonic() - t0
    # --preserve-status: the command's own exit status (without it, timeout says 124 whatever the command did);
    # 137 when `-k` had to SIGKILL it.
    return proc.returncode, (took - after if took >= after else None)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10, help="tries per command (default 10)")
    p.add_argument(
        "--after", default="0.5,1,2,3,5", help="seconds before SIGTERM, cycled (default 0.5,1,2,3,5)"
    )
    p.add_argument("--commands", default="run,tune,gate,hwinfo,report,import")
    args = p.parse_args()
    delays = [float(x) for x in args.after.split(",")]
    wanted = args.commands.split(",")
    print(f"{'command':8s} {'tries':>5s} {'signalled':>9s} {'exit 143':>8s}  {'other exits':18s} "
          f"{'signal->exit s: median':>22s} {'max':>6s}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name in wanted:
            codes: Counter[int] = Counter()
            waits: list[float] = []
            for i in range(args.n):
                code, wait = one(commands(tmp, i)[name], delays[i % len(delays)])
                if wait is None:
                    continue  # it finished before the signal: nothing to stop
                codes[code] += 1
                waits.append(wait)
            other = ", ".join(f"{n} x {c}" for c, n in sorted(codes.items()) if c != 143) or "-"
            med = f"{statistics.median(waits):.2f}" if waits else "-"
            top = f"{max(waits):.2f}" if waits else "-"
            print(f"{name:8s} {args.n:5d} {len(waits):9d} {codes[143]:8d}  {other:18s} {med:>22s} {top:>6s}",
                  flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
