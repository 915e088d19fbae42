"""The diagnosis: findings in words, each with the figures behind it.

`diagnose(results)` returns a list of `Finding`s (kind, severity, sentence, evidence, runs). Kinds:
speedup, impossible_mfu, config_mismatch, loss_agree, loss_disagree, assumed_config, overfitting,
eval_in_timer, overhead_bound, compute_bound, batch_scaling, mfu_vs_a100, peak_unknown, cpu_threads,
cpu_dtype, warmup_cost, step_breakdown, noisy_timing; and from their own modules: roofline
(reports.roofline), energy, energy_compare, energy_unavailable (reports.energy), scaling, shared_cores,
scaling_limit, ranks_differ (reports.scaling), time_to_loss (reports.time_to_loss), and from a `bench tune`:
best_config and tip (reports.tips).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.metrics import BUSY_OTHER_CORES, mfu, mfu_is_possible
from hwinfo.dtypes import CPU_NATIVE_FEATURES
from hwinfo.peaks import A100_BF16_PEAK_FLOPS as A100_PEAK_FLOPS
from reports import fmt
from reports.finding import Finding
from reports.load import LOSS_NEUTRAL_TRAIN_KEYS, Results, step_ms_spanned
from reports.profile_text import PROFILED_SLOWER, summarize_profile
from reports.roofline import roofline_findings

# Same config and seed give the same batches on every device, so val curves differ only by numerics.
LOSS_TOLERANCE_FP32 = 0.02
LOSS_TOLERANCE_REDUCED = 0.05  # when a run uses tf32, bf16 or fp16
# Batch scaling: ms ~ batch**exponent across a device's batch sweep.
OVERHEAD_EXPONENT = 0.5  # below: time barely grows with batch
COMPUTE_EXPONENT = 0.8  # above: time grows nearly in proportion
LOW_MFU = 0.3  # "far below its own peak" at the smallest batch
NEAR_PEAK_MFU = 0.5
WARMUP_RATIO = 3.0  # a first step this many times the median is worth a sentence
NOISY_SPREAD = 1.5  # p90/p10 of the timed steps above this: the timings are noisy
IDLE_DEVICE = 0.5  # a CUDA step whose device is idle this fraction of the time is launch-bound
OVERFIT_RISE = 0.03  # val loss this far above its minimum at the last eval (eval noise is ~0.01-0.02)
NATIVE_CPU_FEATURES = CPU_NATIVE_FEATURES


def diagnose(results: Results) -> list[Finding]:
    """Every finding for these results, most important first; ids are kind-N."""
    # rule modules that import Finding from reports.finding
    from reports.energy import energy_findings
    from reports.scaling import scaling_findings
    from reports.time_to_loss import time_to_loss_findings
    from reports.tips import best_config_findings, tip_findings

    ok = results.ok_runs()
    findings: list[Finding] = []
    # Device comparisons, batch and thread scaling read single-process runs; data-parallel runs (world_size > 1)
    # have their own rules in reports.scaling.
    single_only = {speedup_findings, batch_scaling_findings, thread_findings}
    single = ok[ok["world_size"].fillna(1) <= 1] if "world_size" in ok.columns else ok
    if len(ok):
        for rule in (
            speedup_findings, impossible_mfu_findings, config_findings, overfit_findings, eval_timer_findings,
            batch_scaling_findings, mfu_findings, peak_findings, thread_findings, cpu_dtype_findings,
            warmup_findings, profile_findings, roofline_findings, noise_findings, energy_findings,
            scaling_findings, time_to_loss_findings, tip_findings, best_config_findings,
        ):  # fmt: skip
            findings.extend(rule(results, single if rule in single_only else ok))
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
        f.id = f"{f.kind}-{counts[f.kind]}"
    return findings


def _achieved(r: pd.Series) -> float | None:
    v = r.get("achieved_flops_per_s")
    if fmt.is_num(v):
        return float(v)
    if fmt.is_num(r.get("flops_per_iter")) and fmt.is_num(r.get("ms_median")) and r["ms_median"] > 0:
        return float(r["flops_per_iter"]) / (float(r["ms_median"]) / 1e3)
    return None


def _peak(r: pd.Series) -> float | None:
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


def _faster(ratio: float | None) -> str:
    """4.2 -> "4.2x faster", 0.5 -> "2x slower"."""
    if not fmt.is_num(ratio) or ratio <= 0:
        return "-"
    return f"{fmt.ratio(ratio)} faster" if ratio >= 1 else f"{fmt.ratio(1 / ratio)} slower"


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


def _val_evals(results: Results, key: str) -> pd.DataFrame:
    """The run's val evals with a finite loss (evals.csv rows)."""
    e = results.evals_of(key)
    val = e[e["split"] == "val"].dropna(subset=["loss"])
    return val[np.isfinite(val["loss"].astype(float))]


def _final_val(results: Results, key: str) -> tuple[float, int] | None:
    """(val loss, iteration) of the run's last finite val eval: the final val loss a sentence quotes."""
    val = _val_evals(results, key)
    if val.empty:
        return None
    row = val.loc[val["iter"].astype(int).idxmax()]
    return float(row["loss"]), int(row["iter"])


def _short_count(x: Any) -> str:
    """81_920_000 -> "81.9M", 1_536_768 -> "1.54M", 768 -> "768"."""
    if not fmt.is_num(x):
        return "-"
    x = float(x)
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{fmt.sig(x / div)}{unit}"
    return fmt.sig(x)


def _possible_mfu(r: pd.Series) -> float | None:
    """The run's MFU when it can be true (at most 100% of its peak); None when unknown or impossible."""
    m = _mfu(r)
    return m if m is not None and mfu_is_possible(m) else None


def _impossible_mfu(r: pd.Series) -> float | None:
    """The run's MFU when it is above 100% of its peak (impossible: a wrong peak or config), else None."""
    m = _mfu(r)
    return m if m is not None and not mfu_is_possible(m) else None


