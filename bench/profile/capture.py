"""Run extra steps of a warmed-up Trainer under torch.profiler and hand back the trace.

The steps are the real `Trainer.train_step` with its phase markers on (never a copy of its body); the
Trainer is restored afterwards (weights, optimizer, scaler, batch sampler, RNG).
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.profiler import profile, schedule

from bench.profile.trace import TraceEvent, from_profiler


class Snapshot:
    """Everything a train step changes in a Trainer, to put back after profiling."""

    def __init__(self, trainer: Any) -> None:
        self.model = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        self.optimizer = copy.deepcopy(trainer.optimizer.state_dict())
        self.scaler = copy.deepcopy(trainer.scaler.state_dict())
        self.sampler = trainer.train_sampler.generator.get_state()
        self.cpu_rng = torch.get_rng_state()
        self.device_rng = trainer.device.rng_state()

    def restore(self, trainer: Any) -> None:
        with torch.no_grad():
            trainer.model.load_state_dict(self.model)
        trainer.optimizer.load_state_dict(self.optimizer)
        trainer.optimizer.zero_grad(set_to_none=True)
        if self.scaler:
            trainer.scaler.load_state_dict(self.scaler)
        trainer.train_sampler.generator.set_state(self.sampler)
        torch.set_rng_state(self.cpu_rng)
        trainer.device.set_rng_state(self.device_rng)


# libkineto (torch 2.13) writes these two lines to fd 2 on every profiler start and stop, whatever
# KINETO_LOG_LEVEL says; they are noise between a run's own lines.
_KINETO_NOISE = re.compile(r"^USDT:\S+ \S+ \d+:\d+ \S+\] profiler_(start|stop)\s*$")


@contextlib.contextmanager
def quiet_kineto() -> Iterator[None]:
    """Hold fd 2 in a file while the profiler runs; afterwards write back every line but kineto's
    start/stop notices (a warning from the steps is delayed, never lost)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines(keepends=True) if not _KINETO_NOISE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


@dataclass
class Captured:
    events: list[TraceEvent]
    wall_ms: list[float]  # each recorded step, synchronised wall clock
    host_ms: list[float]  # each recorded step, until its work was queued
    device_view: bool  # kernels are on the trace (CUDA, XPU)


def capture(trainer: Any, n_steps: int, start_iter: int) -> Captured:
    """n_steps recorded steps after one warm-up step of the profiler, starting at iteration start_iter."""
    device = trainer.device
    wall_ms: list[float] = []
    host_ms: list[float] = []
    snapshot = Snapshot(trainer)
    trainer.marks = True
    try:
        with (
            quiet_kineto(),
            profile(
                activities=device.profiler_activities(),
                schedule=schedule(wait=0, warmup=1, active=n_steps, repeat=1),
                record_shapes=True,
                with_flops=True,
                with_stack=False,
            ) as prof,
        ):
            for i in range(n_steps + 1):
                t0 = time.perf_counter()
                trainer.train_step(start_iter + i)
                ms = (time.perf_counter() - t0) * 1e3
                if i > 0:
                    wall_ms.append(ms)
                    host_ms.append(trainer.last_host_ms)
                prof.step()
        raw = list(prof.events())
    finally:
        trainer.marks = False
        snapshot.restore(trainer)
    device_type = device.trace_device_type
    return Captured(from_profiler(raw, device_type), wall_ms, host_ms, device_type is not None)
