"""`bench gate`: a CI regression gate on ms/iter that cancels the machine's speed (docs/gate.md).

The train step (A) and a frozen reference step (B) run interleaved; the median ratio A/B is compared with
the baseline's, and only a significant slowdown above the threshold fails. Exit 0: pass, inconclusive or
baseline written; 1: a regression and nothing else; 2: any usage, input or setup problem; 130/143: signals.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import traceback
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.config import BenchConfig, ConfigError, load_toml
from bench.gate import measure as gate_measure
from bench.gate import pytest_input as gate_pytest
from bench.gate import stats as gate_stats
from bench.gate.baseline import (
    MIN_TRIALS,
    SCHEMA,
    machine_info,
    machine_warnings,
    read_baseline,
    train_step_ratios,
)
from bench.gate.files import GateError, check_baseline_target, write_baseline
from bench.gate.reference import REFERENCE_VERSION
from bench.results import dumps_strict

if TYPE_CHECKING:
    from bench.gate.measure import Trial
    from bench.gate.stats import Comparison

VERDICT_SCHEMA = "devicebench-gate-verdict/1"
QUICK = {"trials": 10, "steps": 6, "threads": 1}
FULL = {"trials": 15, "steps": 10}
WARMUP_STEPS = 3
# Flags of the train-step gate; with --pytest-benchmark they would be silently ignored, so they are refused.
TRAIN_STEP_ONLY = ("trials", "steps", "warmup_steps", "quick", "config", "n_layer", "n_head", "n_embd",
                   "block_size", "batch_size", "threads")  # fmt: skip
TRIALS_ADVICE = "more --trials, or a quieter machine"
ROUNDS_ADVICE = "more rounds (--benchmark-min-rounds), or a quieter machine"


def _threshold(text: str) -> float:
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r} (e.g. 10 or 10%)") from None
    if not 0 < value < 1000:
        raise argparse.ArgumentTypeError(f"threshold must be between 0 and 1000 percent, got {text}")
    return value / 100.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "exit status: 0 pass, inconclusive or baseline written; 1 a regression, and nothing else; "
        "2 a usage, input or setup problem (one line on stderr); 130 Ctrl-C; 143 SIGTERM. "
        "Reference: docs/gate.md"
    )
    p.add_argument(
        "--baseline", metavar="FILE", required=True, help="baseline JSON to check against (or write)"
    )
    p.add_argument(
        "--update-baseline", action="store_true", help="measure and (over)write the baseline; no check"
    )
    p.add_argument("--threshold", type=_threshold, default=0.10, metavar="PCT",
                   help="fail only above this slowdown, in percent (default 10)")  # fmt: skip
    p.add_argument("--trials", type=int, metavar="N", help=f"interleaved trials (default {FULL['trials']}, "
                   f"--quick {QUICK['trials']}; twice that with --update-baseline)")  # fmt: skip
    p.add_argument("--steps", type=int, metavar="N",
                   help=f"step pairs (A B) per trial (default {FULL['steps']}, --quick {QUICK['steps']})")  # fmt: skip
    p.add_argument("--warmup-steps", type=int, metavar="N",
                   help=f"untimed steps of each workload first (default {WARMUP_STEPS})")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="CI mode: fewer trials, and 1 thread unless --threads "
                   "(2 threads on a busy 2-core runner stall on each other; 1 thread degrades smoothly)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the verdict as JSON on stdout")
    p.add_argument("--confidence", type=float, default=0.95, metavar="C",
                   help="confidence of the interval, in [0.5, 1) (default 0.95)")  # fmt: skip
    p.add_argument("--seed", type=int, metavar="N",
                   help="bootstrap seed, >= 0 (default: fixed, so a verdict is reproducible)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar on stderr (there is one only when stderr is a terminal)")  # fmt: skip
    w = p.add_argument_group("workload (devicebench's CPU training step)")
    w.add_argument(
        "--config", metavar="FILE.toml", help="devicebench TOML config ([model], [train], [sweep])"
    )
    for name in ("n-layer", "n-head", "n-embd", "block-size"):
        shapes = "model shape overrides: --n-layer, --n-head, --n-embd, --block-size"
        w.add_argument(
            f"--{name}", type=int, metavar="N", help=shapes if name == "n-layer" else argparse.SUPPRESS
        )
    w.add_argument("--batch-size", type=int, metavar="N", help="batch size (default: the config's, 12)")
    w.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for both workloads (default: PyTorch's; --quick: 1)")  # fmt: skip
    pb = p.add_argument_group("pytest-benchmark")
    pb.add_argument("--pytest-benchmark", metavar="FILE.json",
                    help="gate this pytest-benchmark --benchmark-json output instead of the train step")  # fmt: skip
    pb.add_argument("--reference-benchmark", metavar="NAME",
                    help="divide every benchmark by this one from the same file (cancels machine speed)")  # fmt: skip


def workload_config(args: argparse.Namespace) -> dict:
    """The workload's identity: what a baseline must have been made with. Defaults, TOML, flags."""
    try:
        cfg = load_toml(args.config) if args.config is not None else BenchConfig()
    except (OSError, UnicodeDecodeError) as e:  # load_toml reports a missing file; this is the rest
        raise GateError(f"config {args.config} cannot be read: {getattr(e, 'strerror', None) or e}") from None
    cfg.validate()
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
    return {"device": "cpu", "dtype": "fp32", "model": model.to_dict(), "train": cfg.train.to_dict(),
            "batch_size": batch_size, "threads": n_threads, "reference_version": REFERENCE_VERSION}  # fmt: skip


