"""The results directory format, coded once: schema names and versions, checks, strict JSON, atomic
writes, the writer lock, the CSV writers and the readers. bench writes through it, reports and the
tests' fixture writer read and write through it. No torch, no pandas.

Layout (docs/results-schema.md, schema devicebench/4; a reader accepts every older version):
  RESULTS/sweep.json
  RESULTS/runs/<run_id>/run.json, steps.csv (iter,ms,loss,lr,phase), evals.csv (iter,split,loss,ms)
  RESULTS/runs/<run_id>/profile.json  (optional; docs/profile-schema.md, devicebench-profile/2)
  RESULTS/.lock                       (held by the one writer; docs/results-schema.md)
`phase` in steps.csv is "warmup" for steps kept out of the medians, "timed", or "after_eval" (an
imported log's step whose time includes the eval before it); a steps.csv without the column (schema 1)
reads as "warmup" for the first summary.warmup_iters steps and "timed" after.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import secrets
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from hwinfo import interrupts

SCHEMA_NAME = "devicebench"
SCHEMA_VERSION = 4  # the one version constant: bump it for new run.json / sweep.json fields
SCHEMA = f"{SCHEMA_NAME}/{SCHEMA_VERSION}"
PROFILE_SCHEMA_NAME = "devicebench-profile"
PROFILE_SCHEMA_VERSION = 2  # 2: the roofline (bytes, FLOPs and bound per category)
PROFILE_SCHEMA = f"{PROFILE_SCHEMA_NAME}/{PROFILE_SCHEMA_VERSION}"

STEPS_HEADER = ["iter", "ms", "loss", "lr", "phase"]
EVALS_HEADER = ["iter", "split", "loss", "ms"]
STATUSES = ("ok", "failed", "interrupted", "running", "skipped")
PHASES = ("warmup", "timed", "after_eval")
LOCK_NAME = ".lock"
# Every file name devicebench writes inside a results directory (a report may never overwrite one).
WRITTEN_NAMES = ("sweep.json", "run.json", "profile.json", "steps.csv", "evals.csv", "checkpoint.pt", "sample.txt",
                 LOCK_NAME)  # fmt: skip


class ResultsError(RuntimeError):
    """A results directory that cannot be used (corrupt, newer schema, already in use)."""

    exit_code = 2


# --- labels and strict JSON -----------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_label(text: Any, max_len: int = 100) -> str:
    """A run id or host label reduced to [A-Za-z0-9._-]: never a path separator, never '.' or '..'.

    Runs of other characters become '-'; leading dots and dashes are dropped; empty becomes 'x'.
    """
    out = _UNSAFE.sub("-", str(text)).lstrip(".-")[:max_len].rstrip(".-")
    return out or "x"


def strict(data: Any) -> Any:
    """data with every non-finite float (NaN, inf) replaced by None, so it serialises as strict JSON."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: strict(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict(v) for v in data]
    if hasattr(data, "item") and not isinstance(data, (str, bytes)):
        return strict(data.item())
    return data


def dumps_strict(data: Any, indent: int | None = 2) -> str:
    """Strict JSON (null, never NaN or Infinity)."""
    return json.dumps(strict(data), indent=indent, default=_json_default, allow_nan=False)


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# --- atomic writes --------------------------------------------------------------------------------


def _temp_beside(path: Path) -> tuple[int, Path]:
    """A new file beside path, created with mode 0o666 so the kernel applies the umask (mkstemp's 0600
    would make results unreadable to a teammate)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name[:180]}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666
            ), tmp
        except FileExistsError:
            continue
    raise ResultsError(f"cannot create a temporary file beside {path}")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text (UTF-8) to a temp file beside path, fsync, then rename over path; returns path.

    The one atomic writer of bench/ and reports/. hwinfo/torch_probe.py and model/dataset.py keep small copies
    on purpose: hwinfo never imports bench, and model imports neither (the layers in README's layout).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with interrupts.critical():  # a signal that would end the command at once waits for the rename
        fd, tmp = _temp_beside(path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return path


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Write strict JSON atomically (see atomic_write_text); returns path."""
    return atomic_write_text(path, dumps_strict(data) + "\n")


# --- schema checks and JSON reading ---------------------------------------------------------------


class NewerSchemaError(ResultsError):
    """A file from a newer devicebench: the reader, not the file, is what to change (never left out quietly)."""


