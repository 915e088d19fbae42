"""`bench run`: parse the sweep from TOML and flags, print the plan or run it."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.config import RUN_OPTIONS

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


def add_arguments(p: argparse.ArgumentParser, leave_out: tuple[str, ...] = ()) -> None:
    """`bench run`'s flags: the run options (less `leave_out`), then one flag per config setting
    (bench.config.settings())."""
    from bench.config import settings

    p.usage = _USAGE
    for flag, kw in RUN_OPTIONS:
        if flag not in leave_out:
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


# --dist-timeout's range: below a second the ranks cannot even meet; above this the timeout overflows
# torch.distributed's int milliseconds (about 24.8 days, doubled for the rendezvous).
DIST_TIMEOUT_S = (1.0, 1e6)


def _positive(
    value: str | None, flag: str, kind: type = int, bounds: tuple[float, float] | None = None
) -> int | float | None:
    """A run option's number, > 0 (or within `bounds`); None when absent."""
    from bench.config import ConfigError

    if value is None:
        return None
    try:
        number = kind(value)
    except ValueError:
        number = 0
    low, high = bounds or (0, float("inf"))
    if not (number > 0 and low <= number < float("inf") and number <= high):
        noun = "an integer" if kind is int else "a number of seconds"
        allowed = f"from {low:.10g} to {high:.10g}" if bounds else "> 0"
        raise ConfigError(f"{flag} {value}: expected {noun} {allowed}")
    return number


# --profile N's ceiling: the profiler keeps every event of every profiled step in memory until the trace is read
# (a few MB per step of the reference model); 5 to 20 steps give stable medians.
PROFILE_MAX_STEPS = 200


def _profile_steps(value: int | str) -> int:
    """--profile's N: absent 0, bare 5, else an integer from 1 to PROFILE_MAX_STEPS."""
    from bench.config import ConfigError

    if isinstance(value, int):
        return value
    try:
        steps = int(value)
    except ValueError:
        steps = 0
    if not 1 <= steps <= PROFILE_MAX_STEPS:
        raise ConfigError(
            f"--profile {value}: expected a number of steps >= 1 and at most {PROFILE_MAX_STEPS} (bare --profile: 5; "
            "the profiler holds every step's events in memory, and 5 to 20 steps are enough)"
        )
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
    if hasattr(args, "nproc"):
        args.nproc = _positive(args.nproc, "--nproc")
        timeout = _positive(args.dist_timeout, "--dist-timeout", float, DIST_TIMEOUT_S)
        args.dist_timeout = timeout if timeout is not None else 300.0
    if args.config is not None and not args.config.strip():
        raise ConfigError("--config '': expected the path of a TOML file")
    if args.out is not None and not args.out.strip():
        raise ConfigError("--out '': expected a directory path (leave --out out for results/<date-time>)")
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


# What one rank costs before its model: a Python process with torch, torch.distributed and bench imported and a
# gloo group joined (resident memory measured ~230-300 MB on torch 2.13 CPU builds), and the CPU seconds of
# that start-up (imports, rendezvous: ~3 s of one core, measured on a 2-core machine).
RANK_BASE_BYTES = 300 * 2**20
RANK_START_CPU_S = 3.0


