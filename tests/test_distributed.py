"""`bench run` under torchrun (DDP) on the CPU with gloo, world size 2, and `bench run --nproc N`.

The ranks are real processes started by torch's elastic launcher; each test that spawns them costs a few
seconds of start-up, so there are few of them. Nothing here asserts a speedup: two ranks on this machine's
cores measure contention.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.distributed import DistEnv, DistError, summarize_ranks, union_ms, worker_argv

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16"]
SHORT = ["--iters", "30", "--eval-interval", "10", "--eval-iters", "2", "--timing-warmup-iters", "3",
         "--no-progress", "--devices", "cpu", "--threads", "1"]  # fmt: skip
TORCHRUN_ENV = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "GROUP_RANK": "0",
                "GROUP_WORLD_SIZE": "1"}  # fmt: skip


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_json(out: Path, run_id: str) -> dict:
    return json.loads((out / "runs" / run_id / "run.json").read_text())


# ---- in-process: the rank environment, the launcher's command line, the figures ---------------------------


def test_rank_environment_is_read_and_checked():
    assert DistEnv.from_environ({}) is None
    env = DistEnv.from_environ(TORCHRUN_ENV)
    assert (env.rank, env.world_size, env.local_rank, env.local_world_size, env.node_rank, env.nnodes) == (
        1, 2, 1, 2, 0, 1,
    )  # fmt: skip
    assert not env.is_main
    with pytest.raises(DistError, match="WORLD_SIZE is set but RANK is not"):
        DistEnv.from_environ({k: v for k, v in TORCHRUN_ENV.items() if k != "RANK"})
    with pytest.raises(DistError, match="LOCAL_RANK='x': expected an integer"):
        DistEnv.from_environ({**TORCHRUN_ENV, "LOCAL_RANK": "x"})
    with pytest.raises(DistError, match="inconsistent rank variables"):
        DistEnv.from_environ({**TORCHRUN_ENV, "RANK": "2"})


def test_launcher_command_drops_nproc_and_names_one_results_directory():
    argv = ["--debug", "run", "--nproc", "2", "--iters", "5", "--np=3", "--out", "mine"]
    assert worker_argv(argv, "mine") == ["--debug", "run", "--iters", "5", "--out", "mine", "--out", "mine"]
    assert worker_argv(["run"], "results/x") == ["run", "--out", "results/x"]


def test_union_of_all_reduce_intervals():
    assert union_ms([]) == 0
    assert union_ms([(0, 2), (1, 3), (5, 6)]) == 4  # overlapping buckets count once
    assert union_ms([(5, 6), (0, 1)]) == 2


def test_straggler_and_share_come_from_every_ranks_medians():
    ranks = [
        {"rank": 0, "ms_median": 10.0, "allreduce_ms_median": 4.0, "outside_allreduce_ms_median": 6.0,
         "params_sha256": "a", "allreduce_bytes_per_step": 100},
        {"rank": 1, "ms_median": 10.0, "allreduce_ms_median": 1.0, "outside_allreduce_ms_median": 9.0,
         "params_sha256": "a"},
        {"rank": 2, "ms_median": 10.0, "allreduce_ms_median": 4.0, "outside_allreduce_ms_median": 6.0,
         "params_sha256": "a"},
    ]  # fmt: skip
    s = summarize_ranks(ranks)
    assert s["allreduce_share"] == 0.4 and s["allreduce_bytes_per_step"] == 100
    assert s["slowest_rank"] == 1 and s["straggler_ratio"] == 1.5 and s["params_identical"] is True
    ranks[2]["params_sha256"] = "b"
    assert summarize_ranks(ranks)["params_identical"] is False


def test_ranks_agree_on_one_outcome_for_a_run_they_could_not_start():
    from bench.runner import _merge_outcomes

    assert _merge_outcomes([None, None]) is None
    assert _merge_outcomes([("skipped", "no bf16"), ("skipped", "no bf16")]) == ("skipped", "no bf16")
    assert _merge_outcomes([None, ("failed", "could not start: OOM")]) == (
        "failed",
        "rank 1: could not start: OOM",
    )
    assert _merge_outcomes([("skipped", "a"), ("failed", "b"), ("failed", "b")]) == (
        "failed", "rank 0: a; ranks 1, 2: b",
    )  # fmt: skip


def test_bad_launches_are_one_line_before_anything_starts(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    assert main(["run", *TINY, *SHORT, "--batch-sizes", "12,10", "--nproc", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "bench run: error: --batch-sizes 10: each batch size is the global batch and must be a multiple of the 4 "
        "ranks (every rank trains an equal slice of it)"
    )
    for bad, says in (
        ("0", "--nproc 0: expected an integer > 0"),
        ("two", "--nproc two: expected an integer"),
    ):
        assert main(["run", *SHORT, "--nproc", bad]) == 2
        assert says in capsys.readouterr().err
    assert main(["run", *SHORT, "--dist-timeout", "0"]) == 2
    assert "--dist-timeout 0: expected a number of seconds from 1 to 1000000" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert main(["run", *TINY, *SHORT, "--devices", "cuda", "--nproc", "2", "--dry-run"]) == 2
    assert "has no nccl backend for torch.distributed" in capsys.readouterr().err  # a CPU-only build
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)
    assert main(["run", *TINY, *SHORT, "--devices", "cuda", "--nproc", "4", "--out", str(out)]) == 2
    assert "cuda: local rank 3 needs cuda:3 but this node has 2 cuda device(s)" in capsys.readouterr().err
    assert main(["run", *TINY, *SHORT, "--devices", "cuda:1", "--nproc", "2", "--out", str(out)]) == 2
    assert "each rank uses cuda:LOCAL_RANK; give cuda" in capsys.readouterr().err
    monkeypatch.undo()
    for key, value in TORCHRUN_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert main(["run", *SHORT, "--nproc", "2"]) == 2
    assert "under torchrun leave it out" in capsys.readouterr().err
    assert not out.exists()


# ---- real ranks -------------------------------------------------------------------------------------------


# Each rank runs this (as torchrun runs a command): in its own working directory, so what each rank writes is
# seen apart, `bench run ARGV`. DIE_AT >= 0: rank 1 kills itself (SIGKILL, as the OOM killer would) at that
# step of the first run, half a second in, while rank 0 waits for it in the step's all-reduce.
RANK_DRIVER = """
import os, signal, sys, time
workdir, die_at, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rank = int(os.environ["RANK"])
os.chdir(os.path.join(workdir, f"rank{rank}"))
if die_at >= 0 and rank == 1:
    from bench import train
    real = train.Trainer.train_step
    def step(self, it):
        if it == die_at:
            time.sleep(0.5)
            with open(os.path.join(workdir, "died_at"), "w") as f:
                f.write(repr(time.time()))
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, it)
    train.Trainer.train_step = step
