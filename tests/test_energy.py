"""Energy per run: read at phase boundaries from a real counter (faked here), or unavailable with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.energy import EnergyRecorder
from hwinfo.energy import EnergyMeter


class FakeMeter(EnergyMeter):
    """A counter drawing `watts` all the time, on the recorder's clock; counts its reads."""

    source = "rapl"

    def __init__(self, watts: float, clock) -> None:
        super().__init__(None, ["package-0"], "fake")
        self.watts, self.clock, self.reads, self.t0 = watts, clock, 0, clock()

    def read_joules(self) -> float:
        self.reads += 1
        return self.watts * (self.clock() - self.t0)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_phases_are_metered_apart_and_figures_are_exact():
    clock = Clock()
    rec = EnergyRecorder(FakeMeter(50.0, clock), idle_seconds=0.0, clock=clock)
    rec.timed_begin()
    clock.t += 2.0  # 2 s of timed steps
    rec.timed_end()
    rec.eval_begin()
    clock.t += 1.0  # 1 s of eval
    rec.eval_end()
    rec.timed_begin()
    clock.t += 3.0
    rec.timed_end()
    s = rec.summary(timed_steps=100, tokens_per_step=768)
    assert s["source"] == "rapl" and s["reason"] is None
    assert s["timed_joules"] == pytest.approx(250.0) and s["eval_joules"] == pytest.approx(50.0)
    assert s["joules_per_step"] == pytest.approx(2.5) and s["mean_watts"] == pytest.approx(50.0)
    assert s["tokens_per_joule"] == pytest.approx(768 * 100 / 250.0)


def test_a_counter_that_dies_ends_energy_not_the_run():
    class Dying(FakeMeter):
        def read_joules(self):
            raise OSError("EIO")

    clock = Clock()
    rec = EnergyRecorder(Dying(1.0, clock), idle_seconds=0.0, clock=clock)
    rec.timed_begin()
    rec.timed_end()
    s = rec.summary(10, 10)
    assert (
        s["source"] == "unavailable" and "stopped answering" in s["reason"] and s["joules_per_step"] is None
    )


def test_this_vm_records_unavailable_with_the_reason(tmp_path):
    out = tmp_path / "r"
    assert main(["run", "--devices", "cpu", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "8",
                 "--iters", "6", "--eval-interval", "3", "--eval-iters", "1", "--no-progress", "--out", str(out)]) == 0  # fmt: skip
    energy = json.loads((out / "runs" / "cpu-fp32-b12-eager" / "run.json").read_text())["summary"]["energy"]
    from hwinfo.energy import open_energy_meter

    expected = open_energy_meter("cpu")
    assert energy["source"] == expected.source
    if not expected.available:
        assert energy["reason"] == expected.reason and "/sys/class/powercap" in energy["reason"]
        assert energy["joules_per_step"] is None and energy["tokens_per_joule"] is None


def test_a_run_with_a_counter_records_joules_per_step(tmp_path, monkeypatch):
    import time

    from bench import devices

    meters = []

    def meter(self):
        meters.append(FakeMeter(20.0, time.perf_counter))
        return meters[-1]

    monkeypatch.setattr(devices.Device, "energy_meter", meter)
    monkeypatch.setattr("bench.energy.IDLE_SECONDS", 0.05)
    out = tmp_path / "r"
    assert main(["run", "--devices", "cpu", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "8",
                 "--iters", "20", "--eval-interval", "5", "--eval-iters", "1", "--timing-warmup-iters", "2",
                 "--no-progress", "--out", str(out)]) == 0  # fmt: skip
    run = json.loads((Path(out) / "runs" / "cpu-fp32-b12-eager" / "run.json").read_text())
    e = run["summary"]["energy"]
    # the fake meter reads its clock a moment before the recorder does: 1% leaves room for a VM pause between
    # them, and still fails a wrong divisor (the evals' time counted in would give far less than 20 W)
    assert e["source"] == "rapl" and e["mean_watts"] == pytest.approx(20.0, rel=1e-2)
    assert e["idle_watts"] == pytest.approx(20.0, rel=1e-2)
    assert e["joules_per_step"] == pytest.approx(e["timed_joules"] / 18)
    assert e["tokens_per_joule"] == pytest.approx(12 * 8 * 18 / e["timed_joules"])
    # read at boundaries only: idle (2), timed phase around 3 evals (2 each), evals (2 each, 5 of them)
    assert meters[0].reads <= 2 + 2 * 4 + 2 * 5


def _run_recorder(meter, clock, seconds: float = 2.0):
    rec = EnergyRecorder(meter, idle_seconds=0.0, clock=clock)
    rec.timed_begin()
    clock.t += seconds
    rec.timed_end()
    return rec.summary(timed_steps=100, tokens_per_step=768)


def test_a_fast_counter_on_a_small_machine_records_no_figures():
    """The defect: 2,531 W recorded and shown on a 2-CPU VM."""
    from hwinfo.energy import cpu_band

    clock = Clock()
    meter = FakeMeter(2531.0, clock)
    meter.band = cpu_band(None, 2)
    s = _run_recorder(meter, clock)
    assert s["joules_per_step"] is None and s["mean_watts"] is None and s["tokens_per_joule"] is None
    assert "2,531 W" in s["reason"] and "ceiling" in s["reason"]
    assert s["rejected"]["mean_watts"] == pytest.approx(2531.0) and s["band"]["high_watts"] == 100.0
    meter.watts = 30.0  # the same machine at 30 W: kept
    ok = _run_recorder(FakeMeter(30.0, clock), clock)
    assert ok["mean_watts"] == pytest.approx(30.0) and ok["reason"] is None


def test_a_counter_that_never_moves_or_runs_backwards_records_why():
    clock = Clock()
    still = _run_recorder(FakeMeter(0.0, clock), clock)
    assert still["joules_per_step"] is None and "did not advance" in still["reason"]
    back = _run_recorder(FakeMeter(-5.0, clock), clock)
    assert back["joules_per_step"] is None and "backwards" in back["reason"]
