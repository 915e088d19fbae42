"""The summary table (one row per run) in text, markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd

from bench.metrics import mfu_is_possible
from bench.results import dumps_strict
from reports import fmt, words
from reports.continuation import text_lines
from reports.diagnosis import dir_labels, headline
from reports.finding import Finding
from reports.load import Results
from reports.tables import md_table as _md_table
from reports.tables import one_line
from reports.tables import text_table as _text_table
from reports.time_to_loss import to_loss_sets
from reports.tips import tip_rows, tips_table

COLUMNS = [
    "host", "run", "device", "dtype", "batch", "compile", "threads", "ms/iter median [p10-p90]", "tokens/s",
    "MFU (own peak)", "MFU vs A100 (nanoGPT)", "train loss", "val loss", "status",
]  # fmt: skip

CSV_COLUMNS = [
    "key", "host", "run_id", "device", "device_name", "dtype", "batch_size", "block_size", "compile", "threads",
    "ms_median", "ms_p10", "ms_p90", "tokens_per_s", "achieved_flops_per_s", "mfu", "mfu_impossible",
    "mfu_vs_a100", "peak_value", "peak_source", "final_train_loss", "final_val_loss", "iters_done", "first_step_ms",
    "eval_ms_total", "wall_s", "joules_per_step", "tokens_per_joule", "mean_watts", "idle_watts",
    "energy_source", "status", "error", "source", "results_dir",
]  # fmt: skip

STATUS_ORDER = {"ok": 0, "failed": 1, "interrupted": 2, "running": 3, "skipped": 4}


def sorted_runs(results: Results) -> pd.DataFrame:
    """Runs in reading order: host, device, dtype, compile, threads, batch."""
    r = results.runs.copy()
    if r.empty:
        return r
    r["_s"] = r["status"].map(STATUS_ORDER).fillna(5)
    keys = ["_s", "host", "device", "dtype", "compile", "threads", "batch_size", "run_id"]
    keys = [k for k in keys if k in r.columns]
    return r.sort_values(keys, na_position="first").drop(columns="_s")


def impossible_mfu(r: pd.Series | dict) -> bool:
    """An MFU above 100% of the run's own peak: the peak or the config is wrong, never a result."""
    return fmt.is_num(r.get("mfu")) and not mfu_is_possible(r["mfu"])


def _mfu_cell(r: pd.Series | dict) -> str:
    if impossible_mfu(r):
        return f"impossible ({fmt.pct(r['mfu'])})"
    if fmt.is_num(r.get("mfu")):
        return fmt.pct(r["mfu"])
    if r.get("status") == "ok":
        return (
            "peak unknown"
            if r.get("peak_source") == "unknown" or not fmt.is_num(r.get("peak_value"))
            else "-"
        )
    return "-"