def check_schema(
    value: Any, where: Path | str, name: str = SCHEMA_NAME, version: int = SCHEMA_VERSION
) -> int:
    """The version of a `name/N` schema tag; refuses another format, or a newer version, in one line."""
    what = "results file" if name == SCHEMA_NAME else name.replace(SCHEMA_NAME + "-", "") + " file"
    prefix = f"{name}/"
    if not isinstance(value, str) or not value.startswith(prefix):
        raise ResultsError(f"{where}: not a devicebench {what} (schema {value!r})")
    tail = value[len(prefix) :]
    if not tail.isdigit():
        raise ResultsError(f"{where}: unreadable schema {value!r}")
    if int(tail) > version:
        raise NewerSchemaError(
            f"{where} was written with schema {value}, newer than this devicebench reads "
            f"({name}/{version}): upgrade devicebench"
        )
    return int(tail)


def _load_json(path: Path, hint: str) -> Any:
    from bench.userfiles import read_user_bytes

    data = read_user_bytes(path, what="", error=ResultsError)
    try:
        return strict(json.loads(data.decode("utf-8")))
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path} is corrupt ({e.msg} at line {e.lineno}): {hint}") from None
    except UnicodeDecodeError:
        raise ResultsError(f"{path} is corrupt (not UTF-8 text): {hint}") from None
    except RecursionError:
        raise ResultsError(f"{path} is corrupt (nested too deeply): {hint}") from None


def read_json(path: str | Path) -> dict:
    """A results JSON file (sweep.json, run.json) as a dict, schema checked; NaN/inf read as None."""
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise ResultsError(f"{path} is not a regular file")  # a FIFO: reading it would wait forever
    data = _load_json(path, "remove it or rerun")
    if not isinstance(data, dict):
        raise ResultsError(f"{path} is corrupt: expected a JSON object")
    check_schema(data.get("schema"), path)
    return data


# --- the writer lock ------------------------------------------------------------------------------


def _lock_holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 65536).decode("utf-8", "replace") or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


@contextmanager
def writer_lock(root: str | Path, command: str) -> Iterator[Path]:
    """Hold the results directory's writer lock (RESULTS/.lock) for the duration of the block.

    fcntl.flock(LOCK_EX | LOCK_NB): the kernel drops it when the holder exits or dies, so there are no
    stale locks; the file names the holder (pid, host, command, start time) for the refusal message.
    A second writer gets ResultsError at once. Where flock does not exist (Windows) nothing is locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield Path(root) / LOCK_NAME
        return
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        path = root / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    except FileExistsError:
        raise ResultsError(f"{root} exists and is not a directory: choose another --out") from None
    except OSError as e:
        raise ResultsError(f"cannot lock {root} ({e.strerror or e}): choose another --out") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            h = _lock_holder(fd)
            who = f"pid {h.get('pid', '?')} on {h.get('host', '?')} since {h.get('started', '?')}"
            raise ResultsError(
                f"{root} is being written by {who} (`{h.get('command', '?')}`): wait for it to finish or "
                "choose another --out"
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (dumps_strict(holder) + "\n").encode("utf-8"), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # released: the file no longer names a holder
    finally:
        os.close(fd)  # closing the descriptor releases the flock


# --- writers --------------------------------------------------------------------------------------


class RunWriter:
    """Files of one run: run.json rewritten atomically, steps.csv and evals.csv appended and flushed."""

    def __init__(self, run_dir: Path, meta: dict) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.meta = {"schema": SCHEMA, **meta}
        self._steps = open(self.dir / "steps.csv", "w", newline="", encoding="utf-8")
        self._evals = open(self.dir / "evals.csv", "w", newline="", encoding="utf-8")
        self._steps_csv = csv.writer(self._steps)
        self._evals_csv = csv.writer(self._evals)
        self._steps_csv.writerow(STEPS_HEADER)
        self._evals_csv.writerow(EVALS_HEADER)
        self._steps.flush()
        self._evals.flush()

    def write_meta(self, **updates: Any) -> None:
        self.meta.update(updates)
        atomic_write_json(self.dir / "run.json", self.meta)

    def step(self, it: int, ms: float, loss: float, lr: float, phase: str) -> None:
        self._steps_csv.writerow([it, f"{ms:.4f}", f"{loss:.6f}", f"{lr:.6g}", phase])
        self._steps.flush()

    def eval(self, it: int, split: str, loss: float, ms: float) -> None:
        self._evals_csv.writerow([it, split, f"{loss:.6f}", f"{ms:.4f}"])
        self._evals.flush()

    def close(self) -> None:
        for f in (self._steps, self._evals):
            if not f.closed:
                f.close()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ResultsDir:
    """A results directory: where a sweep writes, and its lock."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def sweep_path(self) -> Path:
        return self.root / "sweep.json"

    def run_dir(self, run_id: str) -> Path:
        """runs/<run_id>; a run id outside the safe alphabet (see safe_label) is refused, so no write
        can land outside the results directory."""
        if not isinstance(run_id, str) or safe_label(run_id) != run_id:
            raise ResultsError(
                f"unsafe run id {run_id!r}: only letters, digits, '.', '_' and '-' are allowed"
            )
        return self.root / "runs" / run_id

    def lock(self, command: str) -> AbstractContextManager[Path]:
        """`with results.lock("bench run ..."):` the one writer; see writer_lock."""
        return writer_lock(self.root, command)

    def exists(self) -> bool:
        return self.sweep_path.exists()

    def read_sweep(self) -> dict:
        return read_sweep(self.root)

    def write_sweep(self, sweep: dict) -> None:
        atomic_write_json(self.sweep_path, {"schema": SCHEMA, **sweep})

    def run_status(self, run_id: str) -> str | None:
        path = self.run_dir(run_id) / "run.json"
        if not path.exists():
            return None
        try:
            return read_json(path).get("status")
        except ResultsError:
            return None

    def new_run(self, run_id: str, meta: dict) -> RunWriter:
        return RunWriter(self.run_dir(run_id), {"run_id": run_id, **meta})

    def record_failed(self, run_id: str, meta: dict, reason: str) -> None:
        """A run that could not start (its model could not be built): run.json only, status failed."""
        atomic_write_json(
            self.run_dir(run_id) / "run.json",
            {"schema": SCHEMA, "run_id": run_id, **meta, "status": "failed", "error": reason},
        )

    def record_skipped(self, run_id: str, meta: dict, reason: str) -> None:
        """A run that was never started (device or dtype not available): run.json only."""
        atomic_write_json(
            self.run_dir(run_id) / "run.json",
            {"schema": SCHEMA, "run_id": run_id, **meta, "status": "skipped", "error": reason},
        )


