"""`bench report`: a terminal summary always; one self-contained HTML page with --html."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench.results import WRITTEN_NAMES, ResultsError
from reports.words import MAX_FINDINGS

FORMATS = ("text", "md", "csv", "json")
HTML_SUFFIXES = (".html", ".htm")
MAX_WARNING_LINES = 20  # on stderr; the HTML page and --format json carry every one


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "results", nargs="*", metavar="RESULTS_DIR",
        help="results directories (several machines merge into one report; a folder of them expands); "
        "default: the newest directory under ./results",
    )  # fmt: skip
    p.add_argument(
        "--html", nargs="?", const="", default=None, metavar="FILE.html",
        help="also write one self-contained HTML page: to FILE.html when given (its name must end in .html or "
        ".htm), else to <first RESULTS_DIR>/report.html. A value that does not end in .html is a results "
        "directory: `--html A B` reports on A and B",
    )  # fmt: skip
    p.add_argument("--format", choices=FORMATS, default="text", help="terminal summary format (default text)")
    p.add_argument(
        "--all", action="store_true", dest="all_findings",
        help=f"every finding in the terminal (default: the {MAX_FINDINGS} that explain most of the step or gap)",
    )  # fmt: skip
    p.add_argument("--details", action="store_true", help="each finding's evidence (its figures) under it")


def is_html_name(value: str | Path) -> bool:
    return Path(value).suffix.lower() in HTML_SUFFIXES


def split_html_arg(args: argparse.Namespace) -> tuple[list[str], str | None]:
    """(results directories in the order given, the HTML file name or "" for the default, or None).

    `--html X` where X is not an .html name: X was a results directory that argparse handed to --html.
    """
    dirs, html = list(args.results), args.html
    argv = list(getattr(args, "argv", None) or [])
    if not html or is_html_name(html) or f"--html={html}" in argv:
        return dirs, html  # `--html=X` always names the page (and X must end in .html)
    at = next((i for i in range(len(argv) - 1) if argv[i] == "--html" and argv[i + 1] == html), None)
    before = 0
    for token in argv[:at] if at is not None else []:
        if before < len(dirs) and token == dirs[before]:
            before += 1
    return dirs[:before] + [html] + dirs[before:], ""


def output_path(html: str, dirs: list[Path]) -> Path:
    """Where the page goes; refuses, in one line, any path that could overwrite an input or a results file."""
    out = Path(html) if html else dirs[0] / "report.html"
    try:
        _refuse_unsafe_output(out, dirs)
    except OSError as e:
        raise ResultsError(f"--html={out}: {e.strerror or e}: name another file") from None
    return out


def _refuse_unsafe_output(out: Path, dirs: list[Path]) -> None:
    target = out.resolve()
    inputs = {d.resolve() for d in dirs}
    if target in inputs or (target / "sweep.json").exists():
        raise ResultsError(f"--html={out} is a results directory: name a file ending in .html")
    if out.is_dir():
        raise ResultsError(f"--html={out} is a directory: name a file ending in .html")
    if target.name in WRITTEN_NAMES or target.suffix.lower() == ".csv":
        raise ResultsError(f"--html={out} is a file devicebench wrote ({target.name}): name another file")
    if not is_html_name(out) or not is_html_name(target):
        raise ResultsError(
            f"--html={out}: the report is an HTML page; name a file ending in .html (a results file, "
            "or any other, is never overwritten)"
        )


def _write_stdout(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `bench report | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def run(args: argparse.Namespace) -> int:
    from reports.diagnosis import diagnose  # pandas and matplotlib: only when a report is made
    from reports.load import expand_paths, load_results, newest_results_dir
    from reports.summary import one_line, render

    t0 = time.perf_counter()
    names, html = split_html_arg(args)
    paths = [Path(p) for p in names] or [newest_results_dir()]
    dirs = expand_paths(paths)
    out = output_path(html, dirs) if html is not None else None
    results = load_results(dirs)
    findings = diagnose(results)  # a finding that cannot be made adds a warning naming its directory
    text = render(
        results, findings, args.format, show_all=getattr(args, "all_findings", False),
        details=getattr(args, "details", False),
    )  # fmt: skip
    for w in results.warnings[:MAX_WARNING_LINES]:
        print(f"bench report: warning: {one_line(w)}", file=sys.stderr)
    if len(results.warnings) > MAX_WARNING_LINES:
        more = len(results.warnings) - MAX_WARNING_LINES
        print(
            f"bench report: warning: ... and {more} more (all of them in --html and --format json)",
            file=sys.stderr,
        )
    _write_stdout(text)
    if out is not None:
        from reports.html import write_html

        try:
            write_html(results, findings, out)
        except OSError as e:
            why = e.strerror or str(e)
            raise ResultsError(
                f"cannot write {out} ({why}): name another file with --html=FILE.html"
            ) from None
        print(f"report: {out} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0
