"""The tips table, tip / best_config / time_to_loss findings and their JSON, from a fixture directory written
through the real results writer (tests/fixtures.py) with `bench tune`'s run.json blocks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.results import PROFILE_SCHEMA, ResultsDir, atomic_write_json, read_json
from reports import fmt
from reports.diagnosis import diagnose
from reports.html import render_html
from reports.load import load_results
from reports.summary import render
from reports.time_to_loss import to_loss_sets
from reports.tips import best_config, device_tunes, render_tips, tip_rows
from tests.fixtures import hwinfo, write_run, write_sweep

DEFAULT_KNOBS = {
    "dtype": "fp32",
    "compile": "off",
    "threads": None,
    "cpus": None,
    "fused_adamw": False,
    "batch_size": 12,
}


def samples(median: float, n: int = 6, seed: int = 0) -> list[float]:
    return list(median * (1 + 0.01 * np.random.default_rng(seed).standard_normal(n)))


def add_tune(run_dir: Path, **tune) -> None:
    meta = read_json(run_dir / "run.json")
    meta["tune"] = {"applies_tip": True, "default_knobs": DEFAULT_KNOBS, **tune}
    atomic_write_json(run_dir / "run.json", meta)


def throughput(
    root: Path, name: str, tip: str, group: str, ratio: float, changed: list[str], knobs: dict
) -> None:
    d = write_run(root, f"cpu-{name}", ms=50.0 / ratio)
    add_tune(d, tip=tip, variant=name, group=group, measure="throughput", changed=changed,
             knobs={**DEFAULT_KNOBS, **knobs}, samples_tokens_per_s=samples(15360 * ratio, seed=1),
             default_samples_tokens_per_s=samples(15360, seed=2))  # fmt: skip


@pytest.fixture(scope="module")
def tune_dir(tmp_path_factory) -> Path:
    root = write_sweep(
        tmp_path_factory.mktemp("tips") / "res", hw=hwinfo(physical_cores=2, features=("avx2", "fma"))
    )
    sweep = read_json(root / "sweep.json")
    sweep["tune"] = {"tips": ["threads", "bf16", "fused_adamw", "tf32", "batch_x2", "num_workers", "eval_iters"],
                     "repeats": 6, "block_seconds": 0.5, "warmup_steps": 3, "time_cap": 1.5, "profile_steps": 5}  # fmt: skip
    ResultsDir(root).write_sweep(sweep)
    d = write_run(root, "cpu-default", ms=50.0, eval_ms=200.0)
    final_val = float(read_json(d / "run.json")["summary"]["final_val_loss"])
    add_tune(d, tip="default", variant="default", group="", measure="default", changed=[], knobs=DEFAULT_KNOBS,
             target_val_loss=round(final_val, 6), stopped="end of recipe")  # fmt: skip
    atomic_write_json(d / "profile.json", {
        "schema": PROFILE_SCHEMA, "device": "cpu", "device_type": "cpu", "view": "host", "batch_size": 12,
        "mean": {"step_ms": 50.0, "fraction": {"matmul": 0.60, "attention": 0.05, "elementwise_norm": 0.15,
                                                "optimizer": 0.12, "data": 0.01, "other": 0.07}},
        "matmul_flops_per_s": 5e10, "matmul_fraction_of_peak": 0.40,
    })  # fmt: skip
    throughput(root, "threads1", "threads", "threads", 1.5, ["threads 1"], {"threads": 1})
    throughput(root, "bf16", "bf16", "dtype", 0.6, ["dtype bf16"], {"dtype": "bf16"})
    throughput(
        root, "fused-adamw", "fused_adamw", "optimizer", 1.0, ["fused_adamw on"], {"fused_adamw": True}
    )
    skipped = write_run(
        root, "cpu-tf32", status="skipped", error="tf32 is a CUDA tensor-core matmul mode; cpu has none"
    )
    add_tune(skipped, tip="tf32", variant="tf32", group="dtype", measure="throughput", changed=["dtype tf32"],
             knobs={**DEFAULT_KNOBS, "dtype": "tf32"})  # fmt: skip
    # batch 24 at twice the step time, the same loss per step: the same target at twice the time
    b = write_run(root, "cpu-batch24", batch_size=24, ms=100.0, eval_ms=200.0)
    add_tune(b, tip="batch_x2", variant="batch24", group="batch", measure="time_to_loss", changed=["batch_size 24"],
             knobs={**DEFAULT_KNOBS, "batch_size": 24}, target_val_loss=round(final_val, 6), stopped="target reached")  # fmt: skip
    return root


def rows_by_tip(results) -> dict:
    return {r.tip: r for r in tip_rows(results)}


def test_every_tip_gets_a_verdict_and_a_reason_with_evidence(tune_dir):
    rows = rows_by_tip(load_results(tune_dir))
    assert list(rows) == ["threads", "bf16", "tf32", "fused_adamw", "batch_x2", "num_workers", "eval_iters"]
    t = rows["threads"]
    assert t.verdict == "worth it" and t.effect.ratio == pytest.approx(1.5, rel=0.02) and t.effect.low > 1
    assert "1 thread against the default's 4 threads" in t.why
    bf16 = rows["bf16"]
    assert bf16.verdict == "harmful" and "lacks avx512_bf16 and amx_bf16" in bf16.why
    assert rows["fused_adamw"].verdict == "no effect"
    assert "the optimizer (with gradient clipping) is 12.0% of the default's step" in rows["fused_adamw"].why
    assert rows["tf32"].verdict == "not available" and "tf32 is a CUDA" in rows["tf32"].why
    batch = rows["batch_x2"]
    assert batch.measure == "time_to_loss" and batch.verdict == "harmful"
    assert batch.effect.ratio == pytest.approx(0.5, rel=0.05) and "iter 2000" in batch.why
    assert (
        rows["num_workers"].verdict == "no effect"
        and "1.00% of the default's step" in rows["num_workers"].why
    )
    ev = rows["eval_iters"]
    assert ev.verdict == "no effect" and "an eval takes 200 ms at eval_iters 20" in ev.why
    assert ev.evidence["saved_ms_per_eval"] == pytest.approx(100.0)


def test_table_text_shows_claim_effect_interval_and_verdict(tune_dir):
    text = render_tips(load_results(tune_dir))
    assert "threads = physical cores" in text and "1.51x tokens/s [1.4" in text
    assert "+20-30%" not in text  # compile was not a tip of this tune
    assert "with threads 1, the fastest measured on cpu (Synthetic CPU)" in text  # the best_config finding
    assert "(6 pairs)" in text  # the fixture's six pairs, none spoiled
    assert (
        "Verdicts (the bar: 5%)" in text and "small gain / small loss" in text
    )  # the threshold, with the table


def test_a_small_gain_and_spoiled_pairs_read_in_the_table(tmp_path):
    """1.03x, tight: wholly above 1 but under the bar, a small gain (once "no effect"); a pair spoiled by a
    burst is dropped and counted in the row, and a budget that ran out is said."""
    root = write_sweep(tmp_path / "res", hw=hwinfo(physical_cores=2, features=("avx2", "fma")))
    d = write_run(root, "cpu-default", ms=50.0)
    add_tune(
        d, tip="default", variant="default", group="", measure="default", changed=[], knobs=DEFAULT_KNOBS
    )
    v = write_run(root, "cpu-fused-adamw", ms=48.5)
    default = [15360.0 * (1 + 0.002 * ((i * 5) % 7 - 3)) for i in range(12)]
    variant = [x * 1.03 for x in default]
    default[6], variant[6] = 5000.0, 4000.0  # a burst of load: both blocks far from their neighbours
    add_tune(v, tip="fused_adamw", variant="fused-adamw", group="optimizer", measure="throughput",
             changed=["fused_adamw on"], knobs={**DEFAULT_KNOBS, "fused_adamw": True}, samples_tokens_per_s=variant,
             default_samples_tokens_per_s=default, stopped="--max-seconds ran out", pairs=12)  # fmt: skip
    results = load_results(root)
    row = rows_by_tip(results)["fused_adamw"]
    assert row.verdict == "small gain" and row.effect.n_spoiled == 1 and 1 < row.effect.low
    assert row.evidence["bar"] == 0.05 and row.evidence["stopped"] == "--max-seconds ran out"
    assert "(12 pairs, 1 spoiled by load dropped; --max-seconds ran out)" in row.effect_text()
    (best,) = [f for f in diagnose(results) if f.kind == "best_config"]
    assert "fused_adamw on" in best.sentence  # a small gain goes into the best configuration


def test_best_config_and_tip_findings(tune_dir):
    results = load_results(tune_dir)
    findings = diagnose(results)
    best = [f for f in findings if f.kind == "best_config"]
    assert len(best) == 1
    gain = best[0].evidence["gain_over_default"]
    assert gain["ratio"] == pytest.approx(1.5, rel=0.02) and gain["low"] > 1 and gain["high"] > gain["low"]
    assert best[0].evidence["changed"] == ["threads 1"] and best[0].evidence["time_to_loss_gain"] is None
    tips = [f for f in findings if f.kind == "tip"]
    assert len(tips) == 7 and all(f.runs for f in tips)
    bf16 = next(f for f in tips if f.evidence["tip"] == "bf16")
    assert bf16.severity == "warning" and "mixed precision" in bf16.sentence
    b = best_config(device_tunes(results)[0])
    assert b["best_single"].name == "threads1"


def test_json_carries_the_tips_and_time_to_loss_as_data(tune_dir):
    results = load_results(tune_dir)
    report = json.loads(render(results, diagnose(results), "json"))
    tips = {t["tip"]: t for t in report["tips"]}
    assert tips["threads"]["verdict"] == "worth it" and tips["threads"]["effect"]["low"] > 1
    assert tips["threads"]["claim"].startswith("use every core")
    ttl = report["time_to_loss"]
    assert len(ttl) == 1 and ttl[0]["source"] == "tune" and ttl[0]["reference"].endswith("cpu-default")


def test_html_has_a_tips_section_only_for_a_tune(tune_dir, tmp_path):
    results = load_results(tune_dir)
    page = render_html(results, diagnose(results))
    assert 'id="tips"' in page and "the fastest measured on cpu" in page
    plain = write_sweep(tmp_path / "plain")
    write_run(plain, "cpu-fp32-b12-eager")
    page = render_html(load_results(plain), diagnose(load_results(plain)))
    assert 'id="tips"' not in page and 'href="#tips"' not in page


def test_time_to_loss_for_runs_that_share_a_target_outside_tune(tmp_path):
    root = write_sweep(tmp_path / "res")
    write_run(root, "cpu-b12", ms=50.0, eval_ms=100.0)
    write_run(root, "cpu-b24", batch_size=24, ms=80.0, eval_ms=100.0, val_offset=0.05)
    results = load_results(root)
    (s,) = to_loss_sets(results)
    assert s.source == "shared" and s.target == pytest.approx(float(results.runs["final_val_loss"].max()))
    fast, slow = s.run("laptop/cpu-b12"), s.run("laptop/cpu-b24")
    assert fast.reached and slow.reached and fast.time_s < slow.time_s
    assert s.reference == "laptop/cpu-b24"  # the slowest is the reference
    f = next(f for f in diagnose(results) if f.kind == "time_to_loss")
    assert "Time to val loss" in f.sentence and "cpu-b12" in f.sentence
    assert f.evidence["speedups"]["laptop/cpu-b12"]["ratio"] > 1

    # a ratio is bracketed by both runs' eval resolution: each crossed after its eval before
    ref = slow
    assert 0 < ref.prev_eval_s < ref.time_s and 0 < fast.prev_eval_s < fast.time_s
    e = s.effect(fast.key)
    assert e.ratio == pytest.approx(ref.time_s / fast.time_s)  # the point estimate: reached / reached
    assert e.low == pytest.approx(ref.prev_eval_s / fast.time_s) and e.low < e.ratio  # the reference's too
    assert e.high == pytest.approx(ref.time_s / fast.prev_eval_s)
    mine = s.effect(ref.key)  # the reference against itself: one crossing, exactly 1
    assert (mine.ratio, mine.low, mine.high) == (1.0, 1.0, 1.0)
    assert f"{fmt.ratio(e.ratio)} [{fmt.ratio(e.low)}-{fmt.ratio(e.high)}] the speed of cpu-b24" in f.sentence
    (ref_row,) = [r for r in f.evidence["runs"] if r["key"] == ref.key]
    assert (ref_row["reached_iter"], ref_row["prev_eval_s"]) == (
        ref.reached_iter,
        pytest.approx(ref.prev_eval_s),
    )
    assert f.evidence["speedups"][fast.key]["low"] == pytest.approx(e.low)


def test_threads_against_pytorchs_own_count_reads_as_words(tmp_path):
    """A default left at PyTorch's thread count once read "1 thread(s) against the default's PyTorch's choice"."""
    root = write_sweep(tmp_path / "res", hw=hwinfo(physical_cores=2, features=("avx2", "fma")))
    d = write_run(root, "cpu-default", ms=50.0, threads=None)
    add_tune(
        d, tip="default", variant="default", group="", measure="default", changed=[], knobs=DEFAULT_KNOBS
    )
    throughput(root, "threads2", "threads", "threads", 1.2, ["threads 2"], {"threads": 2})
    why = rows_by_tip(load_results(root))["threads"].why
    assert "2 threads against the default (PyTorch's own thread count)" in why
    assert "thread(s)" not in why and "default's PyTorch" not in why


