"""The diagnosis: findings as data (kind, severity, runs, evidence); reports/words.py words them.

`diagnose(results)` returns the `Finding`s, the ones that explain most of the step or the gap first, and
`headline(results, findings)` the answer a report opens with. Kinds made here: speedup, impossible_mfu,
config_mismatch, loss_agree, loss_disagree, assumed_config, overfitting, eval_in_timer, overhead_bound,
compute_bound, batch_scaling, mfu_vs_a100, peak_unknown, cpu_threads, cpu_dtype, warmup_cost,
step_breakdown, noisy_timing; and in their own modules: roofline (reports.roofline), energy,
energy_compare, energy_unavailable (reports.energy), scaling, shared_cores, scaling_limit, ranks_differ
(reports.scaling), time_to_loss (reports.time_to_loss), and from a `bench tune`: best_config and tip
(reports.tips). A rule that fails on some directory leaves its findings out with one warning naming it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.metrics import BUSY_OTHER_CORES, mfu, mfu_is_possible
from hwinfo.peaks import A100_BF16_PEAK_FLOPS as A100_PEAK_FLOPS
from reports import fmt
from reports.continuation import LOSS_TOLERANCE_FP32, LOSS_TOLERANCE_REDUCED, OVERFIT_RISE, linked_pairs
from reports.energy import energy_findings
from reports.finding import Finding
from reports.load import LOSS_NEUTRAL_TRAIN_KEYS, Results, step_ms_spanned
from reports.profile_text import PROFILED_SLOWER
from reports.roofline import NATIVE_CPU_FEATURES, compute_lever, roofline_findings
from reports.scaling import scaling_findings
from reports.time_to_loss import time_to_loss_findings
from reports.tips import best_config_findings, tip_findings

# Same config and seed give the same batches on every device, so val curves differ only by numerics.
# Batch scaling: ms ~ batch**exponent across a device's batch sweep.
OVERHEAD_EXPONENT = 0.5  # below: time barely grows with batch
COMPUTE_EXPONENT = 0.8  # above: time grows nearly in proportion
LOW_MFU = 0.3  # "far below its own peak" at the smallest batch
NEAR_PEAK_MFU = 0.5
WARMUP_RATIO = 3.0  # a first step this many times the median is worth a sentence
NOISY_SPREAD = 1.5  # p90/p10 of the timed steps above this: the timings are noisy
IDLE_DEVICE = 0.5  # a CUDA step whose device is idle this fraction of the time is launch-bound

# How much of the step or the gap a kind explains when its rule has no figure for it (ordering only).
EXPLAINS = {
    "speedup": 1.0, "impossible_mfu": 1.0, "ranks_differ": 1.0, "loss_disagree": 0.8, "shared_cores": 0.6,
    "peak_unknown": 0.5, "scaling": 0.5, "time_to_loss": 0.5, "best_config": 0.5, "tip": 0.4,
    "mfu_vs_a100": 0.1, "assumed_config": 0.1, "energy": 0.1, "energy_compare": 0.1, "energy_unavailable": 0.05,
    "loss_agree": 0.05, "cpu_threads": 0.1,
}  # fmt: skip

SINGLE_PROCESS_ONLY = {"speedup", "batch_scaling", "thread"}  # data-parallel runs have reports.scaling
# Rules that compare losses, recipes or work per token: they see only runs with a training recipe. A trace read
# by `bench profile` has no model, no training config and no loss (and counts only its matmuls' FLOPs); it is
# compared on what it has: ms/step, where its step goes, its MFU against a known peak.
RECIPE_ONLY = {"speedup", "config", "overfit", "eval_timer", "mfu", "time_to_loss"}


def _rules() -> tuple:
    return (
        speedup_findings, impossible_mfu_findings, config_findings, overfit_findings, eval_timer_findings,
        batch_scaling_findings, mfu_findings, peak_findings, thread_findings, cpu_dtype_findings,
        warmup_findings, profile_findings, roofline_findings, noise_findings, energy_findings,
        scaling_findings, time_to_loss_findings, tip_findings, best_config_findings,
    )  # fmt: skip


def has_recipe(results: Results, key: str) -> bool:
    """Whether the run was trained from a recipe it recorded (a model and a training config): a trace read by
    `bench profile` has neither."""
    meta = results.run_meta.get(key) or {}
    return bool(isinstance(meta.get("model"), dict) and meta["model"] and isinstance(meta.get("train"), dict))


def _rule_name(rule: Any) -> str:
    return rule.__name__.removesuffix("_findings")


def dir_labels(results: Results) -> dict[str, str]:
    """results_dir -> the fewest trailing path parts that tell the merged directories apart."""
    dirs = sorted({str(d) for d in results.runs["results_dir"]}) if len(results.runs) else []
    parts = {d: Path(d).parts for d in dirs}
    for n in range(1, max((len(p) for p in parts.values()), default=1) + 1):
        labels = {d: "/".join(p[-n:]) for d, p in parts.items()}
        if len(set(labels.values())) == len(labels):
            return labels
    return {d: d for d in dirs}


def _checked(results: Results, made: list[Finding]) -> list[Finding]:
    """The rule's findings, each labelled and worded once here: one whose words cannot be made (evidence the
    template does not expect) is left out now, with a warning naming its directory, not in mid-output."""
    kept = []
    for f in made:
        f.labels = {k: results.label(k) for k in f.runs if k in results.runs.index}
        for k in ("key", "run", "reference", "fast", "slow", "more"):
            v = f.evidence.get(k)
            if isinstance(v, str) and v in results.runs.index:
                f.labels.setdefault(v, results.label(v))
        try:
            _ = f.sentence
        except Exception as e:  # noqa: BLE001 - one finding, not the report
            dirs = sorted({str(results.runs.loc[k, "results_dir"]) for k in f.labels}) or ["these results"]
            results.warnings.append(
                f"{', '.join(dirs)}: a {f.kind} finding could not be worded ({type(e).__name__}: {e}): left out"
            )
            continue
        kept.append(f)
    return kept


def _run_rule(results: Results, rule: Any, ok: pd.DataFrame) -> list[Finding]:
    """One rule over the runs; when it fails, again per results directory: the directories where it works
    keep their findings, each one where it fails gets one warning line naming it."""
    try:
        return _checked(results, rule(results, ok))
    except Exception as e:  # noqa: BLE001 - a bug or damaged input in one rule must not take the report down
        first = e
    out: list[Finding] = []
    failed: list[str] = []
    for d, sub in ok.groupby("results_dir", sort=False):
        try:
            out.extend(_checked(results, rule(results, sub)))
        except Exception:  # noqa: BLE001
            failed.append(str(d))
    why = f"{type(first).__name__}: {first}"
    for d in failed or ["across these directories"]:
        results.warnings.append(f"{d}: the {_rule_name(rule)} findings could not be made ({why}): left out")
    return out


def diagnose(results: Results) -> list[Finding]:
    """Every finding for these results, those that explain most of the step or the gap first; ids kind-N."""
    ok = results.ok_runs()
    findings: list[Finding] = []
    single = ok[ok["world_size"].fillna(1) <= 1] if "world_size" in ok.columns else ok
    if len(ok):
        for rule in _rules():
            name = _rule_name(rule)
            runs = single if name in SINGLE_PROCESS_ONLY else ok
            if name in RECIPE_ONLY:
                runs = runs[[has_recipe(results, k) for k in runs.index]]
            if len(runs):
                findings.extend(_run_rule(results, rule, runs))
    _name_directories(results, findings)
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
        f.id = f"{f.kind}-{counts[f.kind]}"
        if f.explains is None:
            f.explains = EXPLAINS.get(f.kind, 0.3 if f.severity == "warning" else 0.1)
    return ordered(findings)


def ordered(findings: list[Finding]) -> list[Finding]:
    """Most of the step or the gap explained first; a warning before an info that explains as much."""
    return sorted(findings, key=lambda f: (-(f.explains or 0.0), f.severity != "warning"))


def _name_directories(results: Results, findings: list[Finding]) -> None:
    """Where two findings from different merged directories would read the same (two tunes of one host),
    each is prefixed with its directory's label."""
    if len(results.runs) == 0 or results.runs["results_dir"].nunique() < 2:
        return
    labels = dir_labels(results)
    same: dict[str, list[Finding]] = {}
    for f in findings:
        same.setdefault(f.sentence, []).append(f)
    for group in same.values():
        if len(group) < 2:
            continue
        for f in group:
            dirs = {str(results.runs.loc[k, "results_dir"]) for k in f.runs if k in results.runs.index}
            if len(dirs) == 1:
                f.where = labels[dirs.pop()]


