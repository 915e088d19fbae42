"""`bench gate` end to end on a tiny workload: exit codes, baseline update and refusal, pytest-benchmark."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.cli import main

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--batch-size", "2",
        "--threads", "1", "--trials", "6", "--steps", "5", "--warmup-steps", "1", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_baseline(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gate") / "baseline.json"
    assert main(["gate", "--baseline", str(path), "--update-baseline", *TINY]) == 0
    return path


def test_update_baseline_writes_schema_trials_config_and_machine(tiny_baseline):
    data = json.loads(tiny_baseline.read_text())
    assert data["schema"] == "devicebench-gate/1" and data["kind"] == "train-step"
    assert len(data["trials"]) == 6
    assert all(t["ratio"] == pytest.approx(t["workload_ms"] / t["reference_ms"]) for t in data["trials"])
    assert data["workload"]["model"]["n_layer"] == 1 and data["workload"]["batch_size"] == 2
    assert data["workload"]["threads"] == 1
    assert {"cpu_model", "logical_cores", "torch"} <= set(data["machine"])


def test_check_against_own_baseline_is_not_a_regression(tiny_baseline, capsys):
    # A tiny model is dominated by per-step overheads that vary with the load: a wide threshold here
    # checks the plumbing (same workload, same sides of the ratio), the experiment checks the statistics.
    code = main(["gate", "--baseline", str(tiny_baseline), "--json", "--threshold", "50", *TINY])
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["decision"] in ("pass", "inconclusive")
    assert code == verdict["exit_code"] == 0
    c = verdict["comparison"]
    assert c["ci_low"] <= c["slowdown"] <= c["ci_high"]
    assert c["n_current"] == 6 and c["n_baseline"] == 6


def test_regression_exits_1_and_prints_both_ratios(tiny_baseline, tmp_path, monkeypatch, capsys):
    """Baseline and measured trials replaced by low-noise ones, the current 30% slower: the CLI's verdict."""
    from bench.gate import measure as gate_measure
    from bench.gate.measure import Trial

    data = json.loads(tiny_baseline.read_text())
    base = [Trial(10.0 * (1 + 0.01 * k), 5.0) for k in range(-3, 3)]
    data["trials"] = [t.to_dict() for t in base]
    data["ratio_median"] = 2.0
    path = tmp_path / "steady.json"
    path.write_text(json.dumps(data))
    slow = [Trial(t.workload_ms * 1.3, t.reference_ms) for t in base]
    monkeypatch.setattr(gate_measure, "measure", lambda *a, **k: slow)
    code = main(["gate", "--baseline", str(path), *TINY])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "REGRESSION" in out and "+30.0%" in out and "now 2.587 " in out and "baseline 1.99 " in out
    assert main(["gate", "--baseline", str(path), "--threshold", "40", *TINY]) == 0
    assert "PASS" in capsys.readouterr().out


def test_baseline_for_another_workload_is_refused(tiny_baseline, capsys):
    other = list(TINY)
    other[other.index("--n-layer") + 1] = "2"
    assert main(["gate", "--baseline", str(tiny_baseline), *other]) == 2
    err = capsys.readouterr().err
    assert "different workload" in err and "n_layer" in err and "--update-baseline" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_and_corrupt_baselines_are_usage_errors(tmp_path, capsys):
    assert main(["gate", "--baseline", str(tmp_path / "none.json"), *TINY]) == 2
    assert "--update-baseline" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["gate", "--baseline", str(bad), *TINY]) == 2
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something/1"}))
    assert main(["gate", "--baseline", str(other), *TINY]) == 2
    assert "not a gate baseline" in capsys.readouterr().err


def test_baseline_without_trials_is_a_usage_error(tiny_baseline, tmp_path, capsys):
    data = json.loads(tiny_baseline.read_text())
    del data["trials"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    assert main(["gate", "--baseline", str(broken), *TINY]) == 2
    assert "per-trial ratios" in capsys.readouterr().err


def test_bad_flags_are_usage_errors(tmp_path, capsys):
    base = str(tmp_path / "b.json")
    assert main(["gate", "--baseline", base, "--update-baseline", *TINY, "--trials", "3"]) == 2
    assert "--trials" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["gate", "--baseline", base, "--threshold", "ten"])
    assert e.value.code == 2
    assert main(["gate", "--baseline", base, "--reference-benchmark", "x"]) == 2


def test_quick_mode_defaults_to_one_thread():
    import argparse

    from bench.gate import cli as gate

    p = argparse.ArgumentParser()
    gate.add_arguments(p)
    assert gate.workload_config(p.parse_args(["--baseline", "b", "--quick"]))["threads"] == 1
    assert (
        gate.workload_config(p.parse_args(["--baseline", "b", "--quick", "--threads", "2"]))["threads"] == 2
    )
    assert gate.workload_config(p.parse_args(["--baseline", "b"]))["threads"] is None


