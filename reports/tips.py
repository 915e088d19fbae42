"""The tips table of a `bench tune`: each common tip, the claim as usually stated, the effect measured on
this device with its interval, the verdict, and why in one line with the evidence.

Numbers come from the results (each variant's run.json "tune" block: its tokens/s samples and the
default's, taken alternately; the time-to-loss runs' curves; the default's profile and evals); the
verdicts from bench.tune.verdict (the same functions `bench tune` chose the best configuration with);
the words are made here. `tip_findings` and `best_config_findings` are rules of reports.diagnosis.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.metrics import BUSY_OTHER_CORES
from bench.tune.plan import ANSWERED_TIPS, BEST, BEST_TO_LOSS, DEFAULT, TIPS
from bench.tune.verdict import (
    FAILED,
    HARMFUL,
    INCONCLUSIVE,
    MIN_EFFECT,
    NO_EFFECT,
    NOT_AVAILABLE,
    SPOILED_BY,
    STOP_BUDGET,
    THROUGHPUT,
    TIME_TO_LOSS,
    WORTH_IT,
    Candidate,
    Effect,
    choose_best,
    throughput_effect,
)
from hwinfo.dtypes import CPU_NATIVE_FEATURES
from reports import fmt
from reports.finding import Finding
from reports.load import Results
from reports.tables import one_line
from reports.time_to_loss import ToLossSet, to_loss_sets

# (what the tip says to do, the claim as it is usually stated)
CLAIMS: dict[str, tuple[str, str]] = {
    "compile": ("torch.compile (--compile=True)", "+20-30% speed"),
    "max_autotune": ("compile mode max-autotune", "autotuned kernels: faster than plain compile"),
    "max_autotune_no_cudagraphs": ("compile mode max-autotune-no-cudagraphs",
                                   "autotuned kernels without CUDA graphs' memory and recompiles"),
    "cuda_graphs": ("CUDA graphs (compile mode reduce-overhead)", "removes launch overhead: several x at small batch"),
    "threads": ("threads = physical cores", "use every core: torch.set_num_threads / OMP_NUM_THREADS"),
    "p_cores": ("pin to the P-cores (taskset)", "E-cores slow the whole step down on a hybrid CPU"),
    "omp_affinity": ("OpenMP affinity (OMP_PROC_BIND=close, OMP_PLACES=cores)",
                     "PyTorch's CPU tuning guide: threads that stay on their core keep their caches warm"),
    "kmp_affinity": ("KMP_AFFINITY=granularity=fine,compact,1,0 (Intel OpenMP)",
                     "Intel's CPU tuning guide: compact thread affinity, KMP_BLOCKTIME=1"),
    "numactl": ("numactl --cpunodebind=0 --membind=0",
                "PyTorch's CPU tuning guide: keep threads and memory on one NUMA node"),
    "allocator": ("jemalloc / tcmalloc (LD_PRELOAD)",
                  "PyTorch's CPU tuning guide: a faster allocator reuses memory better than glibc malloc"),
    "bf16": ("bf16 autocast", "mixed precision: up to 2x, half the memory"),
    "fp16": ("fp16 autocast", "enable FP16 (fall back to bfloat16) for ~2x"),
    "tf32": ("TF32 matmuls", "up to 8x faster fp32 matmuls on Ampere and later"),
    "fused_adamw": ("fused AdamW", "one fused kernel: faster than the default foreach AdamW"),
    "batch_x2": ("batch x2", "batch 24-48 if you have the RAM: trains faster"),
    "batch_x4": ("batch x4", "batch 24-48 if you have the RAM: trains faster"),
    "num_workers": ("num_workers=4", "parallel data loading speeds training up"),
    "eval_iters": ("--eval_iters=10", "fewer eval batches save time"),
}  # fmt: skip
NATIVE_CPU = CPU_NATIVE_FEATURES
VERDICT_NOTE = (
    f"Verdicts (the bar: {MIN_EFFECT:.0%}): worth it / harmful: at least {MIN_EFFECT:.0%} faster / slower, the "
    f"interval wholly above / below 1; small gain / small loss: the interval wholly above / below 1, the change "
    f"under {MIN_EFFECT:.0%}; no effect: the interval within +-{MIN_EFFECT:.0%}, holding 1; else inconclusive. "
    f"Throughput pairs of blocks repeat until the interval settles the verdict or --max-seconds runs out; a pair "
    f"whose two blocks are both more than {SPOILED_BY:g}x from their side's neighbours was spoiled by a burst of "
    "load and is dropped."
)
BUSY_CORES = BUSY_OTHER_CORES  # other processes using this many cores' worth of CPU: the machine was shared
COLUMNS = ["device", "tip", "variant", "claim", "measured here", "verdict", "why"]


@dataclass
class TipRow:
    """One measured (or answered, or unavailable) variant of a tip on one device."""

    host: str
    device: str
    tip: str
    variant: str
    measure: str  # throughput, time_to_loss, or "answer" (from the default's files)
    effect: Effect | None  # in the tip's direction: > 1 means following the tip is faster
    verdict: str
    why: str
    runs: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    applies_tip: bool = True

    @property
    def title(self) -> str:
        return CLAIMS.get(self.tip, (self.tip, ""))[0]

    @property
    def claim(self) -> str:
        return CLAIMS.get(self.tip, ("", "-"))[1]

    def effect_text(self) -> str:
        return effect_text(self.effect, self.measure, self.evidence)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["effect"] = self.effect.to_dict() if self.effect else None
        d.update(title=self.title, claim=self.claim, effect_text=self.effect_text())
        return d


def effect_text(e: Effect | None, measure: str, evidence: dict | None = None) -> str:
    """ "1.02x tokens/s [0.99x-1.05x]", "0.81x speed to the target loss [0.81x-0.86x]", "< 0.67x ... (target not
    reached)"; an answered tip's own words."""
    if measure == "answer":
        return (evidence or {}).get("text", "-")
    if e is None:
        return "-"
    what = "tokens/s" if measure == THROUGHPUT else "speed to the target loss"
    if e.ratio is None:
        return f"< {_r3(e.high)} {what} (target not reached)" if fmt.is_num(e.high) else "-"
    pairs = ""
    if measure == THROUGHPUT and e.n_variant:
        bits = [f"{e.n_variant + e.n_spoiled} pairs"]
        if e.n_spoiled:
            bits.append(f"{e.n_spoiled} spoiled by load dropped")
        stopped = "; --max-seconds ran out" if (evidence or {}).get("stopped") == STOP_BUDGET else ""
        pairs = f" ({', '.join(bits)}{stopped})"
    if e.low is None:
        return f"{_r3(e.ratio)} {what} (too few samples for an interval){pairs}"
    high = _r3(e.high) if fmt.is_num(e.high) else "?"
    return f"{_r3(e.ratio)} {what} [{_r3(e.low)}-{high}]{pairs}"


