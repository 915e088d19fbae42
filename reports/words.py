"""The words of the report: one short template per finding kind, the headline, and the evidence table.

A rule (reports/diagnosis.py, roofline.py, scaling.py, ...) returns a Finding whose evidence holds every
figure and name its sentence states; this module is the only place that turns them into words. Each
sentence is at most MAX_CHARS long, plain, with the number that matters first; what does not fit is in
the evidence table (`details`): under each finding in the HTML, in `--format json`, and in the terminal
with `--details`. tests/golden/<kind>.txt holds each template's words on a fixed finding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reports import fmt
from reports.profile_text import LABELS

if TYPE_CHECKING:
    from reports.finding import Finding

MAX_CHARS = 250
MAX_FINDINGS = 8  # shown in the terminal, those that explain most first; `--all` shows the rest

# What moves a step, named once: rules say which lever applies (its id in the evidence), these say it.
LEVERS = {
    "compile": "torch.compile fuses the small ops",
    "cuda_graphs": "CUDA graphs (--compile reduce-overhead) cut the launches",
    "fewer_kernels": "fewer, larger kernels (torch.compile) or a larger batch",
    "larger_batch": "a larger batch gives each op more work",
    "compile_or_batch": "torch.compile or a larger batch",
    "fused_adamw": "a fused AdamW does the optimizer in one pass",
    "fuse_elementwise": "fusing them (torch.compile)",
    "faster_device_or_native_dtype": "a faster device, or a dtype the device runs natively",
    "faster_device_or_bf16": "a faster device, or bf16 (native on this CPU)",
    "faster_device_or_fp16": "a faster device, or fp16 (native on this CPU)",
    "faster_device_or_bf16_or_fp16": "a faster device, or bf16/fp16 (native on this CPU)",
    "faster_device_no_native": "only a faster device (no native bf16/fp16 here: they would run emulated)",
    "faster_device_features_unknown": "a faster device, or bf16 if this CPU has avx512_bf16/amx_bf16",
    "none": "no setting (the step is spread thin)",
}


def lever(lever_id: str | None) -> str:
    return LEVERS.get(str(lever_id), str(lever_id or LEVERS["none"]))


def _names(f: Finding, keys: list[str], limit: int = 2) -> str:
    return fmt.names([f.label(k) for k in keys], limit)


# --- one template per kind --------------------------------------------------------------------------------


def _speedup(f: Finding, e: dict) -> str:
    text = f"{e['fast_device']} does {fmt.ratio(e['speedup'])} the FLOP/s of {e['slow_device']}"
    if e.get("impossible"):
        text += "; no peak x utilisation split: an MFU would be impossible (impossible_mfu)"
    elif e.get("peak_ratio") and e.get("mfu_ratio"):
        mf, ms = e["mfu"]
        text += (
            f": {fmt.ratio(e['peak_ratio'])} the peak x {fmt.ratio(e['mfu_ratio'])} the utilisation "
            f"({fmt.pct(mf)} vs {fmt.pct(ms)} of own peak)"
        )
    else:
        text += "; no peak x utilisation split: a peak is unknown (peak_unknown)"
    if not e.get("same_model") and fmt.is_num(e.get("token_time_ratio")):
        text += (
            f". Different models: per token {fmt.ratio(e['token_time_ratio'])}, per iteration "
            f"{fmt.ratio(e['iter_time_ratio'])} faster"
        )
    elif not e.get("same_model"):
        text += ". Different models, tokens per iteration unknown: no per-token figure"
    return text + "."


def _impossible_mfu(f: Finding, e: dict) -> str:
    return (
        f"{f.label(f.runs[0])}: MFU would be {fmt.pct(e['mfu'])} of the {fmt.flops(e['peak_flops_per_s'])} "
        f"{e.get('peak_source')} peak, which is impossible: the peak or the FLOP count is wrong; no MFU shown."
    )


def _config_mismatch(f: Finding, e: dict) -> str:
    a, b = f.label(e["run"]), f.label(e["reference"])
    n = len(e["differs"])
    fields = fmt.names(list(e["differs"]), 2)
    va, vb = e["val_loss"]
    if e.get("same_val_loss"):
        return f"{a} and {b} differ in {fields}, yet reach the same val loss ({fmt.loss(va)})."
    reasons = []
    if e.get("tokens_ratio"):
        reasons.append(f"{fmt.ratio(e['tokens_ratio'])} the training tokens")
    if e.get("params_ratio"):
        reasons.append(f"a {fmt.ratio(e['params_ratio'])} larger model")
    if e.get("dtypes"):
        reasons.append(" vs ".join(e["dtypes"]))
    if reasons:
        low, high = (a, b) if e["more"] == e["run"] else (b, a)
        lo, hi = sorted([va, vb])
        return (
            f"{low} reaches val {fmt.loss(lo)} against {fmt.loss(hi)} for {high} through its recipe, not the "
            f"hardware: {', '.join(reasons)}; {n} setting{'s differ' if n != 1 else ' differs'}."
        )
    return f"Val {fmt.loss(va)} ({a}) vs {fmt.loss(vb)} ({b}): they differ in {fields}, so their losses are not compared."


def _loss_agree(f: Finding, e: dict) -> str:
    differ = f"; they differ in {', '.join(e['differ_in'])}" if e.get("differ_in") else ""
    over = f"over {e['shared_evals']} shared evals" if e.get("shared_evals") else "in final val loss"
    return (
        f"{_names(f, e['runs'])} agree: max val diff {e['max_abs_val_diff']:.4f} {over} (tolerance "
        f"{e['tolerance']}){differ}."
    )


def _loss_disagree(f: Finding, e: dict) -> str:
    if e.get("non_finite"):
        return f"{_names(f, e['non_finite'])} has NaN or infinite val losses: its curve cannot agree with the same config's."
    at = f" at iter {e['at_iter']}" if e.get("at_iter") is not None else ""
    return (
        f"{_names(f, e['runs'])} disagree: max val diff {e['max_abs_val_diff']:.4f}{at}, above the "
        f"{e['tolerance']} tolerance. Same config and seed mean the same batches: numerics (dtype) or data order."
    )


def _assumed_config(f: Finding, e: dict) -> str:
    return (
        f"{f.label(f.runs[0])} was imported from a nanoGPT log; assumed, not read from it: "
        f"{fmt.names(e['assumed'], 4)}."
    )


def _overfitting(f: Finding, e: dict) -> str:
    return (
        f"{f.label(f.runs[0])} overfit: val loss bottomed at {fmt.loss(e['min_val_loss'])} (iter {e['min_iter']}) "
        f"and rose {e['rise']:.2f} by iter {e['final_iter']} while train loss fell; its best val, not its last, "
        "is what the recipe reaches."
    )


def _eval_in_timer(f: Finding, e: dict) -> str:
    run = f.label(e["key"])
    if e.get("imported"):
        first = e.get("first_iter") or {}
        if (
            e.get("eval_ms") is None
            and fmt.is_num(first.get("eval_ms_est"))
            and fmt.is_num(first.get("startup_ms_est"))
        ):
            what = str(first.get("includes") or "").removeprefix("eval + ") or "start-up"
            return (
                f"nanoGPT's timer printed {fmt.ms(e['printed_ms'])} ms for iter {e['iter']} of {run}: ~"
                f"{fmt.ms(first['eval_ms_est'])} ms is the step-{e['iter']} eval and ~{fmt.ms(first['startup_ms_est'])} "
                f"ms {what}, kept out of the medians."
            )
        if e.get("eval_ms") is None:
            return f"nanoGPT's timer printed {fmt.ms(e['printed_ms'])} ms for iter {e['iter']} of {run}: start-up and an eval."
        return (
            f"nanoGPT's timer printed {fmt.ms(e['printed_ms'])} ms for iter {e['iter']} of {run}: ~{fmt.ms(e['eval_ms'])} "
            f"ms is the {e['includes']} before it. The honest median step is {fmt.ms(e['median_ms'])} ms."
        )
    return (
        f"nanoGPT's timer would print {fmt.ms(e['printed_ms'])} ms for iter {e['iter']} of {run}, "
        f"{fmt.ratio(e['ratio'])} the honest {fmt.ms(e['median_ms'])} ms median: {fmt.ms(e['eval_ms'])} ms of it is "
        "eval, which devicebench times apart."
    )


def _grow(e: dict) -> str:
    b0, b1 = e["batch_sizes"][0], e["batch_sizes"][-1]
    return f"{fmt.ratio(e['batch_ratio'])} the batch ({b0} -> {b1}) costs {fmt.ratio(e['ms_ratio'])} the time"


def _overhead_bound(f: Finding, e: dict) -> str:
    return (
        f"{e['device']} is overhead-bound: {_grow(e)}, at {fmt.pct(e['mfu_small']) if e.get('mfu_small') is not None else 'an unknown share'} "
        f"of its own peak. A larger batch is nearly free; {lever(e['lever'])}."
    )


def _compute_bound(f: Finding, e: dict) -> str:
    if "batch_ratio" in e:
        return (
            f"{e['device']} is compute-bound at {fmt.pct(e['mfu'])} of its own peak: {_grow(e)}. The lever is "
            f"{lever(e['lever'])}."
        )
    return f"{f.label(f.runs[0])} is compute-bound at {fmt.pct(e['mfu'])} of its own peak. The lever is {lever(e['lever'])}."


def _batch_scaling(f: Finding, e: dict) -> str:
    why = {
        "below_peak": "small fixed costs, but the work itself runs far below peak",
        "mixed": "partly fixed per-step overhead, partly work below peak",
        "noise": "less time for more work: noise or warm-up dominates",
    }[e["why"]]
    mfu = fmt.pct(e["mfu_large"]) if e.get("mfu_large") is not None else "an unknown share"
    return f"{e['device']}: {_grow(e)} (exponent {e['exponent']:.2f}), at {mfu} of its own peak: {why}."


def _mfu_vs_a100(f: Finding, e: dict) -> str:
    printed = e["nanogpt_printed"]
    if e.get("mfu") is None:
        return f"{e['device']}: own peak unknown; nanoGPT's A100-based mfu {printed} says nothing about this device."
    return (
        f"{e['device']} uses {fmt.pct(e['mfu'])} of its own peak ({fmt.flops(e['peak'])}, {e['peak_source']}); "
        f"nanoGPT would print mfu {printed}, dividing by an A100's 312 TFLOP/s."
    )


def _peak_unknown(f: Finding, e: dict) -> str:
    return (
        f"The peak FLOP/s of {e['device']} is unknown: no MFU and no peak x utilisation split for it; "
        "`hwinfo --measure` measures one."
    )


def _cpu_threads(f: Finding, e: dict) -> str:
    threads, phys = ", ".join(map(str, e["threads"])), e.get("physical_cores")
    cores = f"{phys} physical cores" if phys else "an unknown number of physical cores"
    verdict = {
        "over": ": threads beyond the cores add contention, not speed",
        "idle": f": {e.get('idle_cores')} {'core' if e.get('idle_cores') == 1 else 'cores'} idle",
        "mixed": "",
        "one_per_core": ": one per core, as it should be",
        "unknown": "",
    }[e["verdict"]]
    many = "threads" if len(e["threads"]) > 1 or e["threads"][0] != 1 else "thread"
    text = f"{e['host']}'s CPU runs use {threads} {many} on {cores}{verdict}"
    if e.get("ms_by_threads"):
        best = e["fastest_threads"]
        text += f"; fastest: {best} ({fmt.ms(e['ms_by_threads'][best])} ms/iter)"
    return text + "."


def _cpu_dtype(f: Finding, e: dict) -> str:
    run, dtype = f.label(f.runs[0]), e["dtype"]
    vs = (
        f" ({fmt.ms(e['ms_median'])} vs {fmt.ms(e['fp32_ms_median'])} ms/iter in fp32)"
        if e.get("fp32_ms_median")
        else ""
    )
    if e["support"] == "unknown":
        return f"{run} uses {dtype} on a CPU whose features are unknown: native only with {' or '.join(e['needs'])}{vs}."
    if e["support"] == "native":
        slower = ": native, yet slower than fp32 at this size" if e.get("slower") else ""
        return f"{run} uses {dtype} on a CPU with {', '.join(e['has'])}{vs}{slower}."
    return (
        f"{run} uses {dtype} on a CPU without {' or '.join(e['needs'])}: emulated through fp32, slower{vs}."
    )


def _warmup_cost(f: Finding, e: dict) -> str:
    why = "compilation" if e["compiled"] else "warm-up (allocator, kernel selection, caches)"
    text = (
        f"The first step of {f.label(e['key'])} took {fmt.ms(e['first_step_ms'])} ms, {fmt.ratio(e['ratio'])} its "
        f"median: {why}, {fmt.pct(e['share_of_train_time'])} of its train time, kept out of the medians"
    )
    if e["compiled"] and (e["share_of_train_time"] or 0) > 0.2:
        text += "; compiling pays off only on longer runs"
    return text + "."


def _step_breakdown(f: Finding, e: dict) -> str:
    run = f.label(f.runs[0])
    shares = sorted((e.get("fraction") or {}).items(), key=lambda kv: -(kv[1] or 0))
    top = ", ".join(f"{fmt.pct(v)} {_cat(k)}" for k, v in shares[:3] if v)
    if e.get("launch_bound"):
        return (
            f"{run}: the GPU is idle {fmt.pct(e['device_idle_fraction'])} of the step, waiting on the host to launch "
            f"{_kernels(e.get('kernel_launches_per_step'))}: launch-bound; {lever('cuda_graphs')}."
        )
    mm = f" (matmul at {fmt.flops(e['matmul_flops_per_s'])})" if e.get("matmul_flops_per_s") else ""
    slower = (
        f"; profiled steps ran {e['profiler_overhead']:.1f}x slower: read shares"
        if e.get("profiler_overhead")
        else ""
    )
    return f"{run}: the step is {top}{mm}{slower}."


def _kernels(n: Any) -> str:
    """'1 kernel', '412 kernels', '1,234 kernels' for a mean over steps, 'its kernels' when unknown."""
    if not fmt.is_num(n):
        return "its kernels"
    n = float(n)
    if n.is_integer() and abs(n) < 1e15:
        return f"{int(n):,} kernel{'' if n == 1 else 's'}"
    return f"{fmt.count(n)} kernels"


def _cat(c: str) -> str:
    return LABELS.get(c, c)


def _noisy_timing(f: Finding, e: dict) -> str:
    head = f"{f.label(f.runs[0])}: p90 step {fmt.ratio(e['p90_over_p10'])} the p10 ({fmt.ms(e['p10'])} to {fmt.ms(e['p90'])} ms)"
    if not e.get("busy"):
        return f"{head} with nothing else measured running: the device's own jitter."
    other = e.get("other_processes_cpu_cores")
    who = f"other processes used {other:.2f} cores" if fmt.is_num(other) else "the hypervisor took CPU time"
    tail = "; fewer threads (--threads 1) can be faster here" if e.get("oversubscribed") else ""
    return f"{head} while {who}: slower and noisier than the device can do; rerun on a quiet machine{tail}."


def _roofline(f: Finding, e: dict) -> str:
    run = f.label(f.runs[0])
    if e.get("host_only"):
        return f"{run}: the profile sees host launch times only (the device runs asynchronously): no category placed."
    shares = e.get("bound_fraction") or {}
    split = ", ".join(
        f"{fmt.pct(v)} {b}-bound"
        for b, v in sorted(shares.items(), key=lambda kv: -kv[1])
        if v >= 0.005 and b != "unknown"
    )
    text = f"{run}: {split or 'no category placed'}"
    if e.get("top_category"):
        c = e["top_category"]
        text += f"; {_cat(c['name'])} is {fmt.pct(c['share'])} of the step"
    if e.get("lever"):
        text += f". Lever: {lever(e['lever'])}"
    return text + "."


def _scaling(f: Finding, e: dict) -> str:
    what = e["what"]
    if e.get("weak"):
        w = e["weak"]
        run = f.label(w["run"])
        if e.get("shared"):
            return (
                f"{what}: {run} gets {fmt.pct(w['efficiency'])} of {w['world_size']} x one rank's tokens/s, but its ranks "
                "share one CPU, so that ideal assumes hardware that is not there."
            )
        return (
            f"{what}: {run} reaches {fmt.pct(w['efficiency'])} weak-scaling efficiency ({fmt.count(w['tokens_per_s'])} "
            f"vs an ideal {fmt.count(w['ideal'])} tokens/s on {w['world_size']} ranks)."
        )
    if e.get("same"):
        s = e["same"]
        return (
            f"{what}: {f.label(s['run'])} gets {fmt.ratio(s['ratio'])} the tokens/s of one rank at the same global "
            f"batch {s['batch_size']} (ideal {s['world_size']}x)."
        )
    r = e["alone"]
    return f"{what}: no 1-rank run to compare {f.label(r['run'])} with: run one at batch {r['per_rank_batch']:g}."


def _shared_cores(f: Finding, e: dict) -> str:
    tail = ""
    if e.get("idle_cores"):
        tail = f"; {e['idle_cores']} cores left idle"
    elif e.get("oversubscribed_threads"):
        tail = f"; {e['oversubscribed_threads']} threads oversubscribe them"
    return (
        f"The {e['nproc_per_node']} ranks per node of {_names(f, f.runs)} share one CPU: contention, not a speedup"
        f"{tail}. Data-parallel training pays off across devices."
    )


def _scaling_limit(f: Finding, e: dict) -> str:
    run = f.label(f.runs[0])
    if e.get("limit") is None:
        return (
            f"{run}: its all-reduce time was not measured, so communication and compute cannot be told apart."
        )
    head = f"{run}: {fmt.pct(e['allreduce_share'])} of the {fmt.ms(e['ms_median'])} ms step has an all-reduce in flight"
    if e["limit"] == "straggler":
        at = f" ({e['slowest_rank_at']})" if e.get("slowest_rank_at") else ""
        return f"{head}; rank {e['slowest_rank']}{at} is a straggler, {fmt.ratio(e['straggler_ratio'])} the median rank, and the others wait for it."
    if e["limit"] == "communication":
        cure = (
            "copies between processes on one CPU"
            if e.get("shares_device")
            else "larger per-rank batches or a faster interconnect shrink it"
        )
        return f"{head}: communication limits scaling ({cure})."
    slower = "; each rank computes slower than one rank alone" if e.get("ranks_slower") else ""
    return f"{head}: compute limits scaling{slower}."


def _ranks_differ(f: Finding, e: dict) -> str:
    return (
        f"The ranks of {f.label(f.runs[0])} ended with different weights: DDP keeps them identical, so a "
        "non-deterministic op or rank-dependent code broke the lockstep."
    )


def _time_to_loss(f: Finding, e: dict) -> str:
    runs = e["runs"]
    reached = sorted((r for r in runs if r.get("reached")), key=lambda r: r["time_s"])
    missed = len(runs) - len(reached)
    text = f"Time to val loss {fmt.loss(e['target_val_loss'])} (train + eval): "
    ref = e.get("reference")
    if reached:
        best = reached[0]
        text += f"{f.label(best['key'])} first, in {fmt.sig(best['time_s'])} s"
        effect = (e.get("speedups") or {}).get(best["key"])
        if best["key"] != ref and effect and effect.get("ratio"):
            bracket = (
                f" [{fmt.ratio(effect['low'])}-{fmt.ratio(effect['high'])}]"
                if fmt.is_num(effect.get("low")) and fmt.is_num(effect.get("high"))
                else ""
            )
            text += f", {fmt.ratio(effect['ratio'])}{bracket} the speed of {f.label(ref)}"
    else:
        return text + "no run reached it within its time. Each run's last eval: details."
    if missed:
        text += f"; {missed} of {len(runs)} runs never reached it"
    return text + ". Each run's time and bracket: details."


def _bracket(e: dict | None) -> str:
    """A tune's measured ratio with its interval: "1.51x [1.49x-1.52x]", "< 0.67x (target not reached)"; "-"."""
    if not e:
        return "-"
    if e.get("ratio") is None:
        return f"< {_x3(e['high'])} (target not reached)" if fmt.is_num(e.get("high")) else "-"
    if not fmt.is_num(e.get("low")):
        return f"{_x3(e['ratio'])} (too few samples for an interval)"
    high = _x3(e["high"]) if fmt.is_num(e.get("high")) else "?"
    return f"{_x3(e['ratio'])} [{_x3(e['low'])}-{high}]"


