"""`bench tune`: the common tips measured around one recipe on each device, and the best configuration.

The recipe's flags and TOML are `bench run`'s (bench.run_cmd: one flag per config setting), with one value
per sweep axis; tune's own options say which tips and how long to measure.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.config import BenchConfig
    from bench.tune.runner import TuneOptions

_USAGE = (
    "%(prog)s [--devices A,B,...] [--config FILE.toml] [recipe flags] [--iters N] [--tips A,B,...] "
    "[--repeats N] [--block-seconds S] [--time-cap X] [--out DIR] [--resume] [--dry-run]"
)
# tune's own options: (flag, dest, metavar, help); values are checked in options_from_args (one-line errors).
TUNE_OPTIONS = (
    ("--tips", "tips", "A,B,...", "tips to measure (default: all): {tips}"),
    ("--repeats", "repeats", "N", "blocks of steps per side for each throughput variant, >= 4 (default 6)"),
    ("--block-seconds", "block_seconds", "S", "about how long one block of steps runs (default 0.5)"),
    ("--time-cap", "time_cap", "X", "a time-to-loss variant stops at X times the default's time to the target "
     "(default 1.1: still short of it then means at least 9%% slower)"),
)  # fmt: skip
_AXES = (("batch_sizes", "--batch-sizes", "tune tries x2 and x4 itself"),
         ("dtypes", "--dtypes", "tune tries the others the device has"),
         ("compile", "--compile", "tune tries the modes the device has"),
         ("threads", "--threads", "tune tries 1 up to the physical cores"))  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    """`bench run`'s flags (the recipe, --config, --out, --resume, --dry-run, --profile), then tune's own."""
    from bench.run_cmd import add_arguments as run_arguments
    from bench.tune.plan import TIPS

    run_arguments(p, leave_out=("--nproc", "--dist-timeout"))  # a tune is one process: never DDP
    p.usage = _USAGE
    for action in p._actions:
        if "--profile" in action.option_strings:
            action.help = (
                "profile N steps of the default (before the variants) into runs/<device>-default/profile.json, the "
                "evidence of the tips' why (default 5)"
            )
            action.default = None
        if "--dry-run" in action.option_strings:
            action.help = "print each device's variants (and why some are not available), run nothing"
        if "--resume" in action.option_strings:
            action.help = "complete the variants of --out that did not finish"
    g = p.add_argument_group("tune (how to measure)")
    for flag, dest, metavar, text in TUNE_OPTIONS:
        g.add_argument(flag, dest=dest, metavar=metavar, default=None, help=text.format(tips=", ".join(TIPS)))


def _positive(value: str, flag: str, kind: type, low: float, what: str) -> float:
    from bench.config import ConfigError

    try:
        x = kind(value)
    except ValueError:
        raise ConfigError(f"{flag} {value}: expected {what}") from None
    if not (x >= low and x < 1e9):
        raise ConfigError(f"{flag} {value}: expected {what}")
    return x


def options_from_args(args: argparse.Namespace, stored: dict | None = None) -> TuneOptions:
    """tune's options from the flags, over the stored ones (--resume), over the defaults."""
    from bench.config import ConfigError
    from bench.tune.plan import TIPS
    from bench.tune.runner import TuneOptions

    base = dict(stored or {})
    if args.tips is not None:
        tips = [t.strip().replace("-", "_") for t in args.tips.split(",") if t.strip()]
        unknown = [t for t in tips if t not in TIPS]
        if not tips or unknown:
            raise ConfigError(f"--tips {args.tips}: {'unknown tip(s) ' + ', '.join(unknown) if unknown else 'empty'}; "
                              f"choose from {', '.join(TIPS)}")  # fmt: skip
        base["tips"] = tips
    if args.repeats is not None:
        base["repeats"] = int(_positive(args.repeats, "--repeats", int, 4, "a whole number of blocks >= 4 "
                                        "(fewer can never give a significant difference)"))  # fmt: skip
    if args.block_seconds is not None:
        base["block_seconds"] = _positive(
            args.block_seconds, "--block-seconds", float, 0.01, "seconds >= 0.01"
        )
    if args.time_cap is not None:
        base["time_cap"] = _positive(args.time_cap, "--time-cap", float, 1.0, "a factor >= 1")
    if args.profile is not None:
        base["profile_steps"] = int(args.profile)
    base["tips"] = tuple(base.get("tips") or TIPS)
    known = set(TuneOptions.__dataclass_fields__)
    return TuneOptions(**{k: v for k, v in base.items() if k in known})


def check_one_recipe(cfg: BenchConfig) -> None:
    """tune measures around one recipe: one value per sweep axis (the devices excepted)."""
    from bench.config import ConfigError

    for name, flag, hint in _AXES:
        values = getattr(cfg.sweep, name)
        if len(values) != 1:
            raise ConfigError(
                f"{flag} {','.join('default' if v is None else str(v) for v in values)}: bench tune measures around "
                f"one recipe, so give one value ({hint})"
            )