# --- readers --------------------------------------------------------------------------------------


def read_sweep(root: str | Path) -> dict:
    """RESULTS/sweep.json, schema checked; parts of the wrong type (`hwinfo`, its `cpu`, `devices`, ...)
    read as empty, so a reader can rely on their shape."""
    path = Path(root) / "sweep.json"
    sweep = read_json(path)
    for key in ("hwinfo", "software", "spec"):
        if not isinstance(sweep.get(key), (dict, type(None))):
            sweep[key] = {}
    for key in ("host", "source", "command", "sweep_id", "created", "project_version"):
        if sweep.get(key) is not None and not isinstance(sweep[key], str):
            sweep[key] = str(sweep[key])
    hw = sweep.get("hwinfo")
    if hw:
        if not isinstance(hw.get("cpu"), (dict, type(None))):
            hw["cpu"] = {}
        cpu = hw.get("cpu") or {}
        if not isinstance(cpu.get("features"), (list, type(None))):
            cpu["features"] = []
        for key in ("gpus", "devices", "notes"):
            if not isinstance(hw.get(key), (list, type(None))):
                hw[key] = []
        hw["devices"] = [d for d in hw.get("devices") or [] if isinstance(d, dict)]
        for d in hw["devices"]:
            peaks = d.get("peaks")
            d["peaks"] = (
                {k: v for k, v in peaks.items() if isinstance(v, dict)} if isinstance(peaks, dict) else {}
            )
    return sweep


def run_dirs(root: str | Path) -> list[Path]:
    """RESULTS/runs/* that hold a run.json (a run that never wrote its first file has none), sorted."""
    runs = Path(root) / "runs"
    try:
        return sorted(p for p in runs.iterdir() if p.is_dir() and (p / "run.json").is_file())
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise ResultsError(f"{runs} is not a directory: this results directory is damaged") from None
    except PermissionError:
        raise ResultsError(f"{runs}: permission denied: ask its owner for read access") from None


_NUM = "a number"
_INT = "an integer"
_TEXT = "text"
_OBJ = "an object"
_LIST = "a list"
# run.json fields a reader relies on, and what each must be (null is always allowed).
RUN_FIELDS: dict[str, str] = {
    **dict.fromkeys(("run_id", "status", "error", "source", "source_file", "host", "device", "device_type",
                     "device_name", "dtype", "compile", "started", "finished"), _TEXT),
    **dict.fromkeys(("batch_size", "block_size", "threads", "seed"), _INT),
    **dict.fromkeys(("flops_per_token", "flops_per_iter", "tokens_per_iter"), _NUM),
    **dict.fromkeys(("model", "train", "peak_flops", "summary"), _OBJ),
    "assumed": _LIST,
}  # fmt: skip
SUMMARY_NUMBERS = (
    "ms_median", "ms_p10", "ms_p90", "ms_mean", "tokens_per_s", "achieved_flops_per_s", "mfu", "mfu_vs_a100",
    "final_train_loss", "final_val_loss", "iters_done", "warmup_iters", "first_step_ms", "eval_ms_total", "wall_s",
    "peak_mem_bytes",
)  # fmt: skip
# Figures that are a time, a rate or a count: zero or below is not a measurement.
_POSITIVE = {"ms_median", "ms_p10", "ms_p90", "ms_mean", "tokens_per_s", "achieved_flops_per_s", "flops_per_token",
             "flops_per_iter", "tokens_per_iter", "batch_size", "block_size", "threads", "peak_value"}  # fmt: skip


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fits(v: Any, kind: str, name: str) -> bool:
    if kind == _TEXT:
        return isinstance(v, str)
    if kind in (_NUM, _INT):
        ok = _is_number(v) and (kind == _NUM or float(v).is_integer())
        return ok and (name not in _POSITIVE or v > 0)
    if kind == _OBJ:
        return isinstance(v, dict)
    return isinstance(v, list)


