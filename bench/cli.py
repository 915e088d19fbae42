"""`bench`: run sweeps, report on them, gate CI on them, import nanoGPT logs.

Each subcommand's module is imported only when that subcommand runs, so `bench --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from hwinfo import interrupts
from hwinfo.cliparse import OneLineParser

# subcommand -> (module, help). Each module has add_arguments(parser) and run(args) -> int.
SUBCOMMANDS = {
    "run": ("bench.run_cmd", "train the shared GPT on each device and record every step"),
    "tune": ("bench.tune.cli", "measure what each common tip is worth on each device, and the fastest setup"),
    "report": ("reports.cli", "summarise results directories: terminal table, HTML page, diagnosis"),
    "gate": ("bench.gate.cli", "CI regression gate on ms/iter, machine speed cancelled by a reference step"),
    "import": ("bench.importers.cli", "turn nanoGPT train.py logs into results directories"),
    "profile": ("bench.profile.cli", "read PyTorch profiler (Kineto) traces: the step breakdown, roofline"),
    "sample": ("bench.sample", "print text from a run's checkpoint or a nanoGPT ckpt.pt"),
}
# subcommand -> "module:function(results_dir) -> exit code" run after it, when it set args.results_dir: the
# words about what it recorded come from reports/, and bench/ never imports reports/ (only this table names it).
AFTERWARDS = {"tune": "reports.tips:print_after_tune"}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="bench",
        description="devicebench: why is my CPU run so much worse than the GPU run? Train one GPT on every "
        "device, time it honestly, and explain the gaps.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
        if name == only:
            importlib.import_module(module).add_arguments(p)
        else:
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


# The signal policy (hwinfo.interrupts): until a command has something to keep, a signal ends it at once;
# `bench run` and `tune` from the moment their results directory is prepared, and the gate during its trials,
# hold it until the next check point (a step, an eval batch, a trial) and end the run in progress interrupted.


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in SUBCOMMANDS:
        parser = build_parser()
        if command is None and not [a for a in argv if a != "--debug"]:  # bare `bench`: what it can do
            parser.print_help(sys.stderr)
            return 2
        parser.parse_args(argv)  # prints help or the usage error and exits
        return 2
    with interrupts.installed(f"bench {command}"):
        # a rank under torchrun or --nproc: it dies with its launcher
        if os.environ.get("WORLD_SIZE") is not None:
            interrupts.die_with_parent()
        code = _dispatch(command, argv)
        if interrupts.pending() is not None and code in (130, 143):  # a real signal: everything is written
            interrupts.end_process(code)
    return code


def _dispatch(command: str, argv: list[str]) -> int:
    args = build_parser(only=command).parse_args(argv)
    args.argv = argv
    try:
        module = importlib.import_module(SUBCOMMANDS[command][0])
        code = int(module.run(args) or 0)
        after = AFTERWARDS.get(command)
        if after and code in (0, 1) and getattr(args, "results_dir", None) is not None:
            name, func = after.split(":")
            code = max(code, int(getattr(importlib.import_module(name), func)(args.results_dir)))
    except KeyboardInterrupt as e:
        name = getattr(e, "signal_name", "Ctrl-C")
        print(f"bench {command}: interrupted by {name}", file=sys.stderr)
        return getattr(e, "exit_code", 130)
    except Exception as e:  # noqa: BLE001 - an error ends as one line; --debug shows the traceback
        if args.debug:
            raise
        # Errors a user can cause carry exit_code = 2 (bad usage, config, device, results directory).
        code = getattr(e, "exit_code", 1)
        hint = "" if code == 2 else " (run with --debug for the traceback)"
        print(f"bench {command}: error: {e}{hint}", file=sys.stderr)
        return code
    return code


if __name__ == "__main__":
    sys.exit(main())
