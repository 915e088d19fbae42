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

import hwinfo
from bench.config import ConfigError, config_from_dict
from bench.results import ResultsDir, ResultsError, read_json
from bench.run_cmd import _config_flags_given, _load_data, config_from_args
from bench.run_cmd import add_arguments as run_arguments
from bench.tune.plan import TIPS, plan_device, recipe_knobs
from hwinfo.interrupts import checked

if TYPE_CHECKING:
    from bench.config import BenchConfig
    from bench.tune.runner import TuneOptions

_USAGE = (
    "%(prog)s [--devices A,B,...] [--config FILE.toml] [recipe flags] [--iters N] [--tips A,B,...] "
    "[--repeats N] [--max-seconds S] [--block-seconds S] [--time-cap X] [--out DIR] [--resume] [--dry-run]"
)
# tune's own options: (flag, dest, metavar, help); values are checked in options_from_args (one-line errors).
TUNE_OPTIONS = (
    ("--tips", "tips", "A,B,...", "tips to measure (default: all): {tips}"),
    ("--repeats", "repeats", "N", "the least pairs of blocks for each throughput variant, 4 to 1000 (default 6); "
     "more follow until the verdict is known or --max-seconds runs out"),
    ("--block-seconds", "block_seconds", "S", "about how long one block of steps runs, 0.01 to 60 (default 0.25)"),
    ("--time-cap", "time_cap", "X", "a time-to-loss variant stops at X times the default's time to the target "
     "(default 1.1: still short of it then means at least 9%% slower)"),
    ("--max-seconds", "max_seconds", "S", "per throughput variant: its pairs of blocks stop when the verdict is "
     "known or after S seconds of them (default 20)"),
)  # fmt: skip
_AXES = (("batch_sizes", "--batch-sizes", "tune tries x2 and x4 itself"),
         ("dtypes", "--dtypes", "tune tries the others the device has"),
         ("compile", "--compile", "tune tries the modes the device has"),
         ("threads", "--threads", "tune tries 1 up to the physical cores"))  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    """`bench run`'s flags (the recipe, --config, --out, --resume, --dry-run, --profile), then tune's own."""
    # a tune is one process (never DDP) and starts from step 0 (its variants must share the recipe)
    run_arguments(
        p, leave_out=("--nproc", "--dist-timeout", "--save-checkpoint", "--init-from", "--trust-checkpoint")
    )
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


# (flag, dest, kind, lowest, highest, what): one bound each way, both stated in the refusal
BOUNDS = {
    "repeats": ("--repeats", int, 4, 1000, "a whole number of pairs of blocks from 4 (fewer can never give a "
                "significant difference) to 1000"),
    "block_seconds": ("--block-seconds", float, 0.01, 60.0, "seconds from 0.01 to 60"),
    "time_cap": ("--time-cap", float, 1.0, 10.0, "a factor from 1 to 10"),
    "max_seconds": ("--max-seconds", float, 1.0, 3600.0, "seconds from 1 to 3600"),
}  # fmt: skip


def _bounded(value: object, key: str) -> float:
    """value as BOUNDS[key] says, or ConfigError naming both bounds."""
    flag, kind, low, high, what = BOUNDS[key]
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError
        x = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{flag} {value}: expected {what}") from None
    if not (low <= x <= high):  # NaN fails both
        raise ConfigError(f"{flag} {value}: expected {what}")
    return x


def options_from_args(args: argparse.Namespace, stored: dict | None = None) -> TuneOptions:
    """tune's options from the flags, over the stored ones (--resume, already checked), over the defaults."""
    from bench.tune.runner import TuneOptions

    base = dict(stored or {})
    if args.tips is not None:
        tips = [t.strip().replace("-", "_") for t in args.tips.split(",") if t.strip()]
        unknown = [t for t in tips if t not in TIPS]
        if not tips or unknown:
            raise ConfigError(f"--tips {args.tips}: {'unknown tip(s) ' + ', '.join(unknown) if unknown else 'empty'}; "
                              f"choose from {', '.join(TIPS)}")  # fmt: skip
        base["tips"] = tips
    for key in BOUNDS:
        if getattr(args, key, None) is not None:
            base[key] = _bounded(getattr(args, key), key)
    if args.profile is not None:
        try:
            steps = int(args.profile)
        except (TypeError, ValueError):
            steps = -1
        if not 0 <= steps <= 200:
            raise ConfigError(
                f"--profile {args.profile}: expected a number of steps from 0 (no profile) to 200"
            )
        base["profile_steps"] = steps
    base["tips"] = tuple(base.get("tips") or TIPS)
    known = set(TuneOptions.__dataclass_fields__)
    return TuneOptions(**{k: v for k, v in base.items() if k in known})


