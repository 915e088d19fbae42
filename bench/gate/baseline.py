"""The gate's baseline file (train-step, pytest-benchmark or raw pytest-benchmark JSON), checked whole
before anything is measured, and the machine it was made on.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import psutil

from bench.gate.files import BASELINE_SCHEMA_PREFIX, GateError, is_gate_baseline, read_json
from bench.gate.pytest_input import is_pytest_benchmark
from hwinfo.units import positive

SCHEMA = BASELINE_SCHEMA_PREFIX + "1"
KINDS = ("train-step", "pytest-benchmark")
# The workload and the reference are steps of one shape: their ratio is near 1. One beyond 1000x either way
# is a damaged baseline, and would give a "regression" (exit 1) or an overflow instead of exit 2.
MAX_RATIO = 1000.0
MIN_TRIALS = 4  # with fewer trials a side, no difference can be significant (Mann-Whitney U)
RECREATE = "recreate it with --update-baseline"


def read_baseline(path: Path) -> dict:
    """The baseline in `path`, its schema and kind checked; a raw pytest-benchmark file is kind
    "pytest-benchmark-json" with the file under "raw"."""
    data = read_json(path, "baseline", ": create it with --update-baseline")
    if is_pytest_benchmark(data):
        return {"schema": SCHEMA, "kind": "pytest-benchmark-json", "raw": data}
    if not is_gate_baseline(data):
        schema = data.get("schema") if isinstance(data, dict) else None
        raise GateError(f"{path} is not a gate baseline (schema {schema!r}): {RECREATE}")
    if data["schema"] != SCHEMA:
        raise GateError(f"{path} has schema {data['schema']}; this devicebench reads {SCHEMA}: {RECREATE}")
    if data.get("kind") not in KINDS:
        raise GateError(f"{path} is a gate baseline of unknown kind {data.get('kind')!r}: {RECREATE}")
    machine = data.get("machine", {})
    if not isinstance(machine, dict):
        raise GateError(f"baseline {path}: 'machine' is not a JSON object: {RECREATE}")
    return data


def _diff(now: dict, then: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(now) | set(then)):
        va, vb = now.get(k), then.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k} {vb!r} in the baseline, {va!r} now")
    return out


def _positive(value: object) -> bool:
    return positive(value) is not None


def train_step_ratios(baseline: dict, path: Path, workload: dict) -> list[float]:
    """The per-trial ratios of a train-step baseline made for `workload`; anything else is a GateError."""
    if baseline["kind"] != "train-step":
        raise GateError(f"{path} is a {baseline['kind']} baseline, not one of the train step: "
                        "pass --pytest-benchmark, or use another --baseline")  # fmt: skip
    stored = baseline.get("workload")
    if not isinstance(stored, dict):
        raise GateError(f"baseline {path} does not say which workload it was made for: {RECREATE}")
    diffs = _diff(workload, stored)
    if diffs:
        raise GateError(f"baseline {path} was made for a different workload ({'; '.join(diffs)}): pass the "
                        "same config and flags, or recreate it with --update-baseline")  # fmt: skip
    trials = baseline.get("trials")
    if not isinstance(trials, list) or not trials:
        raise GateError(f"baseline {path} has no readable per-trial ratios (no trials): {RECREATE}")
    ratios = []
    for i, trial in enumerate(trials, 1):
        ratio = trial.get("ratio") if isinstance(trial, dict) else None
        if not _positive(ratio):
            raise GateError(f"baseline {path} has no readable per-trial ratios (trial {i}: ratio {ratio!r}, "
                            f"not a positive number): {RECREATE}")  # fmt: skip
        if not 1 / MAX_RATIO <= ratio <= MAX_RATIO:
            raise GateError(f"baseline {path} has an impossible per-trial ratio (trial {i}: ratio {ratio!r}; "
                            f"the workload and the reference have one shape, so it lies between "
                            f"{1 / MAX_RATIO:g} and {MAX_RATIO:g}): {RECREATE}")  # fmt: skip
        ratios.append(float(ratio))
    if len(ratios) < MIN_TRIALS:
        raise GateError(f"baseline {path} has {len(ratios)} trial(s); the gate needs at least {MIN_TRIALS} "
                        f"to decide anything: {RECREATE} (--trials >= {MIN_TRIALS})")  # fmt: skip
    return ratios


def machine_info() -> dict:
    """hwinfo-lite: enough to tell whether the baseline came from a similar machine."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    physical = psutil.cpu_count(logical=False)
    return {
        "cpu_model": model,
        "logical_cores": os.cpu_count(),
        "physical_cores": physical,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def machine_warnings(now: dict, then: dict) -> list[str]:
    """One warning when the baseline came from another CPU, core count, torch or thread count."""
    keys = ("cpu_model", "logical_cores", "torch", "torch_threads")
    diffs = [f"{k} {then.get(k)!r} -> {now.get(k)!r}" for k in keys if now.get(k) != then.get(k)]
    if not diffs:
        return []
    return ["the baseline was made on a different machine or software (" + "; ".join(diffs) + "): the ratio "
            "cancels speed, not every difference of CPU or PyTorch; consider --update-baseline on this runner"]  # fmt: skip
