"""One self-contained HTML page: inline CSS, plots as base64 PNG, no external requests, printable."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import pandas as pd

from bench.results import atomic_write_text
from reports import fmt, words
from reports.continuation import continuation_html, samples_html
from reports.diagnosis import headline
from reports.finding import Finding
from reports.load import Results
from reports.plots import all_plots
from reports.summary import problem_runs, sorted_runs, summary_table, table_notes, tips_by_directory
from reports.tips import VERDICT_NOTE

SECTIONS = [
    ("summary", "Summary"),
    ("tips", "Tips measured"),
    ("diagnosis", "Diagnosis"),
    ("loss", "Loss curves"),
    ("continued", "Continued runs"),
    ("samples", "Samples"),
    ("timing", "Timing and utilisation"),
    ("roofline", "Roofline"),
    ("hardware", "Hardware"),
    ("metadata", "Run metadata"),
]

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       max-width: 1200px; margin: 0 auto; padding: 24px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; border-bottom: 2px solid #e3e3e8;
     padding-bottom: 4px; margin-top: 36px; } h3 { font-size: 16px; margin: 20px 0 6px; }
.sub { color: #666; margin: 0 0 16px; }
nav a { margin-right: 14px; color: #0b57d0; text-decoration: none; }
.headline { background: #eef4ff; border-left: 5px solid #0b57d0; padding: 12px 16px; margin: 16px 0;
            font-size: 16px; }
.headline p { margin: 4px 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12.5px; }
th, td { border: 1px solid #dcdce2; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f4f4f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #fff1f0; }
.wide { overflow-x: auto; }
ul.findings { padding-left: 0; list-style: none; }
ul.findings li { margin: 6px 0; padding: 6px 10px; border-left: 4px solid #9aa0a6; background: #fafafa; }
ul.findings li.warning { border-left-color: #e37400; background: #fff8ee; }
ul.findings details { margin-top: 3px; } ul.findings summary { color: #555; font-size: 12px; cursor: pointer; }
table.ev { font-size: 11.5px; margin: 4px 0; } table.ev th { font-weight: normal; color: #444; }
.kind { font: 11px monospace; color: #555; background: #ececf0; padding: 1px 5px; border-radius: 3px;
        margin-right: 6px; }
figure { margin: 16px 0; page-break-inside: avoid; break-inside: avoid; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; }
pre { background: #f6f6f8; padding: 8px; overflow-x: auto; font-size: 11.5px; white-space: pre-wrap; }
.feat { font-family: monospace; font-size: 12px; } .feat b { color: #0a7a2f; }
@media print { nav { display: none; } body { padding: 0; max-width: none; } h2 { break-after: avoid; }
  .headline { border: 1px solid #0b57d0; } }
"""

# CPU features that decide what a CPU run can do; shown first and in bold.
KEY_FEATURES = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_tile", "amx_bf16",
                "amx_fp16", "neon", "sve")  # fmt: skip


TABLE_OPEN_ROWS = 50


def _table(df: pd.DataFrame, numeric: set[str] = frozenset(), bad_rows: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in df.columns)
    rows = []
    for i, row in enumerate(df.itertuples(index=False)):
        cells = "".join(
            f"<td{' class=num' if c in numeric else ''}>{escape(str(v))}</td>"
            for c, v in zip(df.columns, row, strict=True)
        )
        rows.append(f"<tr{' class=bad' if i in bad_rows else ''}>{cells}</tr>")
    shown, rest = rows[:TABLE_OPEN_ROWS], rows[TABLE_OPEN_ROWS:]  # a long table: the rest collapsed below it
    html = f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(shown)}</tbody></table></div>'
    if rest:
        html += (
            f'<details><summary>{len(rest)} more rows</summary><div class="wide"><table><thead><tr>{head}</tr>'
            f"</thead><tbody>{''.join(rest)}</tbody></table></div></details>"
        )
    return html


def _evidence(f: Finding) -> str:
    """The finding's figures as a small table, folded under it."""
    rows = words.details(f)
    if not rows:
        return ""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<details><summary>evidence</summary><table class=ev>{body}</table></details>"


def _headline(results: Results, findings: list[Finding]) -> str:
    top = headline(results, findings)
    body = f"<p>{escape(top.sentence)}</p>" + _evidence(top)
    busy = {k for f in findings if f.kind == "noisy_timing" and f.evidence.get("busy") for k in f.runs}
    if busy:
        note = escape(words.busy_runs(len(busy), len(results.ok_runs())))
        body += f"<p>{note.replace('noisy_timing', '<code>noisy_timing</code>')}</p>"
    return f'<div class="headline">{body}</div>'