def speedup_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """The headline: the fastest run of each device against the slowest device's, split into peak x MFU,
    with the per-iteration and per-token time ratios beside the FLOP/s ratio."""
    ok = ok.assign(_achieved=[_achieved(r) for _, r in ok.iterrows()]).dropna(subset=["_achieved"])
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
        iter_ratio = ms_s / ms_f if ms_f > 0 else None
        token_ratio = us_s / us_f if us_f and us_s else None
        params = [_params(results, fast["key"]), _params(results, slow["key"])]
        tpi = [_num(fast.get("tokens_per_iter")), _num(slow.get("tokens_per_iter"))]
        fl, sl = results.device_label(fast["key"]), results.device_label(slow["key"])
        batch = ""
        if fast.get("tokens_per_iter") != slow.get("tokens_per_iter"):
            batch = f", {fmt.count(tpi[0])} vs {fmt.count(tpi[1])} tokens per iteration"
        times = (
            f"per token {_faster(token_ratio)} ({fmt.sig(us_f)} vs {fmt.sig(us_s)} µs), per iteration "
            f"{_faster(iter_ratio)} ({fmt.ms(ms_f)} vs {fmt.ms(ms_s)} ms{batch})"
        )
        if same_model:
            sentence = (
                f"{fl} is {fmt.ratio(speed)} faster than {sl} on this recipe (best runs {results.label(fast['key'])} "
                f"and {results.label(slow['key'])}): {fmt.ratio(speed)} the achieved FLOP/s "
                f"({fmt.flops(fast['_achieved'])} vs {fmt.flops(slow['_achieved'])}), {times}."
            )
        else:
            sizes = (
                f"{params[0] / 1e6:.2f}M vs {params[1] / 1e6:.2f}M parameters"
                if all(p is not None for p in params)
                else "different shapes"
            )
            sentence = (
                f"{fl} does {fmt.ratio(speed)} the FLOP/s of {sl} ({fmt.flops(fast['_achieved'])} vs "
                f"{fmt.flops(slow['_achieved'])} achieved), but the runs train different models ({sizes}), so "
                f"that is not how much less time it takes: {times}."
            )
        fp, sp = _peak(fast), _peak(slow)
        fm, sm = _mfu(fast), _mfu(slow)
        evidence = {
            "fast": fast["key"], "slow": slow["key"], "speedup": speed, "flops_ratio": speed,
            "same_model": bool(same_model),
            "tokens_per_s": [_num(fast.get("tokens_per_s")), _num(slow.get("tokens_per_s"))],
            "achieved_flops_per_s": [fast["_achieved"], slow["_achieved"]],
            "ms_per_iter": [ms_f, ms_s], "iter_time_ratio": iter_ratio,
            "us_per_token": [us_f, us_s], "token_time_ratio": token_ratio,
            "params": params, "tokens_per_iter": tpi,
            "peak_flops_per_s": [fp, sp], "mfu": [fm, sm], "peak_ratio": None, "mfu_ratio": None,
        }  # fmt: skip
        impossible = [results.device_label(r["key"], r["dtype"]) for r in (fast, slow) if _impossible_mfu(r)]
        if impossible:
            evidence["impossible_mfu"] = [_impossible_mfu(fast), _impossible_mfu(slow)]
            evidence["mfu"] = [None if _impossible_mfu(r) else m for r, m in ((fast, fm), (slow, sm))]
            sentence += (
                f" It cannot be split into peak ratio x MFU ratio: the MFU of {fmt.names(impossible)} would be "
                "above 100% of its peak, which is impossible (a wrong peak or config)."
            )
        elif fp and sp and fm and sm:
            evidence["peak_ratio"], evidence["mfu_ratio"] = fp / sp, fm / sm
            sentence += (
                f" The FLOP/s ratio is {fmt.ratio(fp / sp)} the peak FLOP/s ({fmt.flops(fp)} vs {fmt.flops(sp)}, "
                f"hardware) x {fmt.ratio(fm / sm)} the MFU ({fmt.pct(fm)} vs {fmt.pct(sm)} of own peak, how well "
                "each device is used)."
            )
        else:
            unknown = [
                results.device_label(r["key"], r["dtype"]) for r, p in ((fast, fp), (slow, sp)) if not p
            ]
            sentence += (
                f" It cannot be split into peak ratio x MFU ratio because the peak of {fmt.names(unknown)} "
                f"{'is' if len(unknown) == 1 else 'are'} unknown."
            )
        out.append(Finding("speedup", "info", sentence, evidence, [fast["key"], slow["key"]]))
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


def _run_list(results: Results, keys: list[str]) -> str:
    return fmt.names([results.label(k) for k in keys])


def _best_val(results: Results, key: str) -> tuple[float, int] | None:
    """(lowest val loss, its iteration) from evals.csv."""
    val = _val_evals(results, key)
    if val.empty:
        return None
    row = val.loc[val["loss"].idxmin()]
    return float(row["loss"]), int(row["iter"])


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


def _losses_text(f: dict[str, Any]) -> str:
    text = f"train {fmt.loss(f['final_train_loss'])} / val {fmt.loss(f['final_val_loss'])}"
    if f.get("final_val_iter") is not None:
        text += f" at iter {f['final_val_iter']}"
    best = f.get("best_val_loss")
    if fmt.is_num(best) and fmt.is_num(f["final_val_loss"]) and f["final_val_loss"] - best > OVERFIT_RISE:
        text += f", best val {fmt.loss(best)} at iter {f['best_val_iter']}"
    return text