def _x3(x: float) -> str:
    """A tune's ratio to 3 digits, as its table has it: the bar is 5%, so 1.49x and 1.52x must read apart."""
    return f"{float(x):.3g}x"


def _effect(e: dict | None, measure: str = "throughput") -> str:
    """Number first: "1.51x tokens/s [1.49x-1.52x]", "< 0.67x speed to the target loss (target not reached)"."""
    text = _bracket(e)
    if text == "-":
        return text
    what = "tokens/s" if measure == "throughput" else "speed to the target loss"
    lt = "< " if text.startswith("< ") else ""
    ratio, _, rest = text.removeprefix(lt).partition(" ")
    return f"{lt}{ratio} {what} {rest}".rstrip()


def _device(name: str) -> str:
    """A device label without trademark signs: "cpu (12th Gen Intel Core i7-12700H)"."""
    for junk in ("(R)", "(TM)", "(tm)", "(r)"):
        name = name.replace(junk, "")
    return " ".join(name.split())


def _clip(text: str, n: int) -> str:
    """A reason read from a file (an error message) cut to n characters: the whole of it is in the evidence."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 6].rstrip() + " [...]"


def _tip(f: Finding, e: dict) -> str:
    rows = e["rows"]
    measured = [r for r in rows if (r.get("effect") or {}).get("ratio") is not None]
    r = max(measured, key=lambda r: r["effect"]["ratio"]) if measured else rows[0]
    title, device, verdict = r.get("title") or e["tip"], _device(e["device"]), r["verdict"]
    head = f"{r['variant']}: " if r.get("variant") and len(rows) > 1 else ""
    more = f"; {len(rows) - 1} other variant{'s' if len(rows) > 2 else ''}: details" if len(rows) > 1 else ""
    if r["measure"] == "answer":
        return f"{title} on {device}: {verdict} ({_clip(r.get('effect_text') or '-', 80)}){more}."
    if r.get("effect") is None:
        text = f"{head}{title} on {device}: {verdict}: "
        return text + _clip(r.get("why") or verdict, MAX_CHARS - len(text + more) - 1) + more + "."
    text = f"{head}{_effect(r['effect'], r['measure'])} with {title} on {device}: {verdict}"
    claimed = f' (claimed: "{r["claim"]}")' if r.get("claim") else ""
    return text + (claimed if len(text + claimed + more) < MAX_CHARS else "") + more + "."


def _payback(p: dict) -> str:
    compile_s = f"its {p['first_step_s']:.1f} s compile"
    if fmt.is_num(p.get("default_time_s")):
        return f": {compile_s} alone outlasted the default's {p['default_time_s']:.1f} s"
    ms, base = p["ms_median"], p["default_ms_median"]
    if not fmt.is_num(p.get("break_even_steps")):
        return f": {compile_s} counts, and its steps were no faster ({ms:.1f} vs {base:.1f} ms/iter)"
    about = fmt.count(float(f"{p['break_even_steps']:.2g}"))  # two digits: the steps are a rough figure
    return f": {compile_s} is repaid after ~{about} steps, not in the recipe's {int(p['recipe_steps']):,}"


def _best_config(f: Finding, e: dict) -> str:
    device, gain, ttl = _device(e["device"]), e.get("gain_over_default"), e.get("time_to_loss_gain")
    if e.get("none_better"):
        single = e.get("best_single")
        tail = (
            f" (best single variant: {single['name']}, {_effect(single['effect'], single['measure'])})"
            if single
            else ""
        )
        return f"{device}: no variant was worth it or a small gain; the recipe as it is stays the fastest measured{tail}."
    what = " + ".join(e.get("changed") or []) or "the recipe"
    if e.get("gain_measured"):
        text = f"{_effect(gain)} with {what}, the fastest measured on {device}"
    else:
        text = f"Fastest configuration measured on {device}: {what}"
    text += f"; to the target loss {_bracket(ttl)}" if ttl else "; time to loss not measured for it"
    if e.get("compile_payback"):
        payback = _payback(e["compile_payback"])
        fits = len(text + payback) < MAX_CHARS
        text += (
            payback
            if fits
            else f": its {e['compile_payback']['first_step_s']:.1f} s compile is not repaid (details)"
        )
    return text + "."


ENERGY_SOURCES = {
    "rapl": "RAPL package+DRAM counters",
    "nvml_energy": "NVML energy counter",
    "nvml_power_samples": "NVML power samples integrated over time",
}


def _energy(f: Finding, e: dict) -> str:
    idle = f", idle {fmt.sig(e['idle_watts'])} W" if fmt.is_num(e.get("idle_watts")) else ""
    source = ENERGY_SOURCES.get(str(e["energy_source"]), str(e["energy_source"]))
    igpu = f", which include {e['igpu']}'s draw" if e.get("igpu") else ""  # an iGPU shares the CPU package
    return (
        f"{e['device']} in its fastest run ({f.label(f.runs[0])}): {fmt.sig(e['joules_per_step'])} J/step, "
        f"{fmt.count(e['tokens_per_joule'])} tokens/J at {fmt.sig(e['mean_watts'])} W mean{idle} ({source}{igpu})."
    )


def _energy_compare(f: Finding, e: dict) -> str:
    time_ratio = e["time_ratio"]
    speed = f"{fmt.ratio(time_ratio)} faster" if time_ratio >= 1 else f"{fmt.ratio(1 / time_ratio)} slower"
    verdict = "cheaper and faster." if time_ratio >= 1 else "cheaper but slower."
    (frugal, costly), (tpj_frugal, tpj_costly) = e["devices"], e["tokens_per_joule"]
    return (
        f"Per token, {frugal} uses {fmt.ratio(e['energy_ratio'])} less energy than {costly} "
        f"({fmt.count(tpj_frugal)} vs {fmt.count(tpj_costly)} tokens/J) and is {speed} in tokens/s: {verdict} "
        "Each counter covers its own device only (a GPU's excludes the host CPU)."
    )


def _energy_unavailable(f: Finding, e: dict) -> str:
    which = f" in {e['runs']} of its {e['of_runs']} runs" if e["runs"] < e["of_runs"] else ""
    reasons = e["reasons"]
    more = len(reasons) - 1
    others = f" (and {more} other reason{'s' if more > 1 else ''} in the details)" if more else ""
    return (
        f"No energy figures for {e['device']}{which}: {reasons[0]}{others}. devicebench never estimates energy "
        "from a TDP."
    )


def _continued(f: Finding, e: dict) -> str:
    """A line of the report's "Continued runs" section (reports.continuation), not a finding: where the run
    started, how val loss moved, whether it reproduces the uninterrupted run."""
    start_iter = e["start_iter"]
    if e.get("parent"):
        start = f"{e['parent_text']} ({e['start_device']})"
    else:
        start = f"the nanoGPT checkpoint {e['parent_text']}" if e["kind"] == "nanogpt" else e["parent_text"]
    head = f"{f.label(e['key'])} continued {start} from iter {start_iter} on {e['device']}"
    words = [head]
    end_val, start_val, end_iter = e.get("end_val"), e.get("start_val"), e.get("end_iter")
    if end_val is not None and start_val is not None and end_iter is not None:
        best = (
            f"; best {e['best_val']:.4f} at iter {e['best_iter']}"
            if e.get("best_iter") is not None and e.get("best_val") is not None and e["best_iter"] != end_iter
            else ""
        )
        words[0] += (
            f": val loss {start_val:.4f} at iter {start_iter} -> {end_val:.4f} at iter {end_iter} "
            f"({end_val - start_val:+.4f} in {end_iter - start_iter} more steps{best})"
        )
        if e.get("overfit"):
            words.append(
                f"Val loss rose {end_val - e['best_val']:.4f} above its best in the extra steps: more steps overfit here"
            )
    ref = e.get("reference")
    if ref is None:
        words.append("No uninterrupted run of the same recipe is in these results to compare with")
    elif e.get("max_abs_diff") is None:
        words.append(
            f"{f.label(ref)} is the same recipe uninterrupted, but no eval iteration after iter {start_iter} is shared"
        )
    else:
        n = e["shared_evals"]
        diff = (
            f"identical val loss at all {n} shared eval(s) after iter {start_iter}"
            if e["max_abs_diff"] == 0
            else f"max |val diff| {e['max_abs_diff']:.4f} over {n} shared eval(s) (worst at iter {e['at_iter']})"
        )
        verdict = "reproduces" if e["reproduces"] else "does not reproduce"
        words.append(
            f"It {verdict} the uninterrupted {f.label(ref)}: {diff}, tolerance {e['tolerance']} "
            "(the loss noise allowed between devices)"
        )
    return ". ".join(words) + "."


UNCAPPED = {"continued"}  # a section's line, not a finding: its comparison needs every figure it names


TEMPLATES: dict[str, Callable[[Finding, dict], str]] = {
    "speedup": _speedup, "impossible_mfu": _impossible_mfu, "config_mismatch": _config_mismatch,
    "loss_agree": _loss_agree, "loss_disagree": _loss_disagree, "assumed_config": _assumed_config,
    "overfitting": _overfitting, "eval_in_timer": _eval_in_timer, "overhead_bound": _overhead_bound,
    "compute_bound": _compute_bound, "batch_scaling": _batch_scaling, "mfu_vs_a100": _mfu_vs_a100,
    "peak_unknown": _peak_unknown, "cpu_threads": _cpu_threads, "cpu_dtype": _cpu_dtype,
    "warmup_cost": _warmup_cost, "step_breakdown": _step_breakdown, "noisy_timing": _noisy_timing,
    "roofline": _roofline, "scaling": _scaling, "shared_cores": _shared_cores, "scaling_limit": _scaling_limit,
    "ranks_differ": _ranks_differ, "time_to_loss": _time_to_loss, "tip": _tip, "best_config": _best_config,
    "energy": _energy, "energy_compare": _energy_compare, "energy_unavailable": _energy_unavailable,
    "continued": _continued, "headline": lambda f, e: headline(f),
}  # fmt: skip


def sentence(f: Finding) -> str:
    """The finding in words: its kind's template over its evidence, prefixed with its results directory where
    merged directories would otherwise read the same."""
    text = TEMPLATES[f.kind](f, f.evidence)
    return f"{f.where}: {text}" if f.where else text


def impossible_mfu_note(run: str, mfu: float, peak_flops_per_s: Any, peak_source: Any) -> str:
    """Under the summary table, for a run whose MFU cell says "impossible"."""
    return (
        f"{run}: MFU impossible ({fmt.pct(mfu)} of a {fmt.flops(peak_flops_per_s)} peak, source {peak_source}): no "
        "device runs above its peak, so the peak (another chip's, or another dtype's) or the run's config (FLOPs "
        "per iteration) is wrong; not shown as a result."
    )


def busy_runs(n: int, total: int) -> str:
    """Under the headline: how many runs ran on a busy machine (their noisy_timing findings say how busy)."""
    return (
        f"{n} of {total} run{'s' if total != 1 else ''} ran while the machine was busy with other work: "
        f"{'its' if n == 1 else 'their'} times are slower and noisier than the device can do (see noisy_timing below)."
    )


# --- the evidence table -------------------------------------------------------------------------------------


def _value(name: str, v: Any, path: str = "") -> str:
    if isinstance(v, bool) or v is None:
        return "-" if v is None else ("yes" if v else "no")
    if isinstance(v, (int, float)) and fmt.is_num(v):
        n = name.lower()
        if path.endswith("compute_roof.value"):
            return fmt.flops(v)
        if path.endswith("memory_roof.value"):
            return fmt.bytes_per_s(v)
        if n in ("peak", "peak_flops"):
            return fmt.flops(v)
        if n.endswith("flops_per_s") or n.endswith("flops") and "per" not in n:
            return fmt.flops(v) if n.endswith("per_s") else fmt.count(v)
        if n.endswith("bytes_per_s"):
            return fmt.bytes_per_s(v)
        if (
            "share" in path
            or "fraction" in path
            or "of_roof" in n
            or n in ("mfu", "efficiency", "mfu_small", "mfu_large", "mfu_vs_a100")
        ):
            return fmt.pct(v)
        if "ratio" in n or n == "speedup":
            return fmt.ratio(v)
        if "loss" in n:
            return fmt.loss(v)
        if float(v).is_integer() and abs(v) < 1e15:
            iteration = n in ("iter", "iters") or (n.endswith("_iter") and not n.endswith("per_iter"))
            return str(int(v)) if iteration or abs(v) < 1e4 else fmt.count(v)
        return fmt.sig(v)
    if isinstance(v, (list, tuple)):
        if all(not isinstance(x, (dict, list)) for x in v):
            return ", ".join(_value(name, x, path) for x in v)
        return f"{len(v)} items"
    return str(v)


def details(f: Finding, limit: int = 80) -> list[tuple[str, str]]:
    """The evidence as (name, value) rows, nested dicts flattened to dotted names, figures formatted by what
    their name says they are; at most `limit` rows (the JSON has all of them). A roofline's categories are
    a table of their own (roofline_rows)."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                walk(f"{prefix}[{i}]", x)
        else:
            rows.append((prefix, _value(prefix.rsplit(".", 1)[-1], v, prefix.lower())))

    walk("", {k: v for k, v in f.evidence.items() if not (f.kind == "roofline" and k == "categories")})
    if len(rows) > limit:
        rows = rows[: limit - 1] + [("...", f"{len(rows) - limit + 1} more rows in --format json")]
    return [(k, f.label(v) if k.endswith(("key", "run", "reference", "baseline")) else v) for k, v in rows]