def _rows(results: Results, runs: pd.DataFrame) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(key, row as a dict) per run of `runs` (rows of results.runs), made once per report (Results.records)."""
    return zip(runs.index, results.records(runs), strict=True)


def table_notes(results: Results) -> list[str]:
    """What a reader of the table must know about its cells: impossible MFUs, with the reason."""
    notes = []
    for key, r in _rows(results, sorted_runs(results)):
        if impossible_mfu(r):
            notes.append(
                words.impossible_mfu_note(
                    results.label(key), r["mfu"], r.get("peak_value"), r.get("peak_source")
                )
            )
    return notes


def _ms_cell(r: pd.Series | dict) -> str:
    if not fmt.is_num(r.get("ms_median")):
        return "-"
    p10, p90 = (fmt.ms(r.get(k)) if fmt.is_num(r.get(k)) else "?" for k in ("ms_p10", "ms_p90"))
    return f"{fmt.ms(r['ms_median'])}" + (f" [{p10}-{p90}]" if (p10, p90) != ("?", "?") else "")


def _device_cell(r: pd.Series | dict) -> str:
    name = r.get("device_name")
    return f"{r['device']} ({name})" if name and name != r.get("device") else str(r.get("device"))


def summary_table(results: Results) -> pd.DataFrame:
    """The summary as display strings, one row per run."""
    rows = []
    for _, r in _rows(results, sorted_runs(results)):
        threads = r.get("threads")
        rows.append(
            [
                r["host"], r["name"], _device_cell(r), r.get("dtype") or "-",
                str(int(r["batch_size"])) if fmt.is_num(r.get("batch_size")) else "-",
                r.get("compile") or "-", str(int(threads)) if fmt.is_num(threads) else "-",
                _ms_cell(r), fmt.count(r.get("tokens_per_s")), _mfu_cell(r), fmt.pct(r.get("mfu_vs_a100")),
                fmt.loss(r.get("final_train_loss")), fmt.loss(r.get("final_val_loss")), r["status"],
            ]
        )  # fmt: skip
    table = pd.DataFrame(rows, columns=COLUMNS)
    runs = sorted_runs(results)
    if "tokens_per_joule" in runs.columns and runs["tokens_per_joule"].notna().any():
        # only where some run has a counter: most machines (VMs, Macs) have none
        cells = [
            f"{fmt.sig(r['joules_per_step'])} J, {fmt.count(r['tokens_per_joule'])} tok/J"
            if fmt.is_num(r.get("tokens_per_joule"))
            else "-"
            for _, r in _rows(results, runs)
        ]
        table.insert(COLUMNS.index("train loss"), "energy/step", cells)
    return table


def problem_runs(results: Results) -> list[tuple[str, str, str]]:
    """(run, status, reason) for runs that did not finish ok."""
    out = []
    for key, r in _rows(results, sorted_runs(results)):
        if r["status"] != "ok":
            reason = r.get("error") or (
                "the process died or is still running" if r["status"] == "running" else ""
            )
            out.append((results.label(key), r["status"], str(reason or "no reason recorded")))
    return out


def machine_table(results: Results) -> pd.DataFrame:
    """One row per run with the figures as numbers (CSV and JSON); an impossible MFU is moved from `mfu`
    (left empty) to `mfu_impossible`."""
    r = sorted_runs(results)
    if r.empty:
        return pd.DataFrame(columns=CSV_COLUMNS)
    r = r.assign(mfu_impossible=[float(x["mfu"]) if impossible_mfu(x) else None for _, x in r.iterrows()])
    r.loc[r["mfu_impossible"].notna(), "mfu"] = None
    return r.reindex(columns=CSV_COLUMNS).reset_index(drop=True)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting like a formula (=, +, -, @, tab, CR, LF) gets a
    leading apostrophe (OWASP's advice); numbers, and text that is a plain number, are left alone."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def _finding_lines(f: Finding, details: bool, md: bool) -> list[str]:
    lines = [f"- [{f.severity}] {one_line(f.sentence)}"]
    if details and f.kind == "roofline" and words.roofline_rows(f):
        table = pd.DataFrame(words.roofline_rows(f), columns=words.ROOFLINE_COLUMNS)
        lines += [
            "",
            *[f"    {line}" for line in (_md_table(table) if md else _text_table(table)).splitlines()],
            "",
        ]
    if details:
        lines += [f"    {one_line(k)}: {one_line(v)}" if not md else f"    - {one_line(k)}: {one_line(v)}"
                  for k, v in words.details(f)]  # fmt: skip
    return lines


def render(
    results: Results,
    findings: list[Finding],
    form: str = "text",
    *,
    show_all: bool = False,
    details: bool = False,
) -> str:
    """The terminal summary in one of text, md, csv, json (strict JSON: null, never NaN). Text and md open with
    the headline, then the table, then the findings that explain most first (MAX_FINDINGS unless show_all;
    with details, each one's evidence under it)."""
    if form == "csv":
        buf = io.StringIO()
        # every text cell quoted, so a CR or LF inside one can never split a row
        machine_table(results).map(csv_cell).to_csv(buf, index=False, quoting=csv.QUOTE_NONNUMERIC)
        return buf.getvalue()
    top = headline(results, findings)
    shown = [f for f in findings if f.id != top.evidence.get("finding")]
    if form == "json":
        runs = json.loads(machine_table(results).to_json(orient="records"))
        report = {
            "schema": "devicebench-report/1",
            "headline": top.to_dict(),
            "runs": runs,
            "findings": [f.to_dict() for f in findings],
            "warnings": list(results.warnings),
            "tips": _guarded(results, "tips", lambda: [r.to_dict() for r in tip_rows(results)], []),
            "time_to_loss": _guarded(
                results, "time_to_loss", lambda: [s.to_dict() for s in to_loss_sets(results)], []
            ),
        }
        return dumps_strict(report) + "\n"
    md = form == "md"
    table = summary_table(results)
    out = [f"**{one_line(top.sentence)}**" if md else one_line(top.sentence), ""]
    out.append(_md_table(table) if md else _text_table(table))
    notes = table_notes(results)
    if notes:
        out.append("")
        out += [f"- {one_line(n)}" for n in notes]
    tips = _guarded(results, "tips", lambda: _tips_text(results, findings, md), "")
    if tips:
        out.append("")
        out.append("Tips measured by bench tune:" if not md else "**Tips measured by bench tune:**\n")
        out.append(tips.rstrip("\n"))
    problems = problem_runs(results)
    if problems:
        out.append("")
        out.append("Runs that did not finish:" if not md else "**Runs that did not finish:**\n")
        out += [
            f"- {one_line(run)}: {one_line(status)}: {one_line(reason)}" for run, status, reason in problems
        ]
    continued = text_lines(results)
    if continued:
        out.append("")
        out.append("Continued runs:" if not md else "**Continued runs:**\n")
        out += [f"- {one_line(line)}" for line in continued]
    if tips:  # the tips section holds these: each tip is a row of its table, best_config its last lines
        shown = [f for f in shown if f.kind not in ("tip", "best_config")]
    if shown:
        out.append("")
        out.append(
            "Findings, most of the step or gap first:"
            if not md
            else "**Findings, most of the step or gap first:**\n"
        )
        limit = len(shown) if show_all else words.MAX_FINDINGS
        for f in shown[:limit]:
            out += _finding_lines(f, details, md)
        if len(shown) > limit:
            out.append(f"({len(shown) - limit} more findings: --all shows them, --details their figures)")
    return "\n".join(out) + "\n"


def tips_by_directory(results: Results) -> pd.DataFrame:
    """The tips table of `bench tune` directories (reports.tips), with a first column naming each row's
    results directory when several tunes are merged: rows of two tunes of one device read the same."""
    rows = tip_rows(results)
    table = tips_table(results, rows)
    index = results.runs.index
    dirs = [{str(results.runs.loc[k, "results_dir"]) for k in r.runs if k in index} for r in rows]
    if len(set().union(*dirs)) > 1:
        labels = dir_labels(results)
        table.insert(0, "results", [", ".join(sorted(labels[d] for d in ds)) or "-" for ds in dirs])
    return table


def _tips_text(results: Results, findings: list[Finding], md: bool) -> str:
    """The tips table and the best configurations (the diagnosis's best_config findings, which name their
    directory where two would read the same); "" without a tune."""
    table = tips_by_directory(results)
    if table.empty:
        return ""
    out = [_md_table(table) if md else _text_table(table), ""]
    out += [f"- {one_line(f.sentence)}" for f in findings if f.kind == "best_config"]
    return "\n".join(out) + "\n"


def _guarded(results: Results, what: str, make: Any, empty: Any) -> Any:
    """A section that cannot be made is left out with one warning, never the whole report."""
    try:
        return make()
    except Exception as e:  # noqa: BLE001 - one damaged tune must not take the report down
        dirs = ", ".join(
            s.get("_path", "?") for s in results.sweeps if (s.get("spec") or {}).get("tune") or s.get("tune")
        )
        results.warnings.append(
            f"{dirs or 'these results'}: the {what} could not be made ({type(e).__name__}: {e}): left out"
        )
        return empty
