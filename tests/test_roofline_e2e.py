"""The roofline end to end, as a user runs it: `bench run --profile` then `bench report --html` and
`--format json` (tiny model, CPU), and a profile.json of schema 1 still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.results import PROFILE_SCHEMA, read_profile
from reports.diagnosis import diagnose
from reports.html import render_html
from reports.load import load_results

TINY = ["--devices", "cpu", "--iters", "12", "--eval-interval", "12", "--eval-iters", "1", "--timing-warmup-iters", "2",
        "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--block-size", "16", "--batch-sizes", "4",
        "--no-progress"]  # fmt: skip
DATA = Path(__file__).parent / "data"


def test_run_profile_then_report_shows_the_roofline(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", *TINY, "--profile", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "cpu: measuring memory bandwidth (STREAM copy and triad) for the roofline" in err
    prof = read_profile(out / "runs" / "cpu-fp32-b4-eager" / "profile.json")
    assert prof["schema"] == PROFILE_SCHEMA
    rl = prof["roofline"]
    memory = {r.get("kind"): r for r in rl["roofs"]["memory"]}
    assert memory["triad"]["source"] == "measured" and memory["triad"]["value"] > 1e8
    assert rl["memory_roof"] == memory["triad"] and rl["compute_roof"]["source"] == "measured"
    assert rl["ridge_flop_per_byte"] == rl["compute_roof"]["value"] / rl["memory_roof"]["value"]
    cats = rl["categories"]
    assert (
        cats["matmul"]["intensity"] > cats["elementwise_norm"]["intensity"] > 0
    )  # matmuls reuse what they read
    assert cats["other"]["bound"] == "overhead"
    assert all(cats[c]["bound"] in ("compute", "memory", "overhead") for c in ("matmul", "elementwise_norm"))
    assert sum(rl["bound_fraction"].values()) == pytest.approx(1.0, abs=0.02)
    assert any("lower bound" in n for n in prof["notes"])

    page = tmp_path / "report.html"
    assert main(["report", str(out), "--html", str(page), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (finding,) = [f for f in report["findings"] if f["kind"] == "roofline"]
    assert finding["sentence"].startswith("cpu-fp32-b4-eager: ") and len(finding["sentence"]) <= 250
    assert finding["evidence"]["device"] == "cpu" and finding["evidence"]["batch_size"] == 4
    assert finding["evidence"]["categories"]["matmul"]["intensity"] == cats["matmul"]["intensity"]
    html = page.read_text()
    assert 'id="plot-roofline-0"' in html and "roofline: cpu" in html and "% of its roof" in html
    assert f'href="#{finding["id"]}"' in html


def test_a_schema_1_profile_still_loads_without_a_roofline():
    root = DATA / "results-schema2"
    prof = json.loads((root / "runs" / "cpu-fp32-b2-eager" / "profile.json").read_text())
    assert prof["schema"] == "devicebench-profile/1" and "roofline" not in prof
    results = load_results(root)
    assert len(results.profiles) == 1 and not results.warnings
    findings = diagnose(results)
    assert [f.kind for f in findings if f.kind in ("step_breakdown", "roofline")] == ["step_breakdown"]
    page = render_html(results, findings)
    assert "No profile with a roofline" in page and "plot-roofline" not in page
