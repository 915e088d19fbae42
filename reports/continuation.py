"""Continued runs (`bench run --init-from`) and samples: the report's answer to "steps or hardware?".

A continued run's run.json names the run (or nanoGPT checkpoint) it started from (`init_from`). Its val curve
is joined to that run's into one curve, compared with an uninterrupted run of the same recipe where the
results hold one (same model, [train] with the same max_iters and schedule, batch size and seed), within the
loss noise the diagnosis already allows between devices; and the loss change over the extra steps is stated.
Each run's sample.txt is shown beside the val loss of the model that wrote it. No torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from reports import fmt
from reports.finding import Finding
from reports.load import Results

# The val-loss noise allowed between two runs of one recipe (devices, thread counts): continuation and the loss
# rules of reports.diagnosis use the same bounds.
LOSS_TOLERANCE_FP32 = 0.02
LOSS_TOLERANCE_REDUCED = 0.05  # when a run uses tf32, bf16 or fp16
OVERFIT_RISE = 0.03  # val loss this far above its minimum at the last eval (eval noise is ~0.01-0.02)

SAMPLE_NAME = "sample.txt"
SAMPLE_MAX_CHARS = 2000  # a sample.txt is ~200 characters; a bigger file is cut, never shown whole


@dataclass
class Continuation:
    """One continued run, joined to its start and compared with an uninterrupted run where there is one."""

    key: str
    kind: str  # devicebench | nanogpt
    start_iter: int
    parent: str | None  # key of the run it continued, when that run is among the results
    parent_text: str  # how the start is named: a run label, or the checkpoint path
    curve: list[tuple[int, float, str]] = field(default_factory=list)  # (iter, val loss, "before" | "after")
    start_val: float | None = None
    end_iter: int | None = None
    end_val: float | None = None
    best_iter: int | None = None
    best_val: float | None = None
    reference: str | None = None  # key of the uninterrupted run of the same recipe
    max_abs_diff: float | None = None
    at_iter: int | None = None
    shared_evals: int = 0
    tolerance: float | None = None

    @property
    def reproduces(self) -> bool | None:
        if self.max_abs_diff is None or self.tolerance is None:
            return None
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "curve"}
        d["curve"] = [{"iter": i, "val_loss": v, "part": p} for i, v, p in self.curve]
        d["reproduces"] = self.reproduces
        return d


def _val_curve(results: Results, key: str) -> list[tuple[int, float]]:
    ev = results.evals_of(key)
    if not len(ev):
        return []
    val = ev[ev["split"] == "val"]
    out = {}
    for it, loss in zip(val["iter"], val["loss"], strict=True):
        if fmt.num(loss) is not None:
            out[int(it)] = float(loss)
    return sorted(out.items())


def _find_parent(results: Results, src: dict) -> str | None:
    sweep_dirs = {
        str(s.get("_path"))
        for s in results.sweeps
        if src.get("sweep_id") and s.get("sweep_id") == src["sweep_id"]
    }
    runs = results.runs
    for key in runs.index:
        row = runs.loc[key]
        if row["run_id"] != src.get("run_id"):
            continue
        if str(row["results_dir"]) in sweep_dirs or _same_path(row["run_dir"], src.get("path")):
            return key
    return None


def _same_path(a: Any, b: Any) -> bool:
    try:
        return bool(a and b) and Path(str(a)).resolve() == Path(str(b)).resolve()
    except OSError:
        return False


def linked_pairs(results: Results) -> set[frozenset[str]]:
    """{continued run, the run it started from} for each continuation whose first part is in these results:
    one training run in two parts, which the loss and recipe rules must not compare as two recipes."""
    out = set()
    for key in results.runs.index:
        src = (results.run_meta.get(key) or {}).get("init_from")
        if isinstance(src, dict) and str(src.get("kind") or "devicebench") == "devicebench":
            parent = _find_parent(results, src)
            if parent is not None:
                out.add(frozenset((key, parent)))
    return out


def _reference(results: Results, key: str) -> str | None:
    """An uninterrupted ok run of the same recipe: same device and dtype first, then the same dtype, then any."""
    runs = results.runs
    me = runs.loc[key]
    same = [k for k in runs.index if k != key and runs.loc[k, "status"] == "ok"
            and runs.loc[k, "config_key"] == me["config_key"]
            and not (results.run_meta.get(k) or {}).get("init_from")]  # fmt: skip
    for rank in (
        lambda k: runs.loc[k, "device"] == me["device"] and runs.loc[k, "dtype"] == me["dtype"],
        lambda k: runs.loc[k, "dtype"] == me["dtype"],
        lambda k: True,
    ):
        hit = [k for k in same if rank(k)]
        if hit:
            return hit[0]
    return None


def continuations(results: Results) -> list[Continuation]:
    """Every continued ok run of these results, joined and compared."""
    out = []
    for key in results.runs.index:
        src = (results.run_meta.get(key) or {}).get("init_from")
        if not isinstance(src, dict) or results.runs.loc[key, "status"] != "ok":
            continue
        start = src.get("iter") if isinstance(src.get("iter"), int) else 0
        kind = str(src.get("kind") or "devicebench")
        parent = _find_parent(results, src) if kind == "devicebench" else None
        c = Continuation(key, kind, start, parent,
                         results.label(parent) if parent else (str(src.get("run_id") or src.get("path") or "?")))  # fmt: skip
        before = [(i, v) for i, v in _val_curve(results, parent) if i <= start] if parent else []
        after = [(i, v) for i, v in _val_curve(results, key) if i >= start]
        c.curve = [(i, v, "before") for i, v in before] + [
            (i, v, "after") for i, v in after if i > start or not before
        ]
        starts = [v for i, v, _ in c.curve if i == start]
        fallback = src.get("final_val_loss") if kind == "devicebench" else src.get("best_val_loss")
        c.start_val = starts[0] if starts else fmt.num(fallback)
        if after:
            c.end_iter, c.end_val = after[-1]
            c.best_iter, c.best_val = min(after, key=lambda p: p[1])
        ref = _reference(results, key)
        if ref is not None:
            c.reference = ref
            ref_curve = dict(_val_curve(results, ref))
            shared = [(i, abs(v - ref_curve[i])) for i, v in after if i > start and i in ref_curve]
            if shared:
                c.at_iter, c.max_abs_diff = max(shared, key=lambda p: p[1])
                c.shared_evals = len(shared)
            dtypes = {results.runs.loc[k, "dtype"] for k in (key, ref, parent) if k is not None}
            c.tolerance = LOSS_TOLERANCE_FP32 if dtypes <= {"fp32"} else LOSS_TOLERANCE_REDUCED
        out.append(c)
    return out


def _where(results: Results, key: str) -> str:
    r = results.runs.loc[key]
    threads = fmt.num(r.get("threads"))
    th = f", {int(threads)} thread{'s' if threads != 1 else ''}" if threads is not None else ""
    return f"{results.device_label(key, r.get('dtype'))}{th}"


def finding(results: Results, c: Continuation) -> Finding:
    """One continued run as evidence for its line (reports.words): every figure and name the line states."""
    evidence = c.to_dict() | {
        "device": _where(results, c.key),
        "start_device": _where(results, c.parent) if c.parent else None,
        "overfit": c.best_val is not None and c.end_val is not None and c.end_val - c.best_val > OVERFIT_RISE,
    }
    del evidence["curve"]
    keys = [k for k in (c.key, c.parent, c.reference) if k is not None]
    return Finding(
        "continued", "info", evidence=evidence, runs=keys, labels={k: results.label(k) for k in keys}
    )


def describe(results: Results, c: Continuation) -> str:
    """The words for one continued run: where it started, how val loss moved, whether it reproduces."""
    return finding(results, c).sentence


def text_lines(results: Results) -> list[str]:
    """The terminal summary's lines: one per continued run."""
    return [describe(results, c) for c in continuations(results)]