def headline(results: Results, findings: list[Finding]) -> Finding:
    """The answer first. Several devices: the largest speedup split into peak x utilisation, with the
    recipe fields that differ between those two runs. One device: its best run's tokens/s, where its step
    goes and the one lever worth pulling."""
    speed = [f for f in findings if f.kind == "speedup"]
    if speed:
        top = max(speed, key=lambda f: f.evidence["speedup"])
        pair = {top.evidence["fast"], top.evidence["slow"]}
        differs: list[str] = []
        for f in findings:
            if f.kind == "config_mismatch" and {f.evidence["run"], f.evidence["reference"]} == pair:
                differs = list(f.evidence["differs"])
        ev = {**top.evidence, "case": "compare", "recipe_differs": differs, "finding": top.id}
        return Finding("headline", "info", evidence=ev, runs=list(top.runs), labels=dict(top.labels))
    ok = results.ok_runs()
    if ok.empty:
        runs = results.runs
        finished = int((runs["status"] == "ok").sum()) if len(runs) else 0
        ev0 = {"case": "none", "runs": len(runs), "finished": finished, "warnings": len(results.warnings)}
        return Finding("headline", "info", evidence=ev0)
    best = ok.loc[ok["tokens_per_s"].idxmax()] if ok["tokens_per_s"].notna().any() else ok.iloc[0]
    key = best["key"]
    ev: dict[str, Any] = {
        "case": "one", "device": short_device(results, key, best["dtype"]), "tokens_per_s": _num(best["tokens_per_s"]),
        "mfu": _possible_mfu(best), "impossible_mfu": _impossible_mfu(best), "run": key, "where": None, "where_share": None, "lever": None,
    }  # fmt: skip
    # the best run's device in its dtype: an fp32 batch sweep's lever ("bf16, native here") is not a bf16 run's
    device = {
        k
        for k in ok.index
        if (ok.loc[k, "host"], ok.loc[k, "device"], ok.loc[k, "dtype"])
        == (best["host"], best["device"], best["dtype"])
    }
    # ordered: the first that says where this device's step goes, and its lever; the best run's own first
    for f in sorted(findings, key=lambda f: key not in f.runs):
        if not set(f.runs) & device:
            continue
        part = None
        if f.kind == "roofline" and not f.evidence.get("host_only") and f.evidence.get("bound_fraction"):
            b, v = max(f.evidence["bound_fraction"].items(), key=lambda kv: kv[1])
            part = (f"{b}-bound", v)
        elif f.kind in ("overhead_bound", "compute_bound") and f.explains is not None:
            part = ("fixed per-step overhead" if f.kind == "overhead_bound" else "work that grows with the batch",
                    f.explains)  # fmt: skip
        elif f.kind == "step_breakdown" and f.evidence.get("fraction"):
            part = max(f.evidence["fraction"].items(), key=lambda kv: kv[1] or 0)
        if part and ev["where"] is None:
            ev["where"], ev["where_share"] = part
        ev["lever"] = ev["lever"] or f.evidence.get("lever")
        if ev["where"] and ev["lever"]:
            break
    return Finding("headline", "info", evidence=ev, runs=[key], labels={key: results.label(key)})


def _achieved(r: pd.Series | dict) -> float | None:  # a row, or a dict of one (no Series per run)
    v = r.get("achieved_flops_per_s")
    if fmt.is_num(v):
        return float(v)
    if fmt.is_num(r.get("flops_per_iter")) and fmt.is_num(r.get("ms_median")) and r["ms_median"] > 0:
        return float(r["flops_per_iter"]) / (float(r["ms_median"]) / 1e3)
    return None


def _peak(r: pd.Series | dict) -> float | None:
    v = r.get("peak_value")
    return float(v) if fmt.is_num(v) and float(v) > 0 and r.get("peak_source") != "unknown" else None


def _mfu(r: pd.Series) -> float | None:
    """The run's MFU against its own peak (bench.metrics.mfu, as the run recorded it or computed alike).

    Above 100% it is impossible (wrong peak or config): bench.metrics.mfu_is_possible says so.
    """
    if fmt.is_num(r.get("mfu")):
        return float(r["mfu"])
    return mfu(_achieved(r), _peak(r))


def _per_token_us(r: pd.Series) -> float | None:
    v = r.get("tokens_per_s")
    return 1e6 / float(v) if fmt.is_num(v) and float(v) > 0 else None


def _params(results: Results, key: str) -> int | None:
    """Non-embedding parameters as nanoGPT counts them: run.json's `params`, else from the FLOP count
    (flops_per_token = 6N + 12*n_layer*n_embd*block_size)."""
    meta = results.run_meta.get(key) or {}
    if fmt.is_num(meta.get("params")):
        return int(meta["params"])
    model, fpt = meta.get("model") or {}, meta.get("flops_per_token")
    try:
        attn = (
            12
            * int(model["n_layer"])
            * int(model["n_embd"])
            * int(model.get("block_size") or meta["block_size"])
        )
        return (int(fpt) - attn) // 6
    except (KeyError, TypeError, ValueError):
        return None


