"""Report findings that must not claim more than the data shows (findings of a review against real results).

Each case is built with tests/fixtures.py and edited the way a real `bench tune` leaves it (a time-capped run
whose last eval is before its last iteration, runs without evals, a fused-AdamW variant in the tune knobs).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from reports.diagnosis import (
    batch_scaling_findings,
    config_findings,
    cpu_dtype_findings,
    diagnose,
    thread_findings,
)
from reports.load import load_results
from tests import fixtures as synthetic

SHORT = {"max_iters": 200, "lr_decay_iters": 200, "eval_interval": 50}


def kinds(findings, kind):
    return [f for f in findings if f.kind == kind]


def _edit_meta(run_dir: Path, **changes) -> None:
    path = run_dir / "run.json"
    meta = json.loads(path.read_text())
    for k, v in changes.items():
        if k == "summary":
            meta["summary"].update(v)
        else:
            meta[k] = v
    path.write_text(json.dumps(meta))


def _stop_at(run_dir: Path, last_eval: int, iters_done: int) -> pd.DataFrame:
    """Make the run look time-capped: evals only up to last_eval, iters_done past it (as `bench tune` does)."""
    evals = pd.read_csv(run_dir / "evals.csv")
    evals = evals[evals["iter"] <= last_eval]
    evals.to_csv(run_dir / "evals.csv", index=False)
    final = evals[evals["iter"] == last_eval].set_index("split")["loss"]
    _edit_meta(
        run_dir,
        summary={
            "iters_done": iters_done,
            "final_val_loss": final["val"],
            "final_train_loss": final["train"],
        },
    )
    return evals


def _no_evals(run_dir: Path) -> None:
    (run_dir / "evals.csv").write_text("iter,split,loss,ms\n")
    _edit_meta(run_dir, summary={"final_val_loss": None, "final_train_loss": None})


def _fused(run_dir: Path) -> None:
    """The fused-AdamW variant of a `bench tune`: the setting is in run.json's tune knobs."""
    _edit_meta(run_dir, tune={"knobs": {"fused_adamw": True}})


def test_loss_gap_counts_the_tokens_of_the_eval_it_compares(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "b12", train=SHORT)
    b24 = synthetic.write_run(d, "b24", batch_size=24, train=SHORT)
    _stop_at(b24, last_eval=100, iters_done=124)  # the loss quoted is iter 100's, after 100 x 1536 tokens
    results = load_results(d)
    (m,) = kinds(config_findings(results, results.ok_runs()), "config_mismatch")
    per_run = m.evidence["per_run"]
    assert per_run["laptop/b24"]["final_val_iter"] == 100 and per_run["laptop/b12"]["final_val_iter"] == 200
    assert per_run["laptop/b24"]["tokens_at_final_val"] == 100 * 24 * 64 == 200 * 12 * 64
    assert per_run["laptop/b12"]["tokens_at_final_val"] == 200 * 12 * 64
    # equal tokens by the evals compared are never the reason; nothing else is either
    assert m.evidence["more"] == "laptop/b12" and m.evidence["tokens_ratio"] is None
    assert m.evidence["params_ratio"] is None and m.evidence["dtypes"] is None
    assert m.evidence["val_loss"] == [
        per_run["laptop/b24"]["final_val_eval_loss"],
        per_run["laptop/b12"]["final_val_eval_loss"],
    ]


