"""Read results directories into pandas frames: runs, steps, evals, hosts.

The files are read by bench.results (the one module that owns the format: schema checks, strict JSON,
the run, steps, evals and profile readers); this module only builds the frames. Several directories
(several machines) merge into one `Results`; each run is keyed `host/run_id`. No torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.results import (
    LOSS_NEUTRAL_TRAIN_KEYS,  # noqa: F401 - the reports read it from here
    STEPS_HEADER,
    ResultsError,
    config_key,  # noqa: F401 - the reports read it from here
    derived_columns,
    read_evals,
    read_profile,
    read_steps,
)
from bench.results import Results as DirResults

ReportError = ResultsError  # results that cannot be reported on: one line, exit 2

SUMMARY_KEYS = (
    "ms_median", "ms_p10", "ms_p90", "ms_mean", "tokens_per_s", "achieved_flops_per_s", "mfu",
    "mfu_vs_a100", "final_train_loss", "final_val_loss", "iters_done", "warmup_iters", "first_step_ms",
    "eval_ms_total", "wall_s", "peak_mem_bytes", "peak_mem_kind", "host_load",
)  # fmt: skip

STEP_COLUMNS = ["key", "iter", "ms", "loss", "lr", "phase"]
EVAL_COLUMNS = ["key", "iter", "split", "loss", "ms"]


@dataclass
class Results:
    """Everything a report needs, merged over results directories.

    runs: one row per run (index `key` = host/run_id), run.json flattened (model.*, train.*, summary
    keys at top level, peak_value/peak_source/peak_detail, config_key), and `name`: the run's name
    without its host, unique within the host (run_id, or DIR/run_id when two directories of one host
    hold the same run id).
    steps: key, iter, ms, loss, lr, phase.  evals: key, iter, split, loss, ms.
    hosts: one row per results directory (host, path, CPU, GPUs, software, command).
    """

    runs: pd.DataFrame
    steps: pd.DataFrame
    evals: pd.DataFrame
    hosts: pd.DataFrame
    run_meta: dict[str, dict] = field(default_factory=dict)  # key -> run.json as written
    sweeps: list[dict] = field(default_factory=list)  # sweep.json as written, plus "_path"
    profiles: dict[str, dict] = field(default_factory=dict)  # key -> profile.json (bench run --profile)
    warnings: list[str] = field(default_factory=list)  # one line each: what was left out or ignored, and why
    _by_key: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict, repr=False)
    # name -> key -> (start, stop): each run's rows are contiguous in steps and evals as loaded
    _spans: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict, repr=False)
    _spanned: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _multi_host: tuple[pd.DataFrame, bool] | None = field(default=None, repr=False)
    # name -> (the frame, its columns as numpy arrays): made once per frame for arrays_of
    _arrays: dict[str, tuple[pd.DataFrame, dict[str, np.ndarray]]] = field(default_factory=dict, repr=False)
    _records: tuple[pd.DataFrame, dict[Any, dict[str, Any]]] | None = field(default=None, repr=False)

    def _group(self, name: str, key: str) -> pd.DataFrame:
        df = getattr(self, name)
        spans = self._spans.get(name)
        if spans is not None and self._spanned.get(name) is df:  # the frame as loaded
            start, stop = spans.get(key, (0, 0))
            return df.iloc[start:stop]
        if name not in self._by_key:
            self._by_key[name] = {k: g for k, g in df.groupby("key", sort=False)} if len(df) else {}
        got = self._by_key[name].get(key)
        return got if got is not None else df.iloc[0:0]

    def arrays_of(self, name: str, key: str) -> dict[str, np.ndarray]:
        """One run's "steps" or "evals" rows as numpy columns (not "key"), in the order steps_of/evals_of give;
        read-only views. Each column becomes an array once per frame, so a rule over 1,500 runs does no
        pandas work per run."""
        df = getattr(self, name)
        spans = self._spans.get(name)
        if spans is None or self._spanned.get(name) is not df:  # a frame changed after loading
            g = self._group(name, key)
            return {c: g[c].to_numpy() for c in g.columns if c != "key"}
        cached = self._arrays.get(name)
        if cached is None or cached[0] is not df:
            columns = {c: df[c].to_numpy() for c in df.columns if c != "key"}
            for a in columns.values():
                a.flags.writeable = False  # views of the frame's data: a rule must not change them
            cached = self._arrays[name] = (df, columns)
        start, stop = spans.get(key, (0, 0))
        return {c: a[start:stop] for c, a in cached[1].items()}

    def steps_of(self, key: str) -> pd.DataFrame:
        """steps.csv rows of one run."""
        return self._group("steps", key)

    def evals_of(self, key: str) -> pd.DataFrame:
        """evals.csv rows of one run."""
        return self._group("evals", key)

    def records(self, frame: pd.DataFrame | None = None) -> list[dict[str, Any]]:
        """Each run's row of `runs` as a dict (the Python values iterrows gives, without a Series per row), in the
        order of `frame`'s index (rows of `runs`, e.g. ok_runs() or a sorted copy; default: `runs`). Made once
        per runs frame: a 1,500-run report asks for them several times."""
        runs = self.runs
        cached = self._records
        if cached is None or cached[0] is not runs:
            cached = self._records = (runs, dict(zip(runs.index, runs.to_dict("records"), strict=True)))
        by_key = cached[1]
        return [by_key[k] for k in (runs.index if frame is None else frame.index)]

    def ok_runs(self) -> pd.DataFrame:
        """Runs that finished with timings."""
        r = self.runs
        return r[(r["status"] == "ok") & r["ms_median"].notna()]

    @property
    def multi_host(self) -> bool:
        runs = self.runs
        cached = self._multi_host
        if cached is None or cached[0] is not runs:  # asked per sentence: counted once per runs frame
            cached = self._multi_host = (runs, runs["host"].nunique() > 1 if len(runs) else False)
        return cached[1]

    def label(self, key: str) -> str:
        """How a run is named in sentences: its name (run_id), or host/name when several hosts are merged."""
        return key if self.multi_host else str(self.runs.loc[key, "name"])

    def device_label(self, key: str, dtype: str | None = None) -> str:
        """'cuda:0 (NVIDIA H100 80GB HBM3) bf16', with ' on HOST' when several hosts are merged."""
        runs = self.runs  # single cells, not the row: asked for every run of a 1,500-run report
        device = runs.at[key, "device"]
        name = runs.at[key, "device_name"] if "device_name" in runs.columns else None
        text = str(device) + (f" ({name})" if name and name != device else "")
        text += f" {dtype}" if dtype else ""
        return text + (f" on {runs.at[key, 'host']}" if self.multi_host else "")

    def hwinfo_for(self, key: str) -> dict:
        """The hwinfo snapshot of the directory a run came from."""
        path = self.runs.loc[key, "results_dir"]
        for s in self.sweeps:
            if s["_path"] == path:
                return s.get("hwinfo") or {}
        return {}


def _is_results_dir(p: Path) -> bool:
    try:
        return (p / "sweep.json").is_file()
    except PermissionError:
        raise ReportError(f"{p}: permission denied: ask its owner for read access") from None
    except OSError:
        return False


def _subdirs(p: Path) -> list[Path]:
    try:
        return sorted(d for d in p.iterdir() if d.is_dir())
    except PermissionError:
        raise ReportError(f"{p}: permission denied: ask its owner for read access") from None


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Results directories from the paths given; a folder of results directories expands to them."""
    out: list[Path] = []
    for p in map(Path, paths):
        if _is_results_dir(p):
            out.append(p)
        elif p.is_dir() and (subs := [d for d in _subdirs(p) if _is_results_dir(d)]):
            out.extend(subs)
        elif p.suffix.lower() in (".html", ".htm"):
            raise ReportError(f"{p} is not a results directory: to name the report file, use --html={p}")
        elif not p.exists():
            raise ReportError(f"{p}: no such directory")
        elif p.name == "sweep.json" and _is_results_dir(p.parent):
            raise ReportError(f"{p} is a file: pass its directory, {p.parent}")
        elif not p.is_dir():
            raise ReportError(f"{p} is a file, not a results directory: pass what `bench run --out` wrote")
        else:
            raise ReportError(
                f"{p} is not a results directory (no sweep.json): pass what `bench run --out` wrote"
            )
    seen: set[Path] = set()
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]


