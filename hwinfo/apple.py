"""Apple GPU core count (macOS): ioreg's gpu-core-count, else system_profiler's sppci_cores.

The count goes into the MPS device's name ("Apple M2 Pro (19-core GPU)") so the spec table scales
its figures to this chip's GPU (binned chips have fewer cores). The command runner is injectable.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable

Runner = Callable[[list[str]], str | None]

IOREG = ["ioreg", "-r", "-d", "1", "-c", "AGXAccelerator"]
SYSTEM_PROFILER = ["system_profiler", "SPDisplaysDataType", "-json"]


def run_command(cmd: list[str]) -> str | None:
    """stdout of a command that succeeded within 10 s, else None."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return out.stdout if out.returncode == 0 else None


def _plausible(n: int) -> bool:
    return 1 <= n <= 1024


def apple_gpu_cores(run: Runner | None = None) -> tuple[int | None, str]:
    """(GPU core count or None, where it came from or why not)."""
    run = run or run_command
    text = run(IOREG) or ""
    m = re.search(r'"gpu-core-count"\s*=\s*(\d+)', text)
    if m and _plausible(int(m.group(1))):
        return int(m.group(1)), "ioreg gpu-core-count"
    text = run(SYSTEM_PROFILER) or ""
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        data = {}
    displays = data.get("SPDisplaysDataType") if isinstance(data, dict) else None
    for item in displays if isinstance(displays, list) else []:
        cores = str(item.get("sppci_cores", "")).strip() if isinstance(item, dict) else ""
        if cores.isdigit() and _plausible(int(cores)):
            return int(cores), "system_profiler SPDisplaysDataType sppci_cores"
    return None, "GPU core count unknown (neither ioreg nor system_profiler gave it)"
