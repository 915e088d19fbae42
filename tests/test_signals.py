"""SIGTERM and Ctrl-C at known points of every command: exit code, time from the signal to the exit, what is on disk.

Each child is `python -c DRIVER` running `bench` (or `hwinfo`) with one function wrapped so that, at the point
under test, it writes a marker line to stderr and sleeps (a slow step, eval batch, compile or measurement);
the test sends the signal when it reads the marker, so nothing depends on how fast this machine is. Every
read from a child has a timeout and every child is killed by pid in a finally.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--threads", "1"]
RUN = ["run", "--devices", "cpu", *TINY, "--batch-sizes", "4", "--iters", "40", "--eval-interval", "6",
       "--eval-iters", "3", "--timing-warmup-iters", "2", "--no-progress"]  # fmt: skip
RUN_ID = "cpu-fp32-b4-eager-t1"
MARK = "@@MARK"
PAUSE_S = 1.5  # the slow point the signal lands in
# Wide: the bound is the rest of the slow point plus one step and a run.json write; this machine is loaded.
EXIT_WITHIN_S = 45.0
START_WITHIN_S = 180.0

# Wraps one function per scenario (SIG_POINT) to mark the point under test on stderr and pause there.
DRIVER = r"""
import os, sys, time
point, pause = os.environ["SIG_POINT"], float(os.environ["SIG_PAUSE"])

def mark(what):
    os.write(2, f"@@MARK {what}\n".encode())
    time.sleep(pause)

if point == "started":  # once the policy is installed: the signal lands in the command's own start-up
    from hwinfo import interrupts
    real_installed = interrupts.installed

    def installed(prog):
        cm = real_installed(prog)
        cm.__enter__()
        mark("started")
        return cm

    interrupts.installed = installed
elif point in ("step", "eval", "watchdog"):
    from bench.train import Trainer
    real_batch = Trainer._batch
    calls = {"train": 0, "eval": 0}

    def _batch(self, sampler):
        kind = "train" if sampler is self.train_sampler else "eval"
        calls[kind] += 1
        if point == "eval" and kind == "eval" and calls["eval"] == 7:  # the 2nd eval (iter 6), its 1st batch
            mark("eval")
        elif point != "eval" and kind == "train" and calls["train"] == 4:  # inside step 3, after its check
            if point == "watchdog":
                os.write(2, b"@@MARK stuck\n")
                time.sleep(600)
            mark("step")
        return real_batch(self, sampler)

    Trainer._batch = _batch
elif point == "compile":
    import torch
    real_compile = torch.compile

    def backend(gm, inputs):
        mark("compile")
        return gm.forward

    torch.compile = lambda model, mode=None, **k: real_compile(model, backend=backend)
elif point == "gate":
    from bench.gate import reference
    real_step = reference.ReferenceStep.step
    n = [0]

    def step(self):
        n[0] += 1
        if n[0] == 8:  # warm-up done, inside the trials
            mark("trial")
        return real_step(self)

    reference.ReferenceStep.step = step
elif point == "measure":
    from hwinfo import measure
    real_kernel = measure._time_kernel

    def _time_kernel(*a, **k):
        mark("bandwidth")
        return real_kernel(*a, **k)

    measure._time_kernel = _time_kernel
elif point == "tune":
    from bench.train import Trainer
    real_step = Trainer.train_step
    n = [0]

    def train_step(self, it):
        n[0] += 1
        if n[0] == 5:
            mark("tune step")
        return real_step(self, it)

    Trainer.train_step = train_step
if os.environ.get("SIG_PROG") == "hwinfo":
    from hwinfo.cli import main