def newest_results_dir(root: str | Path = "results") -> Path:
    """The most recently written results directory under root."""
    root = Path(root)
    candidates = [d for d in _subdirs(root) if _is_results_dir(d)] if root.is_dir() else []
    if not candidates:
        raise ReportError(f"no results directories under ./{root}: run `bench run` first or pass RESULTS_DIR")
    return max(candidates, key=lambda d: (d / "sweep.json").stat().st_mtime)


def _flatten_run(meta: dict, key: str, name: str, run_dir: Path, results_dir: Path, sweep: dict) -> dict:
    row: dict[str, Any] = {
        "key": key,
        "name": name,
        "run_id": meta.get("run_id") or run_dir.name,
        "host": meta.get("host") or sweep.get("host") or "?",
        "results_dir": str(results_dir),
        "run_dir": str(run_dir),
        "source": meta.get("source") or sweep.get("source") or "devicebench",
        "source_file": meta.get("source_file"),
        "status": meta.get("status") or "unknown",
        "error": meta.get("error"),
        "device": meta.get("device") or "?",
        "device_type": meta.get("device_type") or str(meta.get("device") or "?").split(":")[0],
        "device_name": meta.get("device_name") or meta.get("device"),
        "dtype": meta.get("dtype"),
        "batch_size": meta.get("batch_size"),
        "block_size": meta.get("block_size"),
        "compile": meta.get("compile"),
        "threads": meta.get("threads"),
        "backend": meta.get("backend"),
        "seed": meta.get("seed"),
        "flops_per_token": meta.get("flops_per_token"),
        "flops_per_iter": meta.get("flops_per_iter"),
        "tokens_per_iter": meta.get("tokens_per_iter"),
        "started": meta.get("started"),
        "finished": meta.get("finished"),
        "assumed": ", ".join(meta.get("assumed") or []),
    }
    peak = meta.get("peak_flops") or {}
    row["peak_value"] = peak.get("value")
    row["peak_source"] = peak.get("source") or "unknown"
    row["peak_detail"] = peak.get("detail") or ""
    for k, v in (meta.get("model") or {}).items():
        row[f"model.{k}"] = v
    for k, v in (meta.get("train") or {}).items():
        row[f"train.{k}"] = v
    summary = meta.get("summary") or {}
    for k in SUMMARY_KEYS:
        row[k] = summary.get(k)
    row.update(derived_columns(meta, sweep))  # tokens/s, MFU, energy, ...: computed once, in bench.results
    return row


