"""Energy findings: joules per step and tokens per joule from real counters, or why there are none.

Reads summary.energy of each run (bench.energy: the timed phase and the evals metered apart at phase
boundaries, an idle reading before the run). Torch-free.
"""

from __future__ import annotations

import pandas as pd

from hwinfo.energy import COUNTER_SOURCES
from reports import fmt
from reports.finding import Finding
from reports.load import Results

SOURCES = {
    "rapl": "RAPL package+DRAM counters",
    "nvml_energy": "NVML energy counter",
    "nvml_power_samples": "NVML power samples integrated over time",
}


def _has_energy(r: pd.Series) -> bool:
    """Figures that passed reports.load's checks (a real counter, inside the device's power band)."""
    return r.get("energy_source") in COUNTER_SOURCES and fmt.is_num(r.get("tokens_per_joule"))


def _describe(r: pd.Series) -> str:
    idle = f", idle {fmt.sig(r['idle_watts'])} W" if fmt.is_num(r.get("idle_watts")) else ""
    source = SOURCES.get(str(r.get("energy_source")), str(r.get("energy_source")))
    return (
        f"{fmt.sig(r['joules_per_step'])} J/step, {fmt.count(r['tokens_per_joule'])} tokens/J at "
        f"{fmt.sig(r['mean_watts'])} W mean{idle} ({source})"
    )


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
        sentence = f"{results.device_label(key, r['dtype'])} in its fastest run ({results.label(key)}): {_describe(r)}."
        igpu = _integrated_gpu(results, key) if r.get("energy_source") == "rapl" else None
        if igpu:
            sentence += (
                f" {igpu} shares the CPU package's power budget: the package counter includes whatever it drew, "
                "and a busy iGPU leaves the CPU cores less power."
            )
        evidence = {k: r.get(k) for k in ("joules_per_step", "tokens_per_joule", "mean_watts", "idle_watts",
                                           "energy_source", "tokens_per_s")}  # fmt: skip
        out.append(Finding("energy", "info", sentence, evidence, [key]))
    if len(best) >= 2:
        ranked = best.sort_values("tokens_per_joule", ascending=False)
        frugal, costly = ranked.iloc[0], ranked.iloc[-1]
        energy_ratio = float(frugal["tokens_per_joule"]) / float(costly["tokens_per_joule"])
        time_ratio = float(frugal["tokens_per_s"]) / float(costly["tokens_per_s"])
        speed = (
            f"{fmt.ratio(time_ratio)} faster" if time_ratio >= 1 else f"{fmt.ratio(1 / time_ratio)} slower"
        )
        sentence = (
            f"Per token, {results.device_label(frugal['key'])} uses {fmt.ratio(energy_ratio)} less energy than "
            f"{results.device_label(costly['key'])} ({fmt.count(frugal['tokens_per_joule'])} vs "
            f"{fmt.count(costly['tokens_per_joule'])} tokens/J) and is {speed} in tokens/s: "
            + (
                "cheaper and faster."
                if time_ratio >= 1
                else "cheaper but slower: the energy saving costs time."
            )
            + " Each counter covers its own device only (a GPU's excludes the host CPU that feeds it)."
        )
        out.append(
            Finding(
                "energy_compare", "info", sentence,
                {"energy_ratio": energy_ratio, "time_ratio": time_ratio, "runs": [frugal["key"], costly["key"]]},
                [frugal["key"], costly["key"]],
            )
        )  # fmt: skip
    missing = ok[ok["energy_reason"].notna()]
    counted = ok[ok["energy_source"].notna()].groupby(["host", "device"], sort=False).size()
    for (host, device), g in missing.groupby(["host", "device"], sort=False):
        r = g.iloc[0]
        total = int(counted.get((host, device), len(g)))
        which = f" in {len(g)} of its {total} runs" if len(g) < total else ""
        reasons = list(dict.fromkeys(str(x).rstrip(".") for x in g["energy_reason"]))
        reason = reasons[0] + (
            f" (and {len(reasons) - 1} other reason{'s' if len(reasons) > 2 else ''} in the details)"
            if len(reasons) > 1 else ""
        )  # fmt: skip
        out.append(
            Finding(
                "energy_unavailable", "info",
                f"No energy figures for {results.device_label(r['key'])}{which}: {reason}. devicebench never "
                "estimates energy from a TDP.",
                {"reason": r["energy_reason"], "reasons": reasons, "runs": len(g)}, list(g.index),
            )
        )  # fmt: skip
    return out