if die_at >= 0 and rank == 0:
    # The launcher SIGTERMs the other ranks as soon as it sees one die (it looks every 0.1 s), which may come
    # before rank 0 has seen its peer's socket close: rank 0 then ends interrupted, not failed. Ignoring the
    # launcher's SIGTERM lets rank 0 find and record the real cause, the path under test (the launcher waits
    # 30 s before SIGKILL; a rank 0 that never noticed would end killed, -9).
    import contextlib
    from bench import cli
    cli._sigterm_as_interrupt = contextlib.nullcontext
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
race_at = int(os.environ.get("RACE_AT", "-1"))
if race_at >= 0:
    # Ctrl-C passed to both ranks, rank 1 acting on it first: rank 0 holds the signal (recorded during the step,
    # after its check) and is in the step's all-reduce when rank 1 leaves.
    from bench import train
    real = train.Trainer.train_step
    flag = os.path.join(workdir, "signalled")
    def signal_me():
        os.kill(os.getpid(), signal.SIGINT)
        open(flag, "w").close()
    def step(self, it):
        if it == race_at:
            if rank == 1:
                deadline = time.monotonic() + 60
                while not os.path.exists(flag) and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.2)
                os._exit(130)
            import threading
            threading.Timer(0.2, signal_me).start()  # after the check before the step, in its all-reduce
        return real(self, it)
    train.Trainer.train_step = step