def test_a_compiled_best_that_is_slower_to_the_target_says_the_compile_is_not_repaid(tmp_path):
    """The shape of a real CPU tune: compile is 1.06x tokens/s, but its first step (the compile, 21 s) counts in
    its time to the target, and the few ms it saves per step repay that only over a longer run than the recipe."""
    root = write_sweep(tmp_path / "res", hw=hwinfo(physical_cores=2, features=("avx2", "fma")))
    d = write_run(root, "cpu-default", ms=64.0, eval_ms=200.0)
    target = round(float(read_json(d / "run.json")["summary"]["final_val_loss"]), 6)
    add_tune(d, tip="default", variant="default", group="", measure="default", changed=[], knobs=DEFAULT_KNOBS,
             target_val_loss=target, stopped="end of recipe")  # fmt: skip
    throughput(root, "compile", "compile", "compile", 1.06, ["compile on"], {"compile": "on"})
    best = write_run(root, "cpu-best-to-loss", ms=61.0, eval_ms=200.0, compile="on", first_step_ms=21000.0)
    add_tune(best, tip="best-to-loss", variant="best-to-loss", group="best", measure="time_to_loss",
             changed=["compile on"], knobs={**DEFAULT_KNOBS, "compile": "on"}, target_val_loss=target,
             stopped="target reached")  # fmt: skip
    results = load_results(root)
    (finding,) = [f for f in diagnose(results) if f.kind == "best_config"]
    assert finding.evidence["time_to_loss_gain"]["ratio"] < 1  # the compile's 21 s outweigh the steps saved
    p = finding.evidence["compile_payback"]
    ms = results.runs.loc[_key(results, "cpu-best-to-loss"), "ms_median"]
    base = results.runs.loc[_key(results, "cpu-default"), "ms_median"]
    assert p["first_step_s"] == pytest.approx(21.0) and p["recipe_steps"] == 2000
    assert p["break_even_steps"] == pytest.approx((21000.0 - ms) / (base - ms))
    assert 2000 < p["break_even_steps"] < 20000
    assert "21.0 s compile is repaid after ~" in finding.sentence  # the words: tests/golden/best_config.txt

    # an uncompiled best slower to the target gets no such reason
    meta = read_json(best / "run.json")
    meta["compile"] = "off"
    atomic_write_json(best / "run.json", meta)
    (finding,) = [f for f in diagnose(load_results(root)) if f.kind == "best_config"]
    assert "compile_payback" not in finding.evidence and "compile" not in finding.sentence.split(";")[-1]


