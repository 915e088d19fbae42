"""Scaling: what data-parallel runs (`bench run` under torchrun, or --nproc N) buy over one rank.

`scaling_findings(results, ok)` is a diagnosis rule (reports.diagnosis calls it); reports/words.py words its
findings. Kinds:
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
from typing import Any

import pandas as pd

from reports import fmt
from reports.finding import Finding
from reports.load import LOSS_NEUTRAL_TRAIN_KEYS, Results

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


def _tokens_finding(results: Results, members: list[_Run], ddp: list[_Run]) -> Finding:
    first = ddp[0]
    comp = first.meta.get("compile") or "off"
    what = f"{results.device_label(first.key, first.meta.get('dtype'))} {'eager' if comp == 'off' else 'compile ' + comp}"
    points = sorted((r for r in members if r.tokens_per_s), key=lambda r: (r.world_size, r.batch_size))
    evidence: dict[str, Any] = {
        "what": what, "shared": any(r.shares_device for r in ddp),
        "points": [{"run": r.key, "world_size": r.world_size, "nnodes": r.nnodes, "batch_size": r.batch_size,
                    "per_rank_batch": r.per_rank_batch, "tokens_per_s": r.tokens_per_s} for r in points],
        "weak_scaling": [], "same_global_batch": [], "weak": None, "same": None, "alone": None,
    }  # fmt: skip
    for r in ddp:
        weak = _best(members, 1, r.per_rank_batch)
        if weak is not None and r.tokens_per_s:
            eff = r.tokens_per_s / (r.world_size * weak.tokens_per_s)
            evidence["weak_scaling"].append({
                "run": r.key, "baseline": weak.key, "efficiency": eff, "world_size": r.world_size,
                "tokens_per_s": r.tokens_per_s, "ideal": r.world_size * weak.tokens_per_s,
            })  # fmt: skip
        same = _best(members, 1, r.batch_size)
        if same is not None and r.tokens_per_s:
            evidence["same_global_batch"].append({
                "run": r.key, "baseline": same.key, "ratio": r.tokens_per_s / same.tokens_per_s,
                "batch_size": r.batch_size, "world_size": r.world_size,
            })  # fmt: skip
    # the sentence quotes the largest world size measured; every point is in the evidence
    if evidence["weak_scaling"]:
        evidence["weak"] = max(evidence["weak_scaling"], key=lambda w: w["world_size"])
    elif evidence["same_global_batch"]:
        evidence["same"] = max(evidence["same_global_batch"], key=lambda w: w["world_size"])
    else:
        evidence["alone"] = {"run": first.key, "per_rank_batch": first.per_rank_batch}
    keys = [r.key for r in points] or [first.key]
    return Finding("scaling", "info", evidence=evidence, runs=keys)


def _shared_finding(results: Results, shared: list[_Run]) -> Finding:
    r = max(shared, key=lambda r: r.nproc_per_node)
    phys = (results.hwinfo_for(r.key).get("cpu") or {}).get("physical_cores")
    threads = r.meta.get("threads")
    used = r.nproc_per_node * int(threads) if fmt.is_num(threads) else None
    evidence = {
        "nproc_per_node": r.nproc_per_node, "threads_per_rank": threads, "physical_cores": phys,
        "idle_cores": int(phys) - used if used is not None and fmt.is_num(phys) and used < phys else None,
        "oversubscribed_threads": used if used is not None and fmt.is_num(phys) and used > phys else None,
    }  # fmt: skip
    return Finding("shared_cores", "warning", evidence=evidence, runs=[x.key for x in shared])


def _limit_finding(results: Results, r: _Run, weak: _Run | None) -> Finding:
    """What limits one data-parallel run: communication (the all-reduce share of its step), a straggler, or
    compute (the time outside the all-reduce, against one rank at the same per-rank batch)."""
    s = r.summary
    ar, share = s.get("allreduce_ms_median"), s.get("allreduce_share")
    nbytes, straggler = s.get("allreduce_bytes_per_step"), s.get("straggler_ratio")
    evidence: dict[str, Any] = {
        "ms_median": r.ms_median, "allreduce_ms_median": ar, "allreduce_share": share,
        "allreduce_bytes_per_step": nbytes, "straggler_ratio": straggler, "slowest_rank": s.get("slowest_rank"),
        "backend": r.meta.get("backend"), "rank_ms_median": [x.get("ms_median") for x in r.meta.get("ranks") or []],
        "world_size": r.world_size, "nnodes": r.nnodes, "shares_device": r.shares_device, "limit": None,
    }  # fmt: skip
    if not (fmt.is_num(ar) and fmt.is_num(share) and r.ms_median):
        return Finding("scaling_limit", "info", evidence=evidence, runs=[r.key])
    if fmt.is_num(nbytes) and ar > 0:
        evidence["allreduce_bytes_per_s"] = nbytes / (ar / 1e3)
    if weak is not None and weak.ms_median:
        grow = (r.ms_median - float(ar)) / weak.ms_median
        evidence.update(one_rank_ms_median=weak.ms_median, outside_over_one_rank=grow, baseline=weak.key)
    if fmt.is_num(straggler) and straggler >= STRAGGLER_RATIO and s.get("slowest_rank") is not None:
        where = next((x for x in r.meta.get("ranks") or [] if x.get("rank") == s["slowest_rank"]), {})
        evidence["slowest_rank_at"] = ", ".join(str(where[k]) for k in ("host", "device") if where.get(k))
        limit, severity = "straggler", "info" if r.shares_device else "warning"
    elif share >= COMM_LIMITED_SHARE:
        limit, severity = "communication", "info" if r.shares_device else "warning"
    else:
        limit, severity = "compute", "info"
        evidence["ranks_slower"] = bool(weak is not None and evidence.get("outside_over_one_rank", 0) > 1.2)
    evidence["limit"] = limit
    return Finding("scaling_limit", severity, evidence=evidence, runs=[r.key], explains=float(share))


def _ranks_differ(r: _Run) -> Finding:
    return Finding("ranks_differ", "warning", evidence={"params_identical": False}, runs=[r.key])
