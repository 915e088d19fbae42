"""Diagnosis rules on constructed results directories (cases a tiny CPU run cannot produce).

Each directory follows docs/results-schema.md (tests/fixtures.py writes it through bench.results); the figures each finding
must quote are recomputed here from the files, not copied from the code under test.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from reports import summary as reports_summary
from reports.diagnosis import diagnose, headline
from reports.load import ReportError, load_results
from reports.summary import render
from tests import fixtures as synthetic

SHORT = {"max_iters": 200, "lr_decay_iters": 200, "eval_interval": 50}


def kinds(findings, kind):
    return [f for f in findings if f.kind == kind]


def test_config_mismatch_names_the_differing_fields(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "cpu-a", train=SHORT)
    synthetic.write_run(d, "cpu-b", train=SHORT)
    synthetic.write_run(
        d, "cpu-long", train={**SHORT, "max_iters": 400, "lr_decay_iters": 400, "learning_rate": 6e-4}
    )
    findings = diagnose(load_results(d))
    (m,) = kinds(findings, "config_mismatch")
    assert set(m.evidence["differs"]) == {"train.max_iters", "train.lr_decay_iters", "train.learning_rate"}
    assert m.evidence["differs"]["train.max_iters"] == [400, 200]
    # both end at the same val loss: said as such, never put down to the recipe
    assert m.evidence["same_val_loss"] and m.evidence["more"] is None and m.severity == "info"
    assert m.evidence["run"] == "laptop/cpu-long"
    # only the two same-config runs are compared on loss
    (agree,) = kinds(findings, "loss_agree")
    assert sorted(agree.runs) == ["laptop/cpu-a", "laptop/cpu-b"]


def test_only_batch_differs_is_info_and_eval_interval_is_not_a_config_difference(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "b12", train=SHORT)
    synthetic.write_run(d, "b12-evals", train={**SHORT, "eval_interval": 25, "timing_warmup_iters": 3})
    synthetic.write_run(d, "b24", batch_size=24, train=SHORT)
    findings = diagnose(load_results(d))
    (m,) = kinds(findings, "config_mismatch")
    assert set(m.evidence["differs"]) == {"batch_size"} and m.severity == "info"
    assert kinds(findings, "loss_agree")[0].runs == ["laptop/b12", "laptop/b12-evals"]


@pytest.mark.parametrize(
    ("offset", "dtype", "kind", "tol"),
    [(0.01, "fp32", "loss_agree", 0.02), (0.03, "fp32", "loss_disagree", 0.02), (0.03, "bf16", "loss_agree", 0.05),
     (0.3, "bf16", "loss_disagree", 0.05)],
)  # fmt: skip
def test_same_config_curves_agree_within_a_stated_tolerance(tmp_path, offset, dtype, kind, tol):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "cpu", train=SHORT)
    synthetic.write_run(
        d, "cuda", device="cuda:0", device_name="GPU", dtype=dtype, train=SHORT, val_offset=offset
    )
    results = load_results(d)
    (f,) = [f for f in diagnose(results) if f.kind.startswith("loss_")]
    val = results.evals[results.evals["split"] == "val"].pivot(index="iter", columns="key", values="loss")
    expected = float((val.max(axis=1) - val.min(axis=1)).max())
    assert f.kind == kind
    assert f.evidence["max_abs_val_diff"] == pytest.approx(expected)
    assert f.evidence["tolerance"] == tol and f.evidence["dtypes"] == sorted({"fp32", dtype})
    assert f.evidence["shared_evals"] == len(val)


def _peak_for_mfu(model_batch: int, ms: float, mfu: float) -> float:
    fpt = synthetic.flops_per_token(synthetic.MODEL)
    return fpt * model_batch * synthetic.MODEL["block_size"] / (ms / 1e3) / mfu


def test_overhead_bound_series(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r", "desktop")
    ms = {4: 10.0, 16: 10.5, 64: 11.5}
    for b, m in ms.items():
        synthetic.write_run(d, f"cuda-b{b}", host="desktop", device="cuda:0", device_name="GPU", batch_size=b, ms=m,
                            peak=100e12, train=SHORT, seed=b)  # fmt: skip
    results = load_results(d)
    (f,) = kinds(diagnose(results), "overhead_bound")
    r = results.runs.set_index("batch_size")
    assert f.evidence["batch_ratio"] == 16
    assert f.evidence["ms_ratio"] == pytest.approx(r.loc[64, "ms_median"] / r.loc[4, "ms_median"])
    assert f.evidence["ms_ratio"] < 1.3
    assert f.evidence["mfu_small"] == pytest.approx(r.loc[4, "mfu"])
    assert f.evidence["batch_sizes"] == [4, 16, 64] and f.evidence["lever"] == "cuda_graphs"
    # ms = fixed + per_sample * batch through (4, ms4) and (64, ms64): the fixed share of the batch-4 step
    per = (r.loc[64, "ms_median"] - r.loc[4, "ms_median"]) / 60
    assert f.explains == pytest.approx((r.loc[4, "ms_median"] - 4 * per) / r.loc[4, "ms_median"])
    assert not kinds(diagnose(results), "compute_bound")


@pytest.mark.parametrize(
    ("features", "lever"),
    [
        # no native bf16/fp16 (this project's VM): a lower precision would be emulated, slower; never advise it
        (("avx2", "fma"), "faster_device_no_native"),
        (("avx2", "avx512f", "avx512_bf16"), "faster_device_or_bf16"),
        ((), "faster_device_features_unknown"),
    ],
)
def test_compute_bound_series_near_peak(tmp_path, features, lever):
    d = synthetic.write_sweep(tmp_path / "r", hw=synthetic.hwinfo(features=features))
    peak = _peak_for_mfu(4, 10.0, 0.6)
    for b in (4, 8, 16):
        synthetic.write_run(d, f"cpu-b{b}", batch_size=b, ms=10.0 * b / 4, peak=peak, train=SHORT, seed=b)
    findings = diagnose(load_results(d))
    (f,) = kinds(findings, "compute_bound")
    assert f.evidence["exponent"] == pytest.approx(1.0, abs=0.05)
    assert f.evidence["mfu_large"] == pytest.approx(0.6, rel=0.05)
    assert f.evidence["lever"] == lever and f.evidence["mfu"] == f.evidence["mfu_large"]
    # near-linear: almost all of the batch-16 step grows with the batch
    assert f.explains == pytest.approx(1.0, abs=0.05)
    assert not kinds(findings, "overhead_bound")


def test_headline_lever_is_the_best_runs_own_not_an_fp32_sweeps(tmp_path):
    """A tune's fp32 batch sweep is compute-bound with "bf16, native here" as its lever; when the fastest run is
    already bf16, the headline must not send the user to bf16."""
    d = synthetic.write_sweep(
        tmp_path / "r", hw=synthetic.hwinfo(features=("avx2", "avx512f", "avx512_bf16"))
    )
    peak = _peak_for_mfu(4, 10.0, 0.6)
    for b in (4, 8, 16):
        synthetic.write_run(d, f"cpu-b{b}", batch_size=b, ms=10.0 * b / 4, peak=peak, train=SHORT, seed=b)
    results = load_results(d)
    assert headline(results, diagnose(results)).evidence["lever"] == "faster_device_or_bf16"
    synthetic.write_run(d, "cpu-bf16", dtype="bf16", ms=5.0, peak=2 * peak, train=SHORT)
    results = load_results(d)
    top = headline(results, diagnose(results))
    assert top.evidence["run"] == "laptop/cpu-bf16" and top.evidence["lever"] is None


def test_eval_inclusive_timing_of_a_devicebench_run(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "cpu", ms=20.0, eval_ms=400.0, train=SHORT)
    results = load_results(d)
    (f,) = kinds(diagnose(results), "eval_in_timer")
    steps = pd.read_csv(d / "runs/cpu/steps.csv").set_index("iter")["ms"]
    evals = pd.read_csv(d / "runs/cpu/evals.csv").groupby("iter")["ms"].sum()
    expected = {i: steps[i] + evals[i] for i in (50, 100, 150)}  # eval at iter i runs before step i
    assert f.evidence["printed_by_iter"] == pytest.approx(expected)
    worst = max(expected, key=expected.get)
    assert f.evidence["iter"] == worst
    assert f.evidence["printed_ms"] == pytest.approx(expected[worst])
    assert f.evidence["eval_ms"] == pytest.approx(evals[worst]) and not f.evidence["imported"]
    assert f.severity == "warning"


def test_eval_spike_of_an_imported_nanogpt_log(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r", source="nanogpt-log")
    synthetic.write_run(d, "cuda-bf16-b64-compile", device="cuda", dtype="bf16", ms=34.0, after_eval_ms=479.0,
                        source="nanogpt-log", assumed=["dtype"], peak=None, train={"max_iters": 1000})  # fmt: skip
    results = load_results(d)
    findings = diagnose(results)
    (f,) = kinds(findings, "eval_in_timer")
    median = results.runs.iloc[0]["ms_median"]
    assert f.evidence["iter"] == 250 and f.evidence["printed_ms"] == 479.0
    assert f.evidence["eval_ms"] == pytest.approx(479.0 - median)
    assert f.evidence["median_ms"] == median and f.evidence["imported"]
    assert kinds(findings, "assumed_config")[0].evidence["assumed"] == ["dtype"]
    assert kinds(findings, "peak_unknown")


def test_headline_speedup_is_peak_ratio_times_mfu_ratio(tmp_path):
    laptop = synthetic.write_sweep(tmp_path / "laptop", "laptop")
    desktop = synthetic.write_sweep(
        tmp_path / "desktop", "desktop", synthetic.hwinfo("desktop", gpus=("GPU",))
    )
    synthetic.write_run(laptop, "cpu", host="laptop", ms=120.0, peak=0.5e12, train=SHORT)
    synthetic.write_run(laptop, "cpu-b24", host="laptop", batch_size=24, ms=260.0, peak=0.5e12, train=SHORT)
    synthetic.write_run(desktop, "cuda", host="desktop", device="cuda:0", device_name="GPU", ms=8.0, peak=80e12,
                        train=SHORT)  # fmt: skip
    results = load_results([laptop, desktop])
    (f,) = kinds(diagnose(results), "speedup")
    runs = results.runs
    fast, slow = runs.loc["desktop/cuda"], runs.loc["laptop/cpu"]  # cpu b12 beats b24 in tokens/s
    assert f.evidence["slow"] == "laptop/cpu"
    assert f.evidence["speedup"] == pytest.approx(fast["tokens_per_s"] / slow["tokens_per_s"])
    assert f.evidence["peak_ratio"] == pytest.approx(160)
    assert f.evidence["speedup"] == pytest.approx(f.evidence["peak_ratio"] * f.evidence["mfu_ratio"])
    assert f.evidence["fast_device"] == "GPU on desktop" and f.evidence["same_model"]
    # the report opens with it
    top = headline(results, diagnose(results))
    assert top.evidence["case"] == "compare" and top.evidence["peak_ratio"] == pytest.approx(160)
    assert top.evidence["recipe_differs"] == []


def test_headline_with_an_unknown_peak_says_which(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "cpu", ms=120.0, train=SHORT)
    synthetic.write_run(d, "cuda", device="cuda:0", device_name="Mystery GPU", ms=8.0, peak=None, train=SHORT)
    findings = diagnose(load_results(d))
    (f,) = kinds(findings, "speedup")
    assert f.evidence["peak_ratio"] is None
    assert f.evidence["unknown_peak"] == ["Mystery GPU fp32"]
    (p,) = kinds(findings, "peak_unknown")
    assert p.runs == ["laptop/cuda"]
    text = render(load_results(d), findings)
    assert "peak unknown" in text  # the MFU cell says so, never a substitute figure


def test_cpu_bf16_without_native_support_and_threads_beyond_cores(tmp_path):
    hw = synthetic.hwinfo("laptop", physical_cores=2, features=("avx2", "fma", "avx512f"))
    d = synthetic.write_sweep(tmp_path / "r", hw=hw)
    synthetic.write_run(d, "fp32-t2", ms=50.0, threads=2, train=SHORT)
    synthetic.write_run(d, "bf16-t2", dtype="bf16", ms=140.0, threads=2, train=SHORT)
    synthetic.write_run(d, "fp32-t4", ms=65.0, threads=4, train=SHORT)
    findings = diagnose(load_results(d))
    (b,) = kinds(findings, "cpu_dtype")
    assert b.severity == "warning" and b.evidence["support"] == "emulated" and b.evidence["has"] == []
    assert b.evidence["fp32_ms_median"] > 0 and b.evidence["ms_median"] / b.evidence["fp32_ms_median"] > 2
    (t,) = kinds(findings, "cpu_threads")
    assert t.severity == "warning" and t.evidence["physical_cores"] == 2
    assert set(t.evidence["ms_by_threads"]) == {2, 4}
    assert t.evidence["verdict"] == "over" and t.evidence["fastest_threads"] == 2


def test_cpu_bf16_with_amx_is_native(tmp_path):
    hw = synthetic.hwinfo("laptop", physical_cores=4, features=("avx512f", "avx512_bf16", "amx_bf16"))
    d = synthetic.write_sweep(tmp_path / "r", hw=hw)
    synthetic.write_run(d, "bf16", dtype="bf16", ms=30.0, threads=4, train=SHORT)
    findings = diagnose(load_results(d))
    (b,) = kinds(findings, "cpu_dtype")
    assert b.severity == "info" and b.evidence["has"] == ["avx512_bf16", "amx_bf16"]
    assert kinds(findings, "cpu_threads")[0].severity == "info"


def test_compile_cost(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "cuda-compile", device="cuda:0", compile="on", ms=10.0, first_step_ms=30000.0,
                        train=SHORT)  # fmt: skip
    (w,) = kinds(diagnose(load_results(d)), "warmup_cost")
    steps = pd.read_csv(d / "runs/cuda-compile/steps.csv")
    assert w.evidence["share_of_train_time"] == pytest.approx(
        (30000.0 - w.evidence["ms_median"]) / steps["ms"].sum()
    )
    assert w.evidence["compiled"] and w.severity == "warning"


def test_failed_and_skipped_runs_are_listed_with_reasons(tmp_path, capsys):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "ok", train=SHORT)
    synthetic.write_run(d, "oom", status="failed", error="out of memory at batch size 4096", train=SHORT)
    synthetic.write_run(
        d, "cuda", status="skipped", error="CUDA is not available on this machine", train=SHORT
    )
    assert main(["report", str(d)]) == 0
    out = capsys.readouterr().out
    assert "oom: failed: out of memory at batch size 4096" in out
    assert "cuda: skipped: CUDA is not available on this machine" in out
    findings = diagnose(load_results(d))
    assert all("laptop/oom" not in f.runs for f in findings)


def test_newer_schema_is_refused_with_one_line(tmp_path, capsys):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "ok", train=SHORT)
    run_json = d / "runs/ok/run.json"
    run_json.write_text(json.dumps({**json.loads(run_json.read_text()), "schema": "devicebench/99"}))
    with pytest.raises(ReportError) as e:
        load_results(d)
    assert e.value.exit_code == 2
    assert main(["report", str(d)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "devicebench/99" in err and "upgrade devicebench" in err


@pytest.mark.parametrize("what", ["missing", "not-results", "corrupt"])
def test_unusable_input_is_one_line(tmp_path, capsys, what):
    path = tmp_path / what
    if what == "not-results":
        path.mkdir()
    elif what == "corrupt":
        synthetic.write_sweep(path)
        (path / "sweep.json").write_text("{not json")
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err


def test_downsample_keeps_shape():
    from reports.plots import downsample

    x = np.arange(2000.0)
    xs, ys = downsample(x, 2 * x, 300)
    assert len(xs) == 300 and np.allclose(ys, 2 * xs) and xs[0] < 10 and xs[-1] > 1990


@pytest.mark.parametrize("runs", ["none", "only-failed"])
def test_page_without_finished_runs(tmp_path, capsys, runs):
    d = synthetic.write_sweep(tmp_path / "r")
    if runs == "only-failed":
        synthetic.write_run(d, "oom", status="failed", error="out of memory at batch size 4096", train=SHORT)
    out = tmp_path / "page.html"
    assert main(["report", str(d), "--html", str(out)]) == 0
    page = out.read_text()
    assert '<section id="hardware">' in page and "data:image/png" not in page
    assert ("out of memory at batch size 4096" in page) == (runs == "only-failed")
    assert diagnose(load_results(d)) == []


def test_speedup_gives_iteration_and_token_time_ratios_beside_flops(tmp_path):
    laptop = synthetic.write_sweep(tmp_path / "laptop", "laptop")
    desktop = synthetic.write_sweep(tmp_path / "desktop", "desktop")
    synthetic.write_run(laptop, "cpu", host="laptop", ms=120.0, peak=0.5e12, train=SHORT)
    synthetic.write_run(desktop, "cuda", host="desktop", device="cuda:0", device_name="GPU", batch_size=64, ms=10.0,
                        peak=80e12, train=SHORT)  # fmt: skip
    results = load_results([laptop, desktop])
    (f,) = kinds(diagnose(results), "speedup")
    fast, slow = results.runs.loc["desktop/cuda"], results.runs.loc["laptop/cpu"]
    ev = f.evidence
    assert ev["same_model"] and ev["iter_time_ratio"] == pytest.approx(slow["ms_median"] / fast["ms_median"])
    per_token = (slow["ms_median"] / slow["tokens_per_iter"]) / (fast["ms_median"] / fast["tokens_per_iter"])
    assert ev["token_time_ratio"] == pytest.approx(per_token) == pytest.approx(ev["speedup"])
    assert ev["tokens_per_iter"] == [64 * 64, 12 * 64]


def test_different_models_flops_ratio_is_not_called_a_time_ratio(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    big = {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "dropout": 0.2}
    synthetic.write_run(d, "cpu", ms=120.0, peak=1.35e12, train=SHORT)
    synthetic.write_run(d, "cuda", device="cuda:0", device_name="GPU", dtype="bf16", batch_size=64, model=big,
                        ms=33.0, peak=80e12, train={**SHORT, "max_iters": 500, "lr_decay_iters": 500},
                        val_offset=-0.5)  # fmt: skip
    results = load_results(d)
    findings = diagnose(results)
    (s,) = kinds(findings, "speedup")
    assert not s.evidence["same_model"]
    assert s.evidence["iter_time_ratio"] == pytest.approx(120.0 / 33.0, rel=0.1)
    # the loss gap: tokens seen, parameters (from the FLOP count: fpt = 6N + 12 L C T) and dtype
    (m,) = kinds(findings, "config_mismatch")
    runs = results.runs
    per_run = m.evidence["per_run"]
    for key in ("laptop/cpu", "laptop/cuda"):
        meta = json.loads((d / "runs" / key.split("/")[1] / "run.json").read_text())
        model = meta["model"]
        params = (
            meta["flops_per_token"] - 12 * model["n_layer"] * model["n_embd"] * model["block_size"]
        ) // 6
        assert per_run[key]["params"] == params
        assert per_run[key]["tokens_seen"] == runs.loc[key, "iters_done"] * runs.loc[key, "tokens_per_iter"]
    assert m.evidence["differs"]["dtype"] == ["bf16", "fp32"] and m.severity == "warning"
    # the reasons are the lower-loss run's advantages: more tokens by the val eval compared, a larger model, bf16
    cuda, cpu = per_run["laptop/cuda"], per_run["laptop/cpu"]
    assert m.evidence["val_loss"] == [cuda["final_val_eval_loss"], cpu["final_val_eval_loss"]]
    assert cuda["final_val_eval_loss"] < cpu["final_val_eval_loss"] and m.evidence["more"] == "laptop/cuda"
    assert m.evidence["tokens_ratio"] == pytest.approx(
        cuda["tokens_at_final_val"] / cpu["tokens_at_final_val"]
    )
    assert m.evidence["params_ratio"] == pytest.approx(cuda["params"] / cpu["params"])
    assert m.evidence["dtypes"] == ["bf16", "fp32"]


def test_overfitting_where_the_minimum_was_and_how_much_val_rose(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(
        d, "overfit", train=SHORT, val_offset=2.0
    )  # val falls, then rises; train keeps falling
    synthetic.write_run(d, "fine", train=SHORT, batch_size=24)
    results = load_results(d)
    (f,) = kinds(diagnose(results), "overfitting")
    val = pd.read_csv(d / "runs/overfit/evals.csv").query("split == 'val'").set_index("iter")["loss"]
    assert f.runs == ["laptop/overfit"]
    assert f.evidence["min_iter"] == val.idxmin() and f.evidence["min_val_loss"] == pytest.approx(val.min())
    assert f.evidence["rise"] == pytest.approx(val.iloc[-1] - val.min())
    assert f.evidence["final_iter"] == val.index[-1]


def test_impossible_mfu_is_a_finding_and_never_splits_the_headline(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "cpu", ms=120.0, peak=1e9, train=SHORT)  # a peak far below what the run did
    synthetic.write_run(d, "cuda", device="cuda:0", device_name="GPU", ms=8.0, peak=80e12, train=SHORT)
    results = load_results(d)
    findings = diagnose(results)
    (f,) = kinds(findings, "impossible_mfu")
    r = results.runs.loc["laptop/cpu"]
    assert f.runs == ["laptop/cpu"] and f.evidence["mfu"] == pytest.approx(r["achieved_flops_per_s"] / 1e9)
    assert f.severity == "warning" and f.evidence["peak_flops_per_s"] == 1e9
    (s,) = kinds(findings, "speedup")
    assert s.evidence["peak_ratio"] is None and s.evidence["mfu"][1] is None
    assert s.evidence["impossible"] == ["Synthetic CPU fp32"]


def test_nan_val_losses_never_agree(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "a", train=SHORT)
    synthetic.write_run(d, "b", train=SHORT)
    evals = d / "runs/b/evals.csv"
    rows = evals.read_text().splitlines()
    evals.write_text("\n".join(rows[:-1] + [re.sub(r",[\d.]+,([\d.]+)$", r",nan,\1", rows[-1])]) + "\n")
    (f,) = [f for f in diagnose(load_results(d)) if f.kind.startswith("loss_")]
    assert f.kind == "loss_disagree" and f.evidence["non_finite"] == ["laptop/b"]


def test_an_impossible_mfu_is_never_quoted_as_a_result(tmp_path):
    """A peak far too low (a wrong --peak-flops or table row) gives MFU > 100%: only the impossible_mfu finding
    speaks of it; the MFU, batch-scaling and compute-bound findings do not present it as a figure."""
    d = synthetic.write_sweep(tmp_path / "r")
    for b, ms in ((12, 50.0), (48, 190.0)):
        synthetic.write_run(d, f"cpu-b{b}", batch_size=b, ms=ms, peak=1e6, train=SHORT)
    findings = diagnose(load_results(d))
    kinds = [f.kind for f in findings]
    assert "impossible_mfu" in kinds and "mfu_vs_a100" not in kinds
    for f in findings:
        if f.kind != "impossible_mfu":
            assert not re.search(r"\d{3,}(,\d{3})*(\.\d+)?% of its own peak", f.sentence), f.sentence


def test_a_rule_that_fails_on_one_directory_leaves_out_its_findings_there_with_one_warning(tmp_path, capsys):
    """One damaged directory (or a bug one directory triggers) never takes the report down: the rule's
    findings for the other directories are kept, and one warning line names the directory."""
    import reports.diagnosis as diagnosis

    a, b = synthetic.write_sweep(tmp_path / "a", "laptop"), synthetic.write_sweep(tmp_path / "b", "desktop")
    synthetic.write_run(a, "cpu", host="laptop", first_step_ms=900.0, train=SHORT)
    synthetic.write_run(b, "cpu", host="desktop", first_step_ms=900.0, train=SHORT)
    real = diagnosis.warmup_findings

    def fragile(results, ok):
        if (ok["host"] == "desktop").any():
            raise TypeError("'<' not supported between instances of 'NoneType' and 'int'")
        return real(results, ok)

    fragile.__name__ = real.__name__
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(diagnosis, "warmup_findings", fragile)
    try:
        results = load_results([a, b])
        (w,) = kinds(diagnose(results), "warmup_cost")
        assert w.runs == ["laptop/cpu"]
        (warning,) = [x for x in results.warnings if "warmup" in x]
        assert warning.startswith(str(b)) and "TypeError" in warning and "left out" in warning
        assert main(["report", str(a), str(b)]) == 0
        err = capsys.readouterr().err
        assert err.count("warmup findings could not be made") == 1 and str(b) in err
    finally:
        monkeypatch.undo()


def test_findings_that_would_read_the_same_name_their_directory(tmp_path):
    """Two tunes of one host merged: the per-directory findings would read the same, so each names its
    directory (the shortest path suffix that tells them apart)."""
    a, b = synthetic.write_sweep(tmp_path / "tune-a"), synthetic.write_sweep(tmp_path / "tune-b")
    synthetic.write_run(a, "cpu", train=SHORT)
    synthetic.write_run(b, "cpu", train=SHORT)
    threads = kinds(diagnose(load_results([a, b])), "cpu_threads")
    assert sorted(f.where for f in threads) == ["tune-a", "tune-b"]
    assert sorted(f.sentence.split(":")[0] for f in threads) == ["tune-a", "tune-b"]
    # one directory: no prefix
    (alone,) = kinds(diagnose(load_results(a)), "cpu_threads")
    assert alone.where == "" and alone.sentence.startswith("laptop's CPU runs")


def test_terminal_opens_with_the_answer_and_shows_at_most_eight_findings(tmp_path, capsys):
    d = synthetic.write_sweep(tmp_path / "r")
    for i, b in enumerate((4, 8, 16, 32, 64)):
        synthetic.write_run(
            d, f"cpu-b{b}", batch_size=b, ms=10.0 + b, first_step_ms=900.0, seed=i, train=SHORT
        )
        synthetic.write_run(
            d, f"bf16-b{b}", dtype="bf16", batch_size=b, ms=80.0 + b, seed=10 + i, train=SHORT
        )
    results = load_results(d)
    findings = diagnose(results)
    assert len(findings) > 8
    explained = [f.explains for f in findings]
    assert explained == sorted(explained, reverse=True)  # most of the step or gap first
    assert main(["report", str(d)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == headline(results, findings).sentence and "tokens/s" in out[0]
    shown = [line for line in out if line.startswith("- [")]
    assert len(shown) == 8 and f"({len(findings) - 8} more findings: --all" in out[-1]
    assert main(["report", str(d), "--all"]) == 0
    assert len([x for x in capsys.readouterr().out.splitlines() if x.startswith("- [")]) == len(findings)
    assert main(["report", str(d), "--details"]) == 0
    detailed = capsys.readouterr().out
    assert "    explains" not in detailed and "    batch_sizes: " in detailed


def test_a_tips_table_that_cannot_be_made_is_left_out_with_a_warning(tmp_path, capsys, monkeypatch):
    import reports.html
    import reports.summary

    def broken(*args, **kwargs):
        raise TypeError("'<' not supported between instances of 'NoneType' and 'int'")

    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "cpu", train=SHORT)
    monkeypatch.setattr(reports.summary, "tips_table", broken)
    monkeypatch.setattr(reports.html, "tips_by_directory", broken)
    for form in ("text", "json"):
        assert main(["report", str(d), "--format", form]) == 0
    assert main(["report", str(d), "--html", str(tmp_path / "p.html")]) == 0
    err = capsys.readouterr().err
    assert "the tips could not be made (TypeError" in err
    assert "the tips section of the HTML page could not be made" in (tmp_path / "p.html").read_text()


def _tune(root, threads_ratio: float):
    """A minimal `bench tune` directory: the default and a 1-thread variant (run.json's tune blocks)."""
    from bench.results import ResultsDir, atomic_write_json, read_json

    knobs = {"dtype": "fp32", "compile": "off", "threads": None, "cpus": None, "fused_adamw": False,
             "batch_size": 12}  # fmt: skip
    root = synthetic.write_sweep(root)
    sweep = read_json(root / "sweep.json")
    ResultsDir(root).write_sweep({**sweep, "tune": {"tips": ["threads"], "repeats": 6}})
    rng = np.random.default_rng(0)
    for name, ratio, tune in (
        ("cpu-default", 1.0, {"tip": "default", "variant": "default", "measure": "default", "changed": []}),
        ("cpu-threads1", threads_ratio, {"tip": "threads", "variant": "threads1", "group": "threads",
                                         "measure": "throughput", "changed": ["threads 1"]}),
    ):  # fmt: skip
        d = synthetic.write_run(root, name, ms=50.0 / ratio, train=SHORT)
        meta = read_json(d / "run.json")
        meta["tune"] = {"applies_tip": True, "default_knobs": knobs, "knobs": knobs, "group": "", **tune}
        if tune["measure"] == "throughput":
            meta["tune"]["samples_tokens_per_s"] = list(15360 * ratio * (1 + 0.01 * rng.standard_normal(6)))
            meta["tune"]["default_samples_tokens_per_s"] = list(15360 * (1 + 0.01 * rng.standard_normal(6)))
        atomic_write_json(d / "run.json", meta)
    return root


def test_merged_tunes_of_one_host_name_their_directory_in_the_tips_table(tmp_path, capsys):
    a, b = _tune(tmp_path / "monday", 1.5), _tune(tmp_path / "tuesday", 0.7)
    results = load_results([a, b])
    table = reports_summary.tips_by_directory(results)
    assert table.columns[0] == "results" and set(table["results"]) == {"monday", "tuesday"}
    assert len(table) == len(table.drop_duplicates()) and len(
        table.drop(columns="results").drop_duplicates()
    ) <= len(table)
    assert main(["report", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    tips = out[out.index("Tips measured by bench tune:") :]
    assert "results" in tips.splitlines()[1] and "monday" in tips and "tuesday" in tips
    # one tune alone: no directory column
    assert "results" not in reports_summary.tips_by_directory(load_results(a)).columns


def test_a_finding_whose_words_cannot_be_made_is_left_out_alone(tmp_path, monkeypatch):
    from reports import words

    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "cpu", first_step_ms=900.0, train=SHORT)

    def broken(f, e):
        raise KeyError("share_of_train_time")

    monkeypatch.setitem(words.TEMPLATES, "warmup_cost", broken)
    results = load_results(d)
    findings = diagnose(results)
    assert not kinds(findings, "warmup_cost") and kinds(findings, "mfu_vs_a100")  # the others are kept
    (warning,) = [w for w in results.warnings if "warmup_cost" in w]
    assert warning.startswith(str(d)) and "KeyError" in warning
