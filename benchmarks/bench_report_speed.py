"""Time `bench report --html` on 50 runs x 2000 iters (synthetic, schema-valid). Target: under 5 s.

PYTHONPATH=. python benchmarks/bench_report_speed.py [--runs 50] [--iters 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(root: Path, runs: int, iters: int) -> list[Path]:
    """Two hosts (a CPU laptop, a GPU desktop), batch sweeps, dtypes: `runs` runs in all.

    Written by the tests' fixture writer (tests/fixtures.py), which writes through bench.results.
    """
    repo = str(Path(__file__).resolve().parents[1])
    if repo not in sys.path:
        sys.path.insert(0, repo)
    from tests import fixtures as synthetic

    laptop = synthetic.write_sweep(root / "laptop", "laptop")
    desktop = synthetic.write_sweep(
        root / "desktop", "desktop", synthetic.hwinfo("desktop", 8, gpus=("NVIDIA GeForce RTX 4090",))
    )
    batches = [4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384]
    train = {"max_iters": iters, "lr_decay_iters": iters}
    for i in range(runs):
        b = batches[(i // 2) % len(batches)]
        if i % 2 == 0:
            dtype = "fp32" if i % 4 == 0 else "bf16"
            synthetic.write_run(laptop, f"cpu-{dtype}-b{b}-eager-r{i}", host="laptop", dtype=dtype, batch_size=b,
                                ms=5.0 * b, train=train, seed=i)  # fmt: skip
        else:
            dtype = "fp32" if i % 4 == 1 else "bf16"
            synthetic.write_run(desktop, f"cuda-{dtype}-b{b}-eager-r{i}", host="desktop", device="cuda:0",
                                device_name="NVIDIA GeForce RTX 4090", dtype=dtype, batch_size=b,
                                ms=8.0 + 0.05 * b, peak=82.6e12, train=train, seed=i)  # fmt: skip
    return [laptop, desktop]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    repo = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
    }
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        dirs = build(Path(tmp), args.runs, args.iters)
        print(
            f"built {args.runs} runs x {args.iters} iters in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
        out = Path(tmp) / "report.html"
        cmd = [sys.executable, "-m", "bench", "report", *map(str, dirs), "--html", str(out)]
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
        size = out.stat().st_size
    med = statistics.median(times)
    print(
        f"bench report --html, {args.runs} runs x {args.iters} iters, whole command (Python start-up and imports "
        f"included): median {med:.2f} s over {args.repeat} (min {min(times):.2f} s), page {size / 1e6:.2f} MB; "
        f"target < 5 s: {'ok' if med < 5 else 'SLOW'}"
    )
    return 0 if med < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
