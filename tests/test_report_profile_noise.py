"""Report rules fed by `bench run --profile` (step breakdown) and by the host-load evidence (noisy timing)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.cli import main
from bench.results import PROFILE_SCHEMA
from reports.diagnosis import diagnose
from reports.html import render_html
from reports.load import load_results
from tests import fixtures as synthetic

TINY = ["--devices", "cpu", "--iters", "20", "--eval-interval", "10", "--eval-iters", "2", "--timing-warmup-iters", "3",
        "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--block-size", "16", "--no-progress"]  # fmt: skip


def kinds(findings, kind):
    return [f for f in findings if f.kind == kind]


def _patch(run_dir, **summary):
    path = run_dir / "run.json"
    meta = json.loads(path.read_text())
    meta["summary"].update(summary)
    path.write_text(json.dumps(meta))


def test_profiled_real_run_gets_a_breakdown_bar_and_finding(tmp_path):
    out = tmp_path / "r"
    assert main(["run", *TINY, "--profile", "2", "--out", str(out)]) == 0
    prof = json.loads((out / "runs" / "cpu-fp32-b12-eager" / "profile.json").read_text())
    assert prof["schema"] == PROFILE_SCHEMA
    # the profiled steps are not in steps.csv: 20 rows, iterations 0..19
    assert len((out / "runs" / "cpu-fp32-b12-eager" / "steps.csv").read_text().strip().splitlines()) == 21
    results = load_results(out)
    findings = diagnose(results)
    (f,) = kinds(findings, "step_breakdown")
    assert f.evidence["fraction"] == pytest.approx(prof["mean"]["fraction"])  # the profile's numbers
    assert abs(sum(f.evidence["fraction"].values()) - 1.0) < 0.1 and "matmul" in f.evidence["fraction"]
    page = render_html(results, findings)
    assert "where each step" in page or "step breakdown" in page


def test_launch_bound_cuda_profile_gets_the_cuda_graphs_advice(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r", host="desktop")
    rd = synthetic.write_run(
        d, "cuda-fp32-b12-eager", host="desktop", device="cuda:0", device_name="GPU", threads=None
    )
    fractions = {"matmul": 0.12, "attention": 0.05, "elementwise_norm": 0.08, "optimizer": 0.03, "data": 0.01,
                 "other": 0.71}  # fmt: skip
    profile = {
        "schema": "devicebench-profile/1", "device_type": "cuda", "view": "device", "categories": list(fractions),
        "mean": {"step_ms": 6.0, "fraction": fractions, "ms": {k: v * 6 for k, v in fractions.items()},
                 "kernel_launches_per_step": 142, "mean_gap_us": 9.0, "device_idle_fraction": 0.71},
    }  # fmt: skip
    (rd / "profile.json").write_text(
        json.dumps({**profile, "sentence": "stale words from an older devicebench"})
    )
    (f,) = kinds(diagnose(load_results(d)), "step_breakdown")
    assert f.severity == "warning" and f.evidence["launch_bound"] and f.explains == 0.71
    assert f.evidence["kernel_launches_per_step"] == 142 and f.evidence["device_idle_fraction"] == 0.71
    # the words come from the numbers, never the stored sentence
    assert "stale words" not in f.sentence and "sentence" not in f.evidence
    assert (
        f.evidence["device"] == "cuda:0" and f.evidence["batch_size"] == 12
    )  # the run's where the profile has none


def test_busy_machine_explains_noisy_cpu_timings(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    ms = np.where(np.arange(200) % 3 == 0, 400.0, 40.0)  # a third of the steps stalled
    rd = synthetic.write_run(
        d, "cpu-noisy", train={"max_iters": 200, "lr_decay_iters": 200}, ms=ms, threads=2
    )
    _patch(rd, host_load={"logical_cpus": 2, "this_process_cpu_cores": 1.0, "other_processes_cpu_cores": 1.0,
                          "steal_cpu_cores": 0.0, "loadavg_1m_start": 3.1, "loadavg_1m_end": 3.3})  # fmt: skip
    quiet = synthetic.write_run(
        d, "cpu-quiet", train={"max_iters": 200, "lr_decay_iters": 200}, ms=40.0, seed=3
    )
    _patch(quiet, host_load={"logical_cpus": 2, "this_process_cpu_cores": 2.0, "other_processes_cpu_cores": 0.01,
                             "steal_cpu_cores": 0.0, "loadavg_1m_start": 0.5, "loadavg_1m_end": 1.0})  # fmt: skip
    findings = kinds(diagnose(load_results(d)), "noisy_timing")
    assert [f.runs for f in findings] == [["laptop/cpu-noisy"]]  # the quiet run says nothing
    (f,) = findings
    steps = np.sort(ms[10:])  # timed steps (warm-up 10)
    p10, p90 = np.percentile(steps, 10), np.percentile(steps, 90)
    assert f.evidence["p90_over_p10"] == pytest.approx(p90 / p10)
    assert (
        f.evidence["busy"] and f.evidence["oversubscribed"] and f.evidence["other_processes_cpu_cores"] == 1.0
    )
    assert f.severity == "warning"
    # the page's headline says so too, before any figure is read
    results = load_results(d)
    page = render_html(results, diagnose(results))
    headline = page[page.index('<div class="headline">') :].split("</div>")[0]
    assert "1 of 2 runs ran while the machine was busy" in headline and "noisy_timing" in headline
