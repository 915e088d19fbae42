"""The `hwinfo` command: devices, features, peak FLOP/s per dtype, memory bandwidth, energy counters, and
(with --measure) a timed matmul per dtype and a STREAM bandwidth measurement per device."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from typing import Any

from hwinfo import interrupts, probe
from hwinfo.cliparse import OneLineParser
from hwinfo.render import render_text

_DTYPES = ("fp32", "tf32", "bf16", "fp16")


def _dtype_list(text: str) -> list[str]:
    dtypes = list(dict.fromkeys(d.strip() for d in text.split(",") if d.strip()))  # in order, once each
    bad = [d for d in dtypes if d not in _DTYPES]
    if bad or not dtypes:
        raise argparse.ArgumentTypeError(
            f"unknown dtype {','.join(bad) or text!r}; choose from {','.join(_DTYPES)}"
        )
    return dtypes


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="hwinfo",
        description="What this machine has (CPU, GPUs, what PyTorch can use) and each device's peak FLOP/s per dtype.",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the snapshot as JSON (schema devicebench-hwinfo/2)"
    )
    parser.add_argument(
        "--measure",
        action="store_true",
        help="also time a matmul per dtype and measure memory bandwidth (STREAM copy and triad) on every "
        "device, reported beside the spec figures (a few seconds per device)",
    )
    parser.add_argument(
        "--dtypes",
        type=_dtype_list,
        default=list(_DTYPES),
        metavar="LIST",
        help="comma-separated dtypes to report and measure (default: fp32,tf32,bf16,fp16)",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="ask PyTorch again instead of reusing its cached answer (cached per torch install, "
        "environment and device nodes, so that hwinfo answers in well under a second)",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback on errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run hwinfo; results on stdout, progress and errors on stderr. Returns the exit status."""
    args = build_parser().parse_args(argv)
    with interrupts.installed("hwinfo"):  # a signal ends it at once, or at the next repeat of a measurement
        code = _main(args)
        if interrupts.pending() is not None and code in (130, 143):
            interrupts.end_process(code)  # a real signal, everything written: without torch's slow teardown
    return code


def _main(args: argparse.Namespace) -> int:
    try:

        def progress(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

        snap = probe.build_snapshot(
            measure=args.measure,
            dtypes=args.dtypes,
            progress=progress,
            torch_cache=True,
            refresh=args.refresh,
        )
        if args.json:
            print(json.dumps(strict_json(snap), indent=2, allow_nan=False))
        else:
            print(render_text(snap), end="")
        sys.stdout.flush()  # a closed pipe shows here, inside the try
    except (
        KeyboardInterrupt
    ) as e:  # hwinfo.interrupts.Stop: SIGTERM 143, Ctrl-C 130, nothing printed on stdout
        print(f"hwinfo: interrupted by {getattr(e, 'signal_name', 'Ctrl-C')}", file=sys.stderr)
        return getattr(e, "exit_code", 130)
    except BrokenPipeError:  # `hwinfo --json | head`: the reader left, nothing to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        print(
            f"hwinfo: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


def strict_json(value: Any) -> Any:
    """The value with every non-finite float (NaN, inf) as None: JSON has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
