"""Does `bench gate` flake, and does it catch real slowdowns? Count it, on this machine.

Makes one baseline, then runs the gate (each run a fresh process, as in CI) N times with no change
and N times against a real slowdown of devicebench's training step, alternating, and prints a table:
false alarms among the unchanged runs (goal 0 of 20), detections among the slowed ones (goal >= 19).

The slowdown is injected the way a code regression would arrive: the gate's declared workload (and
so its reference and the baseline check) stays the same, while the Trainer it builds does more work:
  batch: 2 more sequences per batch (12 -> 14, about +17% tokens)
  layer: one more transformer layer (4 -> 5, about +25% on 1 thread)

    PYTHONPATH=. python benchmarks/gate_experiment.py [--runs 20] [--slowdown batch] [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


def child(kind: str, gate_argv: list[str]) -> int:
    """Run `bench gate` in this process, with the Trainer slowed down by `kind` (or not: 'none')."""
    sys.path.insert(0, str(ROOT))
    from bench import cli
    from bench.gate import measure as gate_measure

    if kind != "none":
        build = gate_measure.make_trainer

        def slowed(workload: dict):
            w = copy.deepcopy(workload)
            if kind == "layer":
                w["model"]["n_layer"] += 1
            elif kind == "batch":
                w["batch_size"] += 2
            else:
                raise SystemExit(f"unknown slowdown {kind!r}")
            return build(w)

        gate_measure.make_trainer = slowed
    return cli.main(["gate", *gate_argv])


def gate(kind: str, argv: list[str]) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(HERE), "--child", kind, "--", *argv], capture_output=True, text=True, cwd=ROOT
    )
    wall_s = time.perf_counter() - t0
    try:
        verdict = json.loads(proc.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"gate run failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}") from None
    verdict["wall_s"] = wall_s
    verdict["returncode"] = proc.returncode
    return verdict


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20, help="gate runs per arm (default 20)")
    p.add_argument("--slowdown", choices=("batch", "layer"), default="batch")
    p.add_argument("--baseline-trials", type=int, default=20, help="trials of the baseline (default 20)")
    p.add_argument("--threshold", default="10", help="gate threshold, percent (default 10)")
    p.add_argument("--out", default="/tmp/gate-experiment", help="baseline and raw verdicts go here")
    p.add_argument("--gate-args", default="--quick", help="extra flags for every gate run (default --quick)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child, args.rest)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    baseline = out / "baseline.json"
    common = ["--baseline", str(baseline), "--no-progress", "--json", "--threshold", args.threshold]
    common += args.gate_args.split()
    t_start = time.perf_counter()
    base = gate("none", [*common, "--update-baseline", "--trials", str(args.baseline_trials)])
    print(f"baseline: ratio {base['current']['ratio_median']:.4f} over {args.baseline_trials} trials "
          f"({base['wall_s']:.0f} s)", file=sys.stderr)  # fmt: skip

    rows = []
    print(f"{'run':>3} {'arm':9} {'decision':12} {'change':>8} {'95% interval':>19} {'MW p':>8} {'ms A':>6} "
          f"{'ms B':>6} {'s':>4}")  # fmt: skip
    for i in range(args.runs):
        for arm, kind in (("no-change", "none"), (args.slowdown, args.slowdown)):
            v = gate(kind, common)
            c = v["comparison"]
            rows.append({"run": i + 1, "arm": arm, **v})
            interval = f"[{(c['ci_low'] - 1) * 100:+.1f}, {(c['ci_high'] - 1) * 100:+.1f}]%"
            print(f"{i + 1:>3} {arm:9} {v['decision']:12} {(c['slowdown'] - 1) * 100:>+7.1f}% {interval:>19} "
                  f"{c['mann_whitney_p']:>8.2g} {v['current']['workload_ms_median']:>6.1f} "
                  f"{v['current']['reference_ms_median']:>6.1f} {v['wall_s']:>4.0f}", flush=True)  # fmt: skip
    (out / "verdicts.json").write_text(json.dumps({"baseline": base, "runs": rows}, indent=2))

    print()
    print(f"summary ({args.runs} runs per arm, threshold {args.threshold}%, gate args {args.gate_args!r}, "
          f"{(time.perf_counter() - t_start) / 60:.1f} min):")  # fmt: skip
    print(
        f"{'arm':24} {'pass':>5} {'inconcl.':>8} {'regress.':>8} {'median change':>14} {'median s/run':>12}"
    )
    for arm, label in (("no-change", "no change"), (args.slowdown, f"slowdown ({args.slowdown})")):
        r = [x for x in rows if x["arm"] == arm]
        count = {d: sum(x["decision"] == d for x in r) for d in ("pass", "inconclusive", "regression")}
        change = statistics.median(x["comparison"]["slowdown"] for x in r)
        print(f"{label:24} {count['pass']:>5} {count['inconclusive']:>8} {count['regression']:>8} "
              f"{(change - 1) * 100:>+13.1f}% {statistics.median(x['wall_s'] for x in r):>12.1f}")  # fmt: skip
    false_alarms = sum(x["decision"] == "regression" for x in rows if x["arm"] == "no-change")
    detected = sum(x["decision"] == "regression" for x in rows if x["arm"] != "no-change")
    print(f"false alarms: {false_alarms}/{args.runs} (goal 0); detections: {detected}/{args.runs} "
          f"(goal >= {args.runs - 1})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
