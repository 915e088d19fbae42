"""The profiler's events as plain records: what the analyses read, with no torch object in sight."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One event of a profiler trace. Times in microseconds.

    on_device: a kernel, copy or annotation on the accelerator's timeline (else a host event).
    activity: the profiler's activity type ("cpu_op", "user_annotation", "cuda_runtime", "kernel",
    "gpu_memcpy", ...) or None when the profiler does not say.
    id: the correlation id (a host launch and the kernel it launched share it); linked_id: the op a
    kernel belongs to, when the profiler links them that way.
    """

    name: str
    start: float
    end: float
    on_device: bool = False
    activity: str | None = None
    id: int = 0
    linked_id: int = 0
    self_us: float = 0.0
    flops: int = 0
    input_shapes: list = field(default_factory=list)
    is_async: bool = False
    is_annotation: bool = False
    thread: Any = 0  # the host thread (an op and the launches inside it share it)
    external_id: int = 0  # Kineto's "External id": a launch names the op it was made in with it
    input_types: list = field(default_factory=list)

    @property
    def us(self) -> float:
        return self.end - self.start


def from_profiler(events: list, device_trace_type: Any) -> list[TraceEvent]:
    """torch.profiler's FunctionEvents -> TraceEvents, sorted by start. `device_trace_type` is the
    autograd DeviceType of the accelerator's kernels (None: host events only)."""
    out = []
    for e in events:
        on_device = device_trace_type is not None and e.device_type == device_trace_type
        if not on_device and getattr(e.device_type, "name", "CPU") != "CPU":
            continue
        activity = getattr(e, "activity_type", None)
        out.append(
            TraceEvent(
                name=e.name,
                start=float(e.time_range.start),
                end=float(e.time_range.end),
                on_device=on_device,
                activity=str(activity) if activity is not None else None,
                id=int(getattr(e, "id", 0) or 0),
                linked_id=int(getattr(e, "linked_correlation_id", 0) or 0),
                self_us=float(getattr(e, "self_cpu_time_total", 0.0) or 0.0),
                flops=int(getattr(e, "flops", 0) or 0),
                input_shapes=list(getattr(e, "input_shapes", None) or []),
                is_async=bool(getattr(e, "is_async", False)),
                is_annotation=bool(getattr(e, "is_user_annotation", False)),
                thread=getattr(e, "thread", 0) or 0,
            )
        )
    return sorted(out, key=lambda t: t.start)
