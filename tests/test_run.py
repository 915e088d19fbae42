"""`bench run` end to end on the CPU with a tiny model: files, timing fields, failure handling, resume."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import train as train_mod
from bench.cli import main
from bench.config import TrainConfig
from bench.results import SCHEMA
from bench.train import lr_at

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16"]
SHORT = [
    "--iters",
    "30",
    "--eval-interval",
    "10",
    "--eval-iters",
    "2",
    "--timing-warmup-iters",
    "3",
    "--no-progress",
]


def bench_run(out: Path, *extra: str) -> int:
    return main(["run", "--devices", "cpu", *TINY, *SHORT, "--out", str(out), *extra])


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_json(out: Path, run_id: str) -> dict:
    return json.loads((out / "runs" / run_id / "run.json").read_text())


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "res"
    assert bench_run(out, "--batch-sizes", "4,8", "--threads", "1,2") == 0
    return out


def test_sweep_writes_schema_1_directory(sweep_dir):
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert sweep["schema"] == SCHEMA
    assert sweep["software"]["torch"] == torch.__version__
    assert sweep["hwinfo"]["schema"].startswith("devicebench-hwinfo/")
    assert sweep["spec"]["train"]["max_iters"] == 30
    runs = sorted(p.name for p in (sweep_dir / "runs").iterdir())
    assert runs == [
        "cpu-fp32-b4-eager-t1",
        "cpu-fp32-b4-eager-t2",
        "cpu-fp32-b8-eager-t1",
        "cpu-fp32-b8-eager-t2",
    ]


def test_run_records_every_step_evals_apart_and_warmup_out_of_medians(sweep_dir):
    run = run_json(sweep_dir, "cpu-fp32-b8-eager-t2")
    assert run["status"] == "ok" and run["error"] is None
    assert run["threads"] == 2 and run["batch_size"] == 8
    steps = read_csv(sweep_dir / "runs" / run["run_id"] / "steps.csv")
    assert [int(s["iter"]) for s in steps] == list(range(30))
    assert [s["phase"] for s in steps[:3]] == ["warmup"] * 3
    assert all(s["phase"] == "timed" for s in steps[3:])
    timed = [float(s["ms"]) for s in steps[3:]]
    summary = run["summary"]
    assert summary["ms_median"] == pytest.approx(statistics.median(timed), rel=1e-3, abs=1e-3)
    assert summary["ms_p10"] <= summary["ms_median"] <= summary["ms_p90"]
    assert summary["tokens_per_s"] == pytest.approx(8 * 16 / (summary["ms_median"] / 1e3))
    assert summary["achieved_flops_per_s"] == pytest.approx(
        run["flops_per_iter"] / (summary["ms_median"] / 1e3)
    )
    assert summary["mfu_vs_a100"] == pytest.approx(summary["achieved_flops_per_s"] / 312e12)
    if run["peak_flops"]["value"]:
        assert summary["mfu"] == pytest.approx(summary["achieved_flops_per_s"] / run["peak_flops"]["value"])
    else:
        assert summary["mfu"] is None and run["peak_flops"]["source"] == "unknown"
    evals = read_csv(sweep_dir / "runs" / run["run_id"] / "evals.csv")
    assert sorted({int(e["iter"]) for e in evals}) == [0, 10, 20, 30]
    assert {e["split"] for e in evals} == {"train", "val"}
    assert summary["eval_ms_total"] == pytest.approx(sum(float(e["ms"]) for e in evals), rel=1e-3)
    assert summary["final_val_loss"] == pytest.approx(float(evals[-1]["loss"]), abs=1e-5)
    assert summary["peak_mem_bytes"] > 0
    # lr column follows nanoGPT's schedule
    t = TrainConfig(**{k: v for k, v in run["train"].items()})
    assert [float(s["lr"]) for s in steps[:5]] == pytest.approx([lr_at(i, t) for i in range(5)], rel=1e-4)


def test_thread_count_does_not_change_the_batches_or_the_curve(sweep_dir):
    one = read_csv(sweep_dir / "runs" / "cpu-fp32-b8-eager-t1" / "steps.csv")
    two = read_csv(sweep_dir / "runs" / "cpu-fp32-b8-eager-t2" / "steps.csv")
    diffs = [abs(float(a["loss"]) - float(b["loss"])) for a, b in zip(one, two, strict=True)]
    assert max(diffs) < 1e-3, max(diffs)
    # a different batch size sees different data: the curves differ
    b4 = read_csv(sweep_dir / "runs" / "cpu-fp32-b4-eager-t2" / "steps.csv")
    assert max(abs(float(a["loss"]) - float(b["loss"])) for a, b in zip(b4, two, strict=True)) > 1e-3


def test_same_seed_repeats_exactly_and_another_seed_differs(tmp_path):
    assert bench_run(tmp_path / "a", "--threads", "1") == 0
    assert bench_run(tmp_path / "b", "--threads", "1") == 0
    assert bench_run(tmp_path / "c", "--threads", "1", "--seed", "7") == 0
    a, b, c = (read_csv(tmp_path / x / "runs" / "cpu-fp32-b12-eager-t1" / "steps.csv") for x in "abc")
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    assert [r["loss"] for r in a] != [r["loss"] for r in c]


def test_unsupported_dtype_is_skipped_with_reason_and_sweep_goes_on(tmp_path):
    out = tmp_path / "r"
    assert bench_run(out, "--dtypes", "tf32,bf16", "--iters", "8", "--eval-interval", "8") == 0
    tf32 = run_json(out, "cpu-tf32-b12-eager")
    assert tf32["status"] == "skipped" and "CUDA" in tf32["error"]
    bf16 = run_json(out, "cpu-bf16-b12-eager")
    assert bf16["status"] == "ok" and bf16["dtype"] == "bf16"


def test_unavailable_device_alone_is_one_clear_line(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(["run", "--devices", "cuda", *TINY, *SHORT, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "CUDA" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_unavailable_device_in_a_multi_device_sweep_is_recorded_as_skipped(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "r"
    assert main(["run", "--devices", "cpu,cuda", *TINY, *SHORT, "--iters", "6", "--out", str(out)]) == 0
    assert run_json(out, "cpu-fp32-b12-eager")["status"] == "ok"
    cuda = run_json(out, "cuda-fp32-b12-eager")
    assert cuda["status"] == "skipped" and "CUDA" in cuda["error"]


def test_nan_loss_fails_the_run_with_its_iteration(tmp_path):
    cfg = tmp_path / "nan.toml"
    cfg.write_text("[train]\nlearning_rate = 1e30\nwarmup_iters = 0\ngrad_clip = 0.0\n")
    out = tmp_path / "r"
    assert bench_run(out, "--config", str(cfg), "--batch-sizes", "2,4") == 1
    for run_id in ("cpu-fp32-b2-eager", "cpu-fp32-b4-eager"):  # both attempted, both failed
        run = run_json(out, run_id)
        assert run["status"] == "failed"
        assert "loss became nan at iter" in run["error"] or "loss became inf at iter" in run["error"]


def test_out_of_memory_fails_that_run_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real_step = train_mod.Trainer.train_step

    def step(self, it):
        if self.batch_size == 8:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_step(self, it)

    monkeypatch.setattr(train_mod.Trainer, "train_step", step)
    out = tmp_path / "r"
    assert bench_run(out, "--batch-sizes", "4,8,2") == 1
    assert run_json(out, "cpu-fp32-b4-eager")["status"] == "ok"
    oom = run_json(out, "cpu-fp32-b8-eager")
    assert oom["status"] == "failed" and "out of memory at batch size 8" in oom["error"]
    assert run_json(out, "cpu-fp32-b2-eager")["status"] == "ok"


def test_ctrl_c_marks_run_interrupted_keeps_finished_and_resume_completes(tmp_path, monkeypatch):
    real_step = train_mod.Trainer.train_step

    def step(self, it):
        if self.batch_size == 8 and it == 5:
            raise KeyboardInterrupt
        return real_step(self, it)

    monkeypatch.setattr(train_mod.Trainer, "train_step", step)
    out = tmp_path / "r"
    assert bench_run(out, "--batch-sizes", "4,8,2") == 130
    first = run_json(out, "cpu-fp32-b4-eager")
    assert first["status"] == "ok"
    assert run_json(out, "cpu-fp32-b8-eager")["status"] == "interrupted"
    assert len(read_csv(out / "runs" / "cpu-fp32-b8-eager" / "steps.csv")) == 5  # steps it finished
    assert not (out / "runs" / "cpu-fp32-b2-eager").exists()

    monkeypatch.setattr(train_mod.Trainer, "train_step", real_step)
    assert bench_run(out, "--batch-sizes", "4,8,2") == 2  # exists: needs --resume
    assert main(["run", "--out", str(out), "--resume", "--no-progress"]) == 0  # the sweep's own config
    assert run_json(out, "cpu-fp32-b4-eager")["started"] == first["started"]  # not rerun
    for run_id in ("cpu-fp32-b8-eager", "cpu-fp32-b2-eager"):
        assert run_json(out, run_id)["status"] == "ok"
        assert len(read_csv(out / "runs" / run_id / "steps.csv")) == 30


def test_newer_schema_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"schema": "devicebench/99"}))
    assert bench_run(out, "--resume") == 2
    assert "newer than this devicebench reads" in capsys.readouterr().err


def test_bad_config_is_one_clear_line(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[train]\nmax_iter = 5\n")
    assert bench_run(tmp_path / "r", "--config", str(cfg)) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) in [train]: max_iter" in err and "Traceback" not in err
    assert main(["run", "--dtypes", "fp64", "--out", str(tmp_path / "r2")]) == 2
    assert "--dtypes fp64: 'fp64' is not one of fp32" in capsys.readouterr().err


def test_toml_config_then_flags_over_it(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text(
        '[model]\nn_layer = 1\nn_head = 2\nn_embd = 32\nblock_size = 16\n[sweep]\nbatch_sizes = [3]\nhost = "box"\n'
    )
    out = tmp_path / "r"
    assert (
        main(["run", "--config", str(cfg), "--devices", "cpu", *SHORT, "--iters", "6", "--out", str(out)])
        == 0
    )
    run = run_json(out, "cpu-fp32-b3-eager")
    assert run["model"]["n_embd"] == 32 and run["host"] == "box" and run["summary"]["iters_done"] == 6


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["run", "--devices", "cpu", "--batch-sizes", "12,64", "--dtypes", "fp32,bf16", "--dry-run"]
    assert main([*args, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 run(s)" in text and "cpu-bf16-b64-eager" in text and "estimated total" in text
    assert not out.exists()


def test_help_is_instant_without_torch():
    code = "import sys; from bench.cli import main\ntry:\n main(['--help'])\nexcept SystemExit: pass\n" \
           "assert 'torch' not in sys.modules, 'bench --help imported torch'"  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    code = code.replace("bench.cli", "hwinfo.cli").replace("'bench", "'hwinfo")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