def _tokens_why(la: str, lb: str, fa: dict[str, Any], fb: dict[str, Any]) -> tuple[str, bool]:
    """(text, whether it is a reason for the gap): the training tokens each run had read by the val eval whose
    loss is compared. More tokens is a reason only when the run that read more has the lower val loss there."""
    ta, tb = fa["tokens_at_final_val"], fb["tokens_at_final_val"]
    if not (ta and tb):
        return "", False
    if ta < tb and abs(ta / tb - 1) > 0.01:  # the one that read more first
        la, lb, fa, fb, ta, tb = lb, la, fb, fa, tb, ta
    ia, ib = fa["final_val_iter"], fb["final_val_iter"]
    counts = (
        f"{fmt.count(ia)} iterations x {fmt.count(fa['tokens_per_iter'])} tokens vs {fmt.count(ib)} x "
        f"{fmt.count(fb['tokens_per_iter'])}"
    )
    if abs(ta / tb - 1) <= 0.01:
        text = (
            f"both had read {_short_count(ta)} training tokens by the val evals compared ({counts}), so more "
            "data does not explain the gap"
        )
        if ia and ib and ia != ib:
            fewer = la if ia < ib else lb
            text += f"; {fewer} read them in {fmt.count(min(ia, ib))} optimizer steps against {fmt.count(max(ia, ib))}"
        return text, False
    text = (
        f"{la} saw {fmt.ratio(ta / tb)} the training tokens of {lb} by the val evals compared "
        f"({_short_count(ta)} vs {_short_count(tb)}: {counts})"
    )
    va, vb = fa["final_val_eval_loss"], fb["final_val_eval_loss"]
    if fmt.is_num(va) and fmt.is_num(vb) and round(va, 4) >= round(vb, 4):
        worse = "the same val loss" if round(va, 4) == round(vb, 4) else "has the higher val loss"
        return f"{text} yet {worse}, so more data does not explain the gap", False
    return text, True


def config_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """Runs compared on loss only within one config; other configs named with the fields that differ, and
    the loss gap put down to the recipe (tokens seen, model size, dtype), not the hardware."""
    groups = [list(g.index) for _, g in ok.groupby("config_key", sort=False)]
    groups.sort(key=len, reverse=True)
    out: list[Finding] = []
    ref = groups[0]
    ref_fields = _config_fields(results.run_meta[ref[0]])
    for g in groups[1:]:
        fields = _config_fields(results.run_meta[g[0]])
        diff = {k: (fields.get(k), ref_fields.get(k)) for k in sorted(set(fields) | set(ref_fields))}
        diff = {k: v for k, v in diff.items() if v[0] != v[1]}
        only_batch = set(diff) <= {"batch_size"}
        a, b = ok.loc[g[0]], ok.loc[ref[0]]
        if a.get("dtype") != b.get("dtype"):
            diff["dtype"] = (a.get("dtype"), b.get("dtype"))
        fa, fb = _recipe_facts(results, ok, g[0]), _recipe_facts(results, ok, ref[0])
        la, lb = results.label(g[0]), results.label(ref[0])
        tokens, tokens_reason = _tokens_why(la, lb, fa, fb)
        why = [tokens] if tokens_reason else []
        ta, tb = fa["tokens_seen"], fb["tokens_seen"]
        pa, pb = fa["params"], fb["params"]
        if pa and pb and pa != pb:
            big, small = (la, lb) if pa > pb else (lb, la)
            hi, lo = max(pa, pb), min(pa, pb)
            why.append(
                f"{'with ' if why else ''}{'a ' if why else big + ' trained a '}{fmt.ratio(hi / lo)} larger model"
                f"{'' if why else ' than ' + small} ({hi / 1e6:.2f}M vs {lo / 1e6:.2f}M parameters)"
            )
        if "dtype" in diff:
            why.append(f"in {diff['dtype'][0]} vs {diff['dtype'][1]}")
        shown = ", ".join(f"{k} ({a_} vs {b_})" for k, (a_, b_) in diff.items())
        recipe = f": {' '.join(why)}" if why else ""
        if tokens and not tokens_reason:
            recipe += f"{'; ' if why else ': '}{tokens}"
        sentence = (
            f"The loss gap between {la} ({_losses_text(fa)}) and {lb} ({_losses_text(fb)}) comes from their "
            f"recipes, not the hardware{recipe}. {_run_list(results, g)} "
            f"{'differs' if len(g) == 1 else 'differ'} from {_run_list(results, ref)} in {shown}; only runs with "
            "the same config are compared on loss."
        )
        evidence = {
            "differs": {k: list(v) for k, v in diff.items()}, "group": g, "reference": ref,
            "per_run": {g[0]: fa, ref[0]: fb},
            "tokens_seen_ratio": ta / tb if ta and tb else None, "params_ratio": pa / pb if pa and pb else None,
            "tokens_at_final_val_ratio": (
                fa["tokens_at_final_val"] / fb["tokens_at_final_val"]
                if fa["tokens_at_final_val"] and fb["tokens_at_final_val"] else None
            ),
        }  # fmt: skip
        out.append(
            Finding("config_mismatch", "info" if only_batch and "dtype" not in diff else "warning", sentence,
                    evidence, g + ref)
        )  # fmt: skip
    for g in groups:
        if len(g) >= 2 and (agreement := _loss_agreement(results, ok, g)) is not None:
            out.append(agreement)
    for key in ok.index:
        assumed = ok.loc[key, "assumed"] if "assumed" in ok.columns else ""
        if isinstance(assumed, str) and assumed:
            out.append(
                Finding(
                    "assumed_config", "info",
                    f"{results.label(key)} was imported from a nanoGPT log; these config values were assumed, "
                    f"not read from it: {assumed}.",
                    {"assumed": assumed.split(", ")}, [key],
                )
            )  # fmt: skip
    return out


