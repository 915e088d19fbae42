"""`bench run`: parse the sweep from TOML and flags, print the plan or run it."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path


def _csv(kind):
    def parse(text: str) -> list:
        items = [x.strip() for x in text.split(",") if x.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        try:
            return [kind(x) for x in items]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a list of {kind.__name__}: {text!r}") from None

    return parse


def _threads(x: str) -> int | None:
    return None if x in ("default", "auto") else int(x)


_threads.__name__ = "int"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.toml", help="TOML file with [model], [train], [sweep] tables")
    p.add_argument(
        "--devices", type=_csv(str), help="cpu, cuda, cuda:N, mps, xpu (default: every device here)"
    )
    p.add_argument("--batch-sizes", type=_csv(int), help="comma list (default 12)")
    p.add_argument("--dtypes", type=_csv(str), help="fp32, tf32 (CUDA), bf16, fp16 (default fp32)")
    p.add_argument("--compile", type=_csv(str), help="off, on, reduce-overhead (CUDA graphs), max-autotune")
    p.add_argument("--threads", type=_csv(_threads), help="CPU threads, comma list; 'default' = PyTorch's")
    p.add_argument("--iters", type=int, help="train steps per run (default 2000)")
    p.add_argument("--eval-interval", type=int, help="evaluate every N steps (default 250)")
    p.add_argument("--eval-iters", type=int, help="batches per split and eval (default 20)")
    p.add_argument(
        "--warmup-iters", type=int, help="timing warm-up steps kept out of the medians (default 10)"
    )
    p.add_argument("--seed", type=int, help="seed for weights and batches (default 1337)")
    for name in ("n-layer", "n-head", "n-embd", "block-size"):
        p.add_argument(
            f"--{name}",
            type=int,
            help=argparse.SUPPRESS
            if name != "n-layer"
            else "model shape overrides: --n-layer, --n-head, --n-embd, --block-size",
        )
    p.add_argument("--host", help="label for this machine in reports (default: hostname)")
    p.add_argument("--out", metavar="DIR", help="results directory (default results/<date-time>)")
    p.add_argument("--resume", action="store_true", help="complete the runs of --out that did not finish")
    p.add_argument("--dry-run", action="store_true", help="print the plan and an estimated time, run nothing")
    p.add_argument(
        "--profile", nargs="?", type=int, const=5, default=None, metavar="N",
        help="after each run's final eval, profile N extra steps (default 5) into runs/<id>/profile.json",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars (one line per run still)")


def config_from_args(args: argparse.Namespace):
    """Defaults, then the TOML file, then the flags."""
    from bench.config import BenchConfig, load_toml

    cfg = load_toml(args.config) if args.config else BenchConfig()
    model_over = {
        k: getattr(args, k)
        for k in ("n_layer", "n_head", "n_embd", "block_size")
        if getattr(args, k) is not None
    }
    train_over = {
        k: v
        for k, v in {
            "max_iters": args.iters, "eval_interval": args.eval_interval, "eval_iters": args.eval_iters,
            "seed": args.seed, "timing_warmup_iters": args.warmup_iters,
        }.items()
        if v is not None
    }  # fmt: skip
    sweep_over = {
        k: v
        for k, v in {
            "devices": args.devices, "batch_sizes": args.batch_sizes, "dtypes": args.dtypes,
            "compile": args.compile, "threads": args.threads, "host": args.host,
        }.items()
        if v is not None
    }  # fmt: skip
    try:
        cfg = replace(cfg, model=replace(cfg.model, **model_over), train=replace(cfg.train, **train_over),
                      sweep=replace(cfg.sweep, **sweep_over))  # fmt: skip
    except ValueError as e:
        from bench.config import ConfigError

        raise ConfigError(str(e)) from None
    cfg.validate()
    return cfg


_CONFIG_FLAGS = ("config", "devices", "batch_sizes", "dtypes", "compile", "threads", "iters", "eval_interval",
                 "eval_iters", "warmup_iters", "seed", "n_layer", "n_head", "n_embd", "block_size", "host")  # fmt: skip


def _config_flags_given(args: argparse.Namespace) -> bool:
    return any(getattr(args, k, None) is not None for k in _CONFIG_FLAGS)


def estimate_seconds(cfg, spec, hw: dict, device) -> float | None:
    """A rough time for one run, from FLOPs and the device's peak (no measurement)."""
    from hwinfo.peaks import peak_for
    from model.gpt import flops_per_iter

    peak = peak_for(hw, spec.device, spec.dtype)["value"]
    if not peak:
        return None
    # Rough efficiencies: a CPU reaches ~40% of its peak here; an accelerator at this size is
    # launch-bound, so a step costs at least ~40 us per layer of kernels.
    eff = 0.4 if device.uses_cpu_threads else 0.3
    step_s = max(flops_per_iter(cfg.model, spec.batch_size) / (peak * eff), 4e-5 * 15 * cfg.model.n_layer)
    t = cfg.train
    evals = t.max_iters // t.eval_interval + 1
    eval_s = evals * 2 * t.eval_iters * step_s / 3
    return t.max_iters * step_s + eval_s + (60.0 if spec.compile != "off" else 0.0)


