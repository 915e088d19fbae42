"""A Finding: one thing the report says, as data. Rules make them; reports/words.py words them.

A rule fills `kind`, `severity`, `runs` and `evidence` (every figure and name its sentence states);
`labels` (run key -> how the run is named) is filled by diagnose().
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.results import strict
from reports.words import sentence as _words


@dataclass
class Finding:
    """One thing the report says, with the figures behind it."""

    kind: str
    severity: str  # "info" or "warning"
    evidence: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    id: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # run key -> its name in the report
    explains: float | None = None  # the share of the step, or of the gap, this finding accounts for
    where: str = ""  # the results directory, when merged directories would otherwise read the same

    @property
    def sentence(self) -> str:
        """The words a reader sees (one template per kind, reports.words)."""
        return _words(self)

    def label(self, key: str) -> str:
        return self.labels.get(key, key)

    def to_dict(self) -> dict:
        """Plain, strict-JSON-ready data (numpy scalars unwrapped, NaN as None), with the rendered sentence."""
        return strict(_plain(asdict(self) | {"sentence": self.sentence}))


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