def _summary(results: Results) -> str:
    table = summary_table(results)
    numeric = {"ms/iter median [p10-p90]", "tokens/s", "MFU (own peak)", "MFU vs A100 (nanoGPT)", "train loss",
               "val loss", "batch", "threads"}  # fmt: skip
    bad = {i for i, s in enumerate(table["status"]) if s != "ok"}
    out = [_table(table, numeric, bad)]
    out.append(
        "<p class=sub>ms/iter: median of timed steps, warm-up kept out. MFU (own peak): achieved FLOP/s over the "
        "peak of the device and dtype used. MFU vs A100: over 312 TFLOP/s, the figure nanoGPT prints on every "
        "device.</p>"
    )
    notes = table_notes(results)
    if notes:
        out.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    problems = problem_runs(results)
    if problems:
        out.append("<h3>Runs that did not finish</h3><ul>")
        out += [f"<li><b>{escape(r)}</b>: {escape(s)}: {escape(why)}</li>" for r, s, why in problems]
        out.append("</ul>")
    if results.warnings:
        out.append("<h3>Left out or ignored while reading</h3><ul>")
        out += [f"<li>{escape(w)}</li>" for w in results.warnings]
        out.append("</ul>")
    return "\n".join(out)


def _tips(results: Results, findings: list[Finding]) -> str | None:
    """The tips table of a `bench tune` (reports.tips) and the best configurations (the diagnosis's
    best_config findings, named by directory where two tunes would read the same); None without a tune."""
    table = tips_by_directory(results)
    if table.empty:
        return None
    bad = {i for i, v in enumerate(table["verdict"]) if v in ("harmful", "failed")}
    best = "".join(f"<li>{escape(f.sentence)}</li>" for f in findings if f.kind == "best_config")
    return (
        _table(table, {"measured here"}, bad) + f"<ul>{best}</ul>"
        "<p class=sub>Throughput variants keep the recipe: tokens/s in blocks of steps alternated with the default "
        "in one process, the median of the paired ratios with its 95% bootstrap interval. Variants that change the "
        "recipe (batch) are timed to the val loss the default reaches at its end (train and eval time, known at "
        "evals only: a ratio's bracket spans both runs' crossings, between each one's eval before and the eval "
        f"at the target; a run that never reached it is bounded by its last eval). {escape(VERDICT_NOTE)}</p>"
    )


def _diagnosis(results: Results, findings: list[Finding]) -> str:
    if not findings:
        return "<p>No findings: no run finished.</p>"
    top = headline(results, findings).evidence.get("finding")
    items = "".join(
        f'<li class="{escape(f.severity)}" id="{escape(f.id)}"><span class=kind>{escape(f.kind)}</span>'
        f"{escape(f.sentence)}{_evidence(f)}</li>"
        for f in findings  # diagnose() orders them: those that explain most of the step or gap first
        if f.id != top
    )
    return f"<ul class=findings>{items}</ul>"


def _figure(plot) -> str:
    return (
        f'<figure id="plot-{escape(plot.name)}"><img alt="{escape(plot.title)}" '
        f'src="data:image/png;base64,{plot.png_base64}"><figcaption>{escape(plot.caption)}</figcaption></figure>'
    )


def _roofline(results: Results, findings: list[Finding], plots: dict) -> str:
    """The roofline section: one plot per device, then each profiled run's categories as a table (category,
    share, intensity, achieved, bound, lever) with a link to its finding."""
    figures = "".join(_figure(p) for name, p in plots.items() if name.startswith("roofline-"))
    rows, near = [], None
    order = {k: i for i, k in enumerate(sorted_runs(results).index)}
    for f in sorted((f for f in findings if f.kind == "roofline"), key=lambda f: order.get(f.runs[0], 0)):
        near = f.evidence.get("near_roof") if near is None else near
        rows += [(f.label(f.runs[0]), *row) for row in words.roofline_rows(f)]
    if not rows:
        return (
            "<p>No profile with a roofline: run with <code>bench run --profile</code> (a profile.json from an "
            "older devicebench has the time breakdown only).</p>"
        )
    columns = ["run", *words.ROOFLINE_COLUMNS]
    links = ", ".join(
        f'<a href="#{escape(f.id)}">{escape(f.label(f.runs[0]) if f.runs else f.id)}</a>'
        for f in findings
        if f.kind == "roofline"
    )
    return (
        figures
        + _table(
            pd.DataFrame(rows, columns=columns), {"share of step", "FLOP/byte", "achieved", "% of its roof"}
        )
        + "<p class=sub>Bytes: each op's inputs plus outputs (a lower bound of the traffic), counted in one extra, "
        "untimed step; FLOPs: flop_counter's formulas, one per element for ops without one (a floor). Achieved: "
        "FLOP/s on the compute side of the ridge, bytes/s on the memory side. Bound: compute or memory from "
        f"{fmt.pct(near)} of the nearer roof (measured roofs where there are), overhead below both."
        + (f" Each run's finding: {links}." if links else "")
        + "</p>"
    )