def _key(results, run_id: str) -> str:
    return next(k for k in results.runs.index if results.runs.loc[k, "run_id"] == run_id)


def test_a_best_that_never_reached_the_target_leaves_every_report_whole(tmp_path):
    """A compiled best faster per step (tokens/s measured) but stopped at the time cap short of the target has
    only an upper bound on its time-to-loss speed (ratio None): the tips table, the findings, the JSON and the
    page are all still made (it once raised "'<' not supported between 'NoneType' and 'int'" in every format)."""
    root = write_sweep(tmp_path / "res", hw=hwinfo(physical_cores=2, features=("avx2", "fma")))
    d = write_run(root, "cpu-default", ms=64.0, eval_ms=200.0)
    target = round(float(read_json(d / "run.json")["summary"]["final_val_loss"]), 6)
    add_tune(d, tip="default", variant="default", group="", measure="default", changed=[], knobs=DEFAULT_KNOBS,
             target_val_loss=target, stopped="end of recipe")  # fmt: skip
    throughput(root, "compile", "compile", "compile", 1.3, ["compile on"], {"compile": "on"})
    throughput(
        root, "fused-adamw", "fused_adamw", "optimizer", 1.2, ["fused_adamw on"], {"fused_adamw": True}
    )
    best = write_run(root, "cpu-best", ms=40.0, compile="on")
    add_tune(best, tip="best", variant="best", group="compile+fused-adamw", measure="throughput",
             changed=["compile on", "fused_adamw on"], knobs={**DEFAULT_KNOBS, "compile": "on", "fused_adamw": True},
             samples_tokens_per_s=samples(15360 * 1.5, seed=3), default_samples_tokens_per_s=samples(15360, seed=4))  # fmt: skip
    # its evals stay above the target (val_offset), and the cap stopped it
    ttl = write_run(root, "cpu-best-to-loss", ms=61.0, eval_ms=200.0, compile="on", first_step_ms=200000.0,
                    val_offset=0.5)  # fmt: skip
    add_tune(ttl, tip="best-to-loss", variant="best-to-loss", group="best", measure="time_to_loss",
             changed=["compile on", "fused_adamw on"], knobs={**DEFAULT_KNOBS, "compile": "on", "fused_adamw": True},
             target_val_loss=target, stopped="time cap")  # fmt: skip
    results = load_results(root)
    findings = diagnose(results)
    (finding,) = [f for f in findings if f.kind == "best_config"]
    assert finding.evidence["time_to_loss_gain"]["ratio"] is None
    assert "target not reached" in finding.sentence
    assert "the fastest measured" in render_tips(results)
    assert "Tips measured" in render_html(results, findings)
    assert json.loads(render(results, findings, "json"))["tips"]

    # the real shape: its compile (warm-up steps only) outlasted the cap, so it has no timed step and no
    # ms_median; it was still timed to the target (its evals say so), never "time to loss not measured"
    meta = read_json(ttl / "run.json")
    meta["summary"]["ms_median"] = None
    atomic_write_json(ttl / "run.json", meta)
    results = load_results(root)
    (finding,) = [f for f in diagnose(results) if f.kind == "best_config"]
    gain = finding.evidence["time_to_loss_gain"]
    assert gain is not None and gain["ratio"] is None and gain["high"] < 1
    assert "not measured" not in finding.sentence and "target not reached" in finding.sentence
    # its 200 s compile alone outlasted the default's time to the target: said, from the two runs
    default_s = to_loss_sets(results)[0].run(_key(results, "cpu-default")).time_s
    assert default_s < 200.0 and finding.evidence["compile_payback"]["first_step_s"] == pytest.approx(200.0)
    assert finding.evidence["compile_payback"]["default_time_s"] == pytest.approx(default_s)


