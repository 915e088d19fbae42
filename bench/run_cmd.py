"""`bench run`: parse the sweep from TOML and flags, print the plan or run it."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.config import BenchConfig

_USAGE = "%(prog)s [--config FILE.toml] [--devices A,B,...] [--iters N] [--out DIR] [--resume] [--dry-run] [options]"
_GROUPS = {
    "sweep": "sweep axes and labels (TOML [sweep]; each axis is a comma list)",
    "train": "training (TOML [train])",
    "model": "model shape (TOML [model])",
}
# Flags that are gone, and the one line that says what to use instead (never re-meant silently).
_RETIRED = {
    "--warmup-iters": "--warmup-iters is gone: it meant the timing warm-up while TOML warmup_iters is the "
    "learning-rate warm-up; use --timing-warmup-iters N (steps kept out of the ms/iter medians) or "
    "--lr-warmup-iters N (the learning-rate warm-up)",
}


# `bench run`'s own options (not config settings); docs/config.md's table of them is made from this.
RUN_OPTIONS: tuple[tuple[str, dict], ...] = (
    ("--config", {"metavar": "FILE.toml", "help": "TOML file with [model], [train], [sweep] tables"}),
    ("--out", {"metavar": "DIR", "help": "results directory (default results/<date-time>)"}),
    ("--resume", {"action": "store_true", "help": "complete the runs of --out that did not finish"}),
    ("--dry-run", {"action": "store_true", "help": "print the plan and an estimated time, run nothing"}),
    ("--profile", {"nargs": "?", "const": 5, "default": 0, "metavar": "N",
                   "help": "after each run's final eval, profile N extra steps (default 5) into runs/<id>/profile.json"}),
    ("--no-progress", {"action": "store_true", "help": "no progress bars (one line per run still)"}),
)  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    """`bench run`'s flags: the run options, then one flag per config setting (bench.config.settings())."""
    from bench.config import settings

    p.usage = _USAGE
    for flag, kw in RUN_OPTIONS:
        p.add_argument(flag, **kw)
    for flag in _RETIRED:
        p.add_argument(flag, nargs="?", const="", dest=_retired_dest(flag), help=argparse.SUPPRESS)
    groups = {section: p.add_argument_group(title) for section, title in _GROUPS.items()}
    for s in settings():
        toml_key = "" if s.flag == "--" + s.name.replace("_", "-") else f"; TOML {s.name}"
        help_text = f"{s.help} (default: {s.default_text()}{toml_key})".replace("%", "%%")
        kw = {"dest": s.name, "default": None, "help": help_text}
        if s.is_bool:
            groups[s.section].add_argument(s.flag, action=argparse.BooleanOptionalAction, **kw)
        elif s.is_table:
            groups[s.section].add_argument(s.flag, action="append", metavar=s.metavar, **kw)
        else:
            groups[s.section].add_argument(s.flag, metavar=s.metavar, **kw)


def _retired_dest(flag: str) -> str:
    return "retired_" + flag.lstrip("-").replace("-", "_")


def _profile_steps(value: int | str) -> int:
    """--profile's N: absent 0, bare 5, else an integer >= 1."""
    from bench.config import ConfigError

    if isinstance(value, int):
        return value
    try:
        steps = int(value)
    except ValueError:
        steps = 0
    if steps < 1:
        raise ConfigError(f"--profile {value}: expected a number of steps >= 1 (bare --profile: 5)")
    return steps


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """Defaults, then the TOML file, then the flags; each value checked as its setting says.

    Also checks the run options that are usage errors (--profile N, retired flags) so that nothing
    starts on a bad command line; sets args.profile to its number of steps."""
    from bench.config import SECTIONS, BenchConfig, ConfigError, apply_values, load_toml, settings

    for flag, message in _RETIRED.items():
        if getattr(args, _retired_dest(flag), None) is not None:
            raise ConfigError(message)
    if hasattr(args, "profile"):
        args.profile = _profile_steps(args.profile)
    if args.config is not None and not args.config.strip():
        raise ConfigError("--config '': expected the path of a TOML file")
    cfg = load_toml(args.config) if args.config is not None else BenchConfig()
    flags: dict[str, dict] = {section: {} for section in SECTIONS}
    for s in settings():
        given = getattr(args, s.name, None)
        if given is not None:
            flags[s.section][s.name] = s.check(given, s.flag) if s.is_bool else s.from_text(given)
    cfg = apply_values(cfg, flags)
    cfg.validate()
    return cfg


def _config_flags_given(args: argparse.Namespace) -> bool:
    """Whether the command line sets any part of the config (then --resume checks it against the sweep's)."""
    from bench.config import settings

    return any(getattr(args, k, None) is not None for k in ("config", *(s.name for s in settings())))


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
    from model.dataset import CharDataset

    dataset = CharDataset.load(
        cfg.train.data, cfg.train.data_sha256
    )  # a bad --data ends here, before any run
    if dataset.tokenizer.vocab_size > cfg.model.vocab_size:
        from bench.config import ConfigError

        raise ConfigError(
            f"vocab_size {cfg.model.vocab_size} is smaller than the {dataset.tokenizer.vocab_size} distinct "
            f"characters of the data: set --vocab-size {dataset.tokenizer.vocab_size} (TOML [model] vocab_size)"
        )
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
                  profile_steps=args.profile or 0, dataset=dataset)  # fmt: skip
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
