"""hwinfo: what this machine has, each device's peak FLOP/s per dtype, memory bandwidth and energy counters.

Imports nothing heavy: `snapshot` loads the probes (and torch) only when called.
"""

from __future__ import annotations

from typing import Any

SCHEMA = "devicebench-hwinfo/2"

__all__ = ["SCHEMA", "snapshot"]


def snapshot(
    measure: bool = False, dtypes: list[str] | None = None, root: str = "/", **kwargs: Any
) -> dict[str, Any]:
    """This machine's hardware, peaks, bandwidth and energy counters as a JSON-serialisable dict
    (schema devicebench-hwinfo/2, docs/hwinfo.md).

    measure: also time a matmul per dtype and measure memory bandwidth (STREAM) on every device.
    root: filesystem root to probe (tests pass a fake sysfs/proc tree). Extra keyword arguments go to
    hwinfo.probe.build_snapshot (use_torch, nvml_module, torch_part, progress, run_command).
    """
    from hwinfo.probe import build_snapshot

    return build_snapshot(measure=measure, dtypes=dtypes, root=root, **kwargs)