def test_a_numactl_and_a_kmp_variant_say_how_their_process_was_started(tmp_path):
    """The affinity levers measured in a process of their own: the why names numactl's command line or the
    KMP variables, whichever the variant's process was started with."""
    root = write_sweep(tmp_path / "res", hw=hwinfo(physical_cores=2, features=("avx2", "fma")))
    d = write_run(root, "cpu-default", ms=50.0)
    add_tune(
        d, tip="default", variant="default", group="", measure="default", changed=[], knobs=DEFAULT_KNOBS
    )
    for name, tip, process in (
        ("numa-node0", "numactl", {"env": {}, "launcher": ["numactl", "--cpunodebind=0", "--membind=0"]}),
        (
            "kmp-compact",
            "kmp_affinity",
            {"env": {"KMP_AFFINITY": "granularity=fine,compact,1,0"}, "launcher": []},
        ),
    ):
        v = write_run(root, f"cpu-{name}", ms=50.0)
        add_tune(v, tip=tip, variant=name, group="affinity", measure="throughput", changed=[f"omp_affinity {name}"],
                 knobs={**DEFAULT_KNOBS, "omp_affinity": name}, samples_tokens_per_s=samples(15360, seed=3),
                 default_samples_tokens_per_s=samples(15360, seed=4), process=process)  # fmt: skip
    rows = rows_by_tip(load_results(root))
    assert rows["numactl"].why.startswith("numactl --cpunodebind=0 --membind=0, in a process of its own")
    assert rows["kmp_affinity"].why.startswith("KMP_AFFINITY=granularity=fine,compact,1,0, in a process")
    assert rows["numactl"].title.startswith("numactl") and rows["kmp_affinity"].claim.startswith("Intel's")