def _shared_setup(results: Results, ok: pd.DataFrame, keys: list[str]) -> tuple[str, dict[str, list]]:
    """What runs of one config_key share (model, batch, training hyperparameters, seed; the dtype when it is
    one) and the run settings in which they differ, as "share ...; they differ in ..." words."""
    settings = {
        "dtype": [ok.loc[k, "dtype"] for k in keys],
        "device": [results.device_label(k) for k in keys],
        "compile": [ok.loc[k, "compile"] for k in keys],
        "threads": [ok.loc[k, "threads"] if fmt.is_num(ok.loc[k, "threads"]) else None for k in keys],
        "AdamW": ["fused" if ok.loc[k, "fused_adamw"] else "foreach" for k in keys],
        "world size": [ok.loc[k, "world_size"] if "world_size" in ok.columns else 1 for k in keys],
    }
    shared = "model, batch size, training hyperparameters and seed"
    dtypes = set(map(str, settings["dtype"]))
    if len(dtypes) == 1:
        shared = f"model, batch size, training hyperparameters, seed and dtype ({dtypes.pop()})"
    differ: dict[str, list] = {}
    for name, values in settings.items():
        seen = list(dict.fromkeys(str(int(v)) if fmt.is_num(v) else str(v) for v in values))
        if len(seen) > 1:
            differ[name] = seen
    text = f"share {shared}"
    if differ:
        text += "; they differ in " + ", ".join(f"{n} ({', '.join(v)})" for n, v in differ.items())
    return text, differ


def _loss_agreement(results: Results, ok: pd.DataFrame, keys: list[str]) -> Finding | None:
    """Whether the val curves of one config's runs agree. Only runs with val losses are named; fewer than two:
    no finding."""
    ev = results.evals
    with_val = set(ev.loc[ev["split"] == "val", "key"])
    keys = [k for k in keys if k in with_val]
    if len(keys) < 2:
        return None
    dtypes = set(ok.loc[keys, "dtype"])
    tol = LOSS_TOLERANCE_FP32 if dtypes <= {"fp32"} else LOSS_TOLERANCE_REDUCED
    tol_note = f"tolerance {tol} for {'/'.join(sorted(map(str, dtypes)))}"
    val = ev[(ev["key"].isin(keys)) & (ev["split"] == "val")]
    setup, differ = _shared_setup(results, ok, keys)
    evidence: dict[str, Any] = {"tolerance": tol, "runs": keys, "differ_in": differ}
    finite = np.isfinite(val["loss"].astype(float))
    bad = [k for k in keys if k in set(val.loc[~finite, "key"])]
    if bad:
        # a NaN or inf val loss is never dropped to make curves agree
        return Finding(
            "loss_disagree", "warning",
            f"{_run_list(results, keys)} {setup}, but {_run_list(results, bad)} has val losses that "
            "are NaN or infinite: the curves cannot agree.",
            {**evidence, "non_finite": bad}, keys,
        )  # fmt: skip
    table = val[finite].pivot_table(index="iter", columns="key", values="loss", aggfunc="last").dropna()
    if len(table) and table.shape[1] == len(keys):
        spread = table.max(axis=1) - table.min(axis=1)
        worst_iter = int(spread.idxmax())
        max_diff = float(spread.max())
        where = (
            f"over {len(table)} shared evals (worst at iter {worst_iter})"
            if max_diff > 0
            else f"(identical at all {len(table)} shared evals)"
        )
        evidence.update(max_abs_val_diff=max_diff, at_iter=worst_iter, shared_evals=len(table))
    else:
        finals = [_final_val(results, k) for k in keys]
        losses = [f[0] for f in finals if f]
        max_diff = float(max(losses) - min(losses))
        at = ", ".join(f"{results.label(k)} iter {f[1]}" for k, f in zip(keys, finals, strict=True) if f)
        where = (
            f"in final val loss ({at}; no eval iteration is shared by "
            f"{'both runs' if len(keys) == 2 else 'all of them'})"
        )
        evidence.update(max_abs_val_diff=max_diff, shared_evals=0)
    runs = _run_list(results, keys)
    if max_diff <= tol:
        return Finding(
            "loss_agree", "info",
            f"{runs} {setup}; their val curves agree within noise: max |val diff| "
            f"{max_diff:.4f} {where}, {tol_note}.",
            evidence, keys,
        )  # fmt: skip
    return Finding(
        "loss_disagree", "warning",
        f"{runs} {setup}, but their val curves do not agree: max |val diff| {max_diff:.4f} "
        f"{where}, above the {tol_note}; same config and seed mean the same batches, so this is numerics "
        "(dtype) or a data-order problem.",
        evidence, keys,
    )  # fmt: skip


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
    """What nanoGPT's timer (which spans the eval before a step) prints for eval iterations."""
    per_device: dict[tuple, list[dict]] = {}
    for key, r in ok.iterrows():
        s = results.steps_of(key)
        median = float(r["ms_median"])
        imported = _imported_spikes(results, key, s, median) if (s["phase"] == "after_eval").any() else None
        if imported:
            worst, first = imported["worst"] or imported["first"], imported["first"]
            item = {
                "key": key, "iter": int(worst["iter"]), "printed_ms": float(worst["ms"]), "step_ms": median,
                "eval_ms": float(worst["eval_ms_est"]), "includes": worst.get("includes", "eval"),
                "n": int(imported["n"]), "imported": True, "first_iter": first,
            }  # fmt: skip
        else:
            e = results.evals_of(key)
            e = e[e["iter"] > 0].groupby("iter")["ms"].sum(min_count=1).dropna()
            if e.empty:
                continue
            step_ms = s.set_index("iter")["ms"]
            e = e[e.index.isin(step_ms.index)]
            if e.empty:
                continue
            printed = step_ms.loc[e.index] + e
            i = int(printed.idxmax())
            item = {
                "key": key, "iter": i, "printed_ms": float(printed.loc[i]), "step_ms": float(step_ms.loc[i]),
                "eval_ms": float(e.loc[i]), "n": len(e), "imported": False,
                "printed_by_iter": {int(k): float(v) for k, v in printed.items()},
            }  # fmt: skip
        item["median_ms"] = median
        item["ratio"] = item["printed_ms"] / median if median > 0 else math.nan
        per_device.setdefault((r["host"], r["device"], r["source"]), []).append(item)
    out = []
    for items in per_device.values():
        worst = max(items, key=lambda it: it["ratio"] if fmt.is_num(it["ratio"]) else 0)
        label = results.label(worst["key"])
        more = f" ({len(items)} runs on this device; this is the largest)" if len(items) > 1 else ""
        if worst["imported"]:
            first = worst.get("first_iter")
            if first is not None and worst["iter"] == first["iter"]:
                sentence = (
                    f"nanoGPT's timer in {label} printed iter {first['iter']}: {fmt.ms(first['ms'])} ms"
                )
            else:
                what = str(worst["includes"]).replace(" + ", " and ")
                sentence = (
                    f"nanoGPT's timer in {label} printed iter {worst['iter']}: {fmt.ms(worst['printed_ms'])} ms, of "
                    f"which ~{fmt.ms(worst['eval_ms'])} ms is the {what} before it; the honest median step is "
                    f"{fmt.ms(worst['median_ms'])} ms ({worst['n']} such iterations kept out of the medians){more}"
                )
            if first is not None:
                startup = str(first["includes"]).removeprefix("eval + ")
                lead = "Its" if worst["iter"] != first["iter"] else ", which"
                sentence += (
                    f"{'. ' if lead == 'Its' else ''}{lead} iter {first['iter']} ({fmt.ms(first['ms'])} ms) is "
                    f"{'not warm-up but mostly' if first['eval_ms_est'] > first['startup_ms_est'] else ''} "
                    f"the step-{first['iter']} eval (~{fmt.ms(first['eval_ms_est'])} ms, estimated from "
                    f"{first.get('eval_ms_source', 'the later evals')}) plus ~{fmt.ms(first['startup_ms_est'])} ms "
                    f"of {startup} and one step"
                ).replace("is  the", "is the")
            sentence += "."
        else:
            sentence = (
                f"nanoGPT's timer would have printed {fmt.ms(worst['printed_ms'])} ms for iter {worst['iter']} of "
                f"{label} (the step's {fmt.ms(worst['step_ms'])} ms + {fmt.ms(worst['eval_ms'])} ms of eval, "
                f"train and val splits), {fmt.ratio(worst['ratio'])} the honest median of "
                f"{fmt.ms(worst['median_ms'])} ms; devicebench times evals apart{more}."
            )
        severity = "warning" if fmt.is_num(worst["ratio"]) and worst["ratio"] > 2 else "info"
        out.append(
            Finding(
                "eval_in_timer", severity, sentence, {**worst, "runs": items}, [it["key"] for it in items]
            )
        )
    return out