def stored_options(out: Path, block: object) -> dict:
    """sweep.json's "tune" block, checked as the flags are: a damaged block is refused as damaged (never blamed
    on options the user did not give)."""
    from bench.tune.runner import TuneOptions

    def damaged(why: str) -> ResultsError:
        return ResultsError(f"{out}/sweep.json: its 'tune' block is damaged ({why}): the options its runs were "
                            f"measured with are unknown; start the tune again with another --out")  # fmt: skip

    if not isinstance(block, dict):
        raise damaged(f"expected a table, got {type(block).__name__}")
    known = set(TuneOptions.__dataclass_fields__)
    unknown = sorted(set(block) - known)
    if unknown:
        raise damaged(f"unknown key(s) {', '.join(map(str, unknown))}")
    out_block = dict(block)
    tips = block.get("tips")
    if not isinstance(tips, list) or not tips or not all(isinstance(t, str) and t in TIPS for t in tips):
        raise damaged(f"tips {tips!r:.60}")
    for key in BOUNDS:
        if key in block:
            try:
                out_block[key] = _bounded(block[key], key)
            except Exception:  # noqa: BLE001 - ConfigError words it as a flag; here it is the file
                raise damaged(f"{key} {block[key]!r:.40}") from None
    for key in ("warmup_steps", "profile_steps"):
        v = block.get(key, 0)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10_000:
            raise damaged(f"{key} {v!r:.40}")
    return out_block


def stored_recipe(out: Path, spec: object) -> BenchConfig:
    """sweep.json's "spec" (the tune's recipe), read as it is on disk: a damaged one is refused, never taken
    for the reference recipe."""
    if not (
        isinstance(spec, dict) and all(isinstance(spec.get(k), dict) for k in ("model", "train", "sweep"))
    ):
        raise ResultsError(f"{out}/sweep.json: its 'spec' (the tune's recipe) is damaged ({spec!r:.60}): the recipe "
                           f"its runs trained is unknown; start the tune again with another --out")  # fmt: skip
    try:
        return config_from_dict(spec)
    except ConfigError as e:
        raise ResultsError(f"{out}/sweep.json: {e}; start the tune again with another --out") from None


def check_one_recipe(cfg: BenchConfig) -> None:
    """tune measures around one recipe: one value per sweep axis (the devices excepted)."""
    for name, flag, hint in _AXES:
        values = getattr(cfg.sweep, name)
        if len(values) != 1:
            raise ConfigError(
                f"{flag} {','.join('default' if v is None else str(v) for v in values)}: bench tune measures around "
                f"one recipe, so give one value ({hint})"
            )


def run(args: argparse.Namespace) -> int:
    import torch

    from bench.devices import DeviceUnavailable
    from bench.runner import Interrupted, Sweep, resolve_devices
    from bench.tune.runner import TuneOptions, Tuner

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
        old = read_json(results.sweep_path)  # as on disk: read_sweep would read a damaged spec as {}
        if "tune" not in old:
            raise ResultsError(f"{out} holds a `bench run` sweep, not a tune: choose another --out")
        stored = stored_options(out, old["tune"])
        old_cfg = stored_recipe(out, old.get("spec"))
        if not _config_flags_given(args):
            cfg = old_cfg  # the tune's own recipe
        elif old_cfg.to_dict() != cfg.to_dict():
            raise ResultsError(f"{out} holds a tune of another recipe: resume it with `bench tune --out {out} --resume` "
                               "alone, or the same flags as its sweep.json 'command'")  # fmt: skip
    elif args.resume:
        raise ResultsError(
            f"{out} holds no tune to resume (no sweep.json): run without --resume to start one there"
        )
    options = options_from_args(args, stored)
    if stored is not None:
        was = {**TuneOptions(tips=tuple(stored["tips"])).to_dict(), **stored, "profile_steps": 0}
        now = {**options.to_dict(), "profile_steps": 0}
        differ = [k for k in now if now[k] != was.get(k)]
        if differ:
            given = ", ".join(
                f"{_flag(k)} {_value(now[k])} (the tune used {_value(was.get(k))})" for k in differ
            )
            raise ResultsError(f"{out} holds a tune measured with other options: {given}; resume it without "
                               f"{', '.join(_flag(k) for k in differ)}, or choose another --out")  # fmt: skip
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
    plans = {
        name: plan_device(name, dev, cfg, hw, options.tips, torch.get_num_threads())
        for name, dev in devices.items()
        if dev is not None
    }
    if args.dry_run:
        _print_plan(plans, devices, cfg, options)
        return 0
    sweep = Sweep(cfg, out, hw, ["bench", *getattr(args, "argv", [])], progress=not args.no_progress,
                  dataset=dataset)  # fmt: skip
    statuses: dict[str, str] = {}
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
    args.results_dir = out  # bench.cli prints its tips table (reports/), after this returns
    print(f"report: bench report {out} (--html for the page)", file=sys.stderr)
    failed = [r for r, s in statuses.items() if s == "failed"]
    if failed:
        print(f"{len(failed)} variant(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _value(v: object) -> str:
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def _print_plan(plans: dict, devices: dict, cfg: BenchConfig, options: TuneOptions) -> None:
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
        n = sum(1 for v in variants if v.measure == "throughput" and not v.unavailable)
        if n:
            print(f"  throughput: {n} variant(s) (and their best combination, when two or more gain), each at least "
                  f"{options.repeats} pairs of blocks and at most {options.max_seconds:g} s of them: up to "
                  f"~{(n + 1) * options.max_seconds / 60:.1f} min plus warm-ups (a compile: 10 to 60 s on a small "
                  "CPU)")  # fmt: skip
