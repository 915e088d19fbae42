"""Issue 14's done-when: a laptop-CPU log and a desktop-GPU log (examples/nanogpt), each imported with its
machine's `hwinfo --json`, reported together.

The figures the report must give are recomputed here from the log text and the hwinfo JSON with a parser
of the test's own, not taken from the code under test.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest

from bench.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "nanogpt"
ITER = re.compile(r"^iter (\d+): loss \S+, time ([\d.]+)ms")
STEP = re.compile(r"^step (\d+): train loss ([\d.]+), val loss ([\d.]+)")


def read_log(name: str) -> dict:
    """What the log says, read independently: iters, evals, tokens per iteration, parameters."""
    text = (EXAMPLES / name).read_text()
    iters = [(int(m[1]), float(m[2])) for line in text.splitlines() if (m := ITER.match(line))]
    evals = [(int(m[1]), float(m[2]), float(m[3])) for line in text.splitlines() if (m := STEP.match(line))]
    tokens = int(re.search(r"tokens per iteration will be: ([\d,]+)", text)[1].replace(",", ""))
    params_m = float(re.search(r"number of parameters: ([\d.]+)M", text)[1])
    eval_iters = {e[0] for e in evals}
    first = iters[0][0]
    # timed: not the first 5 iterations, not an iteration whose time holds the eval printed before it
    timed = [ms for it, ms in iters if it >= first + 5 and it not in eval_iters]
    return {
        "iters": iters,
        "evals": evals,
        "tokens": tokens,
        "params_m": params_m,
        "median": statistics.median(timed),
    }


def peak(hwinfo: str, device: str, dtype: str) -> float:
    snap = json.loads((EXAMPLES / hwinfo).read_text())
    return next(d for d in snap["devices"] if d["device"] == device)["peaks"][dtype]["value"]


def flops_per_token(n_layer: int, n_embd: int, block: int, vocab: int) -> int:
    n = n_layer * (12 * n_embd * n_embd + 2 * n_embd) + n_embd + vocab * n_embd  # nanoGPT's get_num_params
    return 6 * n + 12 * n_layer * n_embd * block


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("import")
    for host, log in (("laptop", "laptop-cpu.log"), ("desktop", "desktop-gpu.log")):
        code = main(["import", "nanogpt", str(EXAMPLES / log), "--hwinfo", str(EXAMPLES / f"{host}-hwinfo.json"),
                     "--out", str(tmp / host)])  # fmt: skip
        assert code == 0
    dirs = [str(tmp / "laptop"), str(tmp / "desktop")]
    return dirs


def run_report(capsys, dirs: list[str], form: str) -> str:
    capsys.readouterr()
    assert main(["report", *dirs, "--format", form]) == 0
    return capsys.readouterr().out


def test_headline_splits_the_gap_into_peak_ratio_times_mfu_ratio(report, capsys):
    cpu, gpu = read_log("laptop-cpu.log"), read_log("desktop-gpu.log")
    cpu_peak, gpu_peak = (
        peak("laptop-hwinfo.json", "cpu", "fp32"),
        peak("desktop-hwinfo.json", "cuda:0", "bf16"),
    )
    assert cpu_peak == pytest.approx(1.35e12, rel=0.001)  # 6 P x 4.7 GHz x 32 + 8 E x 3.5 GHz x 16
    cpu_flops = flops_per_token(4, 128, 64, 65) * cpu["tokens"] / (cpu["median"] / 1e3)
    gpu_flops = flops_per_token(6, 384, 256, 65) * gpu["tokens"] / (gpu["median"] / 1e3)
    cpu_mfu, gpu_mfu = cpu_flops / cpu_peak, gpu_flops / gpu_peak
    assert 0.015 < cpu_mfu < 0.03  # the laptop near 2% of its own peak, not nanoGPT's 0.01%

    data = json.loads(run_report(capsys, report, "json"))
    (f,) = [f for f in data["findings"] if f["kind"] == "speedup"]
    ev = f["evidence"]
    assert ev["fast"] == "desktop/cuda-bf16-b64-compile" and ev["slow"] == "laptop/cpu-fp32-b12-eager"
    assert ev["speedup"] == pytest.approx(gpu_flops / cpu_flops)
    assert ev["peak_ratio"] == pytest.approx(gpu_peak / cpu_peak)
    assert ev["mfu"] == pytest.approx([gpu_mfu, cpu_mfu])
    assert ev["speedup"] == pytest.approx(ev["peak_ratio"] * ev["mfu_ratio"])
    # the FLOP/s ratio is not a wall-time ratio: per iteration and per token are given beside it
    assert ev["iter_time_ratio"] == pytest.approx(cpu["median"] / gpu["median"])
    per_token = (cpu["median"] / cpu["tokens"]) / (gpu["median"] / gpu["tokens"])
    assert ev["token_time_ratio"] == pytest.approx(per_token)

    text = run_report(capsys, report, "text")
    # the answer first: the report's first line is the headline, with the split and the recipe difference
    headline = text.splitlines()[0]
    assert data["headline"]["evidence"]["case"] == "compare" and data["headline"]["sentence"] == headline
    assert data["headline"]["evidence"]["peak_ratio"] == pytest.approx(ev["peak_ratio"])
    assert {"dtype", "model.n_layer"} <= set(data["headline"]["evidence"]["recipe_differs"])


def test_loss_gap_is_the_recipe_not_the_hardware(report, capsys):
    cpu, gpu = read_log("laptop-cpu.log"), read_log("desktop-gpu.log")
    data = json.loads(run_report(capsys, report, "json"))
    (f,) = [f for f in data["findings"] if f["kind"] == "config_mismatch"]
    runs = f["evidence"]["per_run"]
    seen = {k: (log["iters"][-1][0] + 1) * log["tokens"] for k, log in
            (("desktop/cuda-bf16-b64-compile", gpu), ("laptop/cpu-fp32-b12-eager", cpu))}  # fmt: skip
    assert {k: r["tokens_seen"] for k, r in runs.items()} == seen
    assert runs["desktop/cuda-bf16-b64-compile"]["params"] / 1e6 == pytest.approx(gpu["params_m"], abs=0.005)
    assert runs["laptop/cpu-fp32-b12-eager"]["params"] / 1e6 == pytest.approx(cpu["params_m"], abs=0.005)
    differs = f["evidence"]["differs"]
    assert differs["dtype"] == ["bf16", "fp32"] and differs["model.dropout"] == [0.2, 0.0]
    assert {"train.max_iters", "batch_size", "model.n_layer", "model.block_size"} <= set(differs)
    ratio = seen["desktop/cuda-bf16-b64-compile"] / seen["laptop/cpu-fp32-b12-eager"]
    assert f["evidence"]["tokens_seen_ratio"] == pytest.approx(ratio)
    # the desktop has the lower val loss, and its advantages are the reasons: tokens, model size, dtype
    ev = f["evidence"]
    assert ev["more"] == "desktop/cuda-bf16-b64-compile"
    assert ev["val_loss"] == [gpu["evals"][-1][2], cpu["evals"][-1][2]]
    at_eval = (gpu["evals"][-1][0] * gpu["tokens"]) / (cpu["evals"][-1][0] * cpu["tokens"])
    assert ev["tokens_ratio"] == pytest.approx(
        at_eval
    )  # the tokens read by the evals whose losses are compared
    assert ev["params_ratio"] == pytest.approx(gpu["params_m"] / cpu["params_m"], rel=0.01)
    assert ev["dtypes"] == ["bf16", "fp32"]
    assert all(len(x["sentence"]) <= 250 for x in data["findings"])  # every finding of the README example


def test_overfitting_and_iteration_0_are_explained(report, capsys):
    gpu = read_log("desktop-gpu.log")
    best = min(gpu["evals"], key=lambda e: e[2])
    data = json.loads(run_report(capsys, report, "json"))
    (o,) = [f for f in data["findings"] if f["kind"] == "overfitting"]
    assert o["runs"] == ["desktop/cuda-bf16-b64-compile"]
    assert (o["evidence"]["min_iter"], o["evidence"]["min_val_loss"]) == (best[0], best[2])
    assert o["evidence"]["rise"] == pytest.approx(gpu["evals"][-1][2] - best[2])
    timers = {f["runs"][0]: f for f in data["findings"] if f["kind"] == "eval_in_timer"}
    gpu_iter0, cpu_iter0 = gpu["iters"][0][1], read_log("laptop-cpu.log")["iters"][0][1]
    first = timers["desktop/cuda-bf16-b64-compile"]["evidence"]["first_iter"]
    assert first["ms"] == gpu_iter0 and first["includes"] == "eval + compilation and start-up"
    assert 4000 < first["eval_ms_est"] < 5000 and first["startup_ms_est"] > 20000
    cpu_first = timers["laptop/cpu-fp32-b12-eager"]["evidence"]["first_iter"]
    assert cpu_first["ms"] == cpu_iter0 and cpu_first["includes"] == "eval + start-up"
    assert cpu_first["eval_ms_est"] > cpu_first["startup_ms_est"]  # mostly the eval, not warm-up
    # the warm-up finding sees the compiled first step without the eval, and calls it compilation
    (w,) = [f for f in data["findings"] if f["kind"] == "warmup_cost"]
    assert w["runs"] == ["desktop/cuda-bf16-b64-compile"] and "compilation" in w["sentence"]
    assert w["evidence"]["first_step_ms"] == pytest.approx(gpu_iter0 - first["eval_ms_est"])