def overfit_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """A run whose val loss rose after its minimum while its train loss kept falling: where, and by how much."""
    out = []
    for key in ok.index:
        e = results.evals_of(key)
        e = e[np.isfinite(e["loss"].astype(float))]
        val = e[e["split"] == "val"].sort_values("iter")
        train = e[e["split"] == "train"].set_index("iter")["loss"]
        if len(val) < 3:
            continue
        low = val.loc[val["loss"].idxmin()]
        last = val.iloc[-1]
        min_iter, last_iter = int(low["iter"]), int(last["iter"])
        rise = float(last["loss"]) - float(low["loss"])
        if min_iter >= last_iter or rise <= OVERFIT_RISE:
            continue
        t_min, t_last = train.get(min_iter), train.get(last_iter)
        if not (fmt.is_num(t_min) and fmt.is_num(t_last) and t_last < t_min):
            continue  # train loss rose too: unstable training, not overfitting
        meta = results.run_meta.get(key) or {}
        kept = ""
        if (meta.get("nanogpt") or {}).get("config", {}).get("always_save_checkpoint") is False:
            kept = f"; nanoGPT saved its checkpoint only while val improved, so ckpt.pt holds iter {min_iter}"
        sentence = (
            f"{results.label(key)} overfit: its val loss bottomed at {fmt.loss(low['loss'])} at iter {min_iter} and "
            f"rose by {rise:.2f} to {fmt.loss(last['loss'])} at iter {last_iter} while its train loss kept falling "
            f"({fmt.loss(t_min)} -> {fmt.loss(t_last)}): the iterations after {min_iter} memorised the training "
            f"text. Its best val loss ({fmt.loss(low['loss'])}), not the final one, is what this recipe reaches{kept}."
        )
        evidence = {
            "min_val_loss": float(low["loss"]), "min_iter": min_iter, "final_val_loss": float(last["loss"]),
            "final_iter": last_iter, "rise": rise, "train_loss_at_min": float(t_min),
            "final_train_loss": float(t_last),
        }  # fmt: skip
        out.append(Finding("overfitting", "warning", sentence, evidence, [key]))
    return out


def impossible_mfu_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """An MFU above 100% of the device's peak: the peak or the config is wrong; no MFU is a result then."""
    out = []
    for key, r in ok.iterrows():
        ratio = _impossible_mfu(r)
        if ratio is None:
            continue
        a, p = _achieved(r), r.get("peak_value")
        imported = r.get("source") == "nanogpt-log"
        check = (
            "the --hwinfo, --device-name or --peak-flops of the import, and the model, batch and block it read or "
            "was given with --set"
            if imported
            else "the device's peak (hwinfo) and the run's model and batch"
        )
        sentence = (
            f"{results.label(key)}: its MFU would be {fmt.pct(ratio)} of the peak of "
            f"{results.device_label(key, r['dtype'])} ({fmt.flops(a)} achieved against {fmt.flops(p)}, "
            f"{r.get('peak_source')}), which is impossible: either the peak is not this device's (or not for "
            f"{r['dtype']}) or the FLOP count is too large for what ran. Check {check}; no MFU is shown for it."
        )
        evidence = {"mfu": ratio, "achieved_flops_per_s": a, "peak_flops_per_s": p,
                    "peak_source": r.get("peak_source"), "peak_detail": r.get("peak_detail")}  # fmt: skip
        out.append(Finding("impossible_mfu", "warning", sentence, evidence, [key]))
    return out


