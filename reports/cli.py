"""`bench report`: a terminal summary always; one self-contained HTML page with --html."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

FORMATS = ("text", "md", "csv", "json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "results", nargs="*", metavar="RESULTS_DIR",
        help="results directories (several machines merge into one report; a folder of them expands); "
        "default: the newest directory under ./results",
    )  # fmt: skip
    p.add_argument(
        "--html", nargs="?", const="", default=None, metavar="FILE",
        help="also write one self-contained HTML page (default FILE: <first RESULTS_DIR>/report.html)",
    )  # fmt: skip
    p.add_argument("--format", choices=FORMATS, default="text", help="terminal summary format (default text)")


def run(args: argparse.Namespace) -> int:
    from reports.diagnosis import diagnose
    from reports.load import expand_paths, load_results, newest_results_dir
    from reports.summary import render

    t0 = time.perf_counter()
    paths = [Path(p) for p in args.results] or [newest_results_dir()]
    dirs = expand_paths(paths)
    results = load_results(dirs)
    findings = diagnose(results)
    sys.stdout.write(render(results, findings, args.format))
    if args.html is not None:
        from reports.html import write_html

        out = Path(args.html) if args.html else dirs[0] / "report.html"
        write_html(results, findings, out)
        print(f"report: {out} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0
