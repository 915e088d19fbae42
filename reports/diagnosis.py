"""The diagnosis: findings in words, each with the figures behind it.

`diagnose(results)` returns a list of `Finding`s (kind, severity, sentence, evidence, runs). Kinds:
speedup, config_mismatch, loss_agree, loss_disagree, assumed_config, eval_in_timer, overhead_bound,
compute_bound, batch_scaling, mfu_vs_a100, peak_unknown, cpu_threads, cpu_dtype, warmup_cost,
step_breakdown, noisy_timing.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hwinfo.peaks import A100_BF16_PEAK_FLOPS as A100_PEAK_FLOPS
from reports import fmt
from reports.load import LOSS_NEUTRAL_TRAIN_KEYS, Results, step_ms_spanned
from reports.scaling import scaling_findings

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
BUSY_OTHER_CORES = 0.25  # other processes using this many cores' worth of CPU during a run
IDLE_DEVICE = 0.5  # a CUDA step whose device is idle this fraction of the time is launch-bound
NATIVE_CPU_FEATURES = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}


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
        return json.loads(json.dumps(asdict(self), default=_plain))


def _plain(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def diagnose(results: Results) -> list[Finding]:
    """Every finding for these results, most important first; ids are kind-N."""
    ok = results.ok_runs()
    findings: list[Finding] = []
    if len(ok):
        for rule in (
            speedup_findings, config_findings, eval_timer_findings, batch_scaling_findings,
            mfu_findings, peak_findings, thread_findings, cpu_dtype_findings, warmup_findings,
            profile_findings, noise_findings, scaling_findings,
        ):  # fmt: skip
            findings.extend(rule(results, ok))
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
    if fmt.is_num(r.get("mfu")):
        return float(r["mfu"])
    a, p = _achieved(r), _peak(r)
    return a / p if a and p else None


def speedup_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """The headline: the fastest run of each device against the slowest device's, split into peak x MFU."""
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
        if same_model:
            what = (
                f"on this recipe ({fmt.count(fast['tokens_per_s'])} vs {fmt.count(slow['tokens_per_s'])} tokens/s, "
                f"best runs {results.label(fast['key'])} and {results.label(slow['key'])})"
            )
        else:
            what = (
                f"in achieved FLOP/s ({fmt.flops(fast['_achieved'])} vs {fmt.flops(slow['_achieved'])}; the runs "
                f"train different models, so tokens/s are not comparable)"
            )
        fp, sp = _peak(fast), _peak(slow)
        fm, sm = _mfu(fast), _mfu(slow)
        evidence = {
            "fast": fast["key"], "slow": slow["key"], "speedup": speed,
            "tokens_per_s": [fast.get("tokens_per_s"), slow.get("tokens_per_s")],
            "achieved_flops_per_s": [fast["_achieved"], slow["_achieved"]],
            "peak_flops_per_s": [fp, sp], "mfu": [fm, sm], "peak_ratio": None, "mfu_ratio": None,
        }  # fmt: skip
        sentence = (
            f"{results.device_label(fast['key'])} is {fmt.ratio(speed)} faster than "
            f"{results.device_label(slow['key'])} {what}"
        )
        if fp and sp and fm and sm:
            evidence["peak_ratio"], evidence["mfu_ratio"] = fp / sp, fm / sm
            sentence += (
                f": {fmt.ratio(fp / sp)} the peak FLOP/s ({fmt.flops(fp)} vs {fmt.flops(sp)}, hardware) "
                f"x {fmt.ratio(fm / sm)} the MFU ({fmt.pct(fm)} vs {fmt.pct(sm)} of own peak, how well each "
                "device is used)."
            )
        else:
            unknown = [
                results.device_label(r["key"], r["dtype"]) for r, p in ((fast, fp), (slow, sp)) if not p
            ]
            sentence += (
                f"; it cannot be split into peak ratio x MFU ratio because the peak of {fmt.names(unknown)} "
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


def config_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """Runs compared on loss only within one config; other configs named with the fields that differ."""
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
        text = ", ".join(f"{k} ({a} vs {b})" for k, (a, b) in diff.items())
        lg, lr = ok.loc[g[0]], ok.loc[ref[0]]
        sentence = (
            f"{_run_list(results, g)} {'differs' if len(g) == 1 else 'differ'} from {_run_list(results, ref)} "
            f"in {text}: their final losses "
            f"(train {fmt.loss(lg['final_train_loss'])} / val {fmt.loss(lg['final_val_loss'])} vs "
            f"{fmt.loss(lr['final_train_loss'])} / {fmt.loss(lr['final_val_loss'])}) come from different "
            "recipes and are not compared; only runs with the same config are."
        )
        out.append(
            Finding(
                "config_mismatch", "info" if only_batch else "warning", sentence,
                {"differs": {k: list(v) for k, v in diff.items()}, "group": g, "reference": ref},
                g + ref,
            )
        )  # fmt: skip
    for g in groups:
        if len(g) >= 2:
            out.append(_loss_agreement(results, ok, g))
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


def _loss_agreement(results: Results, ok: pd.DataFrame, keys: list[str]) -> Finding:
    dtypes = set(ok.loc[keys, "dtype"])
    tol = LOSS_TOLERANCE_FP32 if dtypes <= {"fp32"} else LOSS_TOLERANCE_REDUCED
    tol_note = f"tolerance {tol} for {'/'.join(sorted(map(str, dtypes)))}"
    ev = results.evals
    val = ev[(ev["key"].isin(keys)) & (ev["split"] == "val")].dropna(subset=["loss"])
    table = val.pivot_table(index="iter", columns="key", values="loss", aggfunc="last").dropna()
    evidence: dict[str, Any] = {"tolerance": tol, "runs": keys}
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
        finals = ok.loc[keys, "final_val_loss"].astype(float)
        max_diff = float(finals.max() - finals.min())
        where = "in final val loss (no shared eval iterations)"
        evidence.update(max_abs_val_diff=max_diff)
    runs = _run_list(results, keys)
    if max_diff <= tol:
        return Finding(
            "loss_agree", "info",
            f"{runs} share one config and their val curves agree within noise: max |val diff| "
            f"{max_diff:.4f} {where}, {tol_note}.",
            evidence, keys,
        )  # fmt: skip
    return Finding(
        "loss_disagree", "warning",
        f"{runs} share one config and seed but their val curves do not agree: max |val diff| {max_diff:.4f} "
        f"{where}, above the {tol_note}; same config and seed mean the same batches, so this is numerics "
        "(dtype) or a data-order problem.",
        evidence, keys,
    )  # fmt: skip


def eval_timer_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """What nanoGPT's timer (which spans the eval before a step) prints for eval iterations."""
    per_device: dict[tuple, list[dict]] = {}
    for key, r in ok.iterrows():
        s = results.steps_of(key)
        median = float(r["ms_median"])
        after = s[s["phase"] == "after_eval"]
        if len(after):
            row = after.loc[after["ms"].idxmax()]
            item = {
                "key": key, "iter": int(row["iter"]), "printed_ms": float(row["ms"]), "step_ms": median,
                "eval_ms": float(row["ms"]) - median, "n": len(after), "imported": True,
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
            sentence = (
                f"nanoGPT's timer in {label} printed iter {worst['iter']}: {fmt.ms(worst['printed_ms'])} ms, of "
                f"which ~{fmt.ms(worst['eval_ms'])} ms is the eval/checkpoint before it; the honest median step "
                f"is {fmt.ms(worst['median_ms'])} ms ({worst['n']} such iterations kept out of the medians){more}."
            )
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


def batch_scaling_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """Overhead-bound (time barely grows with batch, far below peak) or compute-bound, per device series."""
    out = []
    axes = ["host", "device", "dtype", "compile", "threads", "flops_per_token", "block_size"]
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
        mfu_s, mfu_l = _mfu(small), _mfu(large)
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
                f"{dev} is compute-bound: {grow}, nearly in proportion, at {fmt.pct(mfu_l)} of its own peak at "
                f"batch {b_large}; only a faster device or a lower-precision dtype makes it faster."
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
        m = _mfu(r)
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
        a100 = r["_achieved"] / A100_PEAK_FLOPS
        m, p = _mfu(r), _peak(r)
        label = results.device_label(r["key"], r["dtype"])
        if m is not None:
            sentence = (
                f"{label} uses {fmt.pct(m)} of its own peak ({fmt.flops(p)}, {r['peak_source']}) in its best run "
                f"({results.label(r['key'])}); nanoGPT would print mfu {fmt.pct(a100)}, because it divides by an "
                f"A100's 312 TFLOP/s on every device."
            )
        else:
            sentence = (
                f"{label}: its own peak is unknown, so only nanoGPT's A100-based mfu {fmt.pct(a100)} is available "
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
        else:
            parts.append("one thread per physical core, as it should be" if phys else "")
        evidence: dict[str, Any] = {"threads": threads, "physical_cores": phys, "logical_cores": logical}
        if len(threads) > 1:
            # ms/iter per thread count for the most common (dtype, batch, compile) point
            axes = ["dtype", "batch_size", "compile"]
            point = g.groupby(axes).size().idxmax()
            sel = g[(g[axes] == pd.Series(point, index=axes)).all(axis=1)]
            per = sel.groupby("threads")["ms_median"].median()
            evidence["ms_by_threads"] = {int(k): float(v) for k, v in per.items()}
            best = int(per.idxmin())
            parts.append(
                f"at {point[0]} batch {point[1]}: "
                + ", ".join(f"{int(t)} thread(s) {fmt.ms(v)} ms/iter" for t, v in per.items())
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
        twin = ok[
            (ok["results_dir"] == r["results_dir"]) & (ok["device"] == r["device"]) & (ok["dtype"] == "fp32")
            & (ok["batch_size"] == r["batch_size"]) & (ok["compile"] == r["compile"])
        ]  # fmt: skip
        compare = ""
        evidence: dict[str, Any] = {"needs": list(need), "has": have, "ms_median": float(r["ms_median"])}
        if len(twin):
            t = float(twin["ms_median"].median())
            evidence["fp32_ms_median"] = t
            compare = f" ({fmt.ms(r['ms_median'])} ms/iter against {fmt.ms(t)} in fp32 at the same batch, {fmt.ratio(r['ms_median'] / t)})"
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
    """From `bench run --profile`: where each profiled run's step goes, and what to do about launch overhead."""
    out = []
    for key in ok.index:
        prof = results.profiles.get(key)
        if not prof or not prof.get("sentence"):
            continue
        mean = prof.get("mean") or {}
        sentence = f"{results.label(key)}: {prof['sentence']}."
        idle = mean.get("device_idle_fraction")
        cuda = prof.get("device_type") == "cuda"
        if cuda and fmt.is_num(idle) and idle > IDLE_DEVICE:
            sentence += (
                " The GPU waits on the host for most of the step: it is launch-bound; compile with "
                "mode=reduce-overhead (CUDA graphs) removes most of the launch overhead, and a larger batch "
                "does more work per launch."
            )
        overhead = prof.get("profiler_overhead")
        if fmt.is_num(overhead) and overhead > 1.5:
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
