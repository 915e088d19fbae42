"""Read pytest-benchmark JSON (`--benchmark-json`) into per-benchmark samples for the gate.

With `--benchmark-save-data` a benchmark carries its per-round times (stats.data). Consecutive rounds
are autocorrelated, so they are cut into contiguous blocks and each block summarised by its median
(the analogue of the gate's per-trial medians); without data only the summary (median, IQR, rounds)
is kept and compared by a normal approximation.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

MAX_BLOCKS = 20
MIN_ROUNDS_PER_BLOCK = 5


class PytestBenchmarkError(ValueError):
    """A pytest-benchmark JSON file that cannot be used."""

    exit_code = 2


def is_pytest_benchmark(data: object) -> bool:
    return isinstance(data, dict) and isinstance(data.get("benchmarks"), list) and "machine_info" in data


def load(path: str | Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PytestBenchmarkError(f"{path} not found") from None
    except json.JSONDecodeError as e:
        raise PytestBenchmarkError(f"{path} is not JSON ({e.msg} at line {e.lineno})") from None
    if not is_pytest_benchmark(data):
        raise PytestBenchmarkError(
            f"{path} is not pytest-benchmark JSON (no 'benchmarks' list): write it with "
            "pytest --benchmark-json FILE [--benchmark-save-data]"
        )
    return data


def block_medians(data: list[float]) -> list[float]:
    """Per-block medians of contiguous rounds: up to MAX_BLOCKS blocks of >= MIN_ROUNDS_PER_BLOCK rounds."""
    n_blocks = min(MAX_BLOCKS, len(data) // MIN_ROUNDS_PER_BLOCK)
    if n_blocks < 2:
        return [float(x) for x in data]
    size = len(data) // n_blocks
    return [statistics.median(data[i * size : (i + 1) * size]) for i in range(n_blocks)]


def benchmarks(data: dict, reference: str | None = None) -> dict[str, dict]:
    """{fullname: {"samples": [...] | None, "summary": {median, iqr, rounds}}}, seconds (or ratios).

    With a reference benchmark name, every benchmark is divided by the reference's median from the
    same file, which cancels the speed of the machine between jobs (not drift within the job: the
    reference ran at another time of the session, not interleaved).
    """
    out: dict[str, dict] = {}
    for b in data["benchmarks"]:
        stats = b.get("stats") or {}
        name = b.get("fullname") or b.get("name")
        if not name or "median" not in stats:
            raise PytestBenchmarkError(f"benchmark entry {name!r} has no stats.median")
        raw = stats.get("data")
        out[name] = {
            "samples": block_medians(raw) if raw else None,
            "summary": {k: stats.get(k) for k in ("median", "iqr", "rounds", "min", "mean")},
        }
    if reference is not None:
        match = [n for n in out if n == reference or n.endswith("::" + reference)]
        if len(match) != 1:
            raise PytestBenchmarkError(
                f"reference benchmark {reference!r} "
                + ("matches several benchmarks" if match else "is not in the file")
                + f"; benchmarks: {', '.join(out)}"
            )
        ref = out.pop(match[0])["summary"]["median"]
        for entry in out.values():
            if entry["samples"]:
                entry["samples"] = [x / ref for x in entry["samples"]]
            s = entry["summary"]
            for k in ("median", "iqr", "min", "mean"):
                if s.get(k) is not None:
                    s[k] = s[k] / ref
    return out


def machine(data: dict) -> dict:
    info = data.get("machine_info") or {}
    cpu = info.get("cpu") or {}
    return {
        "node": info.get("node"),
        "cpu_model": cpu.get("brand_raw") or info.get("processor"),
        "logical_cores": cpu.get("count"),
        "python": info.get("python_version"),
    }