ROOFLINE_COLUMNS = ["category", "share of step", "FLOP/byte", "achieved", "% of its roof", "bound", "lever"]


def roofline_rows(f: Finding) -> list[tuple[str, ...]]:
    """A roofline finding's categories as table rows (ROOFLINE_COLUMNS): the HTML page's roofline table and
    the terminal's `--details` both print these."""
    rows = []
    for cat, c in (f.evidence.get("categories") or {}).items():
        if c.get("flops_per_s"):
            achieved = fmt.flops(c["flops_per_s"])
        else:
            achieved = fmt.bytes_per_s(c["bytes_per_s"]) if c.get("bytes_per_s") else "-"
        rows.append((_cat(cat), fmt.pct(c.get("share")), fmt.sig(c.get("intensity"), 2), achieved,
                     fmt.pct(c.get("of_roof")), str(c.get("bound") or "-"), lever(c["lever"]) if c.get("lever") else "-"))  # fmt: skip
    return rows


# --- the headline -------------------------------------------------------------------------------------------


def headline(f: Finding) -> str:
    """The answer first (kind "headline", from reports.diagnosis.headline)."""
    e = f.evidence
    if e["case"] == "none":
        if not e.get("runs"):
            return (
                "No run could be read: see the warnings."
                if e.get("warnings")
                else "No runs here: nothing to report."
            )
        if e.get("finished"):
            n = e["finished"]
            return f"{n} run{'s' if n != 1 else ''} finished, but none has step times that can be used: see the warnings."
        return "No run finished: see the runs that did not finish."
    if e["case"] == "compare":
        if e.get("same_model"):
            text = f"{e['fast_device']} is {fmt.ratio(e['speedup'])} faster than {e['slow_device']}: "
        elif not fmt.is_num(e.get("token_time_ratio")):
            text = f"{e['fast_device']} does {fmt.ratio(e['speedup'])} the FLOP/s of {e['slow_device']} (another model): "
        else:
            text = (
                f"{e['fast_device']} is {fmt.ratio(e['token_time_ratio'])} faster per token than "
                f"{e['slow_device']}: {fmt.ratio(e['speedup'])} the FLOP/s = "
            )
        if e.get("peak_ratio") and e.get("mfu_ratio"):
            text += (
                f"{fmt.ratio(e['peak_ratio'])} the peak x {fmt.ratio(e['mfu_ratio'])} the utilisation "
                f"({fmt.pct(e['mfu'][0])} vs {fmt.pct(e['mfu'][1])})"
            )
        else:
            text += "peak x utilisation, not split (a peak unknown or an MFU impossible)"
        if e.get("recipe_differs"):
            text += f"; the recipes differ in {fmt.names(e['recipe_differs'], 2)}"
        return text + "."
    text = f"{e['device']}: {fmt.count(e['tokens_per_s'])} tokens/s"
    if e.get("impossible_mfu") is not None:
        text += f"; its MFU is impossible ({fmt.pct(e['impossible_mfu'])} of its peak: the peak or the config is wrong)"
    elif e.get("mfu") is not None:
        text += f" at {fmt.pct(e['mfu'])} of its own peak"
    else:
        text += " (its own peak is unknown)"
    if e.get("where"):
        text += f"; {fmt.pct(e['where_share'])} of its step is {_cat(e['where'])}"
    if e.get("lever"):
        text += f". The lever worth pulling: {lever(e['lever'])}"
    return text + "."
