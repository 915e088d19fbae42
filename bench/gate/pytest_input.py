"""Read pytest-benchmark JSON (`--benchmark-json`) into per-benchmark samples for the gate.

With `--benchmark-save-data` a benchmark carries its per-round times (stats.data). Consecutive rounds
are autocorrelated, so they are cut into contiguous blocks and each block summarised by its median
(the analogue of the gate's per-trial medians); without data only the summary (median, IQR, rounds)
is kept and compared by a normal approximation. Every entry is checked as it is read: a NaN or
non-positive median, a duplicate name or a malformed entry is a GateError naming the benchmark.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from pathlib import Path

from bench.gate.files import GateError, read_json

MAX_BLOCKS = 20
MIN_ROUNDS_PER_BLOCK = 5
SUMMARY_KEYS = ("median", "iqr", "rounds", "min", "mean")


def is_pytest_benchmark(data: object) -> bool:
    return isinstance(data, dict) and isinstance(data.get("benchmarks"), list) and "machine_info" in data


def load(path: str | Path) -> dict:
    data = read_json(path, "pytest-benchmark file")
    if not is_pytest_benchmark(data):
        raise GateError(
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


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_summary(summary: object, where: str) -> dict:
    """The summary of one benchmark: a positive median, and iqr/rounds/min/mean absent or >= 0."""
    if not isinstance(summary, dict):
        raise GateError(f"{where} has no summary statistics")
    median = summary.get("median")
    if not (_number(median) and median > 0):
        raise GateError(f"{where} has median {median!r}: a time must be a positive number of seconds")
    for key in ("iqr", "rounds", "min", "mean"):
        value = summary.get(key)
        if value is not None and not (_number(value) and value >= 0):
            raise GateError(f"{where} has {key} {value!r}: expected a number >= 0")
    return summary


def _check_rounds(data: object, where: str) -> list[float] | None:
    if data is None:
        return None
    if not isinstance(data, list) or not all(_number(x) and x > 0 for x in data):
        raise GateError(f"{where} has per-round data that are not all positive numbers of seconds")
    return [float(x) for x in data]


def _refuse_duplicates(names: list[str], source: str) -> None:
    dupes = sorted(n for n, count in Counter(names).items() if count > 1)
    if dupes:
        raise GateError(
            f"{source} holds several benchmarks named {', '.join(dupes)}: the gate cannot tell which to "
            "compare; give each a unique name (e.g. one --benchmark-json per run, not merged files)"
        )


def benchmarks(data: dict, reference: str | None = None, source: str = "the file") -> dict[str, dict]:
    """{fullname: {"samples": [...] | None, "summary": {median, iqr, rounds, min, mean}}}, seconds (or ratios).

    With a reference benchmark name, every benchmark is divided by the reference's median from the
    same file, which cancels the speed of the machine between jobs (not drift within the job: the
    reference ran at another time of the session, not interleaved).
    """
    entries = []
    for b in data["benchmarks"]:
        b = b if isinstance(b, dict) else {}
        name = b.get("fullname") or b.get("name")
        if not isinstance(name, str) or not name:
            raise GateError(f"{source} has a benchmark entry without a name")
        where = f"benchmark {name} in {source}"
        stats = b.get("stats")
        summary = _check_summary(stats, where)
        rounds = _check_rounds(stats.get("data"), where)
        entries.append((name, rounds, {k: summary.get(k) for k in SUMMARY_KEYS}))
    _refuse_duplicates([name for name, _, _ in entries], source)
    out = {
        name: {"samples": block_medians(rounds) if rounds else None, "summary": summary}
        for name, rounds, summary in entries
    }
    if reference is not None:
        match = [n for n in out if n == reference or n.endswith("::" + reference)]
        if len(match) != 1:
            raise GateError(
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


def check_stored(stored: object, source: str) -> dict[str, dict]:
    """The benchmarks of a gate baseline of kind pytest-benchmark, checked as benchmarks() checks a file."""
    if not isinstance(stored, dict) or not stored:
        raise GateError(f"{source} has no benchmarks: recreate it with --update-baseline")
    for name, entry in stored.items():
        where = f"benchmark {name} in {source}"
        if not isinstance(entry, dict) or "summary" not in entry:
            raise GateError(f"{where} has no summary: recreate the baseline with --update-baseline")
        _check_summary(entry["summary"], where)
        _check_rounds(entry.get("samples"), where)
    return stored


def machine(data: dict) -> dict:
    info = data.get("machine_info") or {}
    info = info if isinstance(info, dict) else {}
    cpu = info.get("cpu") or {}
    cpu = cpu if isinstance(cpu, dict) else {}
    return {
        "node": info.get("node"),
        "cpu_model": cpu.get("brand_raw") or info.get("processor"),
        "logical_cores": cpu.get("count"),
        "python": info.get("python_version"),
    }