def test_more_tokens_with_the_higher_loss_is_not_given_as_the_reason(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "b12", train=SHORT)
    synthetic.write_run(d, "b24", batch_size=24, train=SHORT, val_offset=1.0)  # 2x the tokens, higher val
    results = load_results(d)
    (m,) = kinds(config_findings(results, results.ok_runs()), "config_mismatch")
    # b24 read 2x the tokens but has the higher val loss: the lower-loss run had no more tokens
    assert m.evidence["more"] == "laptop/b12" and m.evidence["tokens_ratio"] is None
    # the other way round (the run with more tokens lower), the tokens are the reason, said plainly
    d2 = synthetic.write_sweep(tmp_path / "r2")
    synthetic.write_run(d2, "b12", train=SHORT)
    synthetic.write_run(d2, "b24", batch_size=24, train=SHORT, val_offset=-0.5)
    results = load_results(d2)
    (m,) = kinds(config_findings(results, results.ok_runs()), "config_mismatch")
    assert m.evidence["more"] == "laptop/b24" and m.evidence["tokens_ratio"] == pytest.approx(2.0)
    # equal val losses: "the same", never "higher"
    d3 = synthetic.write_sweep(tmp_path / "r3")
    synthetic.write_run(d3, "b12", train=SHORT)
    synthetic.write_run(d3, "b24", batch_size=24, train=SHORT)
    results = load_results(d3)
    (m,) = kinds(config_findings(results, results.ok_runs()), "config_mismatch")
    assert m.evidence["same_val_loss"] and m.evidence["more"] is None and m.severity == "info"