def _counts(args: argparse.Namespace) -> tuple[int, int, int]:
    preset = QUICK if args.quick else FULL
    # A baseline is measured once and compared with many times: twice the trials by default.
    trials = args.trials if args.trials is not None else preset["trials"] * (2 if args.update_baseline else 1)
    steps = args.steps if args.steps is not None else preset["steps"]
    warmup = args.warmup_steps if args.warmup_steps is not None else WARMUP_STEPS
    if trials < MIN_TRIALS:
        raise GateError(
            f"--trials must be >= {MIN_TRIALS} (with fewer, no difference can be significant), got {trials}"
        )
    if steps < 1 or warmup < 0:
        raise GateError(f"--steps must be >= 1 and --warmup-steps >= 0, got {steps} and {warmup}")
    return trials, steps, warmup


def _measure(workload: dict, trials: int, steps: int, warmup: int, progress: bool) -> list[Trial]:
    """The interleaved trials; a workload that cannot be built or run is a setup problem (exit 2)."""
    try:
        return gate_measure.measure(workload, trials, steps, warmup, progress=progress)
    except GateError:
        raise
    except (RuntimeError, ValueError, MemoryError) as e:  # e.g. out of memory, a shape torch refuses
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GateError(f"the workload could not be measured ({first}): check the model shape, "
                        "--batch-size and --threads") from e  # fmt: skip