def test_reference_is_frozen_and_the_same_size_as_the_model():
    """The reference imports nothing of devicebench, and has the parameter count of the model it mirrors."""
    tree = ast.parse((ROOT / "bench" / "gate" / "reference.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.split(".")[0] in ("bench", "model", "hwinfo", "reports") for m in modules)

    from bench.gate.reference import ReferenceShape, ReferenceStep
    from model.gpt import GPTConfig, count_params

    shape = ReferenceShape(n_layer=2, n_head=2, n_embd=32, block_size=16, batch_size=2)
    ref = ReferenceStep(shape)
    n_ref = sum(p.numel() for p in ref.params) - ref.pos.numel()  # nanoGPT's count leaves out positions
    assert n_ref == count_params(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16))
    chunk = ref.tokens[:34].reshape(2, 17)
    before = ref.loss(chunk[:, :-1], chunk[:, 1:]).item()
    for _ in range(5):
        assert ref.step() > 0
    assert 3.0 < before < 5.0  # about ln(65) for near-uniform predictions: a working language model step


# --- pytest-benchmark JSON -----------------------------------------------------------------------

BENCH_FILE = textwrap.dedent(
    """
    import os

    N = int(os.environ["WORK_N"])

    def test_work(benchmark):
        benchmark(lambda: sum(i * i for i in range(N)))

    def test_frozen(benchmark):
        benchmark(lambda: sum(i * i for i in range(2000)))
    """
)


def run_pytest_benchmark(tmp_path: Path, name: str, n: int, save_data: bool = True) -> Path:
    """A real pytest-benchmark run of a tiny suite; returns its --benchmark-json file.

    Without save_data, the per-round data is removed from the file, as in files from pytest-benchmark
    versions or storage (--benchmark-save without --benchmark-save-data) that keep only the summary.
    """
    suite = tmp_path / "suite"
    suite.mkdir(exist_ok=True)
    (suite / "test_tiny_bench.py").write_text(BENCH_FILE)
    out = tmp_path / f"{name}.json"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite), f"--benchmark-json={out}",
           "--benchmark-max-time=0.1", "--benchmark-min-rounds=40", "--rootdir", str(suite)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, env={"WORK_N": str(n), "PATH": "/usr/bin:/bin"})
    if not save_data:
        data = json.loads(out.read_text())
        for b in data["benchmarks"]:
            b["stats"].pop("data", None)
        out.write_text(json.dumps(data))
    return out


@pytest.fixture(scope="module")
def bench_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pb")
    return {
        "base": run_pytest_benchmark(d, "base", 2000),
        "same": run_pytest_benchmark(d, "same", 2000),
        "slow": run_pytest_benchmark(d, "slow", 6000),
        "slow_nodata": run_pytest_benchmark(d, "slow_nodata", 6000, save_data=False),
    }


def test_pytest_benchmark_gate(bench_files, tmp_path, capsys):
    base = tmp_path / "pb-baseline.json"
    assert main(["gate", "--pytest-benchmark", str(bench_files["base"]), "--baseline", str(base),
                 "--update-baseline"]) == 0  # fmt: skip
    stored = json.loads(base.read_text())
    assert stored["kind"] == "pytest-benchmark" and len(stored["benchmarks"]) == 2
    capsys.readouterr()

    assert (
        main(["gate", "--pytest-benchmark", str(bench_files["slow"]), "--baseline", str(base), "--json"]) == 1
    )
    captured = capsys.readouterr()
    verdict = json.loads(captured.out)
    work = next(v for k, v in verdict["benchmarks"].items() if k.endswith("test_work"))
    assert work["decision"] == "regression" and work["slowdown"] > 1.3 and work["method"] == "bootstrap"
    assert any("cannot be cancelled" in n for n in verdict["notes"])

    # a raw pytest-benchmark file works as the baseline too; summary stats alone when no data was saved
    code = main(["gate", "--pytest-benchmark", str(bench_files["slow_nodata"]), "--baseline",
                 str(bench_files["base"]), "--json"])  # fmt: skip
    verdict = json.loads(capsys.readouterr().out)
    work = next(v for k, v in verdict["benchmarks"].items() if k.endswith("test_work"))
    assert code == 1 and work["method"] == "normal-approximation" and work["decision"] == "regression"


def test_pytest_benchmark_reference_normalises(bench_files, capsys):
    code = main(["gate", "--pytest-benchmark", str(bench_files["slow"]), "--baseline", str(bench_files["base"]),
                 "--reference-benchmark", "test_frozen", "--json"])  # fmt: skip
    verdict = json.loads(capsys.readouterr().out)
    assert code == 1 and list(verdict["benchmarks"]) == [k for k in verdict["benchmarks"] if "test_work" in k]
    assert verdict["notes"] == []
    code = main(["gate", "--pytest-benchmark", str(bench_files["same"]), "--baseline", str(bench_files["base"]),
                 "--reference-benchmark", "test_frozen"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "REGRESSION" not in out


def test_pytest_benchmark_bad_input(bench_files, tmp_path, capsys):
    not_pb = tmp_path / "x.json"
    not_pb.write_text("{}")
    assert main(["gate", "--pytest-benchmark", str(not_pb), "--baseline", str(bench_files["base"])]) == 2
    assert "not pytest-benchmark JSON" in capsys.readouterr().err
    assert main(["gate", "--pytest-benchmark", str(bench_files["same"]), "--baseline", str(bench_files["base"]),
                 "--reference-benchmark", "nope"]) == 2  # fmt: skip
    assert "not in the file" in capsys.readouterr().err
