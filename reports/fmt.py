"""Number formatting shared by tables, findings and the HTML page."""

from __future__ import annotations

from typing import Any

from hwinfo.units import bytes_per_s, flops, is_num, nbytes, sig  # noqa: F401 - one formatter everywhere


def num(x: Any) -> float | None:
    """A finite number from a results cell (int, float, numpy scalar) as float; a string or bool is None."""
    return float(x) if is_num(x) and not isinstance(x, (str, bytes)) else None


def ms(x: Any) -> str:
    return sig(x) if is_num(x) else "-"


def pct(x: Any) -> str:
    """A fraction as a percentage with 3 significant digits ("0.0195%", "41.2%")."""
    return f"{sig(float(x) * 100)}%" if is_num(x) else "-"


def ratio(x: Any) -> str:
    """A ratio: "37x", "1.3x", "0.019x"."""
    if not is_num(x):
        return "-"
    x = float(x)
    return f"{x:,.0f}x" if 100 <= x < 1e18 else f"{sig(x, 2)}x"


def count(x: Any) -> str:
    """A rate or count with thousands separators ("187,000")."""
    if not is_num(x):
        return "-"
    x = float(x)
    return f"{x:,.0f}" if 100 <= abs(x) < 1e18 else sig(x)


def loss(x: Any) -> str:
    """4 decimals ("1.6684"); a damaged, huge figure in 3 significant digits, never hundreds of them."""
    if not is_num(x):
        return "-"
    return f"{float(x):.4f}" if abs(float(x)) < 1e6 else sig(x)


def names(items: list[str], limit: int = 3) -> str:
    """'a, b and c' or 'a, b, c and 4 more'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    if len(items) <= limit:
        return ", ".join(items[:-1]) + " and " + items[-1]
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
