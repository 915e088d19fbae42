"""hwinfo: what this machine has, and each device's peak FLOP/s per dtype.

Imports nothing heavy: `snapshot` loads the probes (and torch) only when called.
"""

from __future__ import annotations

from typing import Any

SCHEMA = "devicebench-hwinfo/2"

__all__ = ["SCHEMA", "snapshot"]


def snapshot(
    measure: bool = False, dtypes: list[str] | None = None, root: str = "/", **kwargs: Any
) -> dict[str, Any]:
    """This machine's hardware and peaks as a JSON-serialisable dict (schema devicebench-hwinfo/2).

    measure: also time a matmul per dtype on every device. root: filesystem root to probe (tests pass
    a fake sysfs/proc tree). Extra keyword arguments go to hwinfo.probe.build_snapshot
    (use_torch, nvml_module, progress).
    """
    from hwinfo.probe import build_snapshot

    return build_snapshot(measure=measure, dtypes=dtypes, root=root, **kwargs)