def _dir_labels(dirs: list[Path]) -> dict[Path, str]:
    """The fewest trailing path parts that tell these directories apart (their names when those differ)."""
    parts = {d: Path(d).resolve().parts for d in dirs}
    longest = max((len(p) for p in parts.values()), default=1)
    for n in range(1, longest + 1):
        labels = {d: "/".join(p[-n:]) for d, p in parts.items()}
        if len(set(labels.values())) == len(labels):
            return labels
    return {d: str(Path(d).resolve()) for d in dirs}


def _names(entries: list[tuple[str, str, Path, Path]]) -> list[str]:
    """A unique name within its host for each (host, run_id, results_dir, run_dir): the run_id where it
    is unique, else DIR/run_id with DIR the shortest path suffix that tells the directories apart, else
    DIR/runs/<directory name> (one directory holding two runs with one run_id), numbered as a last resort."""
    names = [run_id for _, run_id, _, _ in entries]
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (host, run_id, _, _) in enumerate(entries):
        groups.setdefault((host, run_id), []).append(i)
    for idx in groups.values():
        if len(idx) < 2:
            continue
        labels = _dir_labels(list({entries[i][2] for i in idx}))
        for i in idx:
            _, run_id, d, rd = entries[i]
            names[i] = f"{labels[d]}/{run_id}"
        counts: dict[str, int] = {}
        for i in idx:
            counts[names[i]] = counts.get(names[i], 0) + 1
        for i in idx:
            if counts[names[i]] > 1:
                names[i] = f"{labels[entries[i][2]]}/runs/{entries[i][3].name}"
    seen: dict[tuple[str, str], int] = {}
    for i, (host, *_rest) in enumerate(entries):
        n = seen[host, names[i]] = seen.get((host, names[i]), 0) + 1
        if n > 1:
            names[i] = f"{names[i]}#{n}"
    return names


