"""`bench gate`: a CI regression gate on ms/iter that cancels the machine's speed.

devicebench's training step (the workload, A) and a frozen plain-PyTorch step of the same shape (the
reference, B, bench/reference.py) run interleaved in one process, A B / B A, several short trials.
The per-trial ratio A/B does not depend on how fast today's runner is; its median is compared with
the stored baseline's. The gate fails only when the slowdown is significant (bootstrap interval of
the ratio of medians above 1, and a one-sided Mann-Whitney U test) AND larger than the threshold.

It also gates pytest-benchmark JSON (`--pytest-benchmark FILE`), where nothing was interleaved.
Exit 0: pass or inconclusive; 1: regression; 2: usage or setup error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = "devicebench-gate/1"
VERDICT_SCHEMA = "devicebench-gate-verdict/1"
QUICK = {"trials": 10, "steps": 6, "threads": 1}
FULL = {"trials": 15, "steps": 10}


class GateError(RuntimeError):
    """A usage or setup problem: missing or mismatched baseline, bad flags."""

    exit_code = 2


def _threshold(text: str) -> float:
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r} (e.g. 10 or 10%)") from None
    if not 0 < value < 1000:
        raise argparse.ArgumentTypeError(f"threshold must be between 0 and 1000 percent, got {text}")
    return value / 100.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--baseline", metavar="FILE", required=True, help="baseline JSON to check against (or write)"
    )
    p.add_argument(
        "--update-baseline", action="store_true", help="measure and (over)write the baseline; no check"
    )
    p.add_argument("--threshold", type=_threshold, default=0.10, metavar="PCT",
                   help="fail only above this slowdown, in percent (default 10)")  # fmt: skip
    p.add_argument(
        "--trials",
        type=int,
        help=f"interleaved trials (default {FULL['trials']}, --quick {QUICK['trials']}; twice that with --update-baseline)",
    )
    p.add_argument(
        "--steps",
        type=int,
        help=f"step pairs (A B) per trial (default {FULL['steps']}, --quick {QUICK['steps']})",
    )
    p.add_argument(
        "--warmup-steps", type=int, default=3, help="untimed steps of each workload first (default 3)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="CI mode: fewer trials, and 1 thread unless --threads (2 threads on a busy 2-core runner "
        "stall on each other; 1 thread degrades smoothly)",
    )
    p.add_argument("--json", action="store_true", help="print the verdict as JSON on stdout")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence of the interval (default 0.95)")
    p.add_argument("--seed", type=int, help="bootstrap seed (default: fixed, so a verdict is reproducible)")
    p.add_argument("--no-progress", action="store_true", help="no per-trial progress on stderr")
    w = p.add_argument_group("workload (devicebench's CPU training step)")
    w.add_argument(
        "--config", metavar="FILE.toml", help="devicebench TOML config ([model], [train], [sweep])"
    )
    for name in ("n-layer", "n-head", "n-embd", "block-size"):
        w.add_argument(
            f"--{name}",
            type=int,
            help="model shape overrides: --n-layer, --n-head, --n-embd, --block-size"
            if name == "n-layer"
            else argparse.SUPPRESS,
        )
    w.add_argument("--batch-size", type=int, help="batch size (default: the config's, 12)")
    w.add_argument("--threads", type=int, help="CPU threads for both workloads (default: PyTorch's)")
    pb = p.add_argument_group("pytest-benchmark")
    pb.add_argument("--pytest-benchmark", metavar="FILE.json",
                    help="gate this pytest-benchmark --benchmark-json output instead of the train step")  # fmt: skip
    pb.add_argument("--reference-benchmark", metavar="NAME",
                    help="divide every benchmark by this one from the same file (cancels machine speed)")  # fmt: skip


# --- the workload -------------------------------------------------------------------------------


def workload_config(args: argparse.Namespace) -> dict:
    """The workload's identity: what a baseline must have been made with. Defaults, TOML, flags."""
    from bench.config import BenchConfig, ConfigError, load_toml

    cfg = load_toml(args.config) if args.config else BenchConfig()
    over = {
        k: getattr(args, k)
        for k in ("n_layer", "n_head", "n_embd", "block_size")
        if getattr(args, k) is not None
    }
    try:
        model = replace(cfg.model, **over)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    batch_sizes, threads = cfg.sweep.batch_sizes, cfg.sweep.threads
    if args.batch_size is None and len(batch_sizes) != 1:
        raise GateError(
            f"the gate measures one batch size; the config lists {batch_sizes}: pass --batch-size"
        )
    if args.threads is None and len(threads) != 1:
        raise GateError(f"the gate measures one thread count; the config lists {threads}: pass --threads")
    batch_size = args.batch_size if args.batch_size is not None else batch_sizes[0]
    n_threads = args.threads if args.threads is not None else threads[0]
    if n_threads is None and getattr(args, "quick", False):
        n_threads = QUICK["threads"]  # the config left it to PyTorch: CI mode picks the robust setting
    if batch_size < 1 or (n_threads is not None and n_threads < 1):
        raise GateError("--batch-size and --threads must be >= 1")
    from bench.gate.reference import REFERENCE_VERSION

    return {
        "device": "cpu",
        "dtype": "fp32",
        "model": model.to_dict(),
        "train": cfg.train.to_dict(),
        "batch_size": batch_size,
        "threads": n_threads,
        "reference_version": REFERENCE_VERSION,
    }