def batch_scaling_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """Overhead-bound (time barely grows with batch, far below peak) or compute-bound, per device series."""
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
        dev = results.device_label(small["key"], small["dtype"])
        if small["compile"] not in (None, "off"):
            dev += f" (compile {small['compile']})"
        grow = (
            f"{fmt.ratio(rb)} the batch ({b_small} -> {b_large}) costs {fmt.ratio(rm)} the time "
            f"({fmt.ms(ms_small)} -> {fmt.ms(ms_large)} ms/iter)"
        )
        if rm < 1:
            grow += " (less time for more work: timing noise or warm-up dominates these short runs)"
        evidence = {
            "batch_sizes": [int(b) for b in by_batch.index], "ms_median": [float(v) for v in by_batch.values],
            "batch_ratio": rb, "ms_ratio": rm, "exponent": exponent, "mfu_small": mfu_s, "mfu_large": mfu_l,
        }  # fmt: skip
        mfu_s_text = (
            f"{fmt.pct(mfu_s)} of its own peak" if mfu_s is not None else "an unknown share of its peak"
        )
        if exponent < OVERHEAD_EXPONENT and (mfu_s is None or mfu_s < LOW_MFU):
            kind, severity = "overhead_bound", "warning"
            sentence = (
                f"{dev} is overhead-bound at small batch: {grow}, and at batch {b_small} it reaches {mfu_s_text}. "
                "The step is kernel launches, Python and memory traffic, not arithmetic: a larger batch is "
                + (
                    "nearly free, and compile with CUDA graphs (reduce-overhead) cuts the launches."
                    if small["device_type"] != "cpu"
                    else "nearly free, and torch.compile fuses the small ops."
                )
            )
        elif exponent >= COMPUTE_EXPONENT and mfu_l is not None and mfu_l >= LOW_MFU:
            kind, severity = "compute_bound", "info"
            sentence = (
                f"{dev} is compute-bound: {grow}, nearly in proportion (little fixed per-step cost), at "
                f"{fmt.pct(mfu_l)} of its own peak at batch {b_large}: the arithmetic dominates the step, so "
                f"{_compute_levers(results, small)}; settings (compile, threads, optimizer) can trim only the rest."
            )
        else:
            kind, severity = "batch_scaling", "info"
            mfu_l_text = (
                f"{fmt.pct(mfu_l)} of its own peak" if mfu_l is not None else "an unknown share of peak"
            )
            if exponent >= COMPUTE_EXPONENT:
                why = (
                    "fixed per-step costs are small, but the work itself runs far below peak (memory-bound ops, "
                    "small matmuls, or a CPU shared with other work)"
                )
            else:
                why = "partly fixed per-step overhead, partly work that runs below peak"
            sentence = (
                f"{dev}: {grow}, time growing with the batch with exponent {exponent:.2f} (1 = in proportion), "
                f"at {mfu_l_text} at batch {b_large}: {why}."
            )
        out.append(Finding(kind, severity, sentence, evidence, list(g.index)))
    for key, r in ok.iterrows():
        m = _possible_mfu(r)
        if key not in swept and m is not None and m >= NEAR_PEAK_MFU:
            out.append(
                Finding(
                    "compute_bound", "info",
                    f"{results.label(key)} runs at {fmt.pct(m)} of its own peak: compute-bound, near what "
                    "the hardware can do.",
                    {"mfu": m}, [key],
                )
            )  # fmt: skip
    return out


def mfu_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """MFU against the device's own peak next to the A100-based figure nanoGPT prints."""
    out = []
    ok = ok.assign(_achieved=[_achieved(r) for _, r in ok.iterrows()]).dropna(subset=["_achieved"])
    for _, g in ok.groupby(["host", "device", "dtype"], sort=False):
        r = g.loc[g["_achieved"].idxmax()]
        if _impossible_mfu(r) is not None:
            continue  # impossible_mfu_findings says what is wrong; never quoted as a result
        a100 = r["_achieved"] / A100_PEAK_FLOPS
        m, p = _mfu(r), _peak(r)
        label = results.device_label(r["key"], r["dtype"])
        printed = f"{a100 * 100:.2f}%"  # nanoGPT's own format
        exact = f" ({fmt.pct(a100)})" if a100 * 100 < 0.1 else ""  # where two decimals lose the figure
        if m is not None:
            sentence = (
                f"{label} uses {fmt.pct(m)} of its own peak ({fmt.flops(p)}, {r['peak_source']}) in its best run "
                f"({results.label(r['key'])}); nanoGPT would print mfu {printed}{exact}, because it divides by an "
                f"A100's 312 TFLOP/s on every device."
            )
        else:
            sentence = (
                f"{label}: its own peak is unknown, so only nanoGPT's A100-based mfu {printed}{exact} is available "
                f"({results.label(r['key'])}), and it says nothing about how well this device is used."
            )
        out.append(
            Finding("mfu_vs_a100", "info", sentence, {"mfu": m, "mfu_vs_a100": a100, "peak": p}, [r["key"]])
        )
    return out


def peak_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    out = []
    unknown = ok[[_peak(r) is None for _, r in ok.iterrows()]]
    for _, g in unknown.groupby(["host", "device", "dtype"], sort=False):
        r = g.iloc[0]
        detail = f" ({r['peak_detail']})" if r.get("peak_detail") else ""
        out.append(
            Finding(
                "peak_unknown", "warning",
                f"The peak FLOP/s of {results.device_label(r['key'], r['dtype'])} is unknown{detail}: "
                "its MFU against its own peak is not shown, and a speedup involving it cannot be split into "
                "hardware and utilisation; `hwinfo --measure` measures one.",
                {"detail": r.get("peak_detail")}, list(g.index),
            )
        )  # fmt: skip
    return out