def _frame(columns: dict[str, list], keys: list[tuple[str, int]], order: list[str]) -> pd.DataFrame:
    """One frame from the readers' columns, one chunk per run (float arrays, text as lists of str), built column
    by column in C; keys: each run's key and its number of rows, in order."""
    n_rows = sum(n for _, n in keys)
    # each run's key made a string once and repeated (not three million strings checked one by one)
    if n_rows:
        names = pd.Series([k for k, _ in keys]).array
        key_column: Any = names.take(np.repeat(np.arange(len(keys)), [n for _, n in keys]))
    else:
        key_column = []
    data: dict[str, Any] = {"key": key_column}
    for c in order[1:]:
        if c in ("split", "phase"):
            data[c] = [v for chunk in columns[c] for v in chunk]
        else:
            joined = np.concatenate(columns[c]) if columns[c] else np.empty(0)
            # the readers keep only whole iterations from 0 to 2**53
            data[c] = joined.astype("int64") if c == "iter" else joined.astype(float, copy=False)
    df = pd.DataFrame(data, columns=order)
    for c in ("key", "split", "phase"):
        if c in df.columns and not len(df):
            df[c] = df[c].astype(str)
    return df


def load_results(paths: list[str | Path] | str | Path) -> Results:
    """Read and merge results directories. Raises ReportError (exit_code 2) for unusable input; what can
    be left out (a bad row, a malformed profile, a field of the wrong type) is, with a line in `warnings`."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    dirs = expand_paths(list(paths))
    warnings: list[str] = []
    host_rows: list[dict] = []
    sweeps: list[dict] = []
    found: list[tuple[dict, Path, Path, dict]] = []  # (sweep, results dir, run dir, run.json)
    for d in dirs:
        loaded = DirResults.load(d, leave_out_corrupt=True)  # one bad run.json: a warning, not the report
        sweep = loaded.sweep
        sweep["_path"] = str(d)
        sweeps.append(sweep)
        host_rows.append(_host_row(sweep, d))
        for record in loaded.runs:
            warnings.extend(record.warnings)
            found.append((sweep, d, record.dir, record.meta))
        warnings.extend(loaded.left_out.values())
        warnings.extend(_runs_without_run_json(d, [r.dir for r in loaded.runs] + list(loaded.left_out)))
    warnings.extend(_one_sweep_twice(sweeps))
    entries = [
        (str(meta.get("host") or sweep.get("host") or "?"), str(meta.get("run_id") or rd.name), d, rd)
        for sweep, d, rd, meta in found
    ]
    names = _names(entries)
    rows: list[dict] = []
    run_meta: dict[str, dict] = {}
    profiles: dict[str, dict] = {}
    step_cols: dict[str, list] = {c: [] for c in STEP_COLUMNS}
    eval_cols: dict[str, list] = {c: [] for c in EVAL_COLUMNS}
    spans: dict[str, dict[str, tuple[int, int]]] = {"steps": {}, "evals": {}}
    ends = {"steps": 0, "evals": 0}  # rows read so far
    step_keys: list[tuple[str, int]] = []  # (key, rows) per run, in the order its rows are in the columns
    eval_keys: list[tuple[str, int]] = []
    for (sweep, d, rd, meta), (host, *_), name in zip(found, entries, names, strict=True):
        key = f"{host}/{name}"
        run_meta[key] = meta
        rows.append(_flatten_run(meta, key, name, rd, d, sweep))
        try:
            prof = read_profile(rd / "profile.json")
        except ResultsError as e:
            warnings.append(f"{e}: its step breakdown is left out")
            prof = None
        if prof is not None:
            profiles[key] = prof
        warm = (meta.get("summary") or {}).get("warmup_iters")
        for cols, rows_read in (
            (step_cols, read_steps(rd, int(warm) if isinstance(warm, (int, float)) else 0, arrays=True)),
            (eval_cols, read_evals(rd, arrays=True)),
        ):
            if rows_read.problem:
                warnings.append(rows_read.problem)
            elif cols is step_cols and not len(rows_read) and meta.get("status") == "ok":
                warnings.append(
                    f"{rd}: an ok run whose steps.csv is missing or has no rows: its loss curve and step "
                    "times are left out (its summary figures are kept)"
                )
            if rows_read.bad_rows:
                n = rows_read.bad_rows
                warnings.append(f"{rd}: {n} unreadable row{'s' if n != 1 else ''} left out of its CSV files")
            which = "steps" if cols is step_cols else "evals"
            start = ends[which]
            ends[which] = start + len(rows_read)
            spans[which][key] = (start, ends[which])
            (step_keys if cols is step_cols else eval_keys).append((key, len(rows_read)))
            for c, values in rows_read.columns.items():
                cols[c].append(values)  # one chunk per run, joined once in _frame
    runs = pd.DataFrame(rows)
    if runs.empty:
        runs = pd.DataFrame(columns=["key", "name", "status", "ms_median", "host", "run_id", "results_dir"])
    runs = runs.set_index("key", drop=False)
    for col in ("ms_median", "ms_p10", "ms_p90", "tokens_per_s", "mfu", "mfu_vs_a100", "peak_value",
                "first_step_ms", "final_train_loss", "final_val_loss", "achieved_flops_per_s"):  # fmt: skip
        if col in runs.columns:
            runs[col] = pd.to_numeric(runs[col], errors="coerce")
    steps_df = _frame({c: v for c, v in step_cols.items() if c != "key"}, step_keys, STEP_COLUMNS)
    evals_df = _frame({c: v for c, v in eval_cols.items() if c != "key"}, eval_keys, EVAL_COLUMNS)
    return Results(
        runs=runs,
        steps=steps_df,
        evals=evals_df,
        hosts=pd.DataFrame(host_rows),
        run_meta=run_meta,
        sweeps=sweeps,
        profiles=profiles,
        warnings=warnings,
        _spans=spans,
        _spanned={"steps": steps_df, "evals": evals_df},
    )


def _one_sweep_twice(sweeps: list[dict]) -> list[str]:
    """A line for each sweep_id that several directories share: one sweep read twice (a copy beside its
    original), whose runs would count twice; both are kept, told apart by their directory."""
    by_id: dict[str, list[str]] = {}
    for s in sweeps:
        if isinstance(s.get("sweep_id"), str) and s["sweep_id"]:
            by_id.setdefault(s["sweep_id"], []).append(str(s["_path"]))
    return [
        f"{', '.join(paths)} share sweep_id {sweep_id!r}: one sweep read twice (a copy?); its runs count twice here"
        for sweep_id, paths in by_id.items()
        if len(paths) > 1
    ]


def _runs_without_run_json(results_dir: Path, listed: list[Path]) -> list[str]:
    """A line for each run directory whose steps.csv holds steps but which has no run.json: a run that
    never started has only the CSV headers; one with steps lost its run.json, and is left out."""
    try:
        seen = set(listed)
        others = sorted(p for p in (results_dir / "runs").iterdir() if p.is_dir() and p not in seen)
    except OSError:
        return []
    out = []
    for p in others:
        try:
            size = (p / "steps.csv").stat().st_size
        except OSError:
            continue
        if size > len(",".join(STEPS_HEADER)) + 2:
            out.append(
                f"{p}: steps.csv holds steps but there is no run.json: this run is left out (rerun it)"
            )
    return out


def _host_row(sweep: dict, path: Path) -> dict:
    hw = sweep.get("hwinfo") or {}
    cpu = hw.get("cpu") or {}
    sw = sweep.get("software") or {}
    gpus = hw.get("gpus") or []
    return {
        "host": sweep.get("host") or "?",
        "path": str(path),
        "sweep_id": sweep.get("sweep_id"),
        "created": sweep.get("created"),
        "source": sweep.get("source") or "devicebench",
        "command": sweep.get("command"),
        "project_version": sweep.get("project_version"),
        "python": sw.get("python"),
        "torch": sw.get("torch"),
        "cuda": sw.get("cuda"),
        "platform": sw.get("platform"),
        "cpu_model": cpu.get("model_name"),
        "physical_cores": cpu.get("physical_cores"),
        "logical_cores": cpu.get("logical_cores"),
        "cpu_features": list(cpu.get("features") or []),
        "gpus": ", ".join(str(g.get("name", "?")) if isinstance(g, dict) else str(g) for g in gpus),
    }


Columns = pd.DataFrame | Mapping[str, np.ndarray]  # a run's rows: its frame, or Results.arrays_of


def _eval_ms_per_iter(evals: Columns) -> tuple[np.ndarray, np.ndarray]:
    """(iterations with an eval, ascending; the ms of all evals at each), NaN ms counted as 0."""
    e_iter = np.asarray(evals["iter"], dtype=float)
    if not len(e_iter):
        return e_iter, e_iter.copy()
    uniq, inverse = np.unique(e_iter, return_inverse=True)
    total = np.zeros(len(uniq))
    np.add.at(total, inverse, np.nan_to_num(np.asarray(evals["ms"], dtype=float), nan=0.0))
    return uniq, total


def _sorted_steps(steps: Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(iter, ms, is-after-eval) of a run's steps in iteration order."""
    it = np.asarray(steps["iter"], dtype=float)
    ms = np.asarray(steps["ms"], dtype=float)
    after = np.asarray(np.asarray(steps["phase"]) == "after_eval", dtype=bool)
    if len(it) > 1 and not (np.diff(it) >= 0).all():
        order = np.argsort(it, kind="stable")
        it, ms, after = it[order], ms[order], after[order]
    return it, ms, after


