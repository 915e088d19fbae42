"""Read results directories (schema devicebench/2; reads 1) into pandas frames: runs, steps, evals, hosts.

Several directories (several machines) merge into one `Results`; each run is keyed `host/run_id`.
Reading is json + pandas only: no torch, no bench modules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SCHEMA = "devicebench/2"
SCHEMA_VERSION = 2

# Train keys that change what a run computes (its loss curve); the others only change when it is
# evaluated or which steps are timed.
LOSS_NEUTRAL_TRAIN_KEYS = ("eval_interval", "timing_warmup_iters")

SUMMARY_KEYS = (
    "ms_median", "ms_p10", "ms_p90", "ms_mean", "tokens_per_s", "achieved_flops_per_s", "mfu",
    "mfu_vs_a100", "final_train_loss", "final_val_loss", "iters_done", "warmup_iters", "first_step_ms",
    "eval_ms_total", "wall_s", "peak_mem_bytes", "peak_mem_kind", "host_load",
)  # fmt: skip

STEP_COLUMNS = ["key", "iter", "ms", "loss", "lr", "phase"]
EVAL_COLUMNS = ["key", "iter", "split", "loss", "ms"]


class ReportError(RuntimeError):
    """Results that cannot be reported on (not a results directory, corrupt, newer schema)."""

    exit_code = 2


@dataclass
class Results:
    """Everything a report needs, merged over results directories.

    runs: one row per run (index `key` = host/run_id), run.json flattened (model.*, train.*, summary
    keys at top level, peak_value/peak_source/peak_detail, config_key).
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
    _by_key: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict, repr=False)

    def _group(self, name: str, key: str) -> pd.DataFrame:
        if name not in self._by_key:
            df = getattr(self, name)
            self._by_key[name] = {k: g for k, g in df.groupby("key", sort=False)} if len(df) else {}
        got = self._by_key[name].get(key)
        return got if got is not None else getattr(self, name).iloc[0:0]

    def steps_of(self, key: str) -> pd.DataFrame:
        """steps.csv rows of one run."""
        return self._group("steps", key)

    def evals_of(self, key: str) -> pd.DataFrame:
        """evals.csv rows of one run."""
        return self._group("evals", key)

    def ok_runs(self) -> pd.DataFrame:
        """Runs that finished with timings."""
        r = self.runs
        return r[(r["status"] == "ok") & r["ms_median"].notna()]

    @property
    def multi_host(self) -> bool:
        return self.runs["host"].nunique() > 1 if len(self.runs) else False

    def label(self, key: str) -> str:
        """How a run is named in sentences: run_id, or host/run_id when several hosts are merged."""
        return key if self.multi_host else str(self.runs.loc[key, "run_id"])

    def device_label(self, key: str, dtype: str | None = None) -> str:
        """'cuda:0 (NVIDIA H100 80GB HBM3) bf16', with ' on HOST' when several hosts are merged."""
        r = self.runs.loc[key]
        name = r.get("device_name")
        text = str(r["device"]) + (f" ({name})" if name and name != r["device"] else "")
        text += f" {dtype}" if dtype else ""
        return text + (f" on {r['host']}" if self.multi_host else "")

    def hwinfo_for(self, key: str) -> dict:
        """The hwinfo snapshot of the directory a run came from."""
        path = self.runs.loc[key, "results_dir"]
        for s in self.sweeps:
            if s["_path"] == path:
                return s.get("hwinfo") or {}
        return {}


def check_schema(value: Any, where: Path | str) -> None:
    """Refuse a file from a newer schema (or none) with one line that says what to do."""
    if not isinstance(value, str) or not value.startswith("devicebench/"):
        raise ReportError(f"{where}: not a devicebench results file (schema {value!r})")
    try:
        version = int(value.split("/", 1)[1])
    except ValueError:
        raise ReportError(f"{where}: unreadable schema {value!r}") from None
    if version > SCHEMA_VERSION:
        raise ReportError(
            f"{where} was written with schema {value}, newer than this devicebench reads ({SCHEMA}): "
            "upgrade devicebench"
        )


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReportError(f"{path} is corrupt ({e}): remove it or rerun the sweep") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path} is corrupt: expected a JSON object")
    check_schema(data.get("schema"), path)
    return data


PROFILE_SCHEMA_VERSION = 1