# --- HTML -------------------------------------------------------------------------------------------


def continuation_html(results: Results) -> str | None:
    """The report's "Continued runs" section: each joined curve as a table beside its sentences; None without one."""
    found = continuations(results)
    if not found:
        return None
    out = []
    for c in found:
        ref = dict(_val_curve(results, c.reference)) if c.reference else {}
        head = "<tr><th>iter</th><th>val loss</th><th>part</th>" + (
            f"<th>uninterrupted {escape(results.label(c.reference))}</th>" if c.reference else "") + "</tr>"  # fmt: skip
        body = "".join(
            f"<tr><td class=num>{i}</td><td class=num>{v:.4f}</td>"
            f"<td>{'before (' + escape(c.parent_text) + ')' if part == 'before' else 'continued'}</td>"
            + (f"<td class=num>{ref[i]:.4f}</td>" if i in ref else ("<td>-</td>" if c.reference else ""))
            + "</tr>"
            for i, v, part in c.curve
        )
        out.append(f"<h3>{escape(results.label(c.key))}</h3><p>{escape(describe(results, c))}</p>"
                   f"<div class=wide><table>{head}{body}</table></div>")  # fmt: skip
    return "\n".join(out)


def read_sample(results: Results, key: str) -> str | None:
    """A run's sample.txt (cut at SAMPLE_MAX_CHARS), or None."""
    path = Path(str(results.runs.loc[key, "run_dir"])) / SAMPLE_NAME
    try:
        with open(path, "rb") as f:
            data = f.read(SAMPLE_MAX_CHARS * 4 + 1)
    except OSError:
        return None
    text = data.decode("utf-8", "replace")
    return text[:SAMPLE_MAX_CHARS] + (" [cut]" if len(text) > SAMPLE_MAX_CHARS else "")


def samples_html(results: Results) -> str | None:
    """The report's "Samples" section: each ok run's text beside the val loss of the model that wrote it."""
    rows = []
    runs = results.runs
    order = sorted((k for k in runs.index if runs.loc[k, "status"] == "ok"),
                   key=lambda k: (runs.loc[k, "final_val_loss"] if runs.loc[k, "final_val_loss"] == runs.loc[k, "final_val_loss"] else math.inf))  # fmt: skip
    for key in order:
        text = read_sample(results, key)
        if text is None:
            continue
        loss = runs.loc[key, "final_val_loss"]
        it = runs.loc[key, "train.max_iters"] if "train.max_iters" in runs.columns else None
        loss_text = f"{fmt.num(loss):.4f}" if fmt.num(loss) is not None else "-"
        at = f" at iter {int(fmt.num(it))}" if fmt.num(it) is not None else ""
        rows.append(f"<tr><td>{escape(results.label(key))}</td><td class=num>{loss_text}{escape(at)}</td>"
                    f"<td><pre>{escape(text)}</pre></td></tr>")  # fmt: skip
    if not rows:
        return None
    meta = (
        next((m.get("sample") for m in results.run_meta.values() if isinstance(m.get("sample"), dict)), {})
        or {}
    )
    how = ", ".join(
        f"{k} {meta[k]!r}" for k in ("prompt", "tokens", "seed", "temperature", "top_k") if k in meta
    )
    return (f"<p>Text each run's final model wrote ({escape(how)}), lowest val loss first.</p>"
            "<div class=wide><table><tr><th>run</th><th>val loss</th><th>sample</th></tr>"
            + "".join(rows) + "</table></div>")  # fmt: skip
