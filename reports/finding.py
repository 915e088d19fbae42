"""A Finding: one thing the report says, with the figures behind it. Every rule module makes these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.results import strict


@dataclass
class Finding:
    """One thing the report says, with the figures behind it."""

    kind: str
    severity: str  # "info" or "warning"
    sentence: str
    evidence: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    id: str = ""

    def to_dict(self) -> dict:
        """Plain, strict-JSON-ready data (numpy scalars unwrapped, NaN as None)."""
        return strict(_plain(asdict(self)))


def _plain(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if hasattr(o, "item") and not isinstance(o, (str, bytes)):
        return o.item()
    if o is None or isinstance(o, (str, int, float, bool)):
        return o
    return str(o)