def _spanned(it: np.ndarray, ms: np.ndarray, after: np.ndarray) -> np.ndarray:
    if not len(it):
        return ms
    gap = np.diff(it, prepend=it[0] - 1).clip(min=1)
    median = float(np.nanmedian(ms[~after])) if (~after).any() else 0.0
    return np.nan_to_num(np.where(after, ms + (gap - 1) * median, ms * gap))


def step_ms_spanned(steps: Columns) -> np.ndarray:
    """ms of train time each steps.csv row stands for (rows sorted by iter).

    A log that prints every N iters has one row per N steps: the row stands for N steps at its time,
    or, for an `after_eval` row, its own (eval-inclusive) time plus N-1 steps at the median.
    """
    return _spanned(*_sorted_steps(steps))


def wall_clock(steps: Columns, evals: Columns) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since the run began at the end of each step (in iteration order) and of each eval iteration
    (ascending; all the evals at one iteration together): steps plus evals. numpy only: a report of
    1,500 runs calls this for each."""
    it, ms, after = _sorted_steps(steps)
    step_cum = np.cumsum(_spanned(it, ms, after))
    e_it, e_ms = _eval_ms_per_iter(evals)
    if after.any():
        e_ms = np.zeros_like(e_ms)  # an imported log's step times already include its evals
    e_cum = np.cumsum(e_ms)
    # evals at iter i run before step i; a leading 0 stands for "none yet" (a run with no evals, or no steps)
    evals_before_step = np.searchsorted(e_it, it, side="right")
    step_end = step_cum + np.concatenate([[0.0], e_cum])[evals_before_step]
    steps_before_eval = np.searchsorted(it, e_it, side="left")
    eval_end = np.concatenate([[0.0], step_cum])[steps_before_eval] + e_cum
    return step_end / 1e3, eval_end / 1e3