def _tokens_seen(r: pd.Series, iters: Any = None) -> float | None:
    """Training tokens read in `iters` iterations (default: all the run did) x tokens per iteration
    (batch x block x accumulation)."""
    iters = r.get("iters_done") if iters is None else iters
    tpi = r.get("tokens_per_iter")
    return float(iters) * float(tpi) if fmt.is_num(iters) and fmt.is_num(tpi) else None


def _val_arrays(results: Results, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(iteration, loss) of the run's val evals (evals.csv rows) with a finite loss, in numpy: asked per run by
    rules over 1,500 runs."""
    e = results.arrays_of("evals", key)
    loss = e["loss"].astype(float)
    keep = (e["split"] == "val") & np.isfinite(loss)
    return e["iter"][keep].astype(int), loss[keep]


def _final_val(results: Results, key: str) -> tuple[float, int] | None:
    """(val loss, iteration) of the run's last finite val eval: the final val loss a sentence quotes."""
    it, loss = _val_arrays(results, key)
    if not len(it):
        return None
    j = int(np.argmax(it))  # the first row of the last iteration, as idxmax gives
    return float(loss[j]), int(it[j])


def _possible_mfu(r: pd.Series) -> float | None:
    """The run's MFU when it can be true (at most 100% of its peak); None when unknown or impossible."""
    m = _mfu(r)
    return m if m is not None and mfu_is_possible(m) else None


def _impossible_mfu(r: pd.Series) -> float | None:
    """The run's MFU when it is above 100% of its peak (impossible: a wrong peak or config), else None."""
    m = _mfu(r)
    return m if m is not None and not mfu_is_possible(m) else None


def short_device(results: Results, key: str, dtype: str | None = None) -> str:
    """A device as a sentence names it: its model without trademarks ("12th Gen Intel Core i7-12700H",
    "NVIDIA GeForce RTX 4070 Ti"), else the device string; "on HOST" when several hosts are merged."""
    r = results.runs.loc[key]
    name = str(r.get("device_name") or "")
    for junk in ("(R)", "(TM)", "(tm)", "(r)"):
        name = name.replace(junk, "")
    name = " ".join(w for w in name.replace(" CPU ", " ").split() if w != "@" and not w.endswith("GHz"))
    text = name or str(r["device"])
    text += f" {dtype}" if dtype else ""
    return text + (f" on {r['host']}" if results.multi_host else "")


def speedup_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """The fastest run of each device against the slowest device's: the FLOP/s ratio split into peak x MFU,
    with the per-iteration and per-token time ratios beside it."""
    ok = ok.assign(_achieved=[_achieved(r) for r in results.records(ok)]).dropna(subset=["_achieved"])
    if ok.empty:
        return []
    best = ok.sort_values("_achieved", ascending=False).groupby(["host", "device"], sort=False).head(1)
    if len(best) < 2:
        return []
    best = best.sort_values("_achieved")
    slow = best.iloc[0]
    out = []
    for _, fast in best.iloc[1:][::-1].iterrows():
        speed = fast["_achieved"] / slow["_achieved"]
        same_model = fast.get("flops_per_token") == slow.get("flops_per_token") and fast.get(
            "block_size"
        ) == slow.get("block_size")
        ms_f, ms_s = float(fast["ms_median"]), float(slow["ms_median"])
        us_f, us_s = _per_token_us(fast), _per_token_us(slow)
        fp, sp = _peak(fast), _peak(slow)
        fm, sm = _mfu(fast), _mfu(slow)
        evidence: dict[str, Any] = {
            "fast": fast["key"], "slow": slow["key"], "fast_device": short_device(results, fast["key"]),
            "slow_device": short_device(results, slow["key"]), "speedup": speed, "flops_ratio": speed,
            "same_model": bool(same_model),
            "tokens_per_s": [_num(fast.get("tokens_per_s")), _num(slow.get("tokens_per_s"))],
            "achieved_flops_per_s": [fast["_achieved"], slow["_achieved"]],
            "ms_per_iter": [ms_f, ms_s], "iter_time_ratio": ms_s / ms_f if ms_f > 0 else None,
            "us_per_token": [us_f, us_s], "token_time_ratio": us_s / us_f if us_f and us_s else None,
            "params": [_params(results, fast["key"]), _params(results, slow["key"])],
            "tokens_per_iter": [_num(fast.get("tokens_per_iter")), _num(slow.get("tokens_per_iter"))],
            "peak_flops_per_s": [fp, sp], "mfu": [fm, sm], "peak_ratio": None, "mfu_ratio": None,
        }  # fmt: skip
        impossible = [short_device(results, r["key"], r["dtype"]) for r in (fast, slow) if _impossible_mfu(r)]
        if impossible:
            evidence["impossible"] = impossible
            evidence["impossible_mfu"] = [_impossible_mfu(fast), _impossible_mfu(slow)]
            evidence["mfu"] = [None if _impossible_mfu(r) else m for r, m in ((fast, fm), (slow, sm))]
        elif fp and sp and fm and sm:
            evidence["peak_ratio"], evidence["mfu_ratio"] = fp / sp, fm / sm
        else:
            evidence["unknown_peak"] = [
                short_device(results, r["key"], r["dtype"]) for r, p in ((fast, fp), (slow, sp)) if not p
            ]
        out.append(Finding("speedup", "info", evidence=evidence, runs=[fast["key"], slow["key"]]))
    return out


def _config_fields(meta: dict) -> dict[str, Any]:
    flat: dict[str, Any] = {"batch_size": meta.get("batch_size")}
    if "block_size" not in (meta.get("model") or {}):
        flat["block_size"] = meta.get("block_size")
    for k, v in (meta.get("model") or {}).items():
        flat[f"model.{k}"] = v
    for k, v in (meta.get("train") or {}).items():
        if k not in LOSS_NEUTRAL_TRAIN_KEYS:
            flat[f"train.{k}"] = v
    return flat


def _best_val(results: Results, key: str) -> tuple[float, int] | None:
    """(lowest val loss, its iteration) from evals.csv."""
    it, loss = _val_arrays(results, key)
    if not len(it):
        return None
    j = int(np.argmin(loss))  # the first of equal losses, as idxmin gives
    return float(loss[j]), int(it[j])


def _ratio(a: Any, b: Any) -> float | None:
    return float(a) / float(b) if fmt.is_num(a) and fmt.is_num(b) and b else None


def _num(x: Any) -> float | None:
    """A finite number as float, else None (evidence is strict JSON)."""
    return float(x) if fmt.is_num(x) else None


def _recipe_facts(results: Results, ok: pd.DataFrame, key: str) -> dict[str, Any]:
    r = ok.loc[key]
    best = _best_val(results, key)
    final = _final_val(results, key)
    return {
        "iters": int(r["iters_done"]) if fmt.is_num(r.get("iters_done")) else None,
        "tokens_per_iter": int(r["tokens_per_iter"]) if fmt.is_num(r.get("tokens_per_iter")) else None,
        "tokens_seen": _tokens_seen(r),
        # the loss compared is the last val eval's: the tokens read by then, not by the end of the run
        "final_val_iter": final[1] if final else None,
        "final_val_eval_loss": final[0] if final else None,
        "tokens_at_final_val": _tokens_seen(r, final[1]) if final else None,
        "params": _params(results, key),
        "dtype": r.get("dtype"),
        "final_train_loss": _num(r.get("final_train_loss")),
        "final_val_loss": _num(r.get("final_val_loss")),
        "best_val_loss": best[0] if best else None,
        "best_val_iter": best[1] if best else None,
    }


def config_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """Runs compared on loss only within one config; each other config named with the fields that differ,
    and its loss gap put down to the recipe where the recipe explains it: the run with the lower val loss
    read more tokens, trained a larger model or used another dtype. Equal val losses are said as such."""
    groups = [list(g.index) for _, g in ok.groupby("config_key", sort=False)]
    groups.sort(key=len, reverse=True)
    out: list[Finding] = []
    linked = linked_pairs(
        results
    )  # a run and its continuation: one training run in two parts, not two recipes
    for g in groups[1:]:
        ref = [r for r in groups[0] if frozenset((g[0], r)) not in linked]
        if not ref:
            continue
        ref_fields = _config_fields(results.run_meta[ref[0]])
        fields = _config_fields(results.run_meta[g[0]])
        diff = {k: (fields.get(k), ref_fields.get(k)) for k in sorted(set(fields) | set(ref_fields))}
        diff = {k: v for k, v in diff.items() if v[0] != v[1]}
        only_batch = set(diff) <= {"batch_size"}
        a, b = ok.loc[g[0]], ok.loc[ref[0]]
        if a.get("dtype") != b.get("dtype"):
            diff["dtype"] = (a.get("dtype"), b.get("dtype"))
        fa, fb = _recipe_facts(results, ok, g[0]), _recipe_facts(results, ok, ref[0])
        va, vb = fa["final_val_eval_loss"], fb["final_val_eval_loss"]
        same_val = fmt.is_num(va) and fmt.is_num(vb) and round(va, 4) == round(vb, 4)
        evidence: dict[str, Any] = {
            "run": g[0], "reference": ref[0], "differs": {k: list(v) for k, v in diff.items()},
            "group": g, "references": ref, "per_run": {g[0]: fa, ref[0]: fb},
            "val_loss": [va, vb], "same_val_loss": bool(same_val),
            "tokens_ratio": None, "params_ratio": None, "dtypes": None, "more": None,
            "tokens_seen_ratio": _ratio(fa["tokens_seen"], fb["tokens_seen"]),
            "tokens_at_final_val_ratio": _ratio(fa["tokens_at_final_val"], fb["tokens_at_final_val"]),
        }  # fmt: skip
        if fmt.is_num(va) and fmt.is_num(vb) and not same_val:
            # the reasons are the lower-loss run's advantages: more tokens, a larger model, another dtype
            low, high = (fa, fb) if va < vb else (fb, fa)
            evidence["more"] = g[0] if va < vb else ref[0]
            tl, th = low["tokens_at_final_val"], high["tokens_at_final_val"]
            if tl and th and tl / th > 1.01:
                evidence["tokens_ratio"] = tl / th
            pl, ph = low["params"], high["params"]
            if pl and ph and pl > ph:
                evidence["params_ratio"] = pl / ph
            if low["dtype"] != high["dtype"]:
                evidence["dtypes"] = [str(low["dtype"]), str(high["dtype"])]
        out.append(
            Finding("config_mismatch", "info" if same_val or (only_batch and "dtype" not in diff) else "warning",
                    evidence=evidence, runs=g + ref,
                    explains=0.9 if evidence["more"] and not only_batch else 0.05)
        )  # fmt: skip
    ev = results.evals
    all_val = ev[ev["split"] == "val"]
    with_val = set(all_val["key"].tolist())
    for g in groups:
        if len(g) >= 2 and (agreement := _loss_agreement(results, ok, g, all_val, with_val)) is not None:
            out.append(agreement)
    for key in ok.index:
        assumed = ok.loc[key, "assumed"] if "assumed" in ok.columns else ""
        if isinstance(assumed, str) and assumed:
            out.append(
                Finding("assumed_config", "info", evidence={"assumed": assumed.split(", ")}, runs=[key])
            )
    return out


def _differ_in(results: Results, ok: pd.DataFrame, keys: list[str]) -> dict[str, list]:
    """The run settings in which runs of one config_key differ (their model, batch, training and seed match)."""
    sub = ok.loc[keys]  # whole columns, not 1,500 cells one by one
    settings = {
        "dtype": sub["dtype"].tolist(),
        "device": [results.device_label(k) for k in keys],
        "compile": sub["compile"].tolist(),
        "threads": [v if fmt.is_num(v) else None for v in sub["threads"].tolist()],
        "AdamW": ["fused" if v else "foreach" for v in sub["fused_adamw"].tolist()],
        "world size": sub["world_size"].tolist() if "world_size" in ok.columns else [1] * len(keys),
    }
    differ: dict[str, list] = {}
    for name, values in settings.items():
        seen = list(dict.fromkeys(str(int(v)) if fmt.is_num(v) else str(v) for v in values))
        if len(seen) > 1:
            differ[name] = seen
    return differ


def _loss_agreement(
    results: Results, ok: pd.DataFrame, keys: list[str], all_val: pd.DataFrame, with_val: set[str]
) -> Finding | None:
    """Whether the val curves of one config's runs agree. Only runs with val losses are named; fewer than two:
    no finding. all_val: the val rows of results.evals; with_val: their keys (made once for every config)."""
    keys = [k for k in keys if k in with_val]
    if len(keys) < 2:
        return None
    dtypes = set(ok.loc[keys, "dtype"])
    tol = LOSS_TOLERANCE_FP32 if dtypes <= {"fp32"} else LOSS_TOLERANCE_REDUCED
    val = all_val[all_val["key"].isin(keys)]
    evidence: dict[str, Any] = {
        "tolerance": tol, "dtypes": sorted(map(str, dtypes)), "runs": keys,
        "differ_in": _differ_in(results, ok, keys), "at_iter": None,
    }  # fmt: skip
    finite = np.isfinite(val["loss"].astype(float))
    non_finite = set(val.loc[~finite, "key"])
    bad = [k for k in keys if k in non_finite]
    if bad:  # a NaN or inf val loss is never dropped to make curves agree
        return Finding("loss_disagree", "warning", evidence={**evidence, "non_finite": bad}, runs=keys)
    table = val[finite].pivot_table(index="iter", columns="key", values="loss", aggfunc="last").dropna()
    if len(table) and table.shape[1] == len(keys):
        spread = table.max(axis=1) - table.min(axis=1)
        evidence.update(
            max_abs_val_diff=float(spread.max()), at_iter=int(spread.idxmax()), shared_evals=len(table)
        )
    else:
        finals = [_final_val(results, k) for k in keys]
        losses = [f[0] for f in finals if f]
        evidence.update(
            max_abs_val_diff=float(max(losses) - min(losses)), shared_evals=0,
            final_val_iters={k: f[1] for k, f in zip(keys, finals, strict=True) if f},
        )  # fmt: skip
    if evidence["max_abs_val_diff"] <= tol:
        return Finding("loss_agree", "info", evidence=evidence, runs=keys)
    return Finding("loss_disagree", "warning", evidence=evidence, runs=keys)


def _imported_spikes(results: Results, key: str, s: pd.DataFrame, median: float) -> dict | None:
    """The eval spikes of an imported log: run.json's, else (older imports) the after_eval rows."""
    spikes = ((results.run_meta.get(key) or {}).get("summary") or {}).get("eval_spikes")
    if spikes:
        later = [x for x in spikes if not x.get("first")]
        first = next((x for x in spikes if x.get("first")), None)
        n = ((results.run_meta.get(key) or {}).get("summary") or {}).get("eval_spikes_count") or len(spikes)
        if not later and first is None:
            return None
        worst = max(later, key=lambda x: x["ms"]) if later else None
        return {"worst": worst, "first": first, "n": n}
    after = s[s["phase"] == "after_eval"]
    if s.empty or after.empty:
        return None
    after = after[after["iter"] > s["iter"].min()]  # the first iteration also holds start-up
    if after.empty:
        return None
    row = after.loc[after["ms"].idxmax()]
    worst = {"iter": int(row["iter"]), "ms": float(row["ms"]), "eval_ms_est": float(row["ms"]) - median,
             "includes": "eval/checkpoint"}  # fmt: skip
    return {"worst": worst, "first": None, "n": len(after)}


def eval_timer_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """What nanoGPT's timer (which spans the eval before a step) prints for eval iterations: the worst run
    per device, with the eval's share of that printed time."""
    per_device: dict[tuple, list[dict]] = {}
    columns = (ok.index, ok["ms_median"], ok["host"], ok["device"], ok["source"])
    for key, ms_median, host, device, source in zip(*columns, strict=True):
        median = float(ms_median)
        imported = None
        if (results.arrays_of("steps", key)["phase"] == "after_eval").any():
            imported = _imported_spikes(results, key, results.steps_of(key), median)
        if imported:
            worst, first = imported["worst"] or imported["first"], imported["first"]
            only_first = imported["worst"] is None
            item = {
                "key": key, "iter": int(worst["iter"]), "printed_ms": float(worst["ms"]), "step_ms": median,
                "eval_ms": None if only_first else float(worst["eval_ms_est"]),
                "includes": str(worst.get("includes", "eval")).replace(" + ", " and "),
                "n": int(imported["n"]), "imported": True, "first_iter": first,
            }  # fmt: skip
        else:
            item = _timer_spike(results, key)
            if item is None:
                continue
        item["median_ms"] = median
        item["ratio"] = item["printed_ms"] / median if median > 0 else math.nan
        per_device.setdefault((host, device, source), []).append(item)
    out = []
    for items in per_device.values():
        worst = max(items, key=lambda it: it["ratio"] if fmt.is_num(it["ratio"]) else 0)
        severity = "warning" if fmt.is_num(worst["ratio"]) and worst["ratio"] > 2 else "info"
        # the share of the run's printed time that is eval: n spikes of eval_ms against every step's time
        total = (
            worst["n"] * (worst["eval_ms"] or 0.0)
            + float(ok.loc[worst["key"], "iters_done"] or 0) * worst["median_ms"]
        )
        share = worst["n"] * worst["eval_ms"] / total if worst["eval_ms"] and total > 0 else None
        out.append(
            Finding("eval_in_timer", severity, evidence={**worst, "runs": items if len(items) > 1 else []},
                    runs=[it["key"] for it in items],
                    explains=share)
        )  # fmt: skip
    return out


def _timer_spike(results: Results, key: str) -> dict | None:
    """The run's worst step as nanoGPT's timer prints it (the step plus the evals just before it), None when
    no eval iteration after 0 has a step. numpy over the run's rows; the pandas form (the same answer) where
    rows are unusual: a step iteration twice, three or more evals at one iteration (which pandas sums with
    compensation), or no printed time that is a number."""
    steps, evals = results.arrays_of("steps", key), results.arrays_of("evals", key)
    after_0 = evals["iter"] > 0
    iters, inverse, counts = np.unique(evals["iter"][after_0], return_inverse=True, return_counts=True)
    step_iters = np.sort(steps["iter"])
    if (counts > 2).any() or (np.diff(step_iters) == 0).any():
        return _timer_spike_frames(results, key)
    ms = evals["ms"][after_0]
    eval_ms = np.zeros(len(iters))
    np.add.at(eval_ms, inverse, np.nan_to_num(ms, nan=0.0))
    known = np.zeros(len(iters), dtype=bool)
    np.logical_or.at(known, inverse, ~np.isnan(ms))  # sum(min_count=1): an iteration of NaNs only is left out
    iters, eval_ms = iters[known], eval_ms[known]
    order = np.argsort(steps["iter"], kind="stable")
    at = np.searchsorted(step_iters, iters).clip(max=max(len(step_iters) - 1, 0))
    has_step = (step_iters[at] == iters) if len(step_iters) else np.zeros(len(iters), dtype=bool)
    if not has_step.any():
        return None
    iters, eval_ms = iters[has_step], eval_ms[has_step]
    step_ms = steps["ms"][order][at[has_step]]
    printed = step_ms + eval_ms
    if np.isnan(printed).all():
        return _timer_spike_frames(results, key)
    j = int(np.nanargmax(printed))  # the first of the largest, as idxmax
    return {
        "key": key, "iter": int(iters[j]), "printed_ms": float(printed[j]), "step_ms": float(step_ms[j]),
        "eval_ms": float(eval_ms[j]), "n": len(iters), "imported": False,
        "printed_by_iter": dict(zip(iters.tolist(), printed.tolist(), strict=True)),
    }  # fmt: skip


def _timer_spike_frames(results: Results, key: str) -> dict | None:
    """_timer_spike in pandas, for the rows numpy is not given."""
    e = results.evals_of(key)
    e = e[e["iter"] > 0].groupby("iter")["ms"].sum(min_count=1).dropna()
    if e.empty:
        return None
    step_ms = results.steps_of(key).set_index("iter")["ms"]
    e = e[e.index.isin(step_ms.index)]
    if e.empty:
        return None
    printed = step_ms.loc[e.index] + e
    i = int(printed.idxmax())
    return {
        "key": key, "iter": i, "printed_ms": float(printed.loc[i]), "step_ms": float(step_ms.loc[i]),
        "eval_ms": float(e.loc[i]), "n": len(e), "imported": False,
        "printed_by_iter": {int(k): float(v) for k, v in printed.items()},
    }  # fmt: skip


def overfit_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """A run whose val loss rose after its minimum while its train loss kept falling: where, and by how much."""
    out = []
    for key in ok.index:
        e = results.arrays_of("evals", key)
        finite = np.isfinite(e["loss"])
        it, split, loss = e["iter"][finite], e["split"][finite], e["loss"][finite]
        is_val = split == "val"
        if is_val.sum() < 3:
            continue
        order = np.argsort(it[is_val], kind="quicksort")  # the order sort_values("iter") gives
        val_iters, val_losses = it[is_val][order], loss[is_val][order]
        low = int(np.argmin(val_losses))  # the first of the lowest, as idxmin
        min_iter, last_iter = int(val_iters[low]), int(val_iters[-1])
        low_loss, last_loss = float(val_losses[low]), float(val_losses[-1])
        rise = last_loss - low_loss
        if min_iter >= last_iter or rise <= OVERFIT_RISE:
            continue
        is_train = split == "train"
        t_min, t_last = _only(loss[is_train & (it == min_iter)]), _only(loss[is_train & (it == last_iter)])
        if not (fmt.is_num(t_min) and fmt.is_num(t_last) and t_last < t_min):
            continue  # train loss rose too: unstable training, not overfitting
        meta = results.run_meta.get(key) or {}
        saved_best = (meta.get("nanogpt") or {}).get("config", {}).get("always_save_checkpoint") is False
        evidence = {
            "min_val_loss": low_loss, "min_iter": min_iter, "final_val_loss": last_loss,
            "final_iter": last_iter, "rise": rise, "train_loss_at_min": float(t_min),
            "final_train_loss": float(t_last), "checkpoint_iter": min_iter if saved_best else None,
        }  # fmt: skip
        out.append(
            Finding("overfitting", "warning", evidence=evidence, runs=[key], explains=rise / last_loss)
        )
    return out


def _only(values: np.ndarray) -> float | None:
    """The one value there is (None for none or several: what Series.get gives a label that is missing or
    repeated is not a number)."""
    return float(values[0]) if len(values) == 1 else None


def impossible_mfu_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """An MFU above 100% of the device's peak: the peak or the config is wrong; no MFU is a result then."""
    out = []
    for key, r in ok.iterrows():
        ratio = _impossible_mfu(r)
        if ratio is None:
            continue
        imported = r.get("source") == "nanogpt-log"
        evidence = {
            "mfu": ratio, "device": short_device(results, key, r["dtype"]), "achieved_flops_per_s": _achieved(r),
            "peak_flops_per_s": _num(r.get("peak_value")), "peak_source": r.get("peak_source"),
            "peak_detail": r.get("peak_detail"),
            "check": "the import's --hwinfo, --device-name or --peak-flops, and the model, batch and block it read"
            if imported else "the device's peak (hwinfo) and the run's model and batch",
        }  # fmt: skip
        out.append(Finding("impossible_mfu", "warning", evidence=evidence, runs=[key]))
    return out


def _fixed_share(b0: float, ms0: float, b1: float, ms1: float) -> tuple[float, float]:
    """(share of the small-batch step that is fixed per-step cost, share of the large-batch step that grows
    with the batch), from ms = fixed + per_sample * batch through the two points."""
    per = (ms1 - ms0) / (b1 - b0) if b1 != b0 else 0.0
    fixed = ms0 - per * b0
    clip = lambda x: float(min(1.0, max(0.0, x)))  # noqa: E731
    return clip(fixed / ms0 if ms0 > 0 else 0.0), clip(per * b1 / ms1 if ms1 > 0 else 0.0)


def batch_scaling_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """Overhead-bound (time barely grows with batch, far below peak) or compute-bound, per device series;
    and compute-bound single runs near their peak."""
    out = []
    axes = ["host", "device", "dtype", "compile", "threads", "fused_adamw", "flops_per_token", "block_size"]
    ok = ok.assign(threads=ok["threads"].fillna(-1))
    swept = set()
    for _, g in ok.groupby(axes, sort=False, dropna=False):
        by_batch = g.groupby("batch_size")["ms_median"].median().sort_index()
        if len(by_batch) < 2:
            continue
        swept.update(g.index)
        b_small, b_large = int(by_batch.index[0]), int(by_batch.index[-1])
        ms_small, ms_large = float(by_batch.iloc[0]), float(by_batch.iloc[-1])
        rb, rm = b_large / b_small, ms_large / ms_small
        exponent = math.log(rm) / math.log(rb) if rm > 0 else math.nan
        small = g[g["batch_size"] == b_small].iloc[0]
        large = g[g["batch_size"] == b_large].iloc[0]
        mfu_s, mfu_l = _possible_mfu(small), _possible_mfu(large)
        dev = short_device(results, small["key"], small["dtype"])
        if small["compile"] not in (None, "off"):
            dev += f" (compile {small['compile']})"
        fixed, growing = _fixed_share(b_small, ms_small, b_large, ms_large)
        evidence: dict[str, Any] = {
            "device": dev, "batch_sizes": [int(b) for b in by_batch.index],
            "ms_median": [float(v) for v in by_batch.values], "batch_ratio": rb, "ms_ratio": rm,
            "exponent": exponent, "mfu_small": mfu_s, "mfu_large": mfu_l,
            "fixed_share_small_batch": fixed, "growing_share_large_batch": growing,
        }  # fmt: skip
        if exponent < OVERHEAD_EXPONENT and (mfu_s is None or mfu_s < LOW_MFU):
            evidence["lever"] = "cuda_graphs" if small["device_type"] != "cpu" else "compile"
            out.append(
                Finding("overhead_bound", "warning", evidence=evidence, runs=list(g.index), explains=fixed)
            )
        elif exponent >= COMPUTE_EXPONENT and mfu_l is not None and mfu_l >= LOW_MFU:
            evidence.update(
                mfu=mfu_l,
                lever=compute_lever(
                    small["device_type"], small["dtype"], _host_cpu(results, small["key"]).get("features")
                ),
            )
            out.append(
                Finding("compute_bound", "info", evidence=evidence, runs=list(g.index), explains=growing)
            )
        else:
            evidence["why"] = (
                "noise" if rm < 1 else ("below_peak" if exponent >= COMPUTE_EXPONENT else "mixed")
            )
            out.append(
                Finding("batch_scaling", "info", evidence=evidence, runs=list(g.index), explains=fixed)
            )
    for key, r in ok.iterrows():
        m = _possible_mfu(r)
        if key not in swept and m is not None and m >= NEAR_PEAK_MFU:
            lever = compute_lever(r["device_type"], r["dtype"], _host_cpu(results, key).get("features"))
            out.append(
                Finding("compute_bound", "info", evidence={"mfu": m, "lever": lever}, runs=[key], explains=m)
            )
    return out


def mfu_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """MFU against the device's own peak next to the A100-based figure nanoGPT prints."""
    out = []
    ok = ok.assign(_achieved=[_achieved(r) for r in results.records(ok)]).dropna(subset=["_achieved"])
    for _, g in ok.groupby(["host", "device", "dtype"], sort=False):
        r = g.loc[g["_achieved"].idxmax()]
        if _impossible_mfu(r) is not None:
            continue  # impossible_mfu_findings says what is wrong; never quoted as a result
        a100 = r["_achieved"] / A100_PEAK_FLOPS
        printed = f"{a100 * 100:.2f}%"  # nanoGPT's own format
        if a100 * 100 < 0.1:  # where two decimals lose the figure
            printed += f" ({fmt.pct(a100)})"
        m = _mfu(r)
        evidence = {
            "device": short_device(results, r["key"], r["dtype"]), "mfu": m, "mfu_vs_a100": a100,
            "nanogpt_printed": printed, "peak": _peak(r), "peak_source": r.get("peak_source"), "best_run": r["key"],
        }  # fmt: skip
        out.append(Finding("mfu_vs_a100", "info", evidence=evidence, runs=[r["key"]]))
    return out


def peak_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    out = []
    unknown = ok[[_peak(r) is None for r in results.records(ok)]]
    for _, g in unknown.groupby(["host", "device", "dtype"], sort=False):
        r = g.iloc[0]
        evidence = {"device": short_device(results, r["key"], r["dtype"]), "detail": r.get("peak_detail")}
        out.append(Finding("peak_unknown", "warning", evidence=evidence, runs=list(g.index)))
    return out


def _host_cpu(results: Results, key: str) -> dict:
    return results.hwinfo_for(key).get("cpu") or {}


def thread_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """CPU threads used against the host's physical cores, with ms/iter per thread count when swept."""
    out = []
    cpu = ok[(ok["device_type"] == "cpu") & ok["threads"].notna()]
    for _, g in cpu.groupby("results_dir", sort=False):
        info = _host_cpu(results, g.index[0])
        phys, logical = info.get("physical_cores"), info.get("logical_cores")
        threads = sorted({int(t) for t in g["threads"]})
        evidence: dict[str, Any] = {
            "host": str(g.iloc[0]["host"]), "threads": threads, "physical_cores": phys, "logical_cores": logical,
            "idle_cores": None, "ms_by_threads": None, "fastest_threads": None,
        }  # fmt: skip
        severity = "info"
        if not phys:
            evidence["verdict"] = "unknown"
        elif max(threads) > phys:
            severity, evidence["verdict"] = "warning", "over"
        elif max(threads) < phys:
            evidence.update(verdict="idle", idle_cores=phys - max(threads))
        elif min(threads) < phys:
            evidence["verdict"] = "mixed"
        else:
            evidence["verdict"] = "one_per_core"
        explains = None
        if len(threads) > 1:
            # ms/iter per thread count at the most common (dtype, batch, compile, optimizer) point: runs that
            # differ in threads alone
            axes = ["dtype", "batch_size", "compile", "fused_adamw"]
            point = g.groupby(axes).size().idxmax()
            sel = g[(g[axes] == pd.Series(point, index=axes)).all(axis=1)]
            per = sel.groupby("threads")["ms_median"].median()
            evidence["ms_by_threads"] = {int(k): float(v) for k, v in per.items()}
            evidence["fastest_threads"] = int(per.idxmin())
            evidence["at"] = {"dtype": point[0], "batch_size": point[1]}
            explains = float(1 - per.min() / per.max()) if per.max() > 0 else None
        out.append(Finding("cpu_threads", severity, evidence=evidence, runs=list(g.index), explains=explains))
    return out


def cpu_dtype_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """A reduced dtype on a CPU without native support for it (bf16 without avx512_bf16/AMX)."""
    out = []
    cpu = ok[(ok["device_type"] == "cpu") & ok["dtype"].isin(list(NATIVE_CPU_FEATURES))]
    twins = _fp32_twins(ok)
    for key, r in cpu.iterrows():
        info = _host_cpu(results, key)
        features = {str(f).lower() for f in info.get("features") or []}
        need = NATIVE_CPU_FEATURES[r["dtype"]]
        have = [f for f in need if f in features]
        # the fp32 run that differs in dtype alone: same batch, compile, threads and optimizer
        twin = _fp32_twin(ok, r, twins)
        evidence: dict[str, Any] = {
            "dtype": r["dtype"], "cpu": info.get("model_name") or r.get("device_name"), "needs": list(need),
            "has": have, "ms_median": float(r["ms_median"]), "fp32_ms_median": None, "slower": False,
            "support": "unknown" if not features else ("native" if have else "emulated"),
        }  # fmt: skip
        explains = None
        if len(twin):
            t = float(np.median(twin))
            evidence.update(fp32_ms_median=t, slower=bool(r["ms_median"] > 1.1 * t))
            explains = max(0.0, 1 - t / float(r["ms_median"])) if r["ms_median"] > 0 else None
        severity = "warning" if evidence["support"] == "emulated" else "info"
        out.append(Finding("cpu_dtype", severity, evidence=evidence, runs=[key], explains=explains))
    return out


_TWIN_AXES = ("results_dir", "device", "batch_size", "compile", "threads", "fused_adamw")
_MISSING = object()  # threads not set: equal to another run's threads not set


def _twin_key(values: tuple) -> tuple | None:
    """A run's twin axes as a key two runs share when pandas' == says every axis is equal (threads: or both
    missing); None when one is missing (it equals nothing) or is not a plain value."""
    if not all(v is None or isinstance(v, (str, int, float, bool, np.generic)) for v in values):
        raise TypeError("not a plain value")
    missing = [bool(pd.isna(v)) for v in values]
    if any(m for axis, m in zip(_TWIN_AXES, missing, strict=True) if axis != "threads"):
        return None
    return tuple(_MISSING if m else v for v, m in zip(values, missing, strict=True))


def _fp32_twins(ok: pd.DataFrame) -> dict[tuple, list[float]] | None:
    """The ms_median of the fp32 runs by their twin key (None: a value that only pandas compares right)."""
    fp32 = ok[ok["dtype"] == "fp32"]
    twins: dict[tuple, list[float]] = {}
    try:
        for *values, ms in zip(*(fp32[c] for c in _TWIN_AXES), fp32["ms_median"], strict=True):
            if (k := _twin_key(tuple(values))) is not None:
                twins.setdefault(k, []).append(float(ms))
    except (TypeError, KeyError):
        return None
    return twins


def _fp32_twin(ok: pd.DataFrame, r: pd.Series, twins: dict[tuple, list[float]] | None) -> list[float]:
    """The ms_median of the fp32 runs that differ from r in dtype alone."""
    if twins is not None:
        try:
            k = _twin_key(tuple(r[c] for c in _TWIN_AXES))
            return twins.get(k, []) if k is not None else []
        except TypeError:
            pass
    twin = ok[
        (ok["results_dir"] == r["results_dir"]) & (ok["device"] == r["device"]) & (ok["dtype"] == "fp32")
        & (ok["batch_size"] == r["batch_size"]) & (ok["compile"] == r["compile"])
        & ((ok["threads"] == r["threads"]) | (ok["threads"].isna() & pd.isna(r["threads"])))
        & (ok["fused_adamw"] == r["fused_adamw"])
    ]  # fmt: skip
    return [float(v) for v in twin["ms_median"]]


def warmup_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """First-step (compile, warm-up) cost against the median step, worst run per device and compile mode."""
    out = []
    ok = ok[ok["first_step_ms"].notna() & (ok["ms_median"] > 0)]
    ok = ok.assign(_ratio=ok["first_step_ms"] / ok["ms_median"])
    for _, g in ok.groupby(["host", "device", "compile"], sort=False, dropna=False):
        r = g.loc[g["_ratio"].idxmax()]
        if r["_ratio"] < WARMUP_RATIO:
            continue
        s = results.steps_of(r["key"]).sort_values("iter")
        total_ms = (
            float(step_ms_spanned(s).sum())
            if len(s)
            else float(r["ms_median"]) * float(r.get("iters_done") or 1)
        )
        share = float(r["first_step_ms"] - r["ms_median"]) / total_ms if total_ms > 0 else None
        severity = "warning" if share is not None and share > 0.2 else "info"
        evidence = {"key": r["key"], "first_step_ms": float(r["first_step_ms"]), "ms_median": float(r["ms_median"]),
                    "ratio": float(r["_ratio"]), "share_of_train_time": share,
                    "compiled": r["compile"] not in (None, "off", "unknown")}  # fmt: skip
        # compile "unknown": an imported log that does not show it, so its first step is not called compilation
        out.append(Finding("warmup_cost", severity, evidence=evidence, runs=list(g.index), explains=share))
    return out


def profile_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """From `bench run --profile`: where each profiled run's step goes (profile.json's numbers; a stored
    "sentence" is ignored), and whether a CUDA step is launch-bound."""
    out = []
    for key in ok.index:
        prof = results.profiles.get(key)
        if not prof:
            continue
        r = ok.loc[key]
        mean = prof["mean"]
        frac = {k: float(v) for k, v in (mean.get("fraction") or {}).items() if fmt.is_num(v)}
        idle = mean.get("device_idle_fraction")
        cuda = (prof.get("device_type") or r.get("device_type")) == "cuda"
        launch_bound = bool(cuda and fmt.is_num(idle) and idle > IDLE_DEVICE)
        overhead = prof.get("profiler_overhead")
        evidence: dict[str, Any] = {
            "fraction": frac, "step_ms": mean.get("step_ms"), "launch_bound": launch_bound,
            "device": prof.get("device") or r.get("device"), "batch_size": prof.get("batch_size") or r.get("batch_size"),
            "profiler_overhead": float(overhead) if fmt.is_num(overhead) and overhead > PROFILED_SLOWER else None,
        }  # fmt: skip
        for k in ("kernel_launches_per_step", "mean_gap_us", "device_idle_fraction", "host_ms"):
            if k in mean:
                evidence[k] = mean[k]
        if fmt.is_num(prof.get("matmul_flops_per_s")) and prof["matmul_flops_per_s"] > 0:
            evidence["matmul_flops_per_s"] = prof["matmul_flops_per_s"]
        top = max(frac.values(), default=None)
        out.append(
            Finding("step_breakdown", "warning" if launch_bound else "info", evidence=evidence, runs=[key],
                    explains=float(idle) if launch_bound else (top * 0.5 if top else None))
        )  # fmt: skip
    return out


def noise_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """Timings spread wide, or measured while other processes (or a VM's neighbours) used the CPU."""
    out = []
    for key, r in ok.iterrows():
        load = (results.run_meta.get(key, {}).get("summary") or {}).get("host_load") or {}
        p10, p90 = r.get("ms_p10"), r.get("ms_p90")
        if not (fmt.is_num(p10) and fmt.is_num(p90) and p10 > 0):
            continue
        spread = float(p90) / float(p10)
        other = load.get("other_processes_cpu_cores")
        steal = load.get("steal_cpu_cores")
        busy = (fmt.is_num(other) and other > BUSY_OTHER_CORES) or (
            fmt.is_num(steal) and steal > BUSY_OTHER_CORES
        )
        if spread <= NOISY_SPREAD and not busy:
            continue
        threads, cpus = r.get("threads"), load.get("logical_cpus")
        oversubscribed = bool(
            busy and r.get("device_type") == "cpu" and fmt.is_num(threads) and fmt.is_num(cpus)
            and fmt.is_num(other) and float(threads) + float(other) > float(cpus) + 0.25
        )  # fmt: skip
        evidence = {"p90_over_p10": spread, "p10": float(p10), "p90": float(p90), "busy": bool(busy),
                    "oversubscribed": oversubscribed, **load}  # fmt: skip
        out.append(
            Finding("noisy_timing", "warning" if busy else "info", evidence=evidence, runs=[key],
                    explains=1 - 1 / spread)
        )  # fmt: skip
    return out