def _describe(v: Any) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class RunRecord:
    """One run as read: its directory, run.json (fields of the wrong type set to None), what was wrong."""

    dir: Path
    meta: dict
    warnings: list[str] = field(default_factory=list)


def _opens(path: Path) -> bool:
    """Whether a file can be opened for reading (never a FIFO, which would wait): what is wrong with it is then
    its content, not the machine (a permission)."""
    if not path.is_file():
        return True
    try:
        open(path, "rb").close()  # noqa: SIM115 - opened to be closed at once
    except OSError:
        return False
    return True


def read_run(run_dir: str | Path) -> RunRecord:
    """runs/<id>/run.json, schema checked, every field a reader relies on checked for its type.

    A field of the wrong type (or a time or count at or below zero) is read as null, with a warning that
    names it; a file that is not a devicebench run.json at all raises ResultsError.
    """
    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    meta = read_json(path)
    warnings: list[str] = []

    def bad(name: str, value: Any, kind: str, key: str | None = None) -> None:
        positive = " above zero" if (key or name) in _POSITIVE and kind in (_NUM, _INT) else ""
        warnings.append(f"{path}: {name} = {_describe(value)} is not {kind}{positive}: ignored")

    if isinstance(meta.get("compile"), bool):
        meta["compile"] = "on" if meta["compile"] else "off"
    for name, kind in RUN_FIELDS.items():
        v = meta.get(name)
        if v is not None and not _fits(v, kind, name):
            bad(name, v, kind)
            meta[name] = None
    for name in ("batch_size", "block_size", "threads", "seed"):
        if meta.get(name) is not None:
            meta[name] = int(meta[name])
    if meta.get("status") is not None and meta["status"] not in STATUSES:
        warnings.append(f"{path}: status {_describe(meta['status'])} is not one of {', '.join(STATUSES)}")
    peak = meta.get("peak_flops") or {}
    if peak.get("value") is not None and not _fits(peak["value"], _NUM, "peak_value"):
        bad("peak_flops.value", peak["value"], _NUM, "peak_value")
        peak["value"] = None
    for k in ("source", "detail"):
        if peak.get(k) is not None and not isinstance(peak[k], str):
            peak[k] = str(peak[k])
    summary = meta.get("summary") or {}
    for k in SUMMARY_NUMBERS:
        v = summary.get(k)
        if v is not None and not _fits(v, _NUM, k):
            bad(f"summary.{k}", v, _NUM, k)
            summary[k] = None
    if summary.get("peak_mem_kind") is not None and not isinstance(summary["peak_mem_kind"], str):
        summary["peak_mem_kind"] = None
    load = summary.get("host_load")
    if load is not None and not isinstance(load, dict):
        bad("summary.host_load", load, _OBJ)
        summary["host_load"] = None
    elif load:
        summary["host_load"] = {k: v if _is_number(v) else None for k, v in load.items()}
    if meta.get("assumed") is not None:
        meta["assumed"] = [str(a) for a in meta["assumed"]]
    for name, value, why in _impossible(meta, summary):
        warnings.append(f"{path}: {name} = {_describe(value)} {why}: ignored")
    return RunRecord(run_dir, meta, warnings)


# Beyond these no real run goes: a figure past one is damage, never a measurement.
YEAR_MS = 365 * 24 * 3600 * 1e3
_AT_MOST = {"threads": 100_000, "batch_size": 10**9, "block_size": 10**9, "tokens_per_iter": 1e12,
            "flops_per_token": 1e16, "ms_median": YEAR_MS, "ms_p10": YEAR_MS, "ms_p90": YEAR_MS,
            "ms_mean": YEAR_MS, "first_step_ms": YEAR_MS, "eval_ms_total": YEAR_MS, "wall_s": YEAR_MS / 1e3,
            "tokens_per_s": 1e12, "achieved_flops_per_s": 1e21, "peak_mem_bytes": 1e15}  # fmt: skip