def run_train_step(args: argparse.Namespace) -> int:
    path = Path(args.baseline)
    workload = workload_config(args)
    trials, steps, warmup = _counts(args)
    baseline, base_ratios = None, None
    if args.update_baseline:
        check_baseline_target(path)
    else:  # the whole baseline is checked before anything is measured
        baseline = read_baseline(path)
        base_ratios = train_step_ratios(baseline, path, workload)
    machine = machine_info()
    print(f"gate: {trials} trials x {steps} step pairs of the train step (A) and the reference (B), interleaved",
          file=sys.stderr)  # fmt: skip
    measured = _measure(workload, trials, steps, warmup, progress=not args.no_progress)
    ratios = [t.ratio for t in measured]
    current = {
        "ratio_median": statistics.median(ratios),
        "workload_ms_median": statistics.median(t.workload_ms for t in measured),
        "reference_ms_median": statistics.median(t.reference_ms for t in measured),
        "trials": [t.to_dict() for t in measured],
    }
    if args.update_baseline:
        write_baseline(path, {
            "schema": SCHEMA,
            "kind": "train-step",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "workload": workload,
            "measurement": {"trials": trials, "steps_per_trial": steps, "warmup_steps": warmup,
                            "order": "AB, BA alternating; per-trial medians"},
            "machine": machine,
            **current,
        })  # fmt: skip
        if args.json:
            print(dumps_strict({"schema": VERDICT_SCHEMA, "mode": "train-step", "decision": "baseline-updated",
                                "exit_code": 0, "baseline": str(path), "current": current}))  # fmt: skip
        else:
            print(f"baseline written to {path}: workload/reference ratio {current['ratio_median']:.3f} over "
                  f"{trials} trials (workload {current['workload_ms_median']:.1f} ms/iter, reference "
                  f"{current['reference_ms_median']:.1f} ms/iter)")  # fmt: skip
        return 0
    assert baseline is not None and base_ratios is not None
    seed = gate_stats.DEFAULT_SEED if args.seed is None else args.seed
    cmp = gate_stats.compare_samples(ratios, base_ratios, threshold=args.threshold, confidence=args.confidence,
                                     seed=seed, advice=TRIALS_ADVICE)  # fmt: skip
    warnings = machine_warnings(machine, baseline.get("machine", {}))
    code = 1 if cmp.verdict == gate_stats.REGRESSION else 0
    verdict = {
        "schema": VERDICT_SCHEMA, "mode": "train-step", "decision": cmp.verdict, "exit_code": code,
        "comparison": comparison_json(cmp),
        "baseline": {"path": str(path), "ratio_median": statistics.median(base_ratios),
                     "created": baseline.get("created"), "trials": len(base_ratios)},
        "current": current, "warnings": warnings,
    }  # fmt: skip
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print(dumps_strict(verdict))
    else:
        print(format_verdict(cmp, "workload/reference ratio"))
        print(f"  this run: workload {current['workload_ms_median']:.1f} ms/iter, reference "
              f"{current['reference_ms_median']:.1f} ms/iter (medians; absolute times are not compared)")  # fmt: skip
    return code


def comparison_json(cmp: Comparison) -> dict:
    """A Comparison under the verdict JSON's names (devicebench-gate-verdict/1: stable for CI scripts)."""
    return {
        "decision": cmp.verdict, "reason": cmp.reason, "current_median": cmp.variant_median,
        "baseline_median": cmp.baseline_median, "slowdown": cmp.ratio, "ci_low": cmp.low, "ci_high": cmp.high,
        "confidence": cmp.confidence, "threshold": cmp.threshold, "mann_whitney_p": cmp.p_value,
        "n_current": cmp.n_variant, "n_baseline": cmp.n_baseline, "method": cmp.method,
    }  # fmt: skip


def _pct(x: float) -> str:
    return f"{(x - 1.0) * 100:+.1f}%"


