"""A results directory made by `bench profile TRACE` (source "trace": no model, no training config, no loss)
reported beside trained runs: findings about losses and recipes compare only runs that have them; the trace
run is compared on what it has (ms/step, where its step goes, MFU against a known peak)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from tests import fixtures

TRACE = Path(__file__).resolve().parent / "data" / "traces-wild" / "hta_backward_thread.json"
SHORT = {"max_iters": 40, "lr_decay_iters": 40, "eval_interval": 10, "timing_warmup_iters": 2}
RECIPE_KINDS = {
    "config_mismatch",
    "loss_agree",
    "loss_disagree",
    "assumed_config",
    "overfitting",
    "time_to_loss",
}


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory) -> Path:
    """The HTA A100 trace (one ProfilerStep, one TF32 GEMM) through `bench profile`, with a user peak."""
    out = tmp_path_factory.mktemp("t") / "T"
    assert main(["profile", str(TRACE), "--peak-flops", "tf32=156T", "--out", str(out)]) == 0
    assert json.loads((out / "runs" / "trace-rank0" / "run.json").read_text())["source"] == "trace"
    return out


def _report(capsys, *dirs: Path) -> dict:
    capsys.readouterr()
    assert main(["report", *map(str, dirs), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _trace_key(report: dict) -> str:
    (key,) = [r["key"] for r in report["runs"] if r["source"] == "trace"]
    return key


def test_a_trace_beside_a_cpu_run_is_never_compared_on_loss_or_recipe(tmp_path, trace_dir, capsys):
    cpu = fixtures.write_sweep(tmp_path / "C")
    fixtures.write_run(cpu, train=SHORT)
    report = _report(capsys, cpu, trace_dir)
    trace = _trace_key(report)
    by_kind: dict[str, list[dict]] = {}
    for f in report["findings"]:
        by_kind.setdefault(f["kind"], []).append(f)
    about_trace = {f["kind"] for f in report["findings"] if trace in f["runs"]}
    assert not about_trace & RECIPE_KINDS, about_trace
    # no speed-up across workloads that cannot be put side by side (no tokens, matmul FLOPs only), and nanoGPT
    # prints no A100 MFU for a trace
    assert trace not in report["headline"]["runs"]
    assert "speedup" not in about_trace and "mfu_vs_a100" not in about_trace
    # compared on what it has: where its step goes, and its MFU against the peak given
    assert {"step_breakdown", "roofline"} <= about_trace
    (row,) = [r for r in report["runs"] if r["key"] == trace]
    assert row["mfu"] == pytest.approx(2 * 2048 * 2048 * 256 / 0.413451 / 156e12)
    assert row["ms_median"] == pytest.approx(413.451)
    # the headline is about the one run with a recipe
    assert report["headline"]["evidence"]["case"] == "one"
    for f in [report["headline"], *report["findings"]]:
        assert "None" not in f["sentence"] and " - faster" not in f["sentence"], f["sentence"]


def test_two_recipes_are_still_compared_when_a_trace_sits_beside_them(tmp_path, trace_dir, capsys):
    """The loss-gap rule keeps working on the runs that have recipes: two CPU runs of different batch sizes
    are one config_mismatch, naming only batch_size, whatever the trace lacks."""
    cpu = fixtures.write_sweep(tmp_path / "C")
    fixtures.write_run(cpu, "b12", train=SHORT, batch_size=12)
    fixtures.write_run(cpu, "b24", train=SHORT, batch_size=24, seed=1)
    report = _report(capsys, cpu, trace_dir)
    trace = _trace_key(report)
    (mismatch,) = [f for f in report["findings"] if f["kind"] == "config_mismatch"]
    assert (
        trace not in mismatch["runs"]
        and trace not in mismatch["evidence"]["group"] + mismatch["evidence"]["references"]
    )
    assert list(mismatch["evidence"]["differs"]) == ["batch_size"]


def test_a_launch_count_of_one_is_worded_as_a_whole_number(trace_dir, capsys):
    """The trace's one kernel launch per step is "1 kernel", not "1.00 kernels"."""
    report = _report(capsys, trace_dir)
    (f,) = [f for f in report["findings"] if f["kind"] == "step_breakdown"]
    assert f["evidence"]["kernel_launches_per_step"] == 1
    assert "launch 1 kernel:" in f["sentence"] and "1.00" not in f["sentence"]
