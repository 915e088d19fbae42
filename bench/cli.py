"""`bench`: run sweeps, report on them, gate CI on them, import nanoGPT logs.

Each subcommand's module is imported only when that subcommand runs, so `bench --help` is instant.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from collections.abc import Iterator

from hwinfo.cliparse import OneLineParser

# subcommand -> (module, help). Each module has add_arguments(parser) and run(args) -> int.
SUBCOMMANDS = {
    "run": ("bench.run_cmd", "train the shared GPT on each device and record every step"),
    "tune": ("bench.tune.cli", "measure what each common tip is worth on each device, and the fastest setup"),
    "report": ("reports.cli", "summarise results directories: terminal table, HTML page, diagnosis"),
    "gate": ("bench.gate.cli", "CI regression gate on ms/iter, machine speed cancelled by a reference step"),
    "import": ("bench.importers.cli", "turn nanoGPT train.py logs into results directories"),
    "sample": ("bench.sample", "print text from a run's checkpoint or a nanoGPT ckpt.pt"),
}


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


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI time-out, `timeout`, `docker stop`), handled as Ctrl-C is: runs end interrupted, resumable."""

    signal_name = "SIGTERM"


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    args = build_parser(only=command).parse_args(argv)
    args.argv = argv
    module = importlib.import_module(SUBCOMMANDS[command][0])
    try:
        with _sigterm_as_interrupt():
            return int(module.run(args) or 0)
    except KeyboardInterrupt as e:
        name = getattr(e, "signal_name", "Ctrl-C")
        print(f"interrupted by {name}", file=sys.stderr)
        return 143 if name == "SIGTERM" else 130
    except Exception as e:  # noqa: BLE001 - an error ends as one line; --debug shows the traceback
        if args.debug:
            raise
        # Errors a user can cause carry exit_code = 2 (bad usage, config, device, results directory).
        code = getattr(e, "exit_code", 1)
        hint = "" if code == 2 else " (run with --debug for the traceback)"
        print(f"bench {command}: error: {e}{hint}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