def format_verdict(cmp: Comparison, what: str, label: str = "gate") -> str:
    """Both ratios, the interval and the decision, in three lines."""
    p = "n/a" if cmp.p_value is None else f"{cmp.p_value:.3g}"
    interval = "n/a" if cmp.low is None or cmp.high is None else f"[{_pct(cmp.low)}, {_pct(cmp.high)}]"
    return (
        f"{label}: {cmp.verdict.upper()}: {cmp.reason}\n"
        f"  {what}: now {cmp.variant_median:.4g} ({cmp.n_variant} samples), "
        f"baseline {cmp.baseline_median:.4g} ({cmp.n_baseline} samples)\n"
        f"  change {_pct(cmp.ratio)}, {cmp.confidence:.0%} interval {interval}, "
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
    path = Path(args.baseline)
    if args.update_baseline:
        check_baseline_target(path)
    current_raw = gate_pytest.load(args.pytest_benchmark)
    current = gate_pytest.benchmarks(current_raw, args.reference_benchmark, source=str(args.pytest_benchmark))
    if not current:
        raise GateError(f"{args.pytest_benchmark} holds no benchmark to gate"
                        + (" besides the reference" if args.reference_benchmark else ""))  # fmt: skip
    if args.update_baseline:
        write_baseline(path, {
            "schema": SCHEMA,
            "kind": "pytest-benchmark",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": str(args.pytest_benchmark),
            "reference_benchmark": args.reference_benchmark,
            "machine": gate_pytest.machine(current_raw),
            "benchmarks": current,
        })  # fmt: skip
        if args.json:
            print(dumps_strict({"schema": VERDICT_SCHEMA, "mode": "pytest-benchmark", "decision": "baseline-updated",
                                "exit_code": 0, "baseline": str(path), "benchmarks": sorted(current)}))  # fmt: skip
        else:
            print(f"baseline written to {path}: {len(current)} benchmark(s) from {args.pytest_benchmark}")
        return 0
    baseline = read_baseline(path)
    if baseline["kind"] == "pytest-benchmark-json":
        base = gate_pytest.benchmarks(baseline["raw"], args.reference_benchmark, source=f"baseline {path}")
    elif baseline["kind"] == "pytest-benchmark":
        if baseline.get("reference_benchmark") != args.reference_benchmark:
            raise GateError(f"baseline {path} was made with --reference-benchmark "
                            f"{baseline.get('reference_benchmark')!r}, now {args.reference_benchmark!r}: "
                            "pass the same, or recreate it with --update-baseline")  # fmt: skip
        base = gate_pytest.check_stored(baseline.get("benchmarks"), f"baseline {path}")
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
            cmp = gate_stats.compare_samples(cs, bs, threshold=args.threshold, confidence=args.confidence,
                                             seed=seed, advice=ROUNDS_ADVICE)  # fmt: skip
        else:
            cmp = gate_stats.compare_summaries(current[name]["summary"], base[name]["summary"],
                                               threshold=args.threshold, confidence=args.confidence,
                                               advice=ROUNDS_ADVICE)  # fmt: skip
        results[name] = cmp
    decisions = {c.verdict for c in results.values()}
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
        print(dumps_strict({
            "schema": VERDICT_SCHEMA, "mode": "pytest-benchmark", "decision": decision, "exit_code": code,
            "reference_benchmark": args.reference_benchmark, "notes": notes,
            "benchmarks": {n: comparison_json(c) for n, c in results.items()},
        }))  # fmt: skip
    else:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        what = "time/reference" if args.reference_benchmark else "median time (s)"
        for name, cmp in results.items():
            print(format_verdict(cmp, what, label=name))
        print(f"gate: {decision.upper()} ({len(results)} benchmark(s), threshold +{args.threshold:.0%})")
    return code


def run(args: argparse.Namespace) -> int:
    """`bench gate`. Every failure ends here as one line and exit 2, so that exit 1 only ever means a
    regression; Ctrl-C is 130 and SIGTERM 143, both with no verdict (a baseline is replaced whole)."""
    debug = getattr(args, "debug", False)
    try:
        return _run(args)
    except KeyboardInterrupt as e:  # hwinfo.interrupts.Stop, raised at a check point between steps
        print(
            f"bench gate: interrupted by {getattr(e, 'signal_name', 'Ctrl-C')}: no verdict", file=sys.stderr
        )
        return getattr(e, "exit_code", 130)
    except Exception as e:  # noqa: BLE001 - whatever happens, a crash must not read as a regression
        if debug:
            traceback.print_exc()
        print(f"bench gate: error: {_error_line(e, debug)}", file=sys.stderr)
        return 2


def _error_line(e: Exception, debug: bool) -> str:
    if getattr(e, "exit_code", None) == 2:  # GateError, ConfigError: a problem the user can fix
        return "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    hint = "" if debug else "; --debug shows the traceback"
    return f"internal error ({type(e).__name__}: {first}), not a regression: a bug in devicebench{hint}"


def _run(args: argparse.Namespace) -> int:
    if not 0.5 <= args.confidence < 1.0:
        raise GateError(f"--confidence must be in [0.5, 1), got {args.confidence}")
    if args.seed is not None and args.seed < 0:
        raise GateError(f"--seed must be >= 0, got {args.seed}")
    for dest in ("baseline", "config", "pytest_benchmark", "reference_benchmark"):
        if getattr(args, dest) is not None and not getattr(args, dest).strip():
            what = "a benchmark" if dest == "reference_benchmark" else "a file"
            raise GateError(f"{_flag(dest)} is empty: name {what}")
    if args.pytest_benchmark is not None:
        given = [_flag(d) for d in TRAIN_STEP_ONLY if getattr(args, d) not in (None, False)]
        if given:
            raise GateError(f"{', '.join(given)}: only for the train-step gate, not with --pytest-benchmark")
        return run_pytest_benchmark(args)
    if args.reference_benchmark is not None:
        raise GateError("--reference-benchmark goes with --pytest-benchmark")
    return run_train_step(args)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")