def _read_profile(path: Path) -> dict:
    """profile.json (docs/profile-schema.md), checked like the other files."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReportError(f"{path} is corrupt ({e}): remove it or rerun with --profile") from None
    tag = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(tag, str) or not tag.startswith("devicebench-profile/"):
        raise ReportError(f"{path}: not a devicebench profile (schema {tag!r})")
    if not tag.rsplit("/", 1)[1].isdigit() or int(tag.rsplit("/", 1)[1]) > PROFILE_SCHEMA_VERSION:
        raise ReportError(
            f"{path} was written with schema {tag}, newer than this devicebench reads: upgrade devicebench"
        )
    return data


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Results directories from the paths given; a folder of results directories expands to them."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "sweep.json").is_file():
            out.append(p)
        elif p.is_dir() and (subs := sorted(d for d in p.iterdir() if (d / "sweep.json").is_file())):
            out.extend(subs)
        elif not p.exists():
            raise ReportError(f"{p}: no such directory")
        else:
            raise ReportError(
                f"{p} is not a results directory (no sweep.json): pass what `bench run --out` wrote"
            )
    seen: set[Path] = set()
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]


def newest_results_dir(root: str | Path = "results") -> Path:
    """The most recently written results directory under root."""
    root = Path(root)
    candidates = [d for d in root.glob("*") if (d / "sweep.json").is_file()] if root.is_dir() else []
    if not candidates:
        raise ReportError(f"no results directories under ./{root}: run `bench run` first or pass RESULTS_DIR")
    return max(candidates, key=lambda d: (d / "sweep.json").stat().st_mtime)


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=columns)
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ReportError(f"{path} is corrupt ({e}): remove it or rerun the run") from None


def config_key(meta: dict) -> str:
    """What decides a run's loss curve: model, train (minus timing-only keys), batch, block, seed."""
    train = {k: v for k, v in (meta.get("train") or {}).items() if k not in LOSS_NEUTRAL_TRAIN_KEYS}
    cfg = {
        "model": meta.get("model") or {},
        "train": train,
        "batch_size": meta.get("batch_size"),
        "block_size": meta.get("block_size"),
    }
    return json.dumps(cfg, sort_keys=True, default=str)


