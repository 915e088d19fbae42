"""Scaling: what data-parallel runs (`bench run` under torchrun, or --nproc N) buy over one rank.

`scaling_findings(results, ok)` is a diagnosis rule (reports.diagnosis calls it). Kinds:
  scaling        tokens/s against world size per config series, with the weak-scaling efficiency
                 tokens/s(N) / (N x tokens/s(1)) when a 1-rank run at the per-rank batch is present (and the
                 same-global-batch ratio when a 1-rank run at the global batch is);
  shared_cores   ranks that share one CPU's cores: contention for the same hardware, never a speedup;
  scaling_limit  per data-parallel run: communication or compute (or a straggler) limits it, with figures;
  ranks_differ   the ranks ended with different weights (DDP should keep them identical).

It reads run.json as written (Results.run_meta): world_size, nnodes, nproc_per_node, backend, ranks, and the
summary's allreduce_ms_median, allreduce_share, allreduce_bytes_per_step, straggler_ratio, slowest_rank,
params_identical. A run without world_size (older directories, plain runs) is one rank. No torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reports import fmt
from reports.load import LOSS_NEUTRAL_TRAIN_KEYS

if TYPE_CHECKING:
    import pandas as pd

    from reports.finding import Finding
    from reports.load import Results

COMM_LIMITED_SHARE = 0.3  # a gradient all-reduce in flight this share of a step or more: communication limits
STRAGGLER_RATIO = 1.2  # one rank this much slower outside the all-reduce than the median rank
SHARED_DEVICE_TYPES = ("cpu", "mps")  # one per node, shared by the node's ranks


@dataclass
class _Run:
    key: str
    label: str
    meta: dict
    world_size: int
    nnodes: int
    nproc_per_node: int
    batch_size: int
    tokens_per_s: float | None
    ms_median: float | None
    summary: dict = field(default_factory=dict)

    @property
    def per_rank_batch(self) -> float:
        return self.batch_size / self.world_size

    @property
    def shares_device(self) -> bool:
        return self.meta.get("device_type") in SHARED_DEVICE_TYPES and self.nproc_per_node > 1

    def ranks_words(self) -> str:
        nodes = f" on {self.nnodes} nodes" if self.nnodes > 1 else ""
        return f"{self.world_size} rank{'s' if self.world_size != 1 else ''}{nodes}"


def _int(value: Any, default: int) -> int:
    return int(value) if fmt.is_num(value) and int(value) >= 1 else default


def _run(results: Results, key: str) -> _Run:
    meta = results.run_meta.get(key, {})
    s = meta.get("summary") or {}
    ws = _int(meta.get("world_size"), 1)
    return _Run(
        key=key, label=results.label(key), meta=meta, world_size=ws, nnodes=_int(meta.get("nnodes"), 1),
        nproc_per_node=_int(meta.get("nproc_per_node"), ws), batch_size=_int(meta.get("batch_size"), 1),
        tokens_per_s=float(s["tokens_per_s"]) if fmt.is_num(s.get("tokens_per_s")) else None,
        ms_median=float(s["ms_median"]) if fmt.is_num(s.get("ms_median")) else None, summary=s,
    )  # fmt: skip


def _series_key(r: _Run) -> str:
    """What must match for runs to be points of one scaling series: host, device, dtype, compile, model, recipe
    (not the batch, not the world size)."""
    train = {k: v for k, v in (r.meta.get("train") or {}).items() if k not in LOSS_NEUTRAL_TRAIN_KEYS}
    m = r.meta
    key = {"host": m.get("host"), "device_type": m.get("device_type"), "device_name": m.get("device_name"),
           "dtype": m.get("dtype"), "compile": m.get("compile"), "model": m.get("model"), "train": train,
           "block_size": m.get("block_size")}  # fmt: skip
    return json.dumps(key, sort_keys=True, default=str)


def _best(runs: list[_Run], world_size: int, batch: float) -> _Run | None:
    """The fastest run of a series at this world size and global batch (None if there is none)."""
    found = [r for r in runs if r.world_size == world_size and r.batch_size == batch and r.tokens_per_s]
    return max(found, key=lambda r: r.tokens_per_s) if found else None


def scaling_findings(results: Results, ok: pd.DataFrame) -> list[Finding]:
    """The scaling findings for the runs that finished (see the module docstring)."""
    runs = [_run(results, key) for key in ok.index]
    if not any(r.world_size > 1 for r in runs):
        return []
    series: dict[str, list[_Run]] = {}
    for r in runs:
        series.setdefault(_series_key(r), []).append(r)
    out: list[Finding] = []
    for members in series.values():
        ddp = sorted((r for r in members if r.world_size > 1), key=lambda r: (r.batch_size, r.world_size))
        if not ddp:
            continue
        out.append(_tokens_finding(results, members, ddp))
        shared = [r for r in ddp if r.shares_device]
        if shared:
            out.append(_shared_finding(results, shared))
        for r in ddp:
            out.append(_limit_finding(results, r, _best(members, 1, r.per_rank_batch)))
            if r.summary.get("params_identical") is False:
                out.append(_ranks_differ(r))
    return out


def _point(r: _Run) -> str:
    batch = (
        f"batch {r.batch_size}"
        if r.world_size == 1
        else f"global batch {r.batch_size}, {r.per_rank_batch:g} per rank"
    )
    return f"{r.ranks_words()} {fmt.count(r.tokens_per_s)} ({batch}, {r.label})"


def _tokens_finding(results: Results, members: list[_Run], ddp: list[_Run]) -> Finding:
    from reports.finding import Finding

    first = ddp[0]
    comp = first.meta.get("compile") or "off"
    what = f"{results.device_label(first.key, first.meta.get('dtype'))} {'eager' if comp == 'off' else 'compile ' + comp}"
    points = sorted((r for r in members if r.tokens_per_s), key=lambda r: (r.world_size, r.batch_size))
    evidence: dict[str, Any] = {
        "points": [{"run": r.key, "world_size": r.world_size, "nnodes": r.nnodes, "batch_size": r.batch_size,
                    "per_rank_batch": r.per_rank_batch, "tokens_per_s": r.tokens_per_s} for r in points],
        "weak_scaling": [], "same_global_batch": [],
    }  # fmt: skip
    parts = [f"{what}: tokens/s against world size: " + "; ".join(_point(r) for r in points)]
    shared = any(r.shares_device for r in ddp)
    for r in ddp:
        weak = _best(members, 1, r.per_rank_batch)
        if weak is not None:
            eff = r.tokens_per_s / (r.world_size * weak.tokens_per_s)
            evidence["weak_scaling"].append({"run": r.key, "baseline": weak.key, "efficiency": eff})
            ideal = r.world_size * weak.tokens_per_s
            if shared:
                parts.append(
                    f"{r.label} reaches {fmt.pct(eff)} of {r.world_size} x the 1-rank run at batch "
                    f"{weak.batch_size} ({fmt.count(r.tokens_per_s)} vs {fmt.count(ideal)} tokens/s), but its ranks "
                    "share one CPU, so that ideal assumes hardware that is not there"
                )
            else:
                parts.append(
                    f"weak-scaling efficiency of {r.label}: {fmt.pct(eff)} (tokens/s({r.world_size}) / "
                    f"({r.world_size} x tokens/s(1) at batch {weak.batch_size}) = {fmt.count(r.tokens_per_s)} / "
                    f"{fmt.count(ideal)})"
                )
        same = _best(members, 1, r.batch_size)
        if same is not None:
            ratio = r.tokens_per_s / same.tokens_per_s
            evidence["same_global_batch"].append({"run": r.key, "baseline": same.key, "ratio": ratio})
            against = f"{fmt.count(r.tokens_per_s)} vs {fmt.count(same.tokens_per_s)} tokens/s"
            if shared:
                parts.append(
                    f"at the same global batch {r.batch_size}, {r.label} gets {fmt.ratio(ratio)} the tokens/s of one "
                    f"process on the same CPU ({against})"
                )
            else:
                parts.append(
                    f"at the same global batch {r.batch_size}, {r.label} is a {fmt.ratio(ratio)} speedup over one "
                    f"rank ({against}; ideal {r.world_size}x)"
                )
        if weak is None and same is None:
            parts.append(
                f"no 1-rank run of this config to compare {r.label} with: run it alone at batch "
                f"{r.per_rank_batch:g} (weak scaling) or {r.batch_size} into the same --out with --resume"
            )
    return Finding("scaling", "info", "; ".join(parts) + ".", evidence, [r.key for r in points])


def _cpu_info(results: Results, key: str) -> dict:
    return results.hwinfo_for(key).get("cpu") or {}


def _shared_finding(results: Results, shared: list[_Run]) -> Finding:
    from reports.finding import Finding

    r = max(shared, key=lambda r: r.nproc_per_node)
    cpu = _cpu_info(results, r.key)
    phys = cpu.get("physical_cores")
    threads = r.meta.get("threads")
    cores = (
        f"{phys} physical core{'s' if phys != 1 else ''}"
        if fmt.is_num(phys)
        else "an unknown number of cores"
    )
    per = f" x {int(threads)} thread{'s' if threads != 1 else ''}" if fmt.is_num(threads) else ""
    used = r.nproc_per_node * int(threads) if fmt.is_num(threads) else None
    sentence = (
        f"The {r.nproc_per_node} ranks per node of {fmt.names([x.label for x in shared])} share one CPU "
        f"({cores}; {r.nproc_per_node} ranks{per}): they split the same cores and add gradient all-reduces, so "
        "this measures contention, not a speedup; data-parallel training pays off across devices (GPUs, nodes)"
    )
    if used is not None and fmt.is_num(phys) and used < phys:
        sentence += f"; {int(phys) - used} physical core(s) were left idle"
    elif used is not None and fmt.is_num(phys) and used > phys:
        sentence += f"; {used} threads on {int(phys)} cores oversubscribe them"
    evidence = {"nproc_per_node": r.nproc_per_node, "threads_per_rank": threads, "physical_cores": phys}
    return Finding("shared_cores", "warning", sentence + ".", evidence, [x.key for x in shared])


def _limit_finding(results: Results, r: _Run, weak: _Run | None) -> Finding:
    """What limits one data-parallel run: communication (the all-reduce share of its step), a straggler, or
    compute (the time outside the all-reduce, against one rank at the same per-rank batch)."""
    from reports.finding import Finding

    s = r.summary
    ar, share = s.get("allreduce_ms_median"), s.get("allreduce_share")
    nbytes, straggler = s.get("allreduce_bytes_per_step"), s.get("straggler_ratio")
    evidence: dict[str, Any] = {
        "ms_median": r.ms_median, "allreduce_ms_median": ar, "allreduce_share": share,
        "allreduce_bytes_per_step": nbytes, "straggler_ratio": straggler, "slowest_rank": s.get("slowest_rank"),
        "backend": r.meta.get("backend"), "rank_ms_median": [x.get("ms_median") for x in r.meta.get("ranks") or []],
    }  # fmt: skip
    if not (fmt.is_num(ar) and fmt.is_num(share) and r.ms_median):
        return Finding(
            "scaling_limit", "info",
            f"{r.label}: its gradient all-reduce time was not measured, so communication and compute cannot be "
            "told apart (results from an older devicebench?).",
            evidence, [r.key],
        )  # fmt: skip
    outside = r.ms_median - float(ar)
    rate = ""
    if fmt.is_num(nbytes) and ar > 0:
        rate = f" ({fmt.nbytes(nbytes)} of gradients per step, an effective {fmt.bytes_per_s(nbytes / (ar / 1e3))})"
    measured = (
        f"{r.label} ({r.ranks_words()}, {r.meta.get('backend') or '?'}): a step takes {fmt.ms(r.ms_median)} ms, "
        f"{fmt.ms(ar)} ms ({fmt.pct(share)}) of it with a gradient all-reduce in flight{rate}"
    )
    compute_cmp = ""
    if weak is not None and weak.ms_median:
        grow = outside / weak.ms_median
        evidence.update(one_rank_ms_median=weak.ms_median, outside_over_one_rank=grow, baseline=weak.key)
        compute_cmp = (
            f"; outside it {fmt.ms(outside)} ms against {fmt.ms(weak.ms_median)} ms for one rank at batch "
            f"{weak.batch_size} ({weak.label}, {fmt.ratio(grow)})"
        )
    slow = s.get("slowest_rank")
    ranks = r.meta.get("ranks") or []
    if fmt.is_num(straggler) and straggler >= STRAGGLER_RATIO and slow is not None:
        where = next((f" ({x.get('host')}, {x.get('device')})" for x in ranks if x.get("rank") == slow), "")
        kind_words = (
            f": rank {slow}{where} is a straggler, {fmt.ratio(straggler)} the median rank's time outside the "
            "all-reduce, and every other rank waits for it at each all-reduce"
        )
        if r.shares_device:
            kind_words += " (its ranks share one CPU: the rank the scheduler served less)"
        severity, limit = ("info" if r.shares_device else "warning"), "straggler"
    elif share >= COMM_LIMITED_SHARE:
        kind_words = (
            f": communication limits scaling ({fmt.pct(share)} of the step is all-reduce, at or above "
            f"{fmt.pct(COMM_LIMITED_SHARE)})"
        )
        if r.shares_device:
            kind_words += (
                "; on one shared CPU that time is copies between the ranks' processes and waiting for the rank the "
                "scheduler served last, not a network"
            )
        else:
            kind_words += (
                "; larger per-rank batches, gradient accumulation or a faster interconnect shrink it"
            )
        severity, limit = ("info" if r.shares_device else "warning"), "communication"
    else:
        kind_words = (
            f": compute limits scaling (the all-reduce is {fmt.pct(share)} of the step, below "
            f"{fmt.pct(COMM_LIMITED_SHARE)})"
        )
        if weak is not None and evidence.get("outside_over_one_rank", 0) > 1.2:
            kind_words += ", and each rank computes slower than one rank alone" + (
                ": its ranks compete for the same cores" if r.shares_device else ""
            )
        severity, limit = "info", "compute"
    evidence["limit"] = limit
    return Finding("scaling_limit", severity, measured + compute_cmp + kind_words + ".", evidence, [r.key])


def _ranks_differ(r: _Run) -> Finding:
    from reports.finding import Finding

    return Finding(
        "ranks_differ", "warning",
        f"The ranks of {r.label} ended with different weights (their SHA-256 differ): data-parallel training keeps "
        "them identical, so something broke the lockstep (a non-deterministic op or a rank-dependent code path).",
        {"params_identical": False}, [r.key],
    )  # fmt: skip
