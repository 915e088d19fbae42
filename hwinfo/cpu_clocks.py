"""A CPU's max (boost) clock with its provenance, chosen from the most trustworthy source and cross-checked.

Sources, most trusted first:
1. the datasheet boost of the model, from CPU_DATASHEET (a small table of server and desktop parts);
2. amd-pstate's `amd_pstate_max_freq` (the highest performance level, boost included);
3. cpufreq `cpuinfo_max_freq` (or lscpu's "CPU max MHz", which reads it), unless it is rejected:
   - acpi-cpufreq with boost on reports the base clock there, not the boost clock;
   - a "max" below the clock the CPU is running at cannot be the max;
   - a "max" far above the fastest part of its microarchitecture is a firmware error (7228 MHz on a
     Ryzen 9 5950X, whose boost is 4.9 GHz);
4. nothing: the peak then uses the base clock (the model name's "@ 2.10GHz" is the base, never the max)
   or the current clock, and is `derived`, not `spec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DatasheetClock:
    """Base and max boost clocks (MHz) of one model, with the vendor page that states them."""

    pattern: str  # matched against the model name (re.search, case-insensitive)
    base_mhz: float
    boost_mhz: float
    source: str


_AMD = "https://www.amd.com/en/products/processors/"
_ARK = "https://www.intel.com/content/www/us/en/products/sku/"
CPU_DATASHEET: tuple[DatasheetClock, ...] = (
    DatasheetClock(r"\bEPYC 7451\b", 2300, 3200, _AMD + "server/epyc/7001-series/amd-epyc-7451.html"),
    DatasheetClock(r"\bEPYC 7742\b", 2250, 3400, _AMD + "server/epyc/7002-series/amd-epyc-7742.html"),
    DatasheetClock(r"\bEPYC 7763\b", 2450, 3500, _AMD + "server/epyc/7003-series/amd-epyc-7763.html"),
    DatasheetClock(r"\bEPYC 9654\b", 2400, 3700, _AMD + "server/epyc/9004-series/amd-epyc-9654.html"),
    DatasheetClock(
        r"\bRyzen 9 3950X\b", 3500, 4700, _AMD + "desktops/ryzen/3000-series/amd-ryzen-9-3950x.html"
    ),
    DatasheetClock(
        r"\bRyzen 9 5950X\b", 3400, 4900, _AMD + "desktops/ryzen/5000-series/amd-ryzen-9-5950x.html"
    ),
    DatasheetClock(
        r"\bRyzen 9 7950X\b(?!3D)", 4500, 5700, _AMD + "desktops/ryzen/7000-series/amd-ryzen-9-7950x.html"
    ),
    DatasheetClock(
        r"\bRyzen 9 9950X\b(?!3D)", 4300, 5700, _AMD + "desktops/ryzen/9000-series/amd-ryzen-9-9950x.html"
    ),
    DatasheetClock(r"\bXeon\(R\) Silver 4110\b|\bXeon Silver 4110\b", 2100, 3000, _ARK + "123547/"),
    DatasheetClock(r"\bXeon\(R\) Gold 6130\b|\bXeon Gold 6130\b", 2100, 3700, _ARK + "120492/"),
    DatasheetClock(r"\bXeon\(R\) Platinum 8380\b|\bXeon Platinum 8380\b", 2300, 3400, _ARK + "212287/"),
    DatasheetClock(r"\bPlatinum 8480\+", 2000, 3800, _ARK + "231746/"),
)

# The highest max clock (MHz) of any part of a microarchitecture, from the vendors' pages: a reported
# "max" more than MAX_OVER_FAMILY above it is rejected as a firmware error.
FAMILY_MAX_BOOST_MHZ: dict[str, float] = {
    "Zen": 4400,  # Ryzen Threadripper 2950X (Zen+)
    "Zen 2": 4700,  # Ryzen 9 3950X
    "Zen 3": 4900,  # Ryzen 9 5950X
    "Zen 4": 5700,  # Ryzen 9 7950X
    "Zen 5": 5700,  # Ryzen 9 9950X
    "Zen 5 (256-bit datapath)": 5100,  # Ryzen AI 9 HX 375
    "Skylake": 5300,  # Core i9-10900K (Comet Lake)
    "Skylake-SP": 4500,  # Xeon W-3175X
    "Cascade Lake": 4800,  # Core i9-10980XE
    "Ice Lake-SP": 4000,  # Xeon W-3375
    "Sapphire Rapids": 4800,  # Xeon w9-3495X
    "Tiger Lake": 5000,  # Core i9-11980HK
    "Alder Lake": 5500,  # Core i9-12900KS
    "Raptor Lake": 6200,  # Core i9-14900KS
    "Meteor Lake": 5100,  # Core Ultra 9 185H
    "Arrow Lake": 5700,  # Core Ultra 9 285K
}
MAX_OVER_FAMILY = 1.10


def datasheet_clock(model_name: str | None) -> DatasheetClock | None:
    """The CPU_DATASHEET row for a model name, else None."""
    for row in CPU_DATASHEET:
        if re.search(row.pattern, model_name or "", re.IGNORECASE):
            return row
    return None


def model_name_base_mhz(model_name: str | None) -> float | None:
    """The "@ 2.10GHz" of an Intel brand string: the base clock, never the max."""
    m = re.search(r"@\s*(\d+(?:\.\d+)?)\s*GHz", model_name or "")
    return float(m.group(1)) * 1000 if m else None


def is_turbo_marker(mhz: float) -> bool:
    """2501, 3401.0: a whole number of 100 MHz plus 1, the ACPI turbo entry of an Intel P-state table."""
    return abs(mhz - round(mhz)) < 1e-3 and round(mhz) % 100 == 1 and mhz > 1000


def is_pstate_table_value(mhz: float) -> bool:
    """A round P-state table figure (a multiple of 25 MHz), as acpi-cpufreq reports for the base clock."""
    return abs(mhz / 25 - round(mhz / 25)) < 1e-3


def resolve_max_clock(
    *,
    model_name: str | None,
    uarch: str | None,
    reported_max_mhz: float | None,
    reported_source: str,
    current_mhz: float | None = None,
    amd_pstate_max_mhz: float | None = None,
    driver: str | None = None,
    boost_on: bool | None = None,
    x86: bool = True,
) -> dict[str, Any]:
    """{"max_mhz", "max_source", "base_mhz" (or None), "base_source", "notes": [why a candidate was
    rejected or disagrees]}. max_mhz is None when no source survives the checks."""
    notes: list[str] = []
    row = datasheet_clock(model_name)
    base_mhz: float | None = None
    base_source: str | None = None

    candidate = reported_max_mhz
    if candidate and x86 and is_turbo_marker(candidate):
        # ACPI _PSS lists Intel's turbo state as the base clock + 1 MHz (2501 on a 2.5 GHz part): acpi-cpufreq
        # reports that entry as the max, which says only that some turbo exists.
        notes.append(
            f"{reported_source} reads {candidate:.0f} MHz: the ACPI turbo marker (base clock + 1 MHz), so the base "
            f"clock is {candidate - 1:.0f} MHz and the turbo clock is not reported"
        )
        base_mhz, base_source = candidate - 1, f"{reported_source} (the ACPI turbo marker, base + 1 MHz)"
        candidate = None
    if candidate and boost_on and driver in ("acpi-cpufreq", None) and is_pstate_table_value(candidate):
        # acpi-cpufreq with boost on reports the highest P-state of the ACPI table (the base clock), a round
        # figure; kernels since 5.12 report a boost figure from CPPC's highest performance on AMD instead,
        # which is not round (5879.88 MHz on a Ryzen 9 7950X) and is kept.
        notes.append(
            f"{reported_source} reads {candidate:.0f} MHz, but the driver is acpi-cpufreq with boost on: that "
            "is the base clock, not the boost clock"
        )
        base_mhz, base_source = candidate, f"{reported_source} (acpi-cpufreq, boost on: the base clock)"
        candidate = None
    if candidate and current_mhz and candidate < 0.98 * current_mhz:
        notes.append(
            f"{reported_source} reads {candidate:.0f} MHz, below the current clock {current_mhz:.0f} MHz: not the "
            "max (acpi-cpufreq reports the base clock when boost is on)"
        )
        candidate = None
    family_max = FAMILY_MAX_BOOST_MHZ.get(uarch or "")
    if candidate and family_max and candidate > MAX_OVER_FAMILY * family_max:
        notes.append(
            f"{reported_source} reads {candidate:.0f} MHz, far above the fastest {uarch} part ({family_max:.0f} "
            "MHz): a firmware error, rejected"
        )
        candidate = None
    if (
        candidate
        and row
        and abs(candidate - row.base_mhz) <= 0.02 * row.base_mhz
        and row.base_mhz < 0.95 * row.boost_mhz
    ):
        notes.append(
            f"{reported_source} reads {candidate:.0f} MHz, the datasheet base clock of this model (boost "
            f"{row.boost_mhz:.0f} MHz): the driver reports base, not boost"
        )
        candidate = None

    if row:
        base_mhz, base_source = float(row.base_mhz), f"datasheet ({row.source})"
        for value, where in (
            (amd_pstate_max_mhz, "amd-pstate amd_pstate_max_freq"),
            (candidate, reported_source),
        ):
            if value and abs(value - row.boost_mhz) > 0.05 * row.boost_mhz:
                notes.append(
                    f"{where} reads {value:.0f} MHz, the datasheet boost is {row.boost_mhz:.0f} MHz: the spec peak "
                    "uses the datasheet (firmware limits, overclocks and boost settings change the real one)"
                )
        return {
            "max_mhz": float(row.boost_mhz),
            "max_source": f"datasheet boost ({row.source})",
            "base_mhz": base_mhz,
            "base_source": base_source,
            "notes": notes,
        }
    if amd_pstate_max_mhz:
        return {
            "max_mhz": amd_pstate_max_mhz,
            "max_source": "sysfs amd-pstate amd_pstate_max_freq (highest performance, boost included)",
            "base_mhz": base_mhz,
            "base_source": base_source,
            "notes": notes,
        }
    if candidate:
        return {
            "max_mhz": candidate,
            "max_source": reported_source,
            "base_mhz": base_mhz,
            "base_source": base_source,
            "notes": notes,
        }
    return {
        "max_mhz": None,
        "max_source": None,
        "base_mhz": base_mhz,
        "base_source": base_source,
        "notes": notes,
    }