def _flatten_run(meta: dict, key: str, run_dir: Path, results_dir: Path, sweep: dict) -> dict:
    row: dict[str, Any] = {
        "key": key,
        "run_id": meta.get("run_id", run_dir.name),
        "host": meta.get("host") or sweep.get("host") or "?",
        "results_dir": str(results_dir),
        "run_dir": str(run_dir),
        "source": meta.get("source") or sweep.get("source") or "devicebench",
        "source_file": meta.get("source_file"),
        "status": meta.get("status", "unknown"),
        "error": meta.get("error"),
        "device": meta.get("device"),
        "device_type": meta.get("device_type") or str(meta.get("device") or "?").split(":")[0],
        "device_name": meta.get("device_name") or meta.get("device"),
        "dtype": meta.get("dtype"),
        "batch_size": meta.get("batch_size"),
        "block_size": meta.get("block_size"),
        "compile": meta.get("compile"),
        "threads": meta.get("threads"),
        "seed": meta.get("seed"),
        "flops_per_token": meta.get("flops_per_token"),
        "flops_per_iter": meta.get("flops_per_iter"),
        "tokens_per_iter": meta.get("tokens_per_iter"),
        "started": meta.get("started"),
        "finished": meta.get("finished"),
        "assumed": ", ".join(meta.get("assumed") or []),
        "config_key": config_key(meta),
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
    return row


def load_results(paths: list[str | Path] | str | Path) -> Results:
    """Read and merge results directories. Raises ReportError (exit_code 2) for unusable input."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    dirs = expand_paths(list(paths))
    rows: list[dict] = []
    host_rows: list[dict] = []
    steps: list[pd.DataFrame] = []
    evals: list[pd.DataFrame] = []
    run_meta: dict[str, dict] = {}
    sweeps: list[dict] = []
    profiles: dict[str, dict] = {}
    for d in dirs:
        sweep = _read_json(d / "sweep.json")
        sweep["_path"] = str(d)
        sweeps.append(sweep)
        host_rows.append(_host_row(sweep, d))
        runs_dir = d / "runs"
        run_dirs = sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
        for rd in run_dirs:
            if not (rd / "run.json").is_file():
                continue  # a run that never wrote its first file
            meta = _read_json(rd / "run.json")
            host = meta.get("host") or sweep.get("host") or "?"
            key = f"{host}/{meta.get('run_id', rd.name)}"
            if key in run_meta:
                key = f"{host}/{d.name}/{meta.get('run_id', rd.name)}"
            run_meta[key] = meta
            rows.append(_flatten_run(meta, key, rd, d, sweep))
            if (rd / "profile.json").is_file():
                profiles[key] = _read_profile(rd / "profile.json")
            s = _read_csv(rd / "steps.csv", STEP_COLUMNS[1:])
            if len(s):
                if "phase" not in s.columns:
                    warm = int((meta.get("summary") or {}).get("warmup_iters") or 0)
                    s["phase"] = np.where(np.arange(len(s)) < warm, "warmup", "timed")
                s.insert(0, "key", key)
                steps.append(s)
            e = _read_csv(rd / "evals.csv", EVAL_COLUMNS[1:])
            if len(e):
                e.insert(0, "key", key)
                evals.append(e)
    runs = pd.DataFrame(rows)
    if runs.empty:
        runs = pd.DataFrame(columns=["key", "status", "ms_median", "host", "run_id"])
    runs = runs.set_index("key", drop=False)
    for col in ("ms_median", "ms_p10", "ms_p90", "tokens_per_s", "mfu", "mfu_vs_a100", "peak_value",
                "first_step_ms", "final_train_loss", "final_val_loss", "achieved_flops_per_s"):  # fmt: skip
        if col in runs.columns:
            runs[col] = pd.to_numeric(runs[col], errors="coerce")
    steps_df = pd.concat(steps, ignore_index=True) if steps else pd.DataFrame(columns=STEP_COLUMNS)
    evals_df = pd.concat(evals, ignore_index=True) if evals else pd.DataFrame(columns=EVAL_COLUMNS)
    for df, cols in ((steps_df, ("iter", "ms", "loss", "lr")), (evals_df, ("iter", "loss", "ms"))):
        for c in cols:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    steps_df["phase"] = steps_df["phase"].astype(str)
    return Results(
        runs=runs,
        steps=steps_df,
        evals=evals_df,
        hosts=pd.DataFrame(host_rows),
        run_meta=run_meta,
        sweeps=sweeps,
        profiles=profiles,
    )


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


def step_ms_spanned(steps: pd.DataFrame) -> np.ndarray:
    """ms of train time each steps.csv row stands for (rows sorted by iter).

    A log that prints every N iters has one row per N steps: the row stands for N steps at its time,
    or, for an `after_eval` row, its own (eval-inclusive) time plus N-1 steps at the median.
    """
    it = steps["iter"].to_numpy(dtype=float)
    ms = steps["ms"].to_numpy(dtype=float)
    if not len(it):
        return ms
    after = (steps["phase"] == "after_eval").to_numpy()
    gap = np.diff(it, prepend=it[0] - 1).clip(min=1)
    median = float(np.nanmedian(ms[~after])) if (~after).any() else 0.0
    return np.nan_to_num(np.where(after, ms + (gap - 1) * median, ms * gap))


def wall_clock(steps: pd.DataFrame, evals: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since the run began at the end of each step and of each eval (steps plus evals)."""
    s = steps.sort_values("iter")
    it = s["iter"].to_numpy(dtype=float)
    after = (s["phase"] == "after_eval").to_numpy()
    step_cum = np.cumsum(step_ms_spanned(s))
    e = evals.groupby("iter")["ms"].sum(min_count=1).fillna(0.0).sort_index()
    e_it, e_ms = e.index.to_numpy(dtype=float), e.to_numpy(dtype=float)
    if after.any():
        e_ms = np.zeros_like(e_ms)  # an imported log's step times already include its evals
    e_cum = np.cumsum(e_ms)
    # evals at iter i run before step i
    evals_before_step = np.searchsorted(e_it, it, side="right")
    step_end = step_cum + np.where(evals_before_step > 0, e_cum[evals_before_step - 1], 0.0)
    steps_before_eval = np.searchsorted(it, e_it, side="left")
    eval_end = np.where(steps_before_eval > 0, step_cum[steps_before_eval - 1], 0.0) + e_cum
    return step_end / 1e3, eval_end / 1e3