_AT_LEAST_ZERO = ("iters_done", "warmup_iters", "first_step_ms", "eval_ms_total", "wall_s", "peak_mem_bytes")


def _impossible(meta: dict, summary: dict) -> list[tuple[str, Any, str]]:
    """Figures that cannot be true (past a bound no run reaches, below zero, or contradicting the run's other
    figures), each set to None and returned as (name, value, why)."""
    out: list[tuple[str, Any, str]] = []

    def drop(where: dict, name: str, why: str, prefix: str = "") -> None:
        if where.get(name) is not None:
            out.append((prefix + name, where[name], why))
            where[name] = None

    for where, prefix in ((meta, ""), (summary, "summary.")):
        for name, most in _AT_MOST.items():
            if _is_number(where.get(name)) and where[name] > most:
                drop(where, name, f"is past {most:g}, more than any run", prefix)
    for name in _AT_LEAST_ZERO:
        if _is_number(summary.get(name)) and summary[name] < 0:
            drop(summary, name, "is below zero", "summary.")
    p10, med, p90 = (summary.get(k) for k in ("ms_p10", "ms_median", "ms_p90"))
    if med is not None and ((p10 is not None and p10 > med) or (p90 is not None and p90 < med)):
        for k in ("ms_p10", "ms_p90"):
            drop(summary, k, f"does not bracket the median {med:g} ms", "summary.")
    if med is not None:  # a rate recorded beside the step time it was computed from: within 2x of it
        for rate, per_iter in (
            ("tokens_per_s", "tokens_per_iter"),
            ("achieved_flops_per_s", "flops_per_iter"),
        ):
            v, n = summary.get(rate), meta.get(per_iter)
            if _is_number(v) and _is_number(n) and n > 0 and not 0.5 <= v / (n / (med / 1e3)) <= 2:
                drop(summary, rate, f"contradicts {per_iter} / ms_median ({n / (med / 1e3):.4g})", "summary.")
                if rate == "achieved_flops_per_s":
                    summary["mfu"] = summary["mfu_vs_a100"] = None
    first, wall = summary.get("first_step_ms"), summary.get("wall_s")
    if _is_number(first) and _is_number(wall) and first > wall * 1e3 * 1.01 + 1:
        drop(summary, "first_step_ms", f"is longer than the whole run ({wall:g} s)", "summary.")
    return out


@dataclass
class Rows:
    """A run's CSV file as columns: numbers as floats (NaN where a cell is not a number), text as str.

    bad_rows counts rows left out (wrong number of cells, or an iteration that is not a whole number
    from 0 up); problem says why the whole file was left out (unreadable, no header), else None.
    """

    columns: dict[str, Any]  # lists, or (read with arrays=True) float64 arrays for the number columns
    bad_rows: int = 0
    problem: str | None = None

    def __len__(self) -> int:
        return len(self.columns["iter"])


_MAX_ITER = 2**53  # iterations are whole numbers a float holds exactly