def machine_info() -> dict:
    """hwinfo-lite: enough to tell whether the baseline came from a similar machine."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil is a dependency
        physical = None
    return {
        "cpu_model": model,
        "logical_cores": os.cpu_count(),
        "physical_cores": physical,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k} {vb!r} in the baseline, {va!r} now")
    return out


def read_baseline(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise GateError(f"baseline {path} not found: create it with --update-baseline") from None
    except json.JSONDecodeError as e:
        raise GateError(f"baseline {path} is not valid JSON ({e.msg} at line {e.lineno})") from None
    from bench.gate import pytest_input as gate_pytest

    if gate_pytest.is_pytest_benchmark(data):
        return {"schema": SCHEMA, "kind": "pytest-benchmark-json", "raw": data}
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, str) or not schema.startswith("devicebench-gate/"):
        raise GateError(
            f"{path} is not a gate baseline (schema {schema!r}): recreate it with --update-baseline"
        )
    if schema != SCHEMA:
        raise GateError(
            f"{path} has schema {schema}; this devicebench reads {SCHEMA}: recreate it with --update-baseline"
        )
    return data


def _machine_warnings(now: dict, then: dict) -> list[str]:
    keys = ("cpu_model", "logical_cores", "torch", "torch_threads")
    diffs = [f"{k} {then.get(k)!r} -> {now.get(k)!r}" for k in keys if now.get(k) != then.get(k)]
    if not diffs:
        return []
    return ["the baseline was made on a different machine or software (" + "; ".join(diffs) + "): the ratio "
            "cancels speed, not every difference of CPU or PyTorch; consider --update-baseline on this runner"]  # fmt: skip


# --- the train-step gate -------------------------------------------------------------------------


def _counts(args: argparse.Namespace) -> tuple[int, int]:
    preset = QUICK if args.quick else FULL
    # A baseline is measured once and compared with many times: twice the trials by default.
    trials = args.trials if args.trials is not None else preset["trials"] * (2 if args.update_baseline else 1)
    steps = args.steps if args.steps is not None else preset["steps"]
    if trials < 4:
        raise GateError(f"--trials must be >= 4 (with fewer, no difference can be significant), got {trials}")
    if steps < 1 or args.warmup_steps < 0:
        raise GateError("--steps must be >= 1 and --warmup-steps >= 0")
    return trials, steps


def run_train_step(args: argparse.Namespace) -> int:
    from bench.gate import measure as gate_measure
    from bench.gate import stats as gate_stats
    from bench.results import atomic_write_json

    path = Path(args.baseline)
    workload = workload_config(args)
    trials, steps = _counts(args)
    baseline = None
    if not args.update_baseline:
        baseline = read_baseline(path)
        if baseline.get("kind") != "train-step":
            raise GateError(f"{path} is a {baseline.get('kind')} baseline, not one of the train step: "
                            "pass --pytest-benchmark, or use another --baseline")  # fmt: skip
        diffs = _diff(workload, baseline.get("workload", {}))
        if diffs:
            raise GateError(f"baseline {path} was made for a different workload ({'; '.join(diffs)}): pass the "
                            "same config and flags, or recreate it with --update-baseline")  # fmt: skip
    machine = machine_info()
    print(f"gate: {trials} trials x {steps} step pairs of the train step (A) and the reference (B), interleaved",
          file=sys.stderr)  # fmt: skip
    measured = gate_measure.measure(workload, trials, steps, args.warmup_steps, progress=not args.no_progress)
    ratios = [t.ratio for t in measured]
    current = {
        "ratio_median": statistics.median(ratios),
        "workload_ms_median": statistics.median(t.workload_ms for t in measured),
        "reference_ms_median": statistics.median(t.reference_ms for t in measured),
        "trials": [t.to_dict() for t in measured],
    }
    if args.update_baseline:
        atomic_write_json(path, {
            "schema": SCHEMA,
            "kind": "train-step",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "workload": workload,
            "measurement": {"trials": trials, "steps_per_trial": steps, "warmup_steps": args.warmup_steps,
                            "order": "AB, BA alternating; per-trial medians"},
            "machine": machine,
            **current,
        })  # fmt: skip
        msg = (f"baseline written to {path}: workload/reference ratio {current['ratio_median']:.3f} over {trials} "
               f"trials (workload {current['workload_ms_median']:.1f} ms/iter, reference "
               f"{current['reference_ms_median']:.1f} ms/iter)")  # fmt: skip
        if args.json:
            print(json.dumps({"schema": VERDICT_SCHEMA, "mode": "train-step", "decision": "baseline-updated",
                              "exit_code": 0, "baseline": str(path), "current": current}, indent=2))  # fmt: skip
        else:
            print(msg)
        return 0
    assert baseline is not None
    try:
        base_ratios = [float(t["ratio"]) for t in baseline["trials"]]
    except (KeyError, TypeError, ValueError):
        raise GateError(
            f"baseline {path} has no readable per-trial ratios: recreate it with --update-baseline"
        ) from None
    seed = gate_stats.DEFAULT_SEED if args.seed is None else args.seed
    cmp = gate_stats.compare(ratios, base_ratios, args.threshold, args.confidence, seed=seed)
    warnings = _machine_warnings(machine, baseline.get("machine", {}))
    code = 1 if cmp.decision == gate_stats.REGRESSION else 0
    verdict = {
        "schema": VERDICT_SCHEMA,
        "mode": "train-step",
        "decision": cmp.decision,
        "exit_code": code,
        "comparison": cmp.to_dict(),
        "baseline": {
            "path": str(path),
            "ratio_median": statistics.median(base_ratios),
            "created": baseline.get("created"),
            "trials": len(base_ratios),
        },  # fmt: skip
        "current": current,
        "warnings": warnings,
    }
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(verdict, indent=2))
    else:
        print(format_verdict(cmp, "workload/reference ratio"))
        print(f"  this run: workload {current['workload_ms_median']:.1f} ms/iter, reference "
              f"{current['reference_ms_median']:.1f} ms/iter (medians; absolute times are not compared)")  # fmt: skip
    return code


def _pct(x: float) -> str:
    return f"{(x - 1.0) * 100:+.1f}%"


def format_verdict(cmp, what: str, label: str = "gate") -> str:
    """Both ratios, the interval and the decision, in three lines."""
    p = "n/a" if cmp.mann_whitney_p is None else f"{cmp.mann_whitney_p:.3g}"
    return (
        f"{label}: {cmp.decision.upper()}: {cmp.reason}\n"
        f"  {what}: now {cmp.current_median:.4g} ({cmp.n_current} samples), "
        f"baseline {cmp.baseline_median:.4g} ({cmp.n_baseline} samples)\n"
        f"  change {_pct(cmp.slowdown)}, {cmp.confidence:.0%} interval [{_pct(cmp.ci_low)}, {_pct(cmp.ci_high)}], "
        f"Mann-Whitney p={p}, threshold +{cmp.threshold:.0%}"
    )


# --- the pytest-benchmark gate -------------------------------------------------------------------

NO_REFERENCE_NOTE = (
    "no reference workload was interleaved with these benchmarks: machine drift between the baseline's "
    "job and this one cannot be cancelled, so a slower runner reads as a slowdown. Medians of blocks "
    "of rounds are compared, and only a slowdown above the threshold fails; pass --reference-benchmark "
    "NAME (a frozen benchmark in the same suite) or use the train-step gate to cancel machine speed."
)


def run_pytest_benchmark(args: argparse.Namespace) -> int:
    from bench.gate import pytest_input as gate_pytest
    from bench.gate import stats as gate_stats
    from bench.results import atomic_write_json

    path = Path(args.baseline)
    current_raw = gate_pytest.load(args.pytest_benchmark)
    current = gate_pytest.benchmarks(current_raw, args.reference_benchmark)
    if args.update_baseline:
        atomic_write_json(path, {
            "schema": SCHEMA,
            "kind": "pytest-benchmark",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": str(args.pytest_benchmark),
            "reference_benchmark": args.reference_benchmark,
            "machine": gate_pytest.machine(current_raw),
            "benchmarks": current,
        })  # fmt: skip
        print(f"baseline written to {path}: {len(current)} benchmark(s) from {args.pytest_benchmark}")
        return 0
    baseline = read_baseline(path)
    if baseline["kind"] == "pytest-benchmark-json":
        base = gate_pytest.benchmarks(baseline["raw"], args.reference_benchmark)
    elif baseline["kind"] == "pytest-benchmark":
        if baseline.get("reference_benchmark") != args.reference_benchmark:
            raise GateError(f"baseline {path} was made with --reference-benchmark "
                            f"{baseline.get('reference_benchmark')!r}, now {args.reference_benchmark!r}: "
                            "pass the same, or recreate it with --update-baseline")  # fmt: skip
        base = baseline["benchmarks"]
    else:
        raise GateError(f"{path} is a {baseline.get('kind')} baseline, not one of pytest-benchmark: drop "
                        "--pytest-benchmark, or use another --baseline")  # fmt: skip
    common = [n for n in current if n in base]
    if not common:
        raise GateError(f"no benchmark of {args.pytest_benchmark} is in the baseline {path}: "
                        "recreate it with --update-baseline")  # fmt: skip
    seed = gate_stats.DEFAULT_SEED if args.seed is None else args.seed
    results = {}
    for name in common:
        cs, bs = current[name]["samples"], base[name]["samples"]
        if cs and bs and len(cs) >= 2 and len(bs) >= 2:
            cmp = gate_stats.compare(cs, bs, args.threshold, args.confidence, seed=seed)
        else:
            cmp = gate_stats.compare_summaries(current[name]["summary"], base[name]["summary"], args.threshold,
                                               args.confidence)  # fmt: skip
        results[name] = cmp
    decisions = {c.decision for c in results.values()}
    decision = next(
        d for d in (gate_stats.REGRESSION, gate_stats.INCONCLUSIVE, gate_stats.PASS) if d in decisions
    )
    code = 1 if decision == gate_stats.REGRESSION else 0
    notes = [] if args.reference_benchmark else [NO_REFERENCE_NOTE]
    missing = sorted(set(base) - set(current))
    if missing:
        notes.append(f"in the baseline but not in this run: {', '.join(missing)}")
    added = sorted(set(current) - set(base))
    if added:
        notes.append(f"new, not gated (no baseline): {', '.join(added)}")
    if args.json:
        print(json.dumps({
            "schema": VERDICT_SCHEMA, "mode": "pytest-benchmark", "decision": decision, "exit_code": code,
            "reference_benchmark": args.reference_benchmark, "notes": notes,
            "benchmarks": {n: c.to_dict() for n, c in results.items()},
        }, indent=2))  # fmt: skip
    else:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        what = "time/reference" if args.reference_benchmark else "median time (s)"
        for name, cmp in results.items():
            print(format_verdict(cmp, what, label=name))
        print(f"gate: {decision.upper()} ({len(results)} benchmark(s), threshold +{args.threshold:.0%})")
    return code


def run(args: argparse.Namespace) -> int:
    if not 0.5 <= args.confidence < 1.0:
        raise GateError(f"--confidence must be in [0.5, 1), got {args.confidence}")
    if args.pytest_benchmark:
        return run_pytest_benchmark(args)
    if args.reference_benchmark:
        raise GateError("--reference-benchmark goes with --pytest-benchmark")
    return run_train_step(args)