def _pairs(rows: list[tuple[str, object]], missing: str) -> str:
    """A name/value table; `missing` stands where a value is None."""
    return _table(pd.DataFrame([(k, missing if v is None else v) for k, v in rows], columns=["", "value"]))


def _plain(value: object) -> object:
    """A nested value (hwinfo's os, torch) as one line."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items() if v not in (None, "", [], {}))
    return value


def _hardware(results: Results) -> str:
    out = []
    for sweep in results.sweeps:
        hw = sweep.get("hwinfo") or {}
        cpu = hw.get("cpu") or {}
        out.append(
            f"<h3>{escape(str(sweep.get('host', '?')))} <small>({escape(sweep['_path'])})</small></h3>"
        )
        rows = [
            ("OS", _plain(hw.get("os"))),
            ("PyTorch", (hw.get("torch") or {}).get("version") if isinstance(hw.get("torch"), dict) else hw.get("torch")),
            ("CPU", f"{cpu.get('model_name') or '?'} ({cpu.get('vendor') or '?'}, {cpu.get('microarchitecture') or 'microarchitecture unknown'})"),
            ("cores", f"{cpu.get('physical_cores') or '?'} physical, {cpu.get('logical_cores') or '?'} logical; PyTorch threads {cpu.get('torch_threads') or '?'}"),
            ("max clock", f"{cpu['max_mhz']} MHz" if cpu.get("max_mhz") else "unknown"),
            ("PyTorch CPU capability", cpu.get("torch_capability")),
        ]  # fmt: skip
        for g in hw.get("gpus") or []:
            if isinstance(g, dict):
                extra = ", ".join(
                    f"{k} {v}" for k, v in g.items() if k != "name" and not isinstance(v, (dict, list))
                )
                rows.append(("GPU", f"{g.get('name', '?')}" + (f" ({extra})" if extra else "")))
        out.append(_pairs(rows, "unknown"))
        feats = [str(f) for f in cpu.get("features") or []]
        if feats:
            key = [f for f in KEY_FEATURES if f in feats]
            text = (
                " ".join(f"<b>{escape(f)}</b>" for f in key)
                + " "
                + " ".join(escape(f) for f in feats if f not in key)
            )
            if not {"avx512_bf16", "amx_bf16"} & set(feats):
                text += "<br>absent: avx512_bf16, amx_bf16 (no native bf16 on this CPU)"
            out.append(f"<p class=feat>CPU features: {text}</p>")
        peaks = []
        for d in hw.get("devices") or []:
            for dtype, p in (d.get("peaks") or {}).items():
                p = p or {}
                peaks.append((d.get("device"), d.get("name"), dtype, fmt.flops(p.get("value")), p.get("source") or "unknown",
                              fmt.flops(p.get("measured")) if isinstance(p.get("measured"), (int, float)) else (p.get("measured") or "-"),
                              p.get("detail") or ""))  # fmt: skip
        if peaks:
            out.append("<p>Peaks used for MFU, and where each comes from:</p>")
            columns = ["device", "name", "dtype", "peak", "source", "measured", "detail"]
            out.append(_table(pd.DataFrame(peaks, columns=columns)))
        for note in hw.get("notes") or []:
            out.append(f"<p class=sub>note: {escape(str(note))}</p>")
        if not hw:
            out.append("<p>No hwinfo snapshot in this directory (imported log?).</p>")
    return "\n".join(out)


def _metadata(results: Results) -> str:
    out = []
    for sweep in results.sweeps:
        sw = sweep.get("software") or {}
        out.append(f"<h3>{escape(str(sweep.get('host', '?')))}: {escape(sweep['_path'])}</h3>")
        rows = [
            ("sweep", sweep.get("sweep_id")), ("created", sweep.get("created")), ("source", sweep.get("source") or "devicebench"),
            ("devicebench", sweep.get("project_version")), ("command", sweep.get("command")),
            *[(k, v) for k, v in sw.items()],
        ]  # fmt: skip
        out.append(_pairs(rows, "-"))
        spec = sweep.get("spec")
        if spec:
            out.append(
                f"<details><summary>configuration (spec)</summary><pre>{escape(json.dumps(spec, indent=1))}</pre></details>"
            )
    runs = sorted_runs(results)
    if len(runs):
        cols = {
            "run": runs.index.map(results.label), "source": runs["source"], "status": runs["status"],
            "started": runs["started"], "finished": runs["finished"],
            "iters": runs["iters_done"], "first step ms": runs["first_step_ms"].map(fmt.ms),
            "eval ms total": runs.get("eval_ms_total", pd.Series(index=runs.index, dtype=float)).map(fmt.ms),
            "wall s": runs.get("wall_s", pd.Series(index=runs.index, dtype=float)).map(fmt.ms),
            "peak mem MiB": runs.get("peak_mem_bytes", pd.Series(index=runs.index, dtype=float)).map(
                lambda b: fmt.count(float(b) / 2**20) if fmt.is_num(b) else "-"),
            "model": runs.apply(lambda r: f"L{r.get('model.n_layer')} H{r.get('model.n_head')} E{r.get('model.n_embd')} T{r.get('block_size')}", axis=1),
            "iters x lr": runs.apply(lambda r: f"{r.get('train.max_iters')} x {r.get('train.learning_rate')}", axis=1),
            "assumed": runs["assumed"], "path": runs["run_dir"],
        }  # fmt: skip
        df = pd.DataFrame(cols).astype(object).fillna("-")
        out.append(
            "<h3>Runs</h3>"
            + _table(df, {"iters", "first step ms", "eval ms total", "wall s", "peak mem MiB"})
        )
    return "\n".join(out)


def _section(results: Results, sid: str, make: Callable[[], str | None]) -> str | None:
    """One section; one that cannot be made says so (and adds a warning) instead of taking the page down."""
    try:
        return make()
    except Exception as e:  # noqa: BLE001
        why = f"{type(e).__name__}: {e}"
        results.warnings.append(f"the {sid} section of the HTML page could not be made ({why}): left out")
        return f"<p>This section could not be made ({escape(why)}).</p>"


def render_html(results: Results, findings: list[Finding]) -> str:
    """The whole page as one string."""
    ok = set(results.ok_runs().index)
    ok_keys = [k for k in sorted_runs(results).index if k in ok]
    plots = {p.name: p for p in all_plots(results, ok_keys)}
    dirs = ", ".join(s["_path"] for s in results.sweeps)
    hosts = sorted({str(s.get("host")) for s in results.sweeps})
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    makers = {
        "tips": lambda: _tips(results, findings),
        "diagnosis": lambda: _diagnosis(results, findings),
        "loss": lambda: _figure(plots["loss"]) if "loss" in plots else "<p>No finished runs to plot.</p>",
        "timing": lambda: (
            "".join(_figure(plots[k]) for k in ("runs", "tokens", "profile") if k in plots)
            or "<p>No finished runs.</p>"
        ),
        "continued": lambda: continuation_html(results),
        "samples": lambda: samples_html(results),
        "roofline": lambda: _roofline(results, findings, plots),
        "hardware": lambda: _hardware(results),
        "metadata": lambda: _metadata(results),
        # last: its list of warnings includes any section above that could not be made
        "summary": lambda: _headline(results, findings) + _summary(results),
    }
    body = {sid: _section(results, sid, make) for sid, make in makers.items()}
    shown = [(sid, title) for sid, title in SECTIONS if body[sid] is not None]
    nav = "".join(f'<a href="#{sid}">{escape(title)}</a>' for sid, title in shown)
    sections = "\n".join(
        f'<section id="{sid}"><h2>{escape(title)}</h2>\n{body[sid]}\n</section>' for sid, title in shown
    )
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>devicebench report: {escape(', '.join(hosts))}</title><style>{CSS}</style></head><body>"
        f"<h1>devicebench report</h1><p class=sub>{len(results.runs)} run(s) on {escape(', '.join(hosts))}; "
        f"from {escape(dirs)}; generated {now}</p><nav>{nav}</nav>\n{sections}\n</body></html>\n"
    )


def write_html(results: Results, findings: list[Finding], path: str | Path) -> Path:
    """Write the page to path (atomically: a temp file beside it, then a rename) and return it."""
    return atomic_write_text(path, render_html(results, findings))