def test_loss_agree_names_only_runs_with_val_losses_and_says_what_they_share(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r", hw=synthetic.hwinfo(physical_cores=2))
    synthetic.write_run(d, "default", threads=2, train=SHORT)
    synthetic.write_run(d, "compiled", compile="on", threads=2, train=SHORT)
    _no_evals(synthetic.write_run(d, "bf16", dtype="bf16", threads=2, train=SHORT))
    _no_evals(synthetic.write_run(d, "threads1", threads=1, train=SHORT))
    fused = synthetic.write_run(d, "fused", threads=2, train=SHORT)
    _no_evals(fused)
    _fused(fused)
    results = load_results(d)
    (f,) = [f for f in config_findings(results, results.ok_runs()) if f.kind.startswith("loss_")]
    assert f.kind == "loss_agree"
    assert sorted(f.runs) == ["laptop/compiled", "laptop/default"]
    val = results.evals[results.evals["split"] == "val"]
    shared = val.pivot(index="iter", columns="key", values="loss").dropna()
    assert f.evidence["shared_evals"] == len(shared) == 5
    assert f.evidence["dtypes"] == ["fp32"]
    assert f.evidence["differ_in"] in ({"compile": ["on", "off"]}, {"compile": ["off", "on"]})
    assert f.evidence["tolerance"] == 0.02  # both named runs are fp32


def test_no_loss_agreement_when_fewer_than_two_runs_have_val_losses(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "default", train=SHORT)
    _no_evals(synthetic.write_run(d, "compiled", compile="on", train=SHORT))
    _no_evals(synthetic.write_run(d, "bf16", dtype="bf16", train=SHORT))
    findings = diagnose(load_results(d))
    assert not [f for f in findings if f.kind in ("loss_agree", "loss_disagree")]


def test_loss_agreement_says_how_the_runs_differ_in_threads_and_optimizer(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r", hw=synthetic.hwinfo(physical_cores=2))
    synthetic.write_run(d, "default", threads=2, train=SHORT)
    _fused(synthetic.write_run(d, "fused", threads=1, train=SHORT))
    results = load_results(d)
    (f,) = [f for f in config_findings(results, results.ok_runs()) if f.kind.startswith("loss_")]
    assert f.evidence["differ_in"] == {"threads": ["2", "1"], "AdamW": ["foreach", "fused"]}


def _tune_like(tmp_path) -> tuple[Path, dict]:
    """A 2-core CPU without native bf16: the default, a fused-AdamW, a 1-thread and a bf16 variant."""
    d = synthetic.write_sweep(tmp_path / "r", hw=synthetic.hwinfo(physical_cores=2, features=("avx2", "fma")))
    synthetic.write_run(d, "default", threads=2, ms=64.0, train=SHORT)
    _fused(synthetic.write_run(d, "fused", threads=2, ms=67.0, train=SHORT, seed=1))
    synthetic.write_run(d, "threads1", threads=1, ms=83.0, train=SHORT, seed=2)
    synthetic.write_run(d, "bf16", dtype="bf16", threads=2, ms=956.0, train=SHORT, seed=3)
    results = load_results(d)
    ms = {k.split("/")[1]: float(v) for k, v in results.runs["ms_median"].items()}
    return d, ms


def test_cpu_dtype_compares_with_the_fp32_run_that_differs_in_dtype_alone(tmp_path):
    d, ms = _tune_like(tmp_path)
    results = load_results(d)
    (b,) = cpu_dtype_findings(results, results.ok_runs())
    assert b.evidence["fp32_ms_median"] == pytest.approx(ms["default"])  # not the fused or 1-thread run
    assert b.evidence["slower"] and b.evidence["support"] == "emulated"
    assert b.explains == pytest.approx(1 - ms["default"] / ms["bf16"])


def test_cpu_dtype_twin_with_an_unknown_optimizer_setting_is_the_default_foreach(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r", hw=synthetic.hwinfo(physical_cores=2, features=("avx2",)))
    synthetic.write_run(d, "fp32", threads=2, ms=50.0, train=SHORT)  # no optimizer recorded: foreach
    _fused(synthetic.write_run(d, "fused", threads=2, ms=90.0, train=SHORT, seed=1))
    synthetic.write_run(d, "bf16", dtype="bf16", threads=2, ms=500.0, train=SHORT, seed=2)
    results = load_results(d)
    (b,) = cpu_dtype_findings(results, results.ok_runs())
    assert b.evidence["fp32_ms_median"] == pytest.approx(results.runs.loc["laptop/fp32", "ms_median"])


def test_thread_finding_compares_runs_that_differ_in_threads_alone(tmp_path):
    d, ms = _tune_like(tmp_path)
    results = load_results(d)
    (t,) = thread_findings(results, results.ok_runs())
    assert t.evidence["ms_by_threads"] == pytest.approx({1: ms["threads1"], 2: ms["default"]})
    assert t.evidence["fastest_threads"] == 2
    # one run used 1 thread on 2 physical cores: not "one thread per physical core"
    assert t.evidence["verdict"] == "mixed"


def test_batch_scaling_series_keeps_the_optimizers_apart(tmp_path):
    d, ms = _tune_like(tmp_path)
    synthetic.write_run(d, "b48", batch_size=48, threads=2, ms=250.0, train=SHORT, seed=4)
    results = load_results(d)
    found = [f for f in batch_scaling_findings(results, results.ok_runs()) if "laptop/b48" in f.runs]
    (f,) = found
    assert "laptop/fused" not in f.runs
    assert f.evidence["ms_median"][0] == pytest.approx(ms["default"])


def test_no_shared_eval_iterations_is_said_only_when_true(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "a", train=SHORT)
    b = synthetic.write_run(d, "b", train=SHORT)
    evals = pd.read_csv(b / "evals.csv")
    evals["iter"] += 1  # no iteration in common with a
    evals.to_csv(b / "evals.csv", index=False)
    results = load_results(d)
    (f,) = [f for f in config_findings(results, results.ok_runs()) if f.kind.startswith("loss_")]
    assert f.evidence["shared_evals"] == 0
    assert f.evidence["final_val_iters"] == {"laptop/a": 200, "laptop/b": 201}


@pytest.mark.parametrize(
    ("edit", "fused"),
    [
        ({"fused_adamw": True}, True),
        ({"tune": {"knobs": {"fused_adamw": True}}}, True),
        ({"fused_adamw": "yes"}, False),  # not a true/false: unknown, the default foreach
        ({"tune": {"knobs": "garbage"}}, False),
        ({"tune": ["garbage"]}, False),
    ],
)
def test_the_fused_adamw_setting_is_read_once_and_a_damaged_one_is_the_default(tmp_path, edit, fused):
    from bench.results import atomic_write_json, read_json
    from tests.fixtures import write_run, write_sweep

    root = write_sweep(tmp_path / "r")
    d = write_run(root, "cpu-a")
    atomic_write_json(d / "run.json", {**read_json(d / "run.json"), **edit})
    results = load_results(root)
    assert bool(results.runs["fused_adamw"].iloc[0]) is fused
    diagnose(results)  # and no finding trips over it
