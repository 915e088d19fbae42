"""The results directory (schema devicebench/2; reads 1): atomic JSON writes, steps flushed as they go.

Layout (../shared/DESIGN.md):
  RESULTS/sweep.json
  RESULTS/runs/<run_id>/run.json, steps.csv (iter,ms,loss,lr,phase), evals.csv (iter,split,loss,ms)
`phase` in steps.csv is "warmup" for steps kept out of the medians, else "timed"; readers treat a
missing column as all "timed" after summary.warmup_iters.
This module does not import torch.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = "devicebench/2"
SCHEMA_VERSION = 2
STEPS_HEADER = ["iter", "ms", "loss", "lr", "phase"]
EVALS_HEADER = ["iter", "split", "loss", "ms"]


class ResultsError(RuntimeError):
    """A results directory that cannot be used (corrupt, newer schema, already in use)."""

    exit_code = 2


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


def atomic_write_json(path: Path, data: Any) -> None:
    """Write strict JSON to a temp file beside path, fsync, then rename over path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(dumps_strict(data))
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def check_schema(value: Any, where: Path | str) -> None:
    """Refuse a file from a newer schema (or none) with a message that says what to do."""
    if not isinstance(value, str) or not value.startswith("devicebench/"):
        raise ResultsError(f"{where}: not a devicebench results file (schema {value!r})")
    try:
        version = int(value.split("/", 1)[1])
    except ValueError:
        raise ResultsError(f"{where}: unreadable schema {value!r}") from None
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"{where} was written with schema {value}, newer than this devicebench reads "
            f"({SCHEMA}): upgrade devicebench"
        )


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path} not found") from None
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path} is corrupt ({e.msg} at line {e.lineno}): remove it or rerun") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path} is corrupt: expected a JSON object")
    check_schema(data.get("schema"), path)
    return data


class RunWriter:
    """Files of one run: run.json rewritten atomically, steps.csv and evals.csv appended and flushed."""

    def __init__(self, run_dir: Path, meta: dict) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.meta = {"schema": SCHEMA, **meta}
        self._steps = open(self.dir / "steps.csv", "w", newline="")
        self._evals = open(self.dir / "evals.csv", "w", newline="")
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


class ResultsDir:
    """A results directory being written by a sweep."""

    def __init__(self, root: Path) -> None:
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

    def exists(self) -> bool:
        return self.sweep_path.exists()

    def read_sweep(self) -> dict:
        return read_json(self.sweep_path)

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

    def lock(self, command: str):  # placeholder until the real writer lock lands (issue 15)
        import contextlib

        return contextlib.nullcontext()

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