def memory_warnings(cfg, specs, devices: dict) -> list[str]:
    """One line per run whose estimated memory exceeds what its device has free."""
    from hwinfo.units import nbytes
    from model.memory import estimate_train_bytes

    out, free_of = [], {}
    for s in specs:
        dev = devices.get(s.device)
        if dev is None:
            continue
        if s.device not in free_of:
            free_of[s.device] = dev.free_memory_bytes()
        free = free_of[s.device]
        need = estimate_train_bytes(cfg.model, s.batch_size, s.dtype)["total"]
        if free is not None and need > 0.9 * free:
            out.append(
                f"{s.run_id} needs ~{nbytes(need)} (estimate: weights, gradients, AdamW state, activations) but "
                f"{s.device} has {nbytes(free)} free: it will likely fail with out of memory (a smaller "
                "--batch-sizes fits)"
            )
    return out


def run(args: argparse.Namespace) -> int:
    import hwinfo
    from bench.devices import DeviceUnavailable
    from bench.runner import Interrupted, Sweep, plan, resolve_devices

    if args.profile is not None and args.profile < 1:
        from bench.config import ConfigError

        raise ConfigError(f"--profile takes a number of steps >= 1, got {args.profile}")
    cfg = config_from_args(args)
    if (
        args.resume
        and args.out
        and (Path(args.out) / "sweep.json").exists()
        and not _config_flags_given(args)
    ):
        from bench.config import config_from_dict
        from bench.results import ResultsDir

        cfg = config_from_dict(ResultsDir(Path(args.out)).read_sweep()["spec"])  # the sweep's own config
    for warning in cfg.validate() or []:
        print(f"warning: {warning}", file=sys.stderr)
    devices, unavailable = resolve_devices(cfg.sweep.devices)
    if len(unavailable) == len(devices):
        raise DeviceUnavailable("; ".join(unavailable.values()))
    for reason in unavailable.values():
        print(f"warning: {reason}; its runs will be recorded as skipped", file=sys.stderr)
    specs = plan(cfg, devices)
    hw = hwinfo.snapshot()
    for warning in memory_warnings(cfg, specs, devices):
        print(f"warning: {warning}", file=sys.stderr)
    if args.dry_run:
        total = 0.0
        print(f"{len(specs)} run(s), {cfg.train.max_iters} iters each, model {cfg.model}")
        for s in specs:
            dev = devices.get(s.device)
            est = None if dev is None else estimate_seconds(cfg, s, hw, dev)
            total += est or 0.0
            note = unavailable.get(s.device, "")
            est_txt = (
                "skipped" if note else (f"~{est:.0f} s" if est is not None else "unknown (peak unknown)")
            )
            print(f"  {s.run_id:40s} {est_txt} {note}")
        print(f"estimated total: ~{total / 60:.1f} min (rough: from spec peaks, no measurement)")
        return 0
    out = Path(args.out or f"results/{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    sweep = Sweep(cfg, out, hw, ["bench", *getattr(args, "argv", [])], progress=not args.no_progress,
                  profile_steps=args.profile or 0)  # fmt: skip
    with sweep.results.lock(" ".join(sweep.argv)):
        sweep.prepare(resume=args.resume)
        print(f"results: {out}", file=sys.stderr)
        try:
            statuses = sweep.run_all(specs, unavailable, resume=args.resume)
        except Interrupted as e:
            print(f"interrupted by {e.signal_name} during {e.run_id}; finished runs are kept; complete them "
                  f"with: bench run --out {out} --resume", file=sys.stderr)  # fmt: skip
            return 143 if e.signal_name == "SIGTERM" else 130
    print(out)
    failed = [r for r, s in statuses.items() if s == "failed"]
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