def _compute_levers(results: Results, r: pd.Series) -> str:
    """The big lever for a compute-bound run (the rest of the step can still be trimmed by settings). A
    lower-precision dtype only where the device runs one natively: on a CPU without avx512_bf16/AMX (or
    avx512_fp16) bf16 and fp16 are emulated and many times slower than fp32, so saying "use bf16" there would
    send the user the wrong way."""
    if r["device_type"] != "cpu" or r["dtype"] != "fp32":
        return "a faster device or a lower-precision dtype the device runs natively is the big lever"
    features = {str(f).lower() for f in _host_cpu(results, r["key"]).get("features") or []}
    if not features:
        return ("a faster device is the big lever, or a lower-precision dtype if this CPU runs one natively "
                "(bf16 needs avx512_bf16 or amx_bf16, fp16 avx512_fp16 or amx_fp16: look for them in its "
                "flags; its features are unknown here)")  # fmt: skip
    native = [d for d, need in NATIVE_CPU_FEATURES.items() if features & set(need)]
    if native:
        return f"a faster device or {' or '.join(native)} (native on this CPU) is the big lever"
    return (
        "a faster device is the big lever (this CPU has no native bf16 or fp16: no avx512_bf16, amx_bf16, "
        "avx512_fp16 or amx_fp16, so a lower-precision dtype would run emulated, slower than fp32)"
    )


def _host_cpu(results: Results, key: str) -> dict:
    return results.hwinfo_for(key).get("cpu") or {}


def thread_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """CPU threads used against the host's physical cores, with ms/iter per thread count when swept."""
    out = []
    cpu = ok[(ok["device_type"] == "cpu") & ok["threads"].notna()]
    for _, g in cpu.groupby("results_dir", sort=False):
        info = _host_cpu(results, g.index[0])
        phys, logical = info.get("physical_cores"), info.get("logical_cores")
        host = g.iloc[0]["host"]
        threads = sorted({int(t) for t in g["threads"]})
        cores = (
            f"{phys} physical core{'s' if phys != 1 else ''}"
            if phys
            else "an unknown number of physical cores"
        )
        if logical:
            cores += f" ({logical} logical)"
        parts = [f"CPU runs on {host} use {', '.join(map(str, threads))} thread(s) on {cores}"]
        severity = "info"
        if phys and max(threads) > phys:
            severity = "warning"
            parts.append(
                "threads beyond the physical cores share a core's FPUs and usually add contention, not speed"
            )
        elif phys and max(threads) < phys:
            parts.append(f"{phys - max(threads)} physical core(s) left idle")
        elif phys and min(threads) < phys:
            fewer = [k for k in g.index if int(g.loc[k, "threads"]) < phys]
            parts.append(
                f"{_run_list(results, fewer)} used fewer threads than physical cores, the rest one per physical core"
            )
        else:
            parts.append("one thread per physical core, as it should be" if phys else "")
        evidence: dict[str, Any] = {"threads": threads, "physical_cores": phys, "logical_cores": logical}
        if len(threads) > 1:
            # ms/iter per thread count at the most common (dtype, batch, compile, optimizer) point: runs that
            # differ in threads alone
            axes = ["dtype", "batch_size", "compile", "fused_adamw"]
            point = g.groupby(axes).size().idxmax()
            sel = g[(g[axes] == pd.Series(point, index=axes)).all(axis=1)]
            per = sel.groupby("threads")["ms_median"].median()
            evidence["ms_by_threads"] = {int(k): float(v) for k, v in per.items()}
            best = int(per.idxmin())
            parts.append(
                f"at {point[0]} batch {point[1]}: "
                + ", ".join(
                    f"{int(t)} thread{'' if int(t) == 1 else 's'} {fmt.ms(v)} ms/iter" for t, v in per.items()
                )
                + f" (fastest: {best})"
            )
        sentence = "; ".join(p for p in parts if p) + "."
        out.append(Finding("cpu_threads", severity, sentence, evidence, list(g.index)))
    return out