def _r3(x: float) -> str:
    return f"{x:.3g}x"


# ---- reading a tune back ---------------------------------------------------------------------------


def _tune(results: Results, key: str) -> dict:
    t = (results.run_meta.get(key) or {}).get("tune")
    return t if isinstance(t, dict) else {}


def tune_groups(results: Results) -> dict[tuple[str, str], list[str]]:
    """{(results_dir, device): run keys} of every tuned device, in the order the runs are listed."""
    groups: dict[tuple[str, str], list[str]] = {}
    runs = results.runs
    for key in runs.index:  # the two cells of a tuned run only: asked three times a report, over every run
        if _tune(results, key):
            groups.setdefault((str(runs.at[key, "results_dir"]), str(runs.at[key, "device"])), []).append(key)
    return groups


@dataclass
class DeviceTune:
    """One tuned device: its runs by role, its time-to-loss set, its default's profile and hardware."""

    results: Results
    keys: list[str]
    default: str | None = None
    to_loss: ToLossSet | None = None

    def __post_init__(self) -> None:
        self.default = next((k for k in self.keys if _tune(self.results, k).get("measure") == DEFAULT), None)

    @property
    def profile(self) -> dict | None:
        return self.results.profiles.get(self.default) if self.default else None

    def fraction(self, category: str) -> float | None:
        prof = self.profile
        v = ((prof or {}).get("mean") or {}).get("fraction", {}).get(category)
        return float(v) if fmt.is_num(v) else None

    def by_tip(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k in self.keys:
            tip = _tune(self.results, k).get("tip")
            if tip and tip in TIPS:
                out.setdefault(tip, []).append(k)
        return out

    def role(self, name: str) -> str | None:
        return next((k for k in self.keys if _tune(self.results, k).get("tip") == name), None)


def device_tunes(results: Results) -> list[DeviceTune]:
    sets = {s.reference: s for s in to_loss_sets(results) if s.source == "tune"}
    out = []
    for keys in tune_groups(results).values():
        d = DeviceTune(results, keys)
        d.to_loss = sets.get(d.default) if d.default else None
        out.append(d)
    return out


def throughput_of(results: Results, key: str) -> Effect | None:
    """A throughput variant's tokens/s against the default's, from its samples (the variant's direction)."""
    t = _tune(results, key)
    v, d = t.get("samples_tokens_per_s") or [], t.get("default_samples_tokens_per_s") or []
    if not v or not d:
        return None
    try:
        return throughput_effect(v, d)
    except ValueError:
        return None


# ---- the rows ------------------------------------------------------------------------------------


def tip_rows(results: Results) -> list[TipRow]:
    """Every tip of every tuned device, in the order of bench.tune.plan.TIPS. A row that cannot be made (a
    damaged run.json) is left out with one line in results.warnings naming its directory."""
    rows: list[TipRow] = []
    for d in device_tunes(results):
        tips = d.by_tip()
        for tip in TIPS:
            if tip in ANSWERED_TIPS:
                if d.default is not None and tip in _measured_tips(results, d):
                    row = _guarded(results, d.default, f"the {tip} tip", lambda d=d, tip=tip: _answer(d, tip))
                    if row is not None:
                        rows.append(row)
                continue
            for key in tips.get(tip, []):
                row = _guarded(
                    results, key, f"the {tip} tip", lambda d=d, tip=tip, key=key: _variant_row(d, tip, key)
                )
                if row is not None:
                    rows.append(row)
    return rows


def _guarded(results: Results, key: str, what: str, make: Any) -> Any:
    """make(), or None with one warning (once) naming the run's directory when it raises: one row or finding
    that cannot be computed never takes the whole report with it."""
    try:
        return make()
    except Exception as e:  # noqa: BLE001 - left out and said, never a failed report
        where = key
        with_dir = results.runs.loc[key, "results_dir"] if key in results.runs.index else None
        if with_dir is not None:
            where = f"{with_dir}/runs/{results.runs.loc[key, 'run_id']}"
        line = f"{what} of {where} left out: it could not be computed ({type(e).__name__}: {e})"
        if line not in results.warnings:
            results.warnings.append(line)
        return None


def _measured_tips(results: Results, d: DeviceTune) -> list[str]:
    path = results.runs.loc[d.keys[0], "results_dir"]
    for s in results.sweeps:
        if s["_path"] == path:
            return list((s.get("tune") or {}).get("tips") or TIPS)
    return list(TIPS)


def _variant_row(d: DeviceTune, tip: str, key: str) -> TipRow:
    results = d.results
    r = results.runs.loc[key]
    t = _tune(results, key)
    applies = bool(t.get("applies_tip", True))
    variant = ", ".join(t.get("changed") or []) or str(t.get("variant") or "")
    base = {"host": str(r["host"]), "device": results.device_label(key), "tip": tip, "variant": variant,
            "measure": str(t.get("measure") or THROUGHPUT), "runs": [key], "applies_tip": applies}  # fmt: skip
    status = r["status"]
    if status == "skipped":
        return TipRow(
            **base, effect=None, verdict=NOT_AVAILABLE, why=str(r.get("error") or "not available here")
        )
    if status != "ok":
        why = str(r.get("error") or status)
        if status in ("interrupted", "running"):
            why += f"; complete it with `bench tune --out {r['results_dir']} --resume`"
        return TipRow(**base, effect=None, verdict=FAILED if status == "failed" else INCONCLUSIVE, why=why)
    if base["measure"] == TIME_TO_LOSS:
        e = d.to_loss.effect(key) if d.to_loss else None
        if d.default:
            base["runs"] = [key, d.default]
    else:
        e = throughput_of(results, key)
    if e is not None and not applies:
        e = e.inverted()
    verdict = e.verdict if e is not None else INCONCLUSIVE
    row = TipRow(**base, effect=e, verdict=verdict, why="")
    row.evidence = {
        "effect": e.to_dict() if e else None,
        "changed": t.get("changed"),
        "knobs": t.get("knobs"),
        "bar": MIN_EFFECT,
    }
    if base["measure"] == THROUGHPUT:
        row.evidence.update({k: t.get(k) for k in ("pairs", "stopped", "max_seconds", "spoiled_pairs")})
    row.why = _why(d, row, key)
    return row


def _load_text(results: Results, key: str) -> tuple[str, float | None]:
    load = ((results.run_meta.get(key) or {}).get("summary") or {}).get("host_load") or {}
    other, cpus = load.get("other_processes_cpu_cores"), load.get("logical_cpus")
    if not fmt.is_num(other):
        return "", None
    return f"other processes used {other:.2f} of {cpus or '?'} CPUs while it was measured", float(other)


def _why(d: DeviceTune, row: TipRow, key: str) -> str:
    """One line with the evidence: where the default's step goes (its profile), the hardware, the load."""
    results, tip = d.results, row.tip
    r = results.runs.loc[key]
    applies_note = "" if row.applies_tip else "already in the recipe; measured by turning it off. "
    mm, att, ew, opt = (d.fraction(c) for c in ("matmul", "attention", "elementwise_norm", "optimizer"))
    prof = d.profile or {}
    peak_frac = prof.get("matmul_fraction_of_peak")
    load_text, other = _load_text(results, key)
    if tip in ("compile", "max_autotune", "max_autotune_no_cudagraphs", "cuda_graphs"):
        first = r.get("first_step_ms")
        compile_cost = (
            f"; the first step (compiling) took {fmt.sig(float(first) / 1e3)} s" if fmt.is_num(first) else ""
        )
        idle = (prof.get("mean") or {}).get("device_idle_fraction")
        if tip == "cuda_graphs" and fmt.is_num(idle):
            return (f"{applies_note}the device idles {fmt.pct(idle)} of the default's step waiting for launches; CUDA "
                    f"graphs replay them in one{compile_cost}")  # fmt: skip
        if mm is None:
            return f"{applies_note}no profile of the default says where its step goes{compile_cost}"
        at = (
            f", the matmuls at {fmt.pct(peak_frac)} of peak"
            if fmt.is_num(peak_frac) and peak_frac > 0
            else ""
        )
        lib = fmt.pct(mm + (att or 0.0))
        return (f"{applies_note}{lib} of the default's step is matmul and attention{at}, which stay library kernels; "
                f"compile fuses only the elementwise/norm {fmt.pct(ew)} (and trims Python overhead){compile_cost}")  # fmt: skip
    if tip in ("threads", "p_cores"):
        knobs = _tune(results, key).get("knobs") or {}
        dk = _tune(results, key).get("default_knobs") or {}
        threads = knobs.get("threads")
        default_threads = (results.runs.loc[d.default, "threads"] if d.default else None) or dk.get("threads")
        against = (f"the default's {_threads(default_threads)}" if fmt.is_num(default_threads)
                   else "the default (PyTorch's own thread count)")  # fmt: skip
        text = f"{_threads(threads)} against {against}"
        if tip == "p_cores":
            text = f"{_threads(threads)} pinned to the P-cores (CPUs {_cpus(knobs.get('cpus'))})"
        if load_text:
            text += f"; {load_text}"
        if other is not None and other > BUSY_CORES and row.effect is not None and fmt.is_num(threads) \
                and fmt.is_num(default_threads) and row.effect.ratio is not None:  # fmt: skip
            fewer_faster = (float(threads) < float(default_threads)) == (row.effect.ratio > 1)
            if fewer_faster:
                text += (
                    ": each parallel op waits for its slowest thread, and a shared core deschedules threads"
                )
        return applies_note + text
    if tip in ("omp_affinity", "kmp_affinity", "numactl", "allocator"):
        proc = _tune(results, key).get("process") or {}
        env = proc.get("env") or {}
        what = (
            " ".join([*(proc.get("launcher") or []), *(f"{k}={v}" for k, v in env.items())])
            or "its environment"
        )
        text = f"{applies_note}{what}, in a process of its own against the default in another (only that differs)"
        if tip == "allocator" and proc.get("preloaded"):
            text += f"; the library mapped: {proc['preloaded']}"
        if load_text:
            text += f"; {load_text}"
            if tip in ("omp_affinity", "kmp_affinity") and other is not None and other > BUSY_CORES:
                text += ": a thread bound to a core that a neighbour holds waits for it instead of moving"
        return text
    if tip in ("bf16", "fp16", "tf32"):
        if r.get("device_type") == "cpu" and tip in NATIVE_CPU:
            feats = {str(f).lower() for f in (results.hwinfo_for(key).get("cpu") or {}).get("features") or []}
            need = NATIVE_CPU[tip]
            have = [f for f in need if f in feats]
            if not feats:
                return f"{applies_note}the CPU's features are unknown; {tip} is native only with {' or '.join(need)}"
            if not have:
                return (f"{applies_note}this CPU lacks {' and '.join(need)}: PyTorch converts to fp32 and back "
                        f"around each op")  # fmt: skip
            return f"{applies_note}this CPU has {', '.join(have)}" + (
                f"; matmul is {fmt.pct(mm)} of the step" if mm else ""
            )
        if mm is not None:
            return f"{applies_note}tensor cores speed up the matmuls, {fmt.pct(mm + (att or 0))} of the default's step with attention"
        return f"{applies_note}no profile of the default says how much of its step is matmul"
    if tip == "fused_adamw":
        if opt is not None:
            return (f"{applies_note}the optimizer (with gradient clipping) is {fmt.pct(opt)} of the default's step: "
                    "the most that fusing it can save")  # fmt: skip
        return f"{applies_note}no profile of the default says how much of its step the optimizer takes"
    if tip in ("batch_x2", "batch_x4"):
        return _batch_why(d, key)
    return ""


def _threads(x: Any) -> str:
    """'1 thread', '4 threads', or '? threads' when not a number."""
    if not fmt.is_num(x):
        return "? threads"
    return f"{int(x)} thread{'' if int(x) == 1 else 's'}"


def _cpus(cpus: Any) -> str:
    return ",".join(map(str, cpus)) if isinstance(cpus, list) else "?"


def _batch_why(d: DeviceTune, key: str) -> str:
    results, s = d.results, d.to_loss
    if s is None or d.default is None:
        return "no finished default run to set the target"
    run, ref = s.run(key), s.run(d.default)
    if run is None or ref is None:
        return "no val evals to time it by"
    r, rd = results.runs.loc[key], results.runs.loc[d.default]
    tps = ""
    if fmt.is_num(r.get("tokens_per_s")) and fmt.is_num(rd.get("tokens_per_s")):
        tps = (f"; {fmt.count(r['tokens_per_s'])} tokens/s against {fmt.count(rd['tokens_per_s'])} "
               f"({fmt.ratio(r['tokens_per_s'] / rd['tokens_per_s'])})")  # fmt: skip
    if run.reached:
        tokens = (f" ({_short(run.tokens)} tokens against {_short(ref.tokens)})"
                  if run.tokens and ref.tokens else "")  # fmt: skip
        return (f"val {fmt.loss(s.target)} at iter {run.reached_iter}{tokens} in {fmt.sig(run.time_s)} s against "
                f"{fmt.sig(ref.time_s)} s; known at evals only, so it was crossed after {fmt.sig(run.prev_eval_s)} s "
                f"(the default's after {fmt.sig(ref.prev_eval_s)} s){tps}")  # fmt: skip
    at = f", its last eval, at {fmt.sig(run.last_eval_s)} s" if fmt.is_num(run.last_eval_s) else ""
    return (f"not at val {fmt.loss(s.target)} within {fmt.sig(run.end_s)} s (the default took {fmt.sig(ref.time_s)} s): "
            f"val {fmt.loss(run.last_val)} at iter {run.last_iter}{at}{tps}")  # fmt: skip


def _short(x: float | None) -> str:
    if not fmt.is_num(x):
        return "-"
    x = float(x)
    return f"{fmt.sig(x / 1e6)}M" if x >= 1e6 else f"{fmt.sig(x / 1e3)}k"


def _answer(d: DeviceTune, tip: str) -> TipRow:
    """num_workers and eval_iters: answered from the default's own files, with no run of their own."""
    results, key = d.results, d.default
    r = results.runs.loc[key]
    base = {"host": str(r["host"]), "device": results.device_label(key), "tip": tip, "variant": "",
            "measure": "answer", "effect": None, "runs": [key]}  # fmt: skip
    if tip == "num_workers":
        data = d.fraction("data")
        if data is None:
            return TipRow(**base, verdict=NO_EFFECT, why="nanoGPT has no DataLoader for num_workers to parallelise: "
                          "each batch is random slices of a tensor in memory (no profile measured the data share)",
                          evidence={"text": "nothing to parallelise", "data_fraction": None})  # fmt: skip
        verdict = NO_EFFECT if data < MIN_EFFECT else NOT_AVAILABLE
        why = (f"nanoGPT has no DataLoader for num_workers to parallelise: each batch is random slices of a tensor "
               f"in memory, {fmt.pct(data)} of the default's step (profile)")  # fmt: skip
        return TipRow(**base, verdict=verdict, why=why,
                      evidence={"text": f"data is {fmt.pct(data)} of the step", "data_fraction": data})  # fmt: skip
    # eval_iters: what --eval_iters=10 saves per eval, from the default's evals.csv
    if r["status"] != "ok":
        why = (
            f"the default's full run did not finish ({r['status']}): {r.get('error') or 'no reason recorded'}"
        )
        return TipRow(**base, verdict=INCONCLUSIVE, why=why, evidence={"text": "-"})
    e = results.evals_of(key)
    per_eval = e.groupby("iter")["ms"].sum(min_count=1).dropna()
    eval_iters = r.get("train.eval_iters")
    wall = d.to_loss.run(key).end_s if d.to_loss and d.to_loss.run(key) else None
    if per_eval.empty or not fmt.is_num(eval_iters) or not wall:
        return TipRow(
            **base, verdict=INCONCLUSIVE, why="the default's evals were not recorded", evidence={"text": "-"}
        )
    n = int(eval_iters)
    ms_per_eval = float(per_eval.median())
    if n <= 10:
        return TipRow(**base, verdict=NO_EFFECT, why=f"the recipe already evaluates on {n} batches per split",
                      evidence={"text": f"{fmt.ms(ms_per_eval)} ms per eval", "eval_iters": n})  # fmt: skip
    saved_ms = ms_per_eval * (1 - 10 / n)
    saved_share = saved_ms * len(per_eval) / (wall * 1e3)
    verdict = WORTH_IT if saved_share >= MIN_EFFECT else NO_EFFECT
    why = (f"an eval takes {fmt.ms(ms_per_eval)} ms at eval_iters {n} (train and val splits, median of "
           f"{len(per_eval)}); 10 saves ~{fmt.ms(saved_ms)} ms per eval (eval time scales with the batches), "
           f"{fmt.pct(saved_share)} of the run's {fmt.sig(wall)} s, and makes each val loss "
           f"{math.sqrt(n / 10):.2g}x noisier")  # fmt: skip
    evidence = {"text": f"saves {fmt.ms(saved_ms)} ms per eval, {fmt.pct(saved_share)} of the run",
                "ms_per_eval": ms_per_eval, "eval_iters": n, "evals": len(per_eval), "saved_ms_per_eval": saved_ms,
                "saved_fraction_of_run": saved_share, "run_s": wall}  # fmt: skip
    return TipRow(**base, verdict=verdict, why=why, evidence=evidence)


# ---- the best configuration -----------------------------------------------------------------------------


def best_config(d: DeviceTune) -> dict[str, Any]:
    """The fastest configuration measured on a device: its knobs, its tokens/s over the default (interval),
    and its time-to-loss gain (when measured)."""
    results = d.results
    singles = []
    for key in d.keys:
        t = _tune(results, key)
        if results.runs.loc[key, "status"] != "ok" or t.get("tip") in (DEFAULT, BEST, BEST_TO_LOSS):
            continue
        e = throughput_of(results, key) if t.get("measure") == THROUGHPUT else None
        if t.get("measure") == TIME_TO_LOSS and d.to_loss is not None:
            e = d.to_loss.effect(key)
        if e is not None:
            singles.append(Candidate(str(t.get("variant")), str(t.get("group")), t.get("knobs") or {}, e))
    chosen = choose_best([c for c in singles if c.group != "batch"])
    chosen_batch = choose_best([c for c in singles if c.group == "batch"])
    best_key = d.role(BEST)
    gain: Effect | None = None
    runs: list[str] = []
    if best_key is not None and results.runs.loc[best_key, "status"] == "ok":
        gain, runs = throughput_of(results, best_key), [best_key]
        changed = _tune(results, best_key).get("changed") or []
    elif len(chosen) == 1:
        (c,) = chosen.values()
        key = next(k for k in d.keys if _tune(results, k).get("variant") == c.name)
        gain, runs, changed = c.effect, [key], _tune(results, key).get("changed") or []
    else:
        changed = []
        for c in chosen.values():
            key = next(k for k in d.keys if _tune(results, k).get("variant") == c.name)
            changed += _tune(results, key).get("changed") or []
    ttl_key = d.role(BEST_TO_LOSS)
    ttl: Effect | None = None
    if ttl_key is not None and d.to_loss is not None and d.to_loss.run(ttl_key) is not None:
        ttl, runs = d.to_loss.effect(ttl_key), runs + [ttl_key]
        changed = _tune(results, ttl_key).get("changed") or changed
    elif chosen_batch and not chosen:
        (c,) = chosen_batch.values()
        ttl, changed = c.effect, _tune(results, _variant_key(d, c.name)).get("changed") or []
        runs.append(_variant_key(d, c.name))
    return {"changed": changed, "gain_over_default": gain, "time_to_loss_gain": ttl, "runs": runs,
            "best_single": max(singles, key=lambda c: c.effect.ratio or 0.0, default=None)}  # fmt: skip


def compile_payback(d: DeviceTune) -> dict | None:
    """Why a compiled best configuration, faster per step, reached the target later: its clock counts the
    compile (the first step), which the steps it saves repay only over a longer run. From the two runs timed to
    the target side by side (their first step and median ms/iter); None when the best is not compiled."""
    key = d.role(BEST_TO_LOSS)
    if key is None or d.default is None:
        return None
    runs = d.results.runs
    if runs.loc[key, "compile"] in (None, "off") or runs.loc[d.default, "compile"] not in (None, "off"):
        return None
    first, ms, base = (
        runs.loc[key, "first_step_ms"],
        runs.loc[key, "ms_median"],
        runs.loc[d.default, "ms_median"],
    )
    steps = runs.loc[d.default, "iters_done"]
    ref = d.to_loss.run(d.default) if d.to_loss is not None else None
    if fmt.is_num(first) and ref is not None and fmt.is_num(ref.time_s) and first / 1e3 >= ref.time_s:
        # the compile alone outlasted the default's whole time to the target (a small recipe, a loaded machine)
        return {"first_step_s": first / 1e3, "default_time_s": ref.time_s}
    if not all(fmt.is_num(x) and x > 0 for x in (first, ms, base, steps)):
        return None
    overhead_s = (first - ms) / 1e3
    saved_ms = base - ms
    out = {"first_step_s": first / 1e3, "ms_median": ms, "default_ms_median": base, "recipe_steps": int(steps),
           "break_even_steps": overhead_s * 1e3 / saved_ms if saved_ms > 0 else None}  # fmt: skip
    if out["break_even_steps"] is not None and out["break_even_steps"] <= steps:
        return None  # repaid within the recipe: the compile does not explain the slower time to the target
    return out


def _slower(e: Effect | None) -> bool:
    """Whether a time-to-loss effect says slower than the default: a ratio below 1, or (the target never reached)
    an upper bound below 1."""
    if e is None:
        return False
    if e.ratio is not None:
        return e.ratio < 1
    return e.high is not None and e.high < 1


def _variant_key(d: DeviceTune, name: str) -> str:
    return next(k for k in d.keys if _tune(d.results, k).get("variant") == name)


# ---- findings ---------------------------------------------------------------------------------------


def tip_findings(results: Results, ok: Any) -> list:
    """One `tip` finding per tip per tuned device: the claim, what was measured, the verdict, why (the words:
    reports.words)."""
    out = []
    rows = tip_rows(results)
    groups: dict[tuple[str, str, str], list[TipRow]] = {}
    for row in rows:
        groups.setdefault((row.host, row.device, row.tip), []).append(row)
    for (_, device, tip), items in groups.items():
        worst = [r.verdict for r in items]
        severity = "warning" if HARMFUL in worst or FAILED in worst else "info"
        evidence = {"tip": tip, "device": device, "rows": [r.to_dict() for r in items]}
        out.append(
            Finding("tip", severity, evidence=evidence, runs=sorted({k for r in items for k in r.runs}))
        )
    return out


def best_config_findings(results: Results, ok: Any) -> list:
    """One `best_config` finding per tuned device: the fastest configuration, its tokens/s over the default
    with the interval, and its time-to-loss gain."""

    out = []
    for d in device_tunes(results):
        if d.default is None and not any(_tune(results, k).get("measure") == THROUGHPUT for k in d.keys):
            continue
        f = _guarded(results, d.default or d.keys[0], "the best configuration",
                     lambda d=d: _best_config_finding(results, d))  # fmt: skip
        if f is not None:
            out.append(f)
    return out


def _best_config_finding(results: Results, d: DeviceTune) -> Finding:
    b = best_config(d)
    gain, ttl = b["gain_over_default"], b["time_to_loss_gain"]
    single = b["best_single"]
    payback = compile_payback(d) if gain is not None and _slower(ttl) else None
    evidence = {
        "device": results.device_label(d.keys[0]),
        "changed": b["changed"],
        "none_better": gain is None and ttl is None,
        "gain_measured": gain is not None,
        "gain_over_default": gain.to_dict() if gain else {"ratio": 1.0, "low": None, "high": None},
        "time_to_loss_gain": ttl.to_dict() if ttl else None,
        "best_single": {"name": single.name, "effect": single.effect.to_dict(),
                        "measure": THROUGHPUT if single.group != "batch" else TIME_TO_LOSS}
        if single is not None else None,
    }  # fmt: skip
    if payback is not None:
        evidence["compile_payback"] = payback
    return Finding(
        "best_config", "info", evidence=evidence, runs=b["runs"] or ([d.default] if d.default else [])
    )


# ---- rendering ---------------------------------------------------------------------------------------


def tips_table(results: Results, rows: list[TipRow] | None = None) -> pd.DataFrame:
    rows = tip_rows(results) if rows is None else rows
    data = [[r.device, r.title, r.variant or "-", r.claim, r.effect_text(), r.verdict, r.why] for r in rows]
    return pd.DataFrame(data, columns=COLUMNS)


def render_tips(results: Results, form: str = "text") -> str:
    """The tips table and the best configuration per device, as text or markdown ("" without a tune)."""
    from reports.tables import md_table as _md_table
    from reports.tables import one_line
    from reports.tables import text_table as _text_table

    rows = tip_rows(results)
    if not rows:
        return ""
    table = tips_table(results, rows)
    out = [_md_table(table) if form == "md" else _text_table(table), "", VERDICT_NOTE, ""]
    for f in best_config_findings(results, None):
        out.append(f"- {one_line(f.sentence)}")
    return "\n".join(out) + "\n"


def print_after_tune(out: str | Path) -> int:
    """`bench tune`'s closing table (called by the command line above bench/ and reports/, so bench/ never
    imports reports/): the tips table of what was measured on stdout, warnings on stderr. 0 when it is made;
    1 with one line when it cannot be (the runs are recorded either way)."""
    import sys

    from reports.load import load_results

    try:
        results = load_results(Path(out))
        text = render_tips(results)
    except Exception as e:  # noqa: BLE001 - one line, and a failing exit: a tune whose table fails is not a success
        print(f"bench tune: error: the tips table of {out} could not be made ({type(e).__name__}: {one_line(str(e))}); "
              f"the runs are recorded there", file=sys.stderr)  # fmt: skip
        return 1
    for w in results.warnings[:5]:
        print(f"bench tune: warning: {one_line(w)}", file=sys.stderr)
    if len(results.warnings) > 5:
        print(
            f"bench tune: warning: ... and {len(results.warnings) - 5} more (bench report {out})",
            file=sys.stderr,
        )
    sys.stdout.write(text)
    return 0
