"""The gate's one error type, and reading and writing its JSON files so that every failure is one line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench.results import atomic_write_json
from bench.userfiles import read_user_text

BASELINE_SCHEMA_PREFIX = "devicebench-gate/"


class GateError(RuntimeError):
    """A usage, input or setup problem: bad flags, an unreadable or mismatched file. Exit 2."""

    exit_code = 2


def read_json(path: str | Path, what: str, missing_hint: str = "") -> Any:
    """The JSON in `path`; every way of failing to read it is a GateError naming `what` and the file."""
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise GateError(f"{what} {p} not found{missing_hint}")
    text = read_user_text(p, what=what, error=GateError, hint="is it the right file?")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise GateError(f"{what} {p} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise GateError(f"{what} {p} is not usable JSON (nested too deeply)") from None


def is_gate_baseline(data: object) -> bool:
    schema = data.get("schema") if isinstance(data, dict) else None
    return isinstance(schema, str) and schema.startswith(BASELINE_SCHEMA_PREFIX)


def check_baseline_target(path: Path) -> None:
    """Refuse, before anything is measured, a --update-baseline target that cannot or must not be written.

    A directory, a place that cannot be created or written, and an existing file that is not a gate
    baseline (a pytest-benchmark input, a README) are refused; an existing gate baseline is replaced.
    """
    if path.is_dir():
        raise GateError(f"--baseline {path} is a directory: name a file, e.g. {path / 'gate-baseline.json'}")
    if path.exists() or path.is_symlink():
        try:
            data = read_json(path, "--baseline")
        except GateError:
            data = None
        if not is_gate_baseline(data):
            raise GateError(
                f"--baseline {path} exists and is not a gate baseline: refusing to overwrite it; "
                "remove it or name another file"
            )
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # atomic_write_json creates the missing directories
    if not parent.is_dir():
        raise GateError(f"cannot write --baseline {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GateError(f"cannot write --baseline {path}: {parent} is not writable")


def write_baseline(path: Path, data: dict) -> None:
    """Atomically (temp file beside it, then rename): an interrupted write leaves the old baseline whole."""
    try:
        atomic_write_json(path, data)
    except OSError as e:
        raise GateError(f"could not write the baseline {path}: {e.strerror or e}") from None