def run(args: argparse.Namespace) -> int:
    import hwinfo
    from bench.config import config_from_dict
    from bench.devices import DeviceUnavailable
    from bench.results import ResultsDir, ResultsError
    from bench.run_cmd import _config_flags_given, _load_data, config_from_args
    from bench.runner import Interrupted, Sweep, resolve_devices
    from bench.tune.plan import plan_device, recipe_knobs
    from bench.tune.runner import Tuner

    profile_given = args.profile
    args.profile = 0 if args.profile is None else args.profile
    cfg = config_from_args(args)
    args.profile = None if profile_given is None else args.profile
    out = Path(args.out or f"results/tune-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    results = ResultsDir(out)
    stored: dict | None = None
    if results.exists():
        if not args.resume:
            raise ResultsError(
                f"{out} already holds results: pass --resume to complete this tune, or choose another --out"
            )
        old = results.read_sweep()
        if not isinstance(old.get("tune"), dict):
            raise ResultsError(f"{out} holds a `bench run` sweep, not a tune: choose another --out")
        stored = old["tune"]
        old_cfg = config_from_dict(old.get("spec") or {})
        if not _config_flags_given(args):
            cfg = old_cfg  # the tune's own recipe
        elif old_cfg.to_dict() != cfg.to_dict():
            raise ResultsError(f"{out} holds a tune of another recipe: resume it with `bench tune --out {out} --resume` "
                               "alone, or the same flags as its sweep.json 'command'")  # fmt: skip
    options = options_from_args(args, stored)
    if stored is not None and {**options.to_dict(), "profile_steps": 0} != {**stored, "profile_steps": 0}:
        raise ResultsError(f"{out} holds a tune measured with other options ({_options_text(stored)}): resume it "
                           f"without --tips/--repeats/--block-seconds/--time-cap, or choose another --out")  # fmt: skip
    check_one_recipe(cfg)
    devices, unavailable = resolve_devices(cfg.sweep.devices)
    if len(unavailable) == len(devices):
        raise DeviceUnavailable("; ".join(unavailable.values()))
    dataset = _load_data(cfg)
    # warnings only once the command is known to be usable: an error is then the only line
    for warning in cfg.validate() or []:
        print(f"warning: {warning}", file=sys.stderr)
    for reason in unavailable.values():
        print(f"warning: {reason}; it is left out", file=sys.stderr)
    hw = hwinfo.snapshot()
    import torch

    plans = {
        name: plan_device(name, dev, cfg, hw, options.tips, torch.get_num_threads())
        for name, dev in devices.items()
        if dev is not None
    }
    if args.dry_run:
        _print_plan(plans, devices, cfg)
        return 0
    sweep = Sweep(cfg, out, hw, ["bench", *getattr(args, "argv", [])], progress=not args.no_progress,
                  dataset=dataset)  # fmt: skip
    statuses: dict[str, str] = {}
    from hwinfo.interrupts import checked

    # until here a signal ends the tune at once (nothing written); from here at the next step (hwinfo.interrupts)
    with sweep.results.lock(" ".join(sweep.argv)), checked():
        sweep.prepare(resume=args.resume)
        sweep.results.write_sweep({**sweep.results.read_sweep(), "tune": options.to_dict()})
        print(f"results: {out}", file=sys.stderr)
        tuner = Tuner(sweep, cfg, options, dataset, progress=not args.no_progress)
        try:
            for name, variants in plans.items():
                device = devices[name]
                statuses.update(tuner.run_device(device, variants, recipe_knobs(cfg, device), args.resume))
        except Interrupted as e:
            print(f"interrupted by {e.signal_name} during {e.run_id}; finished variants are kept; complete them "
                  f"with: bench tune --out {out} --resume", file=sys.stderr)  # fmt: skip
            return 143 if e.signal_name == "SIGTERM" else 130
    _print_tips(out)
    print(f"report: bench report {out} (--html for the page)", file=sys.stderr)
    failed = [r for r, s in statuses.items() if s == "failed"]
    if failed:
        print(f"{len(failed)} variant(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _options_text(stored: dict) -> str:
    return ", ".join(
        f"{k} {','.join(v) if isinstance(v, list) else v}" for k, v in stored.items() if k != "profile_steps"
    )


def _print_plan(plans: dict, devices: dict, cfg: BenchConfig) -> None:
    from bench.tune.plan import recipe_knobs

    for name, variants in plans.items():
        device = devices[name]
        knobs = recipe_knobs(cfg, device)
        print(f"{name}: around {knobs.dtype}, batch {knobs.batch_size}, compile {knobs.compile}, threads "
              f"{knobs.threads if knobs.threads is not None else 'default'}, "
              f"{'fused' if knobs.fused_adamw else 'foreach'} AdamW, {cfg.train.max_iters} iters")  # fmt: skip
        for v in variants:
            what = ", ".join(v.knobs.changed(knobs)) or "the recipe as it is"
            state = f"not available: {v.unavailable}" if v.unavailable else v.measure
            print(f"  {v.run_id(device.label):28s} {v.tip:12s} {what:30s} {state}")


def _print_tips(out: Path) -> None:
    """The tips table of what was measured (the report's words), on stdout."""
    from reports.load import load_results
    from reports.tips import render_tips

    try:
        text = render_tips(load_results(out))
    except Exception as e:  # noqa: BLE001 - the runs are recorded; the table is a convenience
        print(f"bench tune: the tips table could not be made ({type(e).__name__}: {e}): see bench report {out}",
              file=sys.stderr)  # fmt: skip
        return
    sys.stdout.write(text)