def nproc_cost(cfg, nproc: int, devices: dict) -> tuple[list[str], str | None]:  # noqa: ANN001
    """What --nproc N costs on this machine: (lines to say, a refusal or None). Memory is estimated per rank
    (RANK_BASE_BYTES plus the model, gradients, AdamW state and the activations of its slice of the largest
    batch) times N, and refused beyond 90% of the memory available now."""
    import psutil

    from hwinfo.units import nbytes
    from model.memory import estimate_train_bytes

    cores = psutil.cpu_count(logical=True) or 1
    shared = [d for d in devices.values() if d is not None and d.ranks_share_device]
    per_rank = RANK_BASE_BYTES + max(
        estimate_train_bytes(cfg.model, max(b // nproc, 1), dtype)["total"]
        for b in cfg.sweep.batch_sizes
        for dtype in cfg.sweep.dtypes
    )
    need = nproc * per_rank
    available = psutil.virtual_memory().available
    lines = [
        f"--nproc {nproc}: ~{nbytes(need)} of memory ({nproc} x ~{nbytes(per_rank)} per rank: a Python process with "
        f"torch, and the model, gradients, AdamW state and activations of its batch slice; an estimate), "
        f"{nbytes(available)} available"
    ]
    if shared and nproc > cores:
        lines.append(
            f"--nproc {nproc} on {cores} logical core(s): {nproc / cores:.3g} processes per core; the ranks take turns "
            f"on the cores, so ms/iter measures that contention, and starting them takes ~"
            f"{_seconds(nproc * RANK_START_CPU_S / cores)}"
        )
    refusal = None
    if need > 0.9 * available:
        fits = int(0.9 * available // per_rank)
        refusal = (
            f"--nproc {nproc}: the ranks need ~{nbytes(need)} of memory ({nproc} x ~{nbytes(per_rank)}) but "
            f"{nbytes(available)} is available: use --nproc {max(fits, 1)} or fewer"
            + ("" if fits >= 1 else " (even one rank may not fit)")
        )
    return lines, refusal


def _seconds(s: float) -> str:
    """A rough duration that never reads as zero: '<1 s', '~12 s', '~3.5 min'."""
    if s < 1:
        return "<1 s"
    return f"~{s:.0f} s" if s < 120 else f"~{s / 60:.1f} min"


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
        est = estimate_train_bytes(cfg.model, s.batch_size, s.dtype)
        need = est["total"]
        if free is not None and need > 0.9 * free:
            fixed = need - est["activations"]  # weights, gradients, AdamW state: whatever the batch
            per_sample = est["activations"] / s.batch_size
            fits = int((0.9 * free - fixed) // per_sample) if per_sample > 0 else 0
            if fits >= 1:
                fix = f"batch {fits} or smaller should fit"
            else:
                fix = (
                    f"the model alone (weights, gradients, AdamW state: ~{nbytes(fixed)}) does not fit at any "
                    "batch size: a smaller --n-layer or --n-embd"
                )
            out.append(
                f"{s.run_id} needs ~{nbytes(need)} (estimate: weights, gradients, AdamW state, activations) but "
                f"{s.device} has {nbytes(free)} free: it will likely fail with out of memory; {fix}"
            )
    return out


class _RankZeroSaid(Exception):
    """An error rank 0 has printed; the other ranks end with its exit code and say nothing."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _on_rank_zero(world, fn):  # noqa: ANN001, ANN202
    """fn() on rank 0 alone, its result (or its error) shared with every rank; fn() itself without a world."""
    if world is None:
        return fn()
    result, error = None, None
    if world.is_main:
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - re-raised below, after the other ranks know
            error = e
    code, result = world.broadcast((getattr(error, "exit_code", 1) if error else None, result))
    if error is not None:
        raise error
    if code is not None:
        raise _RankZeroSaid(code)
    return result


def _check_world_batches(cfg: BenchConfig, world_size: int) -> None:
    from bench.config import ConfigError

    bad = [b for b in cfg.sweep.batch_sizes if b % world_size]
    if bad:
        raise ConfigError(
            f"--batch-sizes {','.join(map(str, bad))}: each batch size is the global batch and must be a multiple of "
            f"the {world_size} ranks (every rank trains an equal slice of it)"
        )


def run(args: argparse.Namespace) -> int:
    """`bench run`: the sweep in this process, under torchrun on every rank, or (--nproc) on N ranks started
    here by torch.distributed's elastic launcher."""
    from bench.config import ConfigError
    from bench.devices import DeviceUnavailable
    from bench.distributed import DistEnv, RankLost, World
    from bench.results import ResultsError

    env = DistEnv.from_environ()
    quiet = env is not None and not env.is_main  # rank 0 says what is wrong with the command line
    try:
        cfg = config_from_args(args)
        if env is not None and args.nproc is not None:
            raise ConfigError(
                "--nproc starts ranks on this machine; under torchrun leave it out (torchrun's --nproc-per-node "
                "sets the ranks)"
            )
    except ConfigError:
        if quiet:
            return 2
        raise
    init = None
    if getattr(args, "init_from", None) is not None:
        from bench.checkpoint import continue_from

        cfg, init = continue_from(args, cfg)
    if args.nproc is not None:
        from hwinfo.interrupts import unchecked

        with unchecked():  # the launcher keeps nothing: the ranks end their runs on the signal it passes on
            return _launch(args, cfg, args.nproc)
    args.init = init
    if env is None:
        return _run(args, cfg, None)
    world = World.start(env, args.dist_timeout)
    try:
        return _run(args, cfg, world)
    except _RankZeroSaid as e:
        return e.code
    except (RankLost, ConfigError, DeviceUnavailable, ResultsError) as e:
        if quiet and (e.exit_code == 2 or getattr(e, "agreed", False)):
            return e.exit_code  # every rank found the same; rank 0 has said it
        raise
    finally:
        world.close()


def _load_data(cfg: BenchConfig):  # noqa: ANN202
    """The text the sweep trains on (--data, else Tiny Shakespeare), checked: a bad --data, a wrong checksum or a
    vocab_size below the data's characters ends here, before any run."""
    from bench.config import ConfigError
    from model.dataset import CharDataset

    dataset = CharDataset.load(cfg.train.data, cfg.train.data_sha256)
    if dataset.tokenizer.vocab_size > cfg.model.vocab_size:
        raise ConfigError(
            f"vocab_size {cfg.model.vocab_size} is smaller than the {dataset.tokenizer.vocab_size} distinct "
            f"characters of the data: set --vocab-size {dataset.tokenizer.vocab_size} (TOML [model] vocab_size)"
        )
    need = cfg.model.block_size + 1
    for split in ("train", "val"):
        tokens = len(dataset.split(split))
        if tokens < need:
            raise ConfigError(
                f"--data {cfg.train.data}: its {split} split has {tokens} characters, too short for block_size "
                f"{cfg.model.block_size} (it needs at least {need}): give a longer text or a smaller --block-size"
            )
    return dataset


def _resolve(cfg: BenchConfig, env) -> tuple[dict, dict]:  # noqa: ANN001
    from bench.devices import DeviceUnavailable
    from bench.runner import resolve_devices

    devices, unavailable = resolve_devices(cfg.sweep.devices, env)
    if len(unavailable) == len(devices):
        raise DeviceUnavailable("; ".join(unavailable.values()))
    return devices, unavailable


def _print_plan(
    cfg: BenchConfig, specs: list, hw: dict, devices: dict, unavailable: dict, nproc: int | None = None
) -> None:
    """The runs and a rough time for each. With --nproc N on a shared CPU the ranks take turns on its cores (a
    run takes N / cores times as long, at least) and their start-up is counted."""
    import psutil

    total = 0.0
    print(f"{len(specs)} run(s), {cfg.train.max_iters} iters each, model {cfg.model}")
    cores = psutil.cpu_count(logical=True) or 1
    for s in specs:
        dev = devices.get(s.device)
        est = None if dev is None else estimate_seconds(cfg, s, hw, dev)
        if est is not None and nproc and dev.ranks_share_device:
            # the same total work split over the ranks, but each rank's step has its own floor (launches, the
            # all-reduce), and the ranks take turns on the cores
            from dataclasses import replace

            one = estimate_seconds(cfg, replace(s, batch_size=max(s.batch_size // nproc, 1)), hw, dev) or 0.0
            est = max(est, one * nproc / cores)
        total += est or 0.0
        note = unavailable.get(s.device, "")
        est_txt = "skipped" if note else (_seconds(est) if est is not None else "unknown (peak unknown)")
        print(f"  {s.run_id:40s} {est_txt} {note}")
    if nproc:
        start = nproc * RANK_START_CPU_S / cores
        total += start
        print(f"  {'start-up of ' + str(nproc) + ' ranks':40s} {_seconds(start)}")
    print(f"estimated total: {_seconds(total)} (rough: from spec peaks, no measurement)")


def _stored_config(args: argparse.Namespace, cfg: BenchConfig) -> BenchConfig:
    """--resume alone: the sweep's own config, from its sweep.json. A tune's directory is refused: a run
    added to it would join its tips and time-to-loss sets."""
    if not (args.resume and args.out and (Path(args.out) / "sweep.json").exists()):
        return cfg
    from bench.config import config_from_dict
    from bench.results import ResultsDir, ResultsError

    sweep = ResultsDir(Path(args.out)).read_sweep()
    if "tune" in sweep:
        raise ResultsError(
            f"{args.out} holds a `bench tune`, not a `bench run` sweep: complete it with `bench tune --out "
            f"{args.out} --resume`, or choose another --out"
        )
    return cfg if _config_flags_given(args) else config_from_dict(sweep["spec"])


def _launch(args: argparse.Namespace, cfg: BenchConfig, nproc: int) -> int:
    """`bench run --nproc N`: check what can be checked here, then start N ranks of `bench run`."""
    import os

    import psutil

    import hwinfo
    from bench.config import ConfigError
    from bench.distributed import DistEnv, launch_local, worker_argv
    from bench.results import ResultsError
    from bench.runner import plan

    cfg = _stored_config(args, cfg)
    _check_world_batches(cfg, nproc)
    _load_data(cfg)
    last = DistEnv(rank=nproc - 1, world_size=nproc, local_rank=nproc - 1, local_world_size=nproc, node_rank=0,
                   nnodes=1)  # fmt: skip
    devices, unavailable = _resolve(cfg, last)  # the last rank needs the most devices
    if args.dry_run:
        for reason in unavailable.values():
            print(f"warning: {reason}; its runs will be recorded as skipped", file=sys.stderr)
        for line in nproc_cost(cfg, nproc, devices)[0]:
            print(line, file=sys.stderr)
        _print_plan(cfg, plan(cfg, devices, nproc), hwinfo.snapshot(), devices, unavailable, nproc)
        return 0
    out = Path(args.out or f"results/{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    if (out / "sweep.json").exists() and not args.resume:
        raise ResultsError(
            f"{out} already holds a sweep: pass --resume to complete it, or choose another --out"
        )
    lines, refusal = nproc_cost(cfg, nproc, devices)
    if refusal is not None:
        raise ConfigError(refusal)
    for line in lines:
        print(line, file=sys.stderr)
    omp = None
    if any(d is not None and d.ranks_share_device for d in devices.values()):
        omp = max(1, (psutil.cpu_count(logical=False) or 1) // nproc)
    threads = os.environ.get("OMP_NUM_THREADS") or omp
    note = f"; OMP_NUM_THREADS={threads} per rank" if threads else ""
    ranks = f"{nproc} rank{'s' if nproc != 1 else ''}"
    print(
        f"starting {ranks} of `bench run` with torch.distributed's launcher (standalone){note}",
        file=sys.stderr,
    )
    from hwinfo.interrupts import LAUNCHER_PID_ENV

    os.environ["DEVICEBENCH_NPROC"] = str(nproc)
    os.environ[LAUNCHER_PID_ENV] = str(
        os.getpid()
    )  # each rank dies with this process (interrupts.die_with_parent)
    try:
        return launch_local(nproc, worker_argv(list(getattr(args, "argv", [])), str(out)), omp)
    finally:
        os.environ.pop("DEVICEBENCH_NPROC", None)
        os.environ.pop(LAUNCHER_PID_ENV, None)


def _run(args: argparse.Namespace, cfg: BenchConfig, world) -> int:  # noqa: ANN001
    """The sweep in this process: alone, or as one rank of a torchrun job (`world`)."""
    import contextlib

    import hwinfo
    from bench.runner import Interrupted, Sweep, plan, resume_hint

    main = world is None or world.is_main
    cfg = _on_rank_zero(world, lambda: _stored_config(args, cfg))  # rank 0's sweep.json, on every node
    env = world.env if world is not None else None
    if world is not None:
        _check_world_batches(cfg, world.world_size)
    devices, unavailable = _resolve_agreed(cfg, world)
    if main:
        for reason in unavailable.values():
            print(f"warning: {reason}; its runs will be recorded as skipped", file=sys.stderr)
    specs = plan(cfg, devices, env.world_size if env else None)
    dataset = _load_data(cfg)
    if getattr(args, "init", None) is not None:
        args.init.check(dataset)
    hw = hwinfo.snapshot() if main else {}
    if main:  # warnings only once the command is known to be usable: an error is then the only line
        for warning in [*(cfg.validate() or []), *memory_warnings(cfg, specs, devices)]:
            print(f"warning: {warning}", file=sys.stderr)
    if args.dry_run:
        if main:
            _print_plan(cfg, specs, hw, devices, unavailable)
            from bench.checkpoint import plan_lines

            for line in plan_lines(
                cfg, len(specs), getattr(args, "init", None), getattr(args, "save_checkpoint", False)
            ):
                print(line)
        return 0
    out = Path(args.out or f"results/{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    sweep = Sweep(cfg, out, hw, ["bench", *getattr(args, "argv", [])], progress=not args.no_progress,
                  profile_steps=args.profile or 0, world=world, dataset=dataset)  # fmt: skip
    sweep.init, sweep.save_checkpoint = getattr(args, "init", None), getattr(args, "save_checkpoint", False)
    from hwinfo.interrupts import checked

    # until here a signal ends the command at once (nothing is written yet); from here, at the next step
    with contextlib.ExitStack() as held, checked():

        def begin() -> None:
            held.enter_context(sweep.results.lock(" ".join(sweep.argv)))
            sweep.prepare(resume=args.resume)

        _on_rank_zero(world, begin)
        if main:
            print(f"results: {out}", file=sys.stderr)
        try:
            statuses = sweep.run_all(specs, unavailable, resume=args.resume)
        except Interrupted as e:
            if main:
                print(f"interrupted by {e.signal_name} during {e.run_id}; finished runs are kept; complete them "
                      f"with: {resume_hint(out, world is not None)}", file=sys.stderr)  # fmt: skip
            return 143 if e.signal_name == "SIGTERM" else 130
    failed = [r for r, s in statuses.items() if s == "failed"]
    if main:
        print(out)
        if failed:
            print(f"{len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
    if world is not None:
        # The others wait for rank 0's last words: once one rank exits non-zero the launcher ends the rest.
        world.broadcast(None)
    return 1 if failed else 0


def _resolve_agreed(cfg: BenchConfig, world) -> tuple[dict, dict]:  # noqa: ANN001
    """The sweep's devices; under torchrun a device any rank cannot use is skipped by every rank."""
    from bench.devices import DeviceUnavailable
    from bench.runner import resolve_devices

    if world is None:
        return _resolve(cfg, None)
    devices, unavailable = resolve_devices(cfg.sweep.devices, world.env)
    names = world.broadcast(list(devices))  # rank 0's list, should the nodes' defaults differ
    if names != list(devices):
        devices, unavailable = resolve_devices(names, world.env)
    merged: dict[str, str] = {}
    for rank, theirs in enumerate(world.gather(unavailable)):
        for name, reason in theirs.items():
            merged.setdefault(name, reason if rank == 0 else f"rank {rank}: {reason}")
    devices = {name: (None if name in merged else dev) for name, dev in devices.items()}
    if len(merged) == len(devices):
        raise DeviceUnavailable("; ".join(merged.values()))
    return devices, merged
