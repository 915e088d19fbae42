"""Energy findings: joules per step and tokens per joule from real counters, or why there are none.

Reads summary.energy of each run (bench.energy: the timed phase and the evals metered apart at phase
boundaries, an idle reading before the run). The words are in reports.words.
"""

from __future__ import annotations

import pandas as pd

from hwinfo.energy import COUNTER_SOURCES
from reports import fmt
from reports.finding import Finding
from reports.load import Results

FIGURES = ("joules_per_step", "tokens_per_joule", "mean_watts", "idle_watts", "energy_source", "tokens_per_s")


def _has_energy(r: pd.Series) -> bool:
    """Figures that passed reports.load's checks (a real counter, inside the device's power band)."""
    return r.get("energy_source") in COUNTER_SOURCES and fmt.is_num(r.get("tokens_per_joule"))


def _integrated_gpu(results: Results, key: str) -> str | None:
    for g in results.hwinfo_for(key).get("gpus") or []:
        if isinstance(g, dict) and g.get("integrated"):
            return str(g.get("name") or "an integrated GPU")
    return None


def energy_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """Per device: its energy per step and per token (best tokens/s run), the comparison between devices when
    two have counters, and, where a device has none, exactly why (once per host and device)."""
    if "energy_source" not in ok.columns:
        return []
    out: list[Finding] = []
    measured = ok[[_has_energy(r) for _, r in ok.iterrows()]]
    best = (
        measured.sort_values("tokens_per_s", ascending=False).groupby(["host", "device"], sort=False).head(1)
        if len(measured)
        else measured
    )
    for key, r in best.iterrows():
        # an iGPU shares the CPU package's power budget, so the package (RAPL) counter includes it
        igpu = _integrated_gpu(results, key) if r.get("energy_source") == "rapl" else None
        evidence = {k: r.get(k) for k in FIGURES} | {
            "device": results.device_label(key, r["dtype"]),
            "igpu": igpu,
        }
        out.append(Finding("energy", "info", evidence=evidence, runs=[key]))
    if len(best) >= 2:
        ranked = best.sort_values("tokens_per_joule", ascending=False)
        frugal, costly = ranked.iloc[0], ranked.iloc[-1]
        keys = [frugal["key"], costly["key"]]
        evidence = {
            "energy_ratio": float(frugal["tokens_per_joule"]) / float(costly["tokens_per_joule"]),
            "time_ratio": float(frugal["tokens_per_s"]) / float(costly["tokens_per_s"]),
            "runs": keys,
            "devices": [results.device_label(k) for k in keys],
            "tokens_per_joule": [frugal["tokens_per_joule"], costly["tokens_per_joule"]],
        }
        out.append(Finding("energy_compare", "info", evidence=evidence, runs=keys))
    missing = ok[ok["energy_reason"].notna()]
    counted = ok[ok["energy_source"].notna()].groupby(["host", "device"], sort=False).size()
    for (host, device), g in missing.groupby(["host", "device"], sort=False):
        r = g.iloc[0]
        evidence = {
            "reason": r["energy_reason"],
            "reasons": list(dict.fromkeys(str(x).rstrip(".") for x in g["energy_reason"])),
            "runs": len(g),
            "of_runs": int(counted.get((host, device), len(g))),
            "device": results.device_label(r["key"]),
        }
        out.append(Finding("energy_unavailable", "info", evidence=evidence, runs=list(g.index)))
    return out