def cpu_dtype_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """A reduced dtype on a CPU without native support for it (bf16 without avx512_bf16/AMX)."""
    out = []
    cpu = ok[(ok["device_type"] == "cpu") & ok["dtype"].isin(list(NATIVE_CPU_FEATURES))]
    for key, r in cpu.iterrows():
        info = _host_cpu(results, key)
        features = {str(f).lower() for f in info.get("features") or []}
        need = NATIVE_CPU_FEATURES[r["dtype"]]
        have = [f for f in need if f in features]
        # the fp32 run that differs in dtype alone: same batch, compile, threads and optimizer
        twin = ok[
            (ok["results_dir"] == r["results_dir"]) & (ok["device"] == r["device"]) & (ok["dtype"] == "fp32")
            & (ok["batch_size"] == r["batch_size"]) & (ok["compile"] == r["compile"])
            & ((ok["threads"] == r["threads"]) | (ok["threads"].isna() & pd.isna(r["threads"])))
            & (ok["fused_adamw"] == r["fused_adamw"])
        ]  # fmt: skip
        compare = ""
        evidence: dict[str, Any] = {"needs": list(need), "has": have, "ms_median": float(r["ms_median"])}
        if len(twin):
            t = float(twin["ms_median"].median())
            evidence["fp32_ms_median"] = t
            compare = f" ({fmt.ms(r['ms_median'])} ms/iter against {fmt.ms(t)} in fp32 at the same batch, threads, compile and optimizer, {fmt.ratio(r['ms_median'] / t)})"
        cpu_name = info.get("model_name") or r.get("device_name") or "this CPU"
        if not features:
            sentence = (
                f"{results.label(key)} uses {r['dtype']} on the CPU, whose features are unknown: it is native only "
                f"with {' or '.join(need)}{compare}."
            )
            severity = "info"
        elif have:
            sentence = (
                f"{results.label(key)} uses {r['dtype']} on {cpu_name}, which has {', '.join(have)}{compare}"
            )
            slower = evidence.get("fp32_ms_median") and r["ms_median"] > 1.1 * evidence["fp32_ms_median"]
            sentence += ": native support, yet not faster than fp32 at this size." if slower else "."
            severity = "info"
        else:
            sentence = (
                f"{results.label(key)} uses {r['dtype']} on {cpu_name}, which lacks {' and '.join(need)}: "
                f"PyTorch converts to fp32 and back around each op, so {r['dtype']} is no faster and often "
                f"slower on this CPU{compare}."
            )
            severity = "warning"
        out.append(Finding("cpu_dtype", severity, sentence, evidence, [key]))
    return out


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
        extra = float(r["first_step_ms"] - r["ms_median"])
        share = extra / total_ms if total_ms > 0 else np.nan
        compiled = r["compile"] not in (None, "off")
        why = (
            "compilation, paid once per run" if compiled else "warm-up (allocator, kernel selection, caches)"
        )
        severity = "warning" if fmt.is_num(share) and share > 0.2 else "info"
        sentence = (
            f"The first step of {results.label(r['key'])} took {fmt.ms(r['first_step_ms'])} ms, "
            f"{fmt.ratio(r['_ratio'])} its median of {fmt.ms(r['ms_median'])} ms: {why}; it is "
            f"{fmt.pct(share)} of this run's train time and kept out of the medians."
        )
        if compiled and fmt.is_num(share) and share > 0.2:
            sentence += " Compiling pays off only for runs long enough to amortise it."
        evidence = {"first_step_ms": float(r["first_step_ms"]), "ms_median": float(r["ms_median"]),
                    "ratio": float(r["_ratio"]), "share_of_train_time": share}  # fmt: skip
        out.append(Finding("warmup_cost", severity, sentence, evidence, list(g.index)))
    return out


def profile_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """From `bench run --profile`: where each profiled run's step goes, and what to do about launch overhead.

    The sentence is made here from profile.json's numbers (a stored "sentence" is ignored).
    """
    out = []
    for key in ok.index:
        prof = results.profiles.get(key)
        if not prof:
            continue
        r = ok.loc[key]
        mean = prof["mean"]
        sentence = f"{results.label(key)}: {summarize_profile(prof, r.get('device'), r.get('batch_size'))}."
        idle = mean.get("device_idle_fraction")
        cuda = (prof.get("device_type") or r.get("device_type")) == "cuda"
        if cuda and fmt.is_num(idle) and idle > IDLE_DEVICE:
            sentence += (
                " The GPU waits on the host for most of the step: it is launch-bound; compile with "
                "mode=reduce-overhead (CUDA graphs) removes most of the launch overhead, and a larger batch "
                "does more work per launch."
            )
        overhead = prof.get("profiler_overhead")
        if fmt.is_num(overhead) and overhead > PROFILED_SLOWER:
            sentence += (
                f" (Profiled steps ran {overhead:.1f}x slower than unprofiled ones: read shares, not times.)"
            )
        evidence = {"fraction": mean.get("fraction"), "step_ms": mean.get("step_ms")}
        for k in ("kernel_launches_per_step", "mean_gap_us", "device_idle_fraction"):
            if k in mean:
                evidence[k] = mean[k]
        if fmt.is_num(prof.get("matmul_flops_per_s")):
            evidence["matmul_flops_per_s"] = prof["matmul_flops_per_s"]
        severity = "warning" if cuda and fmt.is_num(idle) and idle > IDLE_DEVICE else "info"
        out.append(Finding("step_breakdown", severity, sentence, evidence, [key]))
    return out


def noise_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """Timings spread wide while other processes (or a VM's neighbours) used the CPU: say so, with figures."""
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
        parts = [f"the p90 step is {spread:.1f}x the p10 ({fmt.ms(p10)} to {fmt.ms(p90)})"]
        if fmt.is_num(other):
            parts.append(f"other processes used {other:.2f} cores' worth of CPU during the run")
        if fmt.is_num(steal) and steal > 0.05:
            parts.append(f"the hypervisor took {steal:.2f} cores (steal time)")
        if fmt.is_num(load.get("loadavg_1m_start")):
            parts.append(f"load average {load['loadavg_1m_start']:.1f} -> {load.get('loadavg_1m_end') or 0:.1f} "
                         f"on {load.get('logical_cpus')} logical CPUs")  # fmt: skip
        cause = (
            "the machine was busy: its figures are slower and noisier than this device can do; rerun on a quiet "
            "machine (or compare ratios measured side by side, as `bench gate` does)"
            if busy
            else "nothing else was measured to run, so the spread is the device's own (frequency changes, "
            "allocator, Python)"
        )
        threads, cpus = r.get("threads"), load.get("logical_cpus")
        if (
            busy
            and r.get("device_type") == "cpu"
            and fmt.is_num(threads)
            and fmt.is_num(cpus)
            and fmt.is_num(other)
        ):
            if float(threads) + float(other) > float(cpus) + 0.25:
                cause += (
                    f". Its {int(threads)} PyTorch threads had to share {cpus} CPUs with that work, so each parallel "
                    "op waited for a descheduled thread: fewer threads (--threads 1) can be faster on a busy machine"
                )
        out.append(
            Finding(
                "noisy_timing", "warning" if busy else "info",
                f"{results.label(key)}: {'; '.join(parts)}. {cause[0].upper()}{cause[1:]}.",
                {"p90_over_p10": spread, **load}, [key],
            )
        )  # fmt: skip
    return out