else:
    from bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Child:
    """A bench/hwinfo child whose stderr is read line by line on a thread (so no read can block the test)."""

    def __init__(self, argv: list[str], point: str, prog: str = "bench", env: dict | None = None) -> None:
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "SIG_POINT": point, "SIG_PAUSE": str(PAUSE_S),
                    "SIG_PROG": prog, **(env or {})}  # fmt: skip
        self.proc = subprocess.Popen([sys.executable, "-c", DRIVER, *argv], cwd=ROOT, env=full_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.err: list[str] = []
        self.out: list[str] = []
        self._readers = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_out, daemon=True)]  # fmt: skip
        for r in self._readers:
            r.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self.out.extend(self.proc.stdout)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = START_WITHIN_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {text!r} on stderr within {timeout:.0f} s: {''.join(self.err)[-2000:]}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"exited {self.proc.wait(5)} before {text!r}: {''.join(self.err)[-2000:]}")
            if text in line:
                return

    def signal(
        self, sig: int = signal.SIGTERM, timeout: float = EXIT_WITHIN_S
    ) -> tuple[int, float, str, str]:
        """(exit code, seconds from the signal to the exit, stdout, stderr without markers)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {timeout:.0f} s after {sig!r}: {''.join(self.err)[-2000:]}")
        took = time.monotonic() - t0
        for r in self._readers:
            r.join(10)
        out = "".join(self.out)
        err = "".join(line for line in self.err if not line.startswith(MARK))
        return self.proc.returncode, took, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


def _run_files(out: Path, run_id: str = RUN_ID) -> tuple[dict, list[list[str]], list[list[str]]]:
    d = out / "runs" / run_id
    with open(d / "steps.csv", newline="") as f:
        steps = list(csv.reader(f))
    with open(d / "evals.csv", newline="") as f:
        evals = list(csv.reader(f))
    assert (d / "steps.csv").read_text().endswith("\n") and (d / "evals.csv").read_text().endswith("\n")
    assert all(len(r) == 5 for r in steps) and all(len(r) == 4 for r in evals)  # never a row cut short
    return json.loads((d / "run.json").read_text()), steps[1:], evals[1:]


def _interrupted_run(
    tmp_path: Path, point: str, marker: str, extra: tuple[str, ...] = (), run_id: str = RUN_ID
) -> tuple:
    out = tmp_path / "r"
    child = Child([*RUN, *extra, "--out", str(out)], point)
    try:
        child.wait_for(f"{MARK} {marker}")
        code, took, stdout, err = child.signal()
    finally:
        child.kill()
    assert code == 143, err
    assert took < EXIT_WITHIN_S
    assert "Traceback" not in err and stdout == ""
    assert f"interrupted by SIGTERM during {run_id}" in err and f"--out {out} --resume" in err
    run, steps, evals = _run_files(out, run_id)
    assert run["status"] == "interrupted" and run["summary"]["iters_done"] == len(steps)
    return run, steps, evals


def test_sigterm_inside_a_step_finishes_that_step_and_keeps_it(tmp_path):
    run, steps, evals = _interrupted_run(tmp_path, "step", "step")
    assert run["error"] == "interrupted by SIGTERM during step 3"
    assert [int(r[0]) for r in steps] == [0, 1, 2, 3]  # the step in progress finished and was written
    assert {int(r[0]) for r in evals} == {0}


def test_sigterm_during_an_eval_ends_at_its_next_batch(tmp_path):
    run, steps, evals = _interrupted_run(tmp_path, "eval", "eval")
    assert run["error"] == "interrupted by SIGTERM during the eval at iter 6"
    assert [int(r[0]) for r in steps] == list(range(6))
    assert {int(r[0]) for r in evals} == {0}  # the unfinished eval wrote nothing


def test_sigterm_during_a_compile_ends_after_the_compiled_step(tmp_path):
    run, steps, _ = _interrupted_run(
        tmp_path, "compile", "compile", ("--compile", "on"), "cpu-fp32-b4-compile-t1"
    )
    assert run["error"] == "interrupted by SIGTERM during step 0"
    assert [int(r[0]) for r in steps] == [0]


def test_sigterm_before_the_first_step(tmp_path):
    out = tmp_path / "r"
    child = Child([*RUN, "--out", str(out)], "none")
    try:
        child.wait_for("results: ")  # the sweep is prepared; the first run is being built
        code, took, stdout, err = child.signal()
    finally:
        child.kill()
    assert code == 143 and took < EXIT_WITHIN_S and "Traceback" not in err, err
    assert "interrupted by SIGTERM" in err
    assert json.loads((out / "sweep.json").read_text())["spec"]  # the sweep is whole, resumable
    run_dir = out / "runs" / RUN_ID
    if run_dir.exists():  # the run had begun: it says so, with no step
        run, steps, _ = _run_files(out)
        assert run["status"] == "interrupted" and steps == []


def test_a_second_ctrl_c_ends_at_once(tmp_path):
    out = tmp_path / "r"
    child = Child([*RUN, "--out", str(out)], "watchdog")  # step 3 never ends
    try:
        child.wait_for(f"{MARK} stuck")
        child.proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        code, took, _, err = child.signal(signal.SIGINT)
    finally:
        child.kill()
    assert code == 130 and took < EXIT_WITHIN_S, err
    assert err.strip().splitlines()[-1] == "bench run: interrupted by Ctrl-C twice: stopped at once"


def test_a_signal_that_reaches_no_check_point_ends_after_the_grace(tmp_path):
    out = tmp_path / "r"
    child = Child([*RUN, "--out", str(out)], "watchdog", env={"DEVICEBENCH_STOP_GRACE_S": "2"})
    try:
        child.wait_for(f"{MARK} stuck")
        code, took, _, err = child.signal()
    finally:
        child.kill()
    assert code == 143 and 2 <= took < EXIT_WITHIN_S, err
    assert "no check point was reached within 2 s, stopped at once" in err


def test_gate_sigterm_during_the_trials_is_143_and_writes_no_baseline(tmp_path):
    path = tmp_path / "baseline.json"
    argv = ["gate", "--baseline", str(path), "--update-baseline", *TINY, "--batch-size", "2", "--trials", "1000",
            "--steps", "5", "--warmup-steps", "1", "--no-progress"]  # fmt: skip
    child = Child(argv, "gate")
    try:
        child.wait_for(f"{MARK} trial")
        code, took, stdout, err = child.signal()
    finally:
        child.kill()
    assert code == 143 and took < EXIT_WITHIN_S, err
    assert err.strip().splitlines()[-1] == "bench gate: interrupted by SIGTERM: no verdict" and stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_hwinfo_measure_sigterm_during_the_bandwidth_measurement(tmp_path):
    child = Child(["--measure", "--dtypes", "fp32"], "measure", prog="hwinfo")
    try:
        child.wait_for(f"{MARK} bandwidth")
        code, took, stdout, err = child.signal()
    finally:
        child.kill()
    assert code == 143 and took < EXIT_WITHIN_S, err
    assert stdout == "" and err.strip().splitlines()[-1] == "hwinfo: interrupted by SIGTERM"


def test_tune_sigterm_during_a_step_marks_the_variant_interrupted(tmp_path):
    out = tmp_path / "t"
    argv = ["tune", "--devices", "cpu", *TINY, "--iters", "30", "--eval-interval", "10", "--eval-iters", "2",
            "--timing-warmup-iters", "3", "--no-progress", "--tips", "fused_adamw", "--out", str(out)]  # fmt: skip
    child = Child(argv, "tune")
    try:
        child.wait_for(f"{MARK} tune step")
        code, took, _, err = child.signal()
    finally:
        child.kill()
    assert code == 143 and took < EXIT_WITHIN_S and "Traceback" not in err, err
    assert f"bench tune --out {out} --resume" in err
    statuses = [json.loads(p.read_text())["status"] for p in out.glob("runs/*/run.json")]
    assert "interrupted" in statuses and "running" not in statuses


@pytest.mark.parametrize("command", ["report", "import"])
def test_commands_without_loops_end_at_once(tmp_path, command):
    """report and import hold nothing worth finishing: a signal ends them at once, one line, 143."""
    argv = {"report": ["report", str(tmp_path)],
            "import": ["import", "nanogpt", str(tmp_path / "train.log"), "--out", str(tmp_path / "imp")]}[command]  # fmt: skip
    child = Child(argv, "started")
    try:
        child.wait_for(f"{MARK} started")
        code, took, stdout, err = child.signal()
    finally:
        child.kill()
    assert code == 143 and took < EXIT_WITHIN_S, err
    assert err.strip().splitlines() == [f"bench {command}: interrupted by SIGTERM"] and stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_the_handler_only_records_and_a_check_point_raises():
    """In process: inside checked() a SIGTERM raises nothing where it lands; the next check() raises Stop (143), and
    leaving the loops is a last check point."""
    from hwinfo import interrupts

    with interrupts.installed("bench test"):
        with pytest.raises(interrupts.Stop) as stop, interrupts.checked():
            signal.raise_signal(signal.SIGTERM)
            landed = sum(range(1000))  # the handler returned: nothing raised here
            assert interrupts.pending() is not None and landed == 499500
            interrupts.check()
            pytest.fail("check() did not raise")
        assert stop.value.exit_code == 143 and stop.value.signal_name == "SIGTERM"
        assert isinstance(stop.value, KeyboardInterrupt)  # never recorded as a failure by `except Exception`
    with interrupts.installed("bench test"):
        assert interrupts.pending() is None  # each command starts clean
        with pytest.raises(interrupts.Stop), interrupts.checked():
            signal.raise_signal(signal.SIGINT)
        assert interrupts.exit_code() == 130


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_rank_whose_launcher_is_already_gone_ends_at_once():
    """The launcher can die between starting a rank and the rank's prctl: the rank then has another parent."""
    code = "from hwinfo.interrupts import die_with_parent; print(die_with_parent())"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([sys.executable, "-c", code], env={**env, "DEVICEBENCH_LAUNCHER_PID": str(os.getpid())},
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0 and ok.stdout.strip() == "True", ok.stderr
    gone = subprocess.Popen(["true"])
    gone.wait(30)  # a launcher that has exited: its pid is no rank's parent
    orphan = subprocess.run([sys.executable, "-c", code], env={**env, "DEVICEBENCH_LAUNCHER_PID": str(gone.pid)},
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert orphan.returncode != 0 and orphan.stdout == ""
