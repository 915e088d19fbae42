"""Numbers as people read them, in one place for hwinfo, bench and reports: FLOP/s, bytes/s, bytes.

Torch-free and import-free, at the bottom of the layers (hwinfo -> bench -> reports), so every part can
use it and a figure prints the same way everywhere.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def positive(value: Any, most: float = math.inf) -> float | None:
    """value as a float when it is a real number (not a bool, not text that looks like one) that is finite,
    above zero and at most `most`; else None. The one check behind every rate, time, peak and count read
    from a file or an API."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    v = float(value)
    return v if 0 < v <= most and v != math.inf else None


def is_positive(value: Any) -> bool:
    """A real number above zero and finite (not a bool, a string, NaN or infinity)."""
    return positive(value) is not None


def is_num(x: Any) -> bool:
    """A finite number (not None, not NaN, not a bool)."""
    if isinstance(x, bool):
        return False
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def sig(x: Any, digits: int = 3) -> str:
    """x with `digits` significant digits, thousands separators, no exponent (outside 1e-9..1e18, which
    only damaged input reaches, an exponent); "-" when not a number."""
    if not is_num(x):
        return "-"
    x = float(x)
    if x == 0:
        return "0"
    if not 1e-9 <= abs(x) < 1e18:  # only a damaged or absurd input gets here: never hundreds of digits
        return f"{x:.{digits - 1}e}"
    mag = math.floor(math.log10(abs(x)))
    decimals = max(digits - 1 - mag, 0)
    return f"{x:,.{decimals}f}"


def _scaled(x: Any, units: tuple[tuple[str, float], ...], base: str, digits: int) -> str:
    if not is_num(x):
        return "unknown"
    x = float(x)
    for unit, scale in units:
        if abs(x) >= scale:
            return f"{sig(x / scale, digits)} {unit}"
    return f"{sig(x, digits)} {base}"


_FLOPS_UNITS = (("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9), ("MFLOP/s", 1e6))
_BW_UNITS = (("TB/s", 1e12), ("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3))
_BYTES_UNITS = (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))


def flops(x: Any, digits: int = 3) -> str:
    """FLOP/s: 166150400000.0 -> "166 GFLOP/s"; None -> "unknown"."""
    return _scaled(x, _FLOPS_UNITS, "FLOP/s", digits)


def bytes_per_s(x: Any, digits: int = 3) -> str:
    """Bandwidth in decimal units: 2.05e10 -> "20.5 GB/s"; None -> "unknown"."""
    return _scaled(x, _BW_UNITS, "B/s", digits)


def nbytes(x: Any, digits: int = 3) -> str:
    """A size in decimal units: 2.68e8 -> "268 MB"; None -> "unknown"."""
    return _scaled(x, _BYTES_UNITS, "B", digits)