def _num(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        return math.nan
    return v


def _floats(cells: tuple[str, ...] | list[str]) -> list[float]:
    """Cells as floats, NaN where a cell is not a number (the whole column in C when every cell is one)."""
    try:
        return list(map(float, cells))
    except ValueError:
        return [_num(c) for c in cells]


def _typed_columns(body: str, width: int, numbers: list[int]) -> list[Any] | None:
    """The columns of a CSV body whose every line is `width` plain cells (what the writer writes), made in C: the
    number columns (positions `numbers`) as float64 arrays by numpy's reader, which parses a cell as float() does
    or refuses it; the others as lists of str. None for anything else (quotes, CR, NUL, blank or ragged lines,
    a cell numpy refuses), which _plain_columns and the csv module read as before."""
    if width < 2 or '"' in body or "\0" in body:
        return None
    eol = "\r\n" if "\r" in body else "\n"  # the csv module's line ending, or a bare one throughout
    ended = body.endswith(eol)
    text = body[: -len(eol)] if ended else body
    if not text:
        return None
    lines = text.split(eol)
    if eol == "\r\n" and not body.count("\r") == body.count("\n") == len(lines) - 1 + ended:
        return None  # a CR or LF outside a CRLF pair
    kinds = set(numbers)
    dtype = [(f"c{i}", "f8" if i in kinds else "O") for i in range(width)]  # text cells as they are
    try:
        values = np.loadtxt(lines, delimiter=",", dtype=dtype, comments=None, ndmin=1)
    except ValueError:
        return None
    if len(values) != len(lines):  # numpy's reader refuses a line of another width but skips a blank one
        return None
    return [values[f"c{i}"] if i in kinds else values[f"c{i}"].tolist() for i in range(width)]


def _float_array(cells: Any) -> np.ndarray:
    """_floats as a float64 array (cells already parsed by _typed_columns: as they are)."""
    return cells if isinstance(cells, np.ndarray) else np.array(_floats(cells), dtype=float)


def _plain_columns(body: str, width: int) -> list[list[str]] | None:
    """The columns of a CSV body whose every line is `width` plain cells (what the writer writes), split in C
    (no list per row: a 1,500-run report holds three million rows); None when any line is not plain."""
    if "\r" in body:
        body = body.replace("\r\n", "\n")  # the csv module's line ending
    if '"' in body or "\r" in body:
        return None
    body = body[:-1] if body.endswith("\n") else body
    if not body:
        return [[] for _ in range(width)]
    # One split: each line ends in a "\n" cell of its own, so every line holds `width` cells exactly when
    # the n "\n" cells fall every width + 1 cells (a line cannot hold one: lines end at them).
    n = body.count("\n") + 1
    cells = (body + "\n").replace("\n", ",\n,").split(",")
    ends = cells[width :: width + 1]
    if len(cells) != n * (width + 1) + 1 or ends.count("\n") != n:
        return None
    del cells[-1]
    return [cells[i :: width + 1] for i in range(width)]


def _read_rows(
    path: Path, header: list[str], numeric: tuple[str, ...], required: tuple[str, ...], arrays: bool = False
) -> Rows:
    empty = {c: [] for c in header}
    if path.exists() and not path.is_file():  # a directory or a FIFO (which open() would wait on forever)
        return Rows(empty, problem=f"{path} is not a regular file: left out")
    try:
        f = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        return Rows(empty)
    except PermissionError:
        return Rows(empty, problem=f"{path}: permission denied: left out")
    except OSError as e:
        return Rows(empty, problem=f"{path}: cannot read ({e.strerror or e}): left out")
    with f:
        try:
            text = f.read()
        except UnicodeDecodeError as e:
            return Rows(empty, problem=f"{path} is corrupt ({type(e).__name__}: {e}): left out")
        except OSError as e:
            return Rows(empty, problem=f"{path}: cannot read ({e.strerror or e}): left out")
    first, _, body = text.partition("\n")
    try:
        head = next(csv.reader([first]), None)
    except csv.Error as e:
        return Rows(empty, problem=f"{path} is corrupt ({type(e).__name__}: {e}): left out")
    if not head:
        return Rows(empty)
    head = [h.strip() for h in head]
    missing = [c for c in required if c not in head]
    if missing:
        return Rows(empty, problem=f"{path}: no {', '.join(missing)} column in its header: left out")
    index = [head.index(c) if c in head else None for c in header]
    width = len(head)
    bad = 0
    numbers = sorted({i for c, i in zip(header, index, strict=True) if c in numeric and i is not None})
    by_column = _typed_columns(body, width, numbers) if numbers else None
    if by_column is None:
        by_column = _plain_columns(body, width)
    if by_column is None:  # quotes, CR, blank or ragged lines: the csv module, row by row
        try:
            raw = list(csv.reader(io.StringIO(body, newline="")))
        except csv.Error as e:
            return Rows(empty, problem=f"{path} is corrupt ({type(e).__name__}: {e}): left out")
        good = [row for row in raw if len(row) == width]
        bad = sum(1 for row in raw if row and len(row) != width)
        by_column = list(zip(*good, strict=True)) if good else [()] * width
    n_rows = len(by_column[0]) if by_column else 0
    iters = _float_array(by_column[index[0]])  # type: ignore[index]
    keep = (iters >= 0) & (iters < _MAX_ITER) & (iters == np.floor(iters))  # NaN fails each
    kept_all = bool(keep.all())
    bad += len(keep) - int(keep.sum())
    cols: dict[str, Any] = {}
    for c, i in zip(header, index, strict=True):
        cells = by_column[i] if i is not None else ("",) * n_rows
        if c in numeric:
            if i is None:
                values = np.full(n_rows, math.nan)
            else:
                values = iters if i == index[0] else _float_array(cells)
            cols[c] = values if kept_all else values[keep]
        else:
            cols[c] = list(cells) if kept_all else [v for v, k in zip(cells, keep.tolist(), strict=True) if k]
    for c in ("ms", "lr"):  # a time or a learning rate below zero, or infinite, is not a measurement
        if c in cols:
            v = cols[c]
            cols[c] = np.where((v >= 0) & (v < math.inf), v, math.nan)
    if "loss" in cols:  # a cross-entropy below zero is not a measurement (infinite: a diverged run, kept)
        v = cols["loss"]
        cols["loss"] = np.where(v < 0, math.nan, v)
    if not arrays:
        cols = {c: v.tolist() if isinstance(v, np.ndarray) else v for c, v in cols.items()}
    return Rows(cols, bad)


def read_steps(run_dir: str | Path, warmup_iters: int = 0, arrays: bool = False) -> Rows:
    """runs/<id>/steps.csv; without a phase column (schema 1) the first warmup_iters rows are "warmup". With
    arrays, the number columns are float64 numpy arrays rather than lists (a report's frames are built from them)."""
    path = Path(run_dir) / "steps.csv"
    rows = _read_rows(path, STEPS_HEADER, ("iter", "ms", "loss", "lr"), ("iter", "ms"), arrays)
    phases = rows.columns["phase"]
    if phases and not any(phases):
        rows.columns["phase"] = ["warmup" if i < warmup_iters else "timed" for i in range(len(phases))]
    return rows


def read_evals(run_dir: str | Path, arrays: bool = False) -> Rows:
    """runs/<id>/evals.csv (arrays: as in read_steps)."""
    return _read_rows(
        Path(run_dir) / "evals.csv", EVALS_HEADER, ("iter", "loss", "ms"), ("iter", "split", "loss"), arrays
    )


def read_profile(path: str | Path) -> dict | None:
    """A run's profile.json (docs/profile-schema.md); None when the run has none.

    Raises ResultsError when it is corrupt, from a newer schema, or lacks the figures a report needs:
    `mean.step_ms` (a number above zero) and `mean.fraction` ({category: share}).
    """
    path = Path(path)
    if not path.exists():
        return None
    if not path.is_file():
        raise ResultsError(f"{path} is not a regular file")
    data = _load_json(path, "remove it or rerun with --profile")
    if not isinstance(data, dict):
        raise ResultsError(f"{path} is corrupt: expected a JSON object")
    check_schema(data.get("schema"), path, PROFILE_SCHEMA_NAME, PROFILE_SCHEMA_VERSION)
    mean = data.get("mean")
    if not isinstance(mean, dict):
        raise ResultsError(f"{path} is corrupt: no 'mean' object")
    if not _fits(mean.get("step_ms"), _NUM, "step_ms") or mean["step_ms"] <= 0:
        raise ResultsError(
            f"{path} is corrupt: mean.step_ms = {_describe(mean.get('step_ms'))} is not a time"
        )
    frac = mean.get("fraction")
    if (
        not isinstance(frac, dict)
        or not frac
        or not all(_fits(v, _NUM, k) and v >= 0 for k, v in frac.items())
    ):
        raise ResultsError(f"{path} is corrupt: mean.fraction = {_describe(frac)} is not {{category: share}}")
    for k in list(mean):
        if k not in ("fraction", "ms", "phases_ms") and mean[k] is not None and not _is_number(mean[k]):
            mean[k] = None  # an optional figure of the wrong type reads as absent
    for k in ("matmul_flops_per_s", "matmul_fraction_of_peak", "profiler_overhead", "peak_flops_per_s"):
        if data.get(k) is not None and not _is_number(data[k]):
            data[k] = None
    return data


# --- one results directory as a whole, after asv's Results: load, save, migrate, derived columns -----

# Train keys that change what a run computes (its loss curve); the others only change when it is
# evaluated or which steps are timed.
LOSS_NEUTRAL_TRAIN_KEYS = ("eval_interval", "timing_warmup_iters")
ENERGY_COLUMNS = ("joules_per_step", "tokens_per_joule", "mean_watts", "idle_watts", "eval_joules")


def config_key(meta: dict) -> str:
    """What decides a run's loss curve: model, train (minus timing-only keys), batch, block, seed."""
    train = {k: v for k, v in (meta.get("train") or {}).items() if k not in LOSS_NEUTRAL_TRAIN_KEYS}
    cfg = {
        "model": meta.get("model") or {},
        "train": train,
        "batch_size": meta.get("batch_size"),
        "block_size": meta.get("block_size"),
    }
    return json.dumps(cfg, sort_keys=True, default=str)


def fused_adamw(meta: dict) -> bool:
    """The fused AdamW kernel: run.json's `fused_adamw`, else a tune's knobs; unknown (or not a true/false) is
    the default foreach."""
    tune = meta.get("tune")
    knobs = tune.get("knobs") if isinstance(tune, dict) else None
    for v in (meta.get("fused_adamw"), knobs.get("fused_adamw") if isinstance(knobs, dict) else None):
        if isinstance(v, bool):
            return v
    return False


def migrate_run(meta: dict) -> dict:
    """run.json of any older schema in the current shape (in memory; the file is never rewritten):
    schema 1's boolean `compile` is "on"/"off"; a summary without `mfu` (before MFU was stored) and
    without `tokens_per_s` get them computed as a run would (derived_columns)."""
    if isinstance(meta.get("compile"), bool):
        meta["compile"] = "on" if meta["compile"] else "off"
    if meta.get("summary") is not None and not isinstance(meta.get("summary"), dict):
        meta["summary"] = None
    return meta


def derived_columns(meta: dict, sweep: dict) -> dict[str, Any]:
    """The figures of a run that are computed rather than read, computed here once for bench and reports:
    tokens/s, MFU against the run's own peak (for files that did not store it) and whether it is
    impossible (above 100%: never shown as a result), the energy figures that pass the plausibility checks
    (else none, and why), the loss-curve key and the optimizer kernel."""
    from bench.metrics import mfu, mfu_is_possible, positive
    from hwinfo.energy import band_for_device, check_energy

    summary = meta.get("summary") or {}
    peak = meta.get("peak_flops") if isinstance(meta.get("peak_flops"), dict) else {}
    tokens_per_s = positive(summary.get("tokens_per_s"))
    ms = positive(summary.get("ms_median"))
    if tokens_per_s is None and ms is not None and positive(meta.get("tokens_per_iter")) is not None:
        tokens_per_s = float(meta["tokens_per_iter"]) / (ms / 1e3)
    own_mfu = summary.get("mfu") if _is_number(summary.get("mfu")) else None
    if own_mfu is None and (peak.get("source") or "unknown") != "unknown":
        own_mfu = mfu(summary.get("achieved_flops_per_s"), peak.get("value"))
    out: dict[str, Any] = {
        "tokens_per_s": tokens_per_s,
        "mfu": own_mfu,
        "mfu_impossible": own_mfu is not None and not mfu_is_possible(own_mfu),
        "config_key": config_key(meta),
        "fused_adamw": fused_adamw(meta),
        "world_size": meta.get("world_size") if isinstance(meta.get("world_size"), int) else 1,
    }
    energy = summary.get("energy")
    figures, why = None, None
    if energy is not None:  # runs from before energy was metered say nothing about it
        device_type = meta.get("device_type") or str(meta.get("device") or "?").split(":")[0]
        fallback = band_for_device(device_type, sweep.get("hwinfo"))
        figures, why = check_energy(energy, meta.get("tokens_per_iter"), fallback)
    out["energy_source"] = (
        energy.get("source") if figures is not None else ("unavailable" if energy is not None else None)
    )
    out["energy_reason"] = why
    for k in ENERGY_COLUMNS:
        out[k] = figures[k] if figures is not None else None
    return out


@dataclass
class Results:
    """One results directory, read and written by one class (asv's Results is the model): `load` reads
    sweep.json and every run.json (checked, migrated to the current shape), `save` writes them back
    atomically under the current schema, `derived(run)` gives the computed columns of a run. The CSV files
    (steps, evals) stay streamed by RunWriter and read by read_steps / read_evals."""

    root: Path
    sweep: dict
    runs: list[RunRecord] = field(default_factory=list)
    left_out: dict[Path, str] = field(default_factory=dict)  # run dir -> why its run.json was not read

    @classmethod
    def load(cls, root: str | Path, *, leave_out_corrupt: bool = False) -> Results:
        """Raises ResultsError for a directory that is not a readable devicebench results directory. With
        leave_out_corrupt (a report), a run.json that opens but is not a devicebench run (corrupt JSON, a list,
        an unknown schema) leaves that run out, said in `warnings`; a file the machine cannot read, or one from a newer
        devicebench, still raises."""
        root = Path(root)
        sweep = read_sweep(root)
        runs, left_out = [], {}
        for rd in run_dirs(root):
            try:
                record = read_run(rd)
            except ResultsError as e:
                if not leave_out_corrupt or isinstance(e, NewerSchemaError) or not _opens(rd / "run.json"):
                    raise
                left_out[rd] = f"{e}: this run is left out"
                continue
            record.meta = migrate_run(record.meta)
            runs.append(record)
        return cls(root, sweep, runs, left_out)

    @property
    def warnings(self) -> list[str]:
        return [w for r in self.runs for w in r.warnings] + list(self.left_out.values())

    def derived(self, run: RunRecord) -> dict[str, Any]:
        return derived_columns(run.meta, self.sweep)

    def save(self) -> None:
        """sweep.json and each run.json, atomically, under the current schema."""
        results = ResultsDir(self.root)
        results.write_sweep({k: v for k, v in self.sweep.items() if k != "schema" and not k.startswith("_")})
        for run in self.runs:
            atomic_write_json(run.dir / "run.json", {**run.meta, "schema": SCHEMA})
