"""Energy in the report: J/step and tokens/J where runs had a counter, the reason where they had none."""

from __future__ import annotations

import json
from pathlib import Path

from reports.diagnosis import diagnose
from reports.load import load_results
from reports.summary import render
from tests import fixtures as synthetic

SHORT = {"max_iters": 200, "lr_decay_iters": 200, "eval_interval": 50}


def _with_energy(run_dir: Path, **energy) -> None:
    path = run_dir / "run.json"
    meta = json.loads(path.read_text())
    meta["summary"]["energy"] = {
        "source": "unavailable", "reason": None, "joules_per_step": None, "tokens_per_joule": None,
        "mean_watts": None, "idle_watts": None, "eval_joules": None, **energy,
    }  # fmt: skip
    path.write_text(json.dumps(meta))


def test_two_devices_with_counters_are_compared_per_token(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r", hw=synthetic.hwinfo(gpus=("Intel UHD Graphics 770",)))
    hw = json.loads((d / "sweep.json").read_text())
    hw["hwinfo"]["gpus"][0]["integrated"] = True
    (d / "sweep.json").write_text(json.dumps(hw))
    cpu = synthetic.write_run(d, "cpu-run", ms=50.0, train=SHORT)
    gpu = synthetic.write_run(d, "cuda-run", device="cuda", device_name="RTX", ms=5.0, train=SHORT)
    # cpu: 768 tokens in 50 ms at 40 W = 2 J/step; cuda: 768 tokens in 5 ms at 200 W = 1 J/step
    _with_energy(
        cpu, source="rapl", joules_per_step=2.0, tokens_per_joule=384.0, mean_watts=40.0, idle_watts=8.0
    )
    _with_energy(gpu, source="nvml_energy", joules_per_step=1.0, tokens_per_joule=768.0, mean_watts=200.0)
    results = load_results(d)
    findings = diagnose(results)
    compare = [f for f in findings if f.kind == "energy_compare"]
    assert len(compare) == 1
    assert compare[0].evidence["energy_ratio"] == 2.0 and compare[0].evidence["time_ratio"] > 9
    assert "uses 2.0x less energy" in compare[0].sentence and "cheaper and faster" in compare[0].sentence
    cpu_finding = next(f for f in findings if f.kind == "energy" and "cpu" in f.sentence)
    assert "2.00 J/step" in cpu_finding.sentence and "idle 8.00 W" in cpu_finding.sentence
    assert cpu_finding.evidence["igpu"] == "Intel UHD Graphics 770"  # the RAPL package counter includes it
    assert "which include Intel UHD Graphics 770's draw" in cpu_finding.sentence
    text = render(results, findings, "text")
    assert "energy/step" in text and "2.00 J, 384 tok/J" in text
    csv_text = render(results, findings, "csv")
    assert "tokens_per_joule" in csv_text.splitlines()[0]


def test_no_counter_says_why_once_per_device_and_no_energy_column(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    reason = "no RAPL counters: /sys/class/powercap does not exist"
    for b in (4, 8):
        _with_energy(synthetic.write_run(d, f"cpu-b{b}", batch_size=b, train=SHORT), reason=reason)
    results = load_results(d)
    findings = diagnose(results)
    missing = [f for f in findings if f.kind == "energy_unavailable"]
    assert len(missing) == 1 and reason in missing[0].sentence and "never estimates" in missing[0].sentence
    assert not [f for f in findings if f.kind in ("energy", "energy_compare")]
    assert "energy/step" not in render(results, findings, "text")


def test_runs_from_before_energy_say_nothing(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "old", train=SHORT)
    assert not [f for f in diagnose(load_results(d)) if f.kind.startswith("energy")]


def test_figures_without_a_real_counter_or_outside_the_band_are_never_shown(tmp_path):
    """The defects: edited run.json figures shown under "unavailable", missing or "tdp_estimate" sources,
    negative joules, and a broken counter's 526,043 W shown as info; a counter that never moved was silent."""
    d = synthetic.write_sweep(tmp_path / "r", hw=synthetic.hwinfo(physical_cores=1))  # 2 logical CPUs
    figures = {"joules_per_step": 2.0, "tokens_per_joule": 384.0, "mean_watts": 40.0}
    cases = {
        "unavail": dict(figures, source="unavailable"),
        "nosource": dict(figures, source=None),
        "tdp": dict(figures, source="tdp_estimate"),
        "negative": {"source": "rapl", "joules_per_step": -3.0, "tokens_per_joule": -1.0, "mean_watts": 1.0},
        "wrapped": {"source": "rapl", "joules_per_step": 8886.0, "tokens_per_joule": 768 / 8886.0,
                    "mean_watts": 526_043.0},
        "fast": {"source": "rapl", "joules_per_step": 43.0, "tokens_per_joule": 768 / 43.0, "mean_watts": 2531.0},
        "still": {"source": "rapl", "reason": "the counter did not advance during the timed steps"},
    }  # fmt: skip
    for b, (name, energy) in enumerate(cases.items(), start=1):
        _with_energy(synthetic.write_run(d, name, batch_size=b, model={"block_size": 768 // b}, train=SHORT),
                     **energy)  # fmt: skip
    results = load_results(d)
    assert results.runs["joules_per_step"].isna().all()
    findings = diagnose(results)
    assert not [f for f in findings if f.kind in ("energy", "energy_compare")]
    (missing,) = [f for f in findings if f.kind == "energy_unavailable"]
    assert missing.sentence.startswith("No energy figures for cpu") and len(missing.runs) == len(cases)
    reasons = {k: results.runs.loc[f"laptop/{k}", "energy_reason"] for k in cases}
    assert "no counter was recorded" in reasons["unavail"] and "no counter" in reasons["nosource"]
    assert "'tdp_estimate', not a counter" in reasons["tdp"] and "not positive" in reasons["negative"]
    assert "526,043 W" in reasons["wrapped"] and "2,531 W" in reasons["fast"] and "2 CPUs" in reasons["fast"]
    assert "did not advance" in reasons["still"]
    text = render(results, findings, "text")
    assert "energy/step" not in text and "J/step" not in text and "tokens/J" not in text


def test_a_counter_that_never_moved_is_said(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    _with_energy(synthetic.write_run(d, "cpu", train=SHORT), source="rapl",
                 reason="the counter did not advance during the timed steps")  # fmt: skip
    (f,) = [f for f in diagnose(load_results(d)) if f.kind.startswith("energy")]
    assert f.kind == "energy_unavailable" and "did not advance" in f.sentence
