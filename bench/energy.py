"""Energy of one run from the device's real counter, read at phase boundaries only (never per step).

An idle reading is taken just before the run; then the timed phase (the steps after the timing warm-up)
and the evals are metered apart. Where the device has no counter this user can read, the run records
`source: "unavailable"` and the exact reason (hwinfo.energy says which file is missing or unreadable and
how to grant access): never an estimate. Figures outside the device's plausible power band (hwinfo.energy:
a broken or misread counter) are recorded as no figures, with the reason and what was read.
"""

from __future__ import annotations

import time
from typing import Any

from hwinfo.energy import check_energy

IDLE_SECONDS = 1.0  # NVML's energy counter updates about every 100 ms: ten updates


class EnergyRecorder:
    """Joules of the timed phase and of the evals of one run, and the idle power before it."""

    def __init__(
        self, meter: Any, idle_seconds: float = IDLE_SECONDS, clock: Any = time.perf_counter
    ) -> None:
        self.meter = meter
        self.idle_seconds = idle_seconds
        self.clock = clock
        self.idle_watts: float | None = None
        self.timed_joules = 0.0
        self.timed_seconds = 0.0
        self.eval_joules = 0.0
        self._timed_from: tuple[float, float] | None = None
        self._eval_from: tuple[float, float] | None = None
        self.error: str | None = None

    @property
    def available(self) -> bool:
        return bool(getattr(self.meter, "available", False)) and self.error is None

    def _read(self) -> tuple[float, float] | None:
        if not self.available:
            return None
        try:
            joules = float(self.meter.read_joules())
        except Exception as e:  # noqa: BLE001 - a counter that stops answering ends energy, never the run
            self.error = f"the counter stopped answering: {type(e).__name__}: {e}"
            return None
        return joules, self.clock()

    def measure_idle(self) -> None:
        """Idle power just before the run (the device doing nothing for idle_seconds)."""
        a = self._read()
        if a is None:
            return
        time.sleep(self.idle_seconds)
        b = self._read()
        if b is not None and b[1] > a[1] and b[0] >= a[0]:
            self.idle_watts = (b[0] - a[0]) / (b[1] - a[1])

    def timed_begin(self) -> None:
        self._timed_from = self._read()

    def _since(self, start: tuple[float, float] | None) -> tuple[float, float]:
        """(joules, seconds) from `start` to now; (0, 0) where either reading is missing."""
        end = self._read() if start is not None else None
        return (end[0] - start[0], end[1] - start[1]) if start is not None and end is not None else (0.0, 0.0)

    def timed_end(self) -> None:
        """End of a stretch of timed steps (before an eval, or at the end of the steps)."""
        joules, seconds = self._since(self._timed_from)
        self._timed_from = None
        self.timed_joules += joules
        self.timed_seconds += seconds

    def eval_begin(self) -> None:
        self._eval_from = self._read()

    def eval_end(self) -> None:
        self.eval_joules += self._since(self._eval_from)[0]
        self._eval_from = None

    def summary(self, timed_steps: int, tokens_per_step: int) -> dict:
        """run.json's summary.energy."""
        meter = self.meter
        out: dict[str, Any] = {
            "source": getattr(meter, "source", "unavailable") if self.error is None else "unavailable",
            "reason": self.error or getattr(meter, "reason", None),
            "domains": list(getattr(meter, "domains", []) or []),
            "detail": getattr(meter, "detail", None),
            **dict.fromkeys(("joules_per_step", "tokens_per_joule", "mean_watts")),
            "idle_watts": self.idle_watts,
            **dict.fromkeys(("eval_joules", "timed_joules")),
        }
        band = getattr(meter, "band", None)
        if band is not None:
            out["band"] = band.as_dict()
        if out["source"] == "unavailable":
            return out
        out["eval_joules"] = self.eval_joules
        if timed_steps > 0 and self.timed_joules > 0 and self.timed_seconds > 0:
            out["timed_joules"] = self.timed_joules
            out["joules_per_step"] = self.timed_joules / timed_steps
            out["tokens_per_joule"] = tokens_per_step * timed_steps / self.timed_joules
            out["mean_watts"] = self.timed_joules / self.timed_seconds
        elif timed_steps > 0 and self.timed_joules < 0:
            out["reason"] = f"the counter went backwards during the timed steps ({self.timed_joules:.3g} J)"
        elif timed_steps > 0:
            out["reason"] = (
                "the counter did not advance during the timed steps (a run too short for its update period)"
            )
        if self.eval_joules < 0:
            out["reason"] = f"the counter went backwards during the evals ({self.eval_joules:.3g} J)"
            out["mean_watts"] = out["joules_per_step"] = out["tokens_per_joule"] = None
        if out["mean_watts"] is not None or self.eval_joules < 0:
            figures, why = check_energy(out, tokens_per_step, band)
            if figures is None:
                out["rejected"] = {k: out[k] for k in ("joules_per_step", "tokens_per_joule", "mean_watts",
                                                       "idle_watts", "eval_joules", "timed_joules")}  # fmt: skip
                out.update({k: None for k in out["rejected"]})
                out["reason"] = why
            else:
                out["idle_watts"] = figures["idle_watts"]
        return out

    def close(self) -> None:
        close = getattr(self.meter, "close", None)
        if close is not None:
            close()
