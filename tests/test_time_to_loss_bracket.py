"""Time-to-loss bounds as the report computes them from evals.csv and steps.csv: a run stopped by tune's time
cap is bounded by its last eval (the last time its val loss was known to be above the target), not by the
clock it stopped at. (A ratio's bracket over both runs' eval resolution: tests/test_tune_report.py.)"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.results import atomic_write_json, read_json
from bench.tune.verdict import HARMFUL, INCONCLUSIVE
from reports.diagnosis import diagnose
from reports.load import load_results
from reports.time_to_loss import to_loss_sets
from reports.tips import tip_rows
from tests.fixtures import write_run, write_sweep

DEFAULT_KNOBS = {"dtype": "fp32", "compile": "off", "threads": None, "cpus": None, "fused_adamw": False,
                 "batch_size": 12}  # fmt: skip


def _add_tune(run_dir: Path, **tune) -> None:
    meta = read_json(run_dir / "run.json")
    meta["tune"] = {"applies_tip": True, "default_knobs": DEFAULT_KNOBS, **tune}
    atomic_write_json(run_dir / "run.json", meta)


def _drop_evals_at(run_dir: Path, it: int) -> None:
    """As tune's time cap leaves a run: stopped after a step, before the eval that would have come next."""
    evals = pd.read_csv(run_dir / "evals.csv")
    evals[evals["iter"] != it].to_csv(run_dir / "evals.csv", index=False, float_format="%.6f")


def _tune_with_a_capped_variant(root: Path, variant_ms: float) -> None:
    d = write_run(root, "cpu-default", ms=50.0, eval_ms=200.0)
    target = round(float(read_json(d / "run.json")["summary"]["final_val_loss"]), 6)
    _add_tune(d, tip="default", variant="default", group="", measure="default", changed=[], knobs=DEFAULT_KNOBS,
              target_val_loss=target, stopped="end of recipe")  # fmt: skip
    # batch 24, its val loss above the target at every eval; the cap stopped it after its last step, before
    # the eval at iter 2000 (its last eval: iter 1750)
    b = write_run(root, "cpu-batch24", batch_size=24, ms=variant_ms, eval_ms=200.0, val_offset=0.05)
    _drop_evals_at(b, 2000)
    _add_tune(b, tip="batch_x2", variant="batch24", group="batch", measure="time_to_loss",
              changed=["batch_size 24"], knobs={**DEFAULT_KNOBS, "batch_size": 24}, target_val_loss=target,
              stopped="time cap")  # fmt: skip


def test_a_run_stopped_by_the_time_cap_is_bounded_by_its_last_eval_not_its_stop(tmp_path):
    root = write_sweep(tmp_path / "res")
    _tune_with_a_capped_variant(root, variant_ms=55.0)
    results = load_results(root)
    (s,) = [s for s in to_loss_sets(results) if s.source == "tune"]
    ref, run = s.run(s.reference), s.run("laptop/cpu-batch24")
    assert not run.reached and run.last_iter == 1750
    evals = results.evals_of(run.key)
    assert run.last_eval_s == pytest.approx(
        (results.steps_of(run.key)["ms"].iloc[:1750].sum() + evals["ms"].sum()) / 1e3
    )
    assert run.last_eval_s < run.end_s  # it trained 250 more steps after its last eval, never evaluated
    e = s.effect(run.key)
    assert e.ratio is None and e.high == pytest.approx(ref.time_s / run.last_eval_s)
    # by its stop it would read < 0.91x, harmful; by its last eval, < 1.04x: it may have crossed right after
    assert ref.time_s / run.end_s < 0.95 < 1 < e.high
    assert e.verdict == INCONCLUSIVE
    (row,) = [r for r in tip_rows(results) if r.tip == "batch_x2"]
    assert row.verdict == INCONCLUSIVE
    (f,) = [f for f in diagnose(results) if f.kind == "time_to_loss"]
    (row,) = [r for r in f.evidence["runs"] if r["key"] == run.key]
    assert (
        not row["reached"]
        and row["last_iter"] == 1750
        and row["last_eval_s"] == pytest.approx(run.last_eval_s)
    )
    assert f.evidence["speedups"][run.key]["high"] == pytest.approx(e.high)
    assert "1 of 2 runs never reached it" in f.sentence


def test_a_capped_run_still_above_the_target_well_after_the_default_is_harmful(tmp_path):
    root = write_sweep(tmp_path / "res")
    _tune_with_a_capped_variant(root, variant_ms=80.0)  # its last eval ends ~1.4x after the default's reach
    results = load_results(root)
    (s,) = [s for s in to_loss_sets(results) if s.source == "tune"]
    e = s.effect("laptop/cpu-batch24")
    assert e.high < 0.95 and e.verdict == HARMFUL
    (row,) = [r for r in tip_rows(results) if r.tip == "batch_x2"]
    assert row.verdict == HARMFUL