from bench.cli import main
sys.exit(main(argv))
"""


def _launch(tmp_path: Path, argv: list[str], die_at: int = -1) -> None:
    """Two ranks through torch's elastic launcher, as `torchrun --standalone --nproc-per-node 2` starts them."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    for r in range(2):
        (tmp_path / f"rank{r}").mkdir(exist_ok=True)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=2, run_id=f"test-{os.getpid()}",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0)  # fmt: skip
    elastic_launch(config, sys.executable)("-c", RANK_DRIVER, str(tmp_path), str(die_at), *argv)


@dataclass
class Launched:
    root: Path  # rank0/ and rank1/: each rank's working directory
    one: Path  # the same sweep in one process
    out: Path  # rank 0's results directory (relative --out res)
    interrupted: subprocess.CompletedProcess
    interrupted_runs: dict[str, dict]  # run.json of each run right after Ctrl-C


LONG = ["--iters", "150", "--eval-interval", "75", "--batch-sizes", "4,16"]
FIRST, SECOND = "cpu-fp32-b4-eager-t1-ddp2", "cpu-fp32-b16-eager-t1-ddp2"


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> Launched:
    """A 2-rank sweep of two runs started with `bench run --nproc 2`, Ctrl-C during its second run, then
    completed with --resume on two ranks that each have their own working directory (as nodes without a
    shared filesystem): rank 0's holds the results, rank 1's must stay empty. And the same sweep in one process."""
    root = tmp_path_factory.mktemp("ddp")
    for r in range(2):
        (root / f"rank{r}").mkdir()
    assert main(["run", *TINY, *SHORT, *LONG, "--out", str(root / "one")]) == 0
    out = root / "rank0" / "res"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "bench", "run", *TINY, *SHORT, *LONG, "--nproc", "2", "--out", "res"]
    proc = subprocess.Popen(cmd, cwd=root / "rank0", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    second = out / "runs" / SECOND / "steps.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (second.exists() and second.read_text().count("\n") > 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C reaches the launcher, which passes it to every rank
    stdout, stderr = proc.communicate(timeout=90)
    interrupted = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    runs = {run_id: run_json(out, run_id) for run_id in (FIRST, SECOND)}
    _launch(root, ["run", "--out", "res", "--resume", "--no-progress"])  # the sweep's own config, from rank 0
    return Launched(root, root / "one", out, interrupted, runs)


def test_ctrl_c_keeps_finished_runs_and_resume_completes_on_two_ranks(launched):
    err = launched.interrupted.stderr
    assert launched.interrupted.returncode == 130, err
    assert (
        "interrupted by Ctrl-C" in err and "complete them with: bench run --nproc 2 --out res --resume" in err
    )
    assert "Traceback" not in err and "death signal" not in err  # the launcher's own log stays quiet
    first, second = launched.interrupted_runs[FIRST], launched.interrupted_runs[SECOND]
    assert first["status"] == "ok" and second["status"] == "interrupted"
    assert run_json(launched.out, FIRST)["started"] == first["started"]  # not rerun
    again = run_json(launched.out, SECOND)
    assert again["status"] == "ok" and again["world_size"] == 2 and again["started"] != second["started"]
    assert len(read_csv(launched.out / "runs" / SECOND / "steps.csv")) == 150


def test_only_rank_0_writes_and_needs_no_shared_filesystem(launched):
    assert sorted(p.name for p in (launched.out / "runs").iterdir()) == sorted([FIRST, SECOND])
    assert list((launched.root / "rank1").iterdir()) == []  # rank 1 wrote nothing, and read nothing to resume


@pytest.mark.parametrize("batch", [4, 16])
def test_two_ranks_reproduce_the_one_process_curve(launched, batch):
    ref_dir = launched.one / "runs" / f"cpu-fp32-b{batch}-eager-t1"
    ddp_dir = launched.out / "runs" / f"cpu-fp32-b{batch}-eager-t1-ddp2"
    ref, ddp = read_csv(ref_dir / "steps.csv"), read_csv(ddp_dir / "steps.csv")
    assert len(ref) == len(ddp) == 150
    for a, b in zip(ref, ddp, strict=True):
        assert abs(float(a["loss"]) - float(b["loss"])) < 1e-4, (a, b)
        assert a["lr"] == b["lr"]
    # the curve moves, so equal curves mean something
    assert abs(float(ref[-1]["loss"]) - float(ref[0]["loss"])) > 0.1
    ref_evals, ddp_evals = read_csv(ref_dir / "evals.csv"), read_csv(ddp_dir / "evals.csv")
    assert [(e["iter"], e["split"]) for e in ref_evals] == [(e["iter"], e["split"]) for e in ddp_evals]
    for a, b in zip(ref_evals, ddp_evals, strict=True):
        assert abs(float(a["loss"]) - float(b["loss"])) < 1e-4, (a, b)


def test_run_json_says_how_the_ranks_ran(launched):
    ref = run_json(launched.one, "cpu-fp32-b16-eager-t1")
    ddp = run_json(launched.out, SECOND)
    assert (ref["world_size"], ref["backend"], ref["nnodes"], ref["nproc_per_node"]) == (1, None, 1, 1)
    assert (ddp["world_size"], ddp["backend"], ddp["nnodes"], ddp["nproc_per_node"]) == (2, "gloo", 1, 2)
    assert ddp["batch_size"] == 16 and ddp["tokens_per_iter"] == ref["tokens_per_iter"]  # the global batch

    # both ranks hold the same weights; every rank's timing gathered; the all-reduce measured inside the step
    s = ddp["summary"]
    assert s["params_identical"] is True
    assert [r["rank"] for r in ddp["ranks"]] == [0, 1]
    assert all(r["ms_median"] > 0 and 0 < r["allreduce_ms_median"] < r["ms_median"] for r in ddp["ranks"])
    assert s["allreduce_ms_median"] == ddp["ranks"][0]["allreduce_ms_median"]
    assert s["allreduce_share"] == pytest.approx(s["allreduce_ms_median"] / s["ms_median"])
    n_params = sum(p.numel() for p in _tiny_model().parameters())
    assert s["allreduce_bytes_per_step"] == 4 * n_params  # every fp32 gradient, once per step
    outside = [r["outside_allreduce_ms_median"] for r in ddp["ranks"]]
    assert s["straggler_ratio"] == pytest.approx(max(outside) / statistics.median(outside))
    assert ddp["peak_flops"]["devices"] == 1  # two ranks share this one CPU: its peak, not twice it
    assert ddp["peak_flops"]["value"] == ddp["peak_flops"]["per_device_value"]


def test_the_report_shows_scaling_without_claiming_a_speedup(launched, capsys):
    capsys.readouterr()
    assert main(["report", str(launched.one), str(launched.out), "--format", "json"]) == 0
    found = {f["kind"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    scaling = found["scaling"]
    assert {1, 2} <= {p["world_size"] for p in scaling["evidence"]["points"]}
    assert scaling["evidence"]["shared"] and "speedup" not in scaling["sentence"]  # ranks sharing one CPU
    assert (
        found["shared_cores"]["evidence"]["nproc_per_node"] == 2
        and "not a speedup" in found["shared_cores"]["sentence"]
    )
    assert "loss_agree" in found


def _tiny_model() -> torch.nn.Module:
    from model.gpt import GPT, GPTConfig

    return GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=65))


def test_a_dead_rank_fails_its_run_within_bounded_time_and_stops_the_sweep(tmp_path):
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    argv = ["run", *TINY, *SHORT, "--batch-sizes", "4,8", "--out", "res", "--dist-timeout", "20"]
    with pytest.raises(ChildFailedError) as failed:
        _launch(tmp_path, argv, die_at=5)
    # from rank 1's death to the launch's end (start-up not counted: it varies with the load): a rank 0 that
    # waited for its dead peer would take the whole --dist-timeout
    assert time.time() - float((tmp_path / "died_at").read_text()) < 20
    codes = {rank: f.exitcode for rank, f in failed.value.failures.items()}
    assert codes[1] == -signal.SIGKILL and codes.get(0, 1) == 1
    out = tmp_path / "rank0" / "res"
    run = run_json(out, "cpu-fp32-b4-eager-t1-ddp2")
    assert run["status"] == "failed"
    assert run["error"].startswith("a rank died, stopped answering within --dist-timeout or fell out of step")
    assert "Connection closed by peer" in run["error"] and "during step 5" in run["error"]
    # the steps it finished are kept
    assert len(read_csv(out / "runs" / "cpu-fp32-b4-eager-t1-ddp2" / "steps.csv")) == 5
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["cpu-fp32-b4-eager-t1-ddp2"]  # sweep stopped
    assert list((tmp_path / "rank1").iterdir()) == []


def test_a_peer_gone_on_the_same_ctrl_c_ends_the_sweep_interrupted_not_lost(tmp_path, monkeypatch, capfd):
    """The launcher passes Ctrl-C to every rank; the rank that acts on it first leaves the all-reduce the other
    is in. That rank holds the same signal: it ends interrupted (130, resumable), never 'cannot go on together'."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    monkeypatch.setenv("RACE_AT", "5")
    monkeypatch.setenv("DEVICEBENCH_NPROC", "2")
    argv = ["run", *TINY, *SHORT, "--batch-sizes", "4,8", "--out", "res", "--dist-timeout", "20"]
    with pytest.raises(ChildFailedError) as failed:
        _launch(tmp_path, argv)
    codes = {rank: f.exitcode for rank, f in failed.value.failures.items()}
    assert codes[1] == 130 and codes.get(0, 130) == 130, codes
    err = capfd.readouterr().err
    assert "interrupted by Ctrl-C during cpu-fp32-b4-eager-t1-ddp2" in err, err[-3000:]
    assert "cannot go on together" not in err
    run = run_json(tmp_path / "rank0" / "res", "cpu-fp32-b4-eager-t1-ddp2")
    assert run["status"] == "interrupted" and run["error"] == "interrupted by Ctrl-C during step 5", run[
        "error"
    ]


# ---- no rank outlives its launcher ----------------------------------------------------------------------


def _launcher_with_ranks(tmp_path: Path) -> tuple[subprocess.Popen, list, Path]:
    """`bench run --nproc 2` (gloo, tiny) training; returns (launcher, its rank processes, steps.csv)."""
    import psutil

    out = tmp_path / "res"
    cmd = [sys.executable, "-m", "bench", "run", *TINY, *SHORT, "--iters", "100000", "--eval-interval", "50000",
           "--batch-sizes", "4", "--nproc", "2", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    steps = out / "runs" / "cpu-fp32-b4-eager-t1-ddp2" / "steps.csv"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (steps.exists() and steps.read_text().count("\n") > 3):
        if proc.poll() is not None:
            pytest.fail(f"the launcher ended early: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    ranks = [p for p in psutil.Process(proc.pid).children(recursive=True) if "bench" in " ".join(p.cmdline())]
    assert len(ranks) >= 2, ranks
    return proc, ranks, steps


def _gone(ranks: list, timeout: float) -> list:
    import psutil

    _, alive = psutil.wait_procs(ranks, timeout=timeout)
    for p in alive:  # never left behind to load the rest of the suite
        p.kill()
    return alive


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_rank_outlives_its_launcher(tmp_path, sig):
    """Issue 25: `timeout 60 bench run --nproc 1000` left 187 ranks running for half an hour. SIGTERM of the launcher
    ends every rank (the run interrupted, 143); SIGKILL, which the launcher cannot pass on, ends them through their
    parent-death signal (prctl PR_SET_PDEATHSIG)."""
    proc, ranks, steps = _launcher_with_ranks(tmp_path)
    try:
        proc.send_signal(sig)
        proc.wait(timeout=90)
        alive = _gone(ranks, timeout=60)
        assert alive == [], f"ranks left behind after {sig!r}: {[p.pid for p in alive]}"
        if sig == signal.SIGTERM:
            err = proc.stderr.read()
            assert proc.returncode == 143, err
            assert run_json(steps.parent.parent.parent, steps.parent.name)["status"] == "interrupted"
        assert steps.read_text().endswith("\n")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        _gone(ranks, timeout=1)


@pytest.mark.slow
def test_a_hung_rank_ends_the_launch_within_the_timeout_and_the_grace(tmp_path):
    """Issue 33: a SIGSTOPped rank with --dist-timeout 5 ended the sweep after 48 s. Now: the collective's
    timeout, no second wait in the gather (this rank's own collective failed), then the launcher's 10 s grace
    (torch's agent waited a fixed 30 s for a rank that cannot act on SIGTERM)."""
    out = tmp_path / "hung"
    cmd = [sys.executable, "-m", "bench", "run", *TINY, *SHORT, "--iters", "100000", "--eval-interval", "50000",
           "--batch-sizes", "4", "--nproc", "2", "--dist-timeout", "2", "--out", str(out)]  # fmt: skip
    import psutil

    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    ranks = []
    try:
        steps = out / "runs" / "cpu-fp32-b4-eager-t1-ddp2" / "steps.csv"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (steps.exists() and steps.read_text().count("\n") > 3):
            time.sleep(0.2)
        ranks = [
            p for p in psutil.Process(proc.pid).children(recursive=True) if "bench" in " ".join(p.cmdline())
        ]
        hung = next(p for p in ranks if p.environ().get("LOCAL_RANK") == "1")
        t0 = time.monotonic()
        hung.send_signal(signal.SIGSTOP)
        proc.wait(timeout=120)
        took = time.monotonic() - t0
        err = proc.stderr.read()
        assert proc.returncode == 1, err
        assert took < 2 + 10 + 18, (took, err)  # timeout + grace + rank 0's own teardown, wide
        assert "stopped answering within --dist-timeout" in run_json(out, steps.parent.name)["error"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        _gone(ranks, timeout=1)


# ---- what --nproc N costs ----------------------------------------------------------------------------------


def test_nproc_says_what_it_costs_and_a_dry_run_never_reads_zero(capsys):
    """Issue 33: `--nproc 64 --dry-run` estimated "~0 s"; issue 25: `--nproc 1000` was accepted without a word."""
    import psutil

    argv = [
        "run",
        "--devices",
        "cpu",
        *TINY,
        "--batch-sizes",
        "64",
        "--iters",
        "10",
        "--nproc",
        "64",
        "--dry-run",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "~0 s" not in captured.out and "start-up of 64 ranks" in captured.out
    assert "--nproc 64: ~" in captured.err and "x ~" in captured.err and "per rank" in captured.err
    if (psutil.cpu_count(logical=True) or 1) < 64:
        assert "processes per core" in captured.err


def test_nproc_that_cannot_fit_in_memory_is_refused_before_any_rank_starts(tmp_path, monkeypatch, capsys):
    import psutil

    from bench import distributed

    real = psutil.virtual_memory
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real()._replace(available=4 * 2**30))
    monkeypatch.setattr(distributed, "launch_local", lambda *a, **k: pytest.fail("ranks were started"))
    argv = ["run", "--devices", "cpu", *TINY, "--batch-sizes", "64", "--iters", "10", "--nproc", "64",
            "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--nproc 64: the ranks need ~" in err[0] and "use --nproc " in err[0], err
    fits = int(err[0].split("use --nproc ")[1].split()[0])
    assert 1 <= fits < 64
    assert not (tmp_path / "r").exists()


def test_profile_steps_are_bounded(capsys):
    assert main(["run", "--devices", "cpu", "--profile", "201", "--dry-run"]) == 2
    assert "--profile 201: expected a number of steps >= 1 and at most 200" in capsys.readouterr().err
