"""A sweep: one run per (device, dtype, batch size, compile mode, threads), recorded as it goes.

`Sweep` runs a plan into a results directory so that one failing run never loses the others; `RunLoop`
is one run's loop (evals every eval_interval, timed steps between); `summarize` turns what a loop
measured into run.json's summary. Whatever differs between devices is asked of bench.devices.

Under torchrun (a `World`), every rank runs every run of the plan together, data-parallel; the ranks
agree on what to run (rank 0 decides, the others follow) and on how each run ended (gathered at its end);
rank 0 alone writes the results directory and prints. A run that fails on every rank alike (out of
memory, diverged) fails alone and the sweep goes on; a rank that dies, hangs past the timeout or falls
out of step stops the sweep (RankLost), because the ranks can no longer run collectives together.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import math
import os
import signal
import socket
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import psutil
import torch
from tqdm import tqdm

from bench import __version__
from bench.config import BenchConfig, ConfigError, config_from_dict
from bench.devices import (
    Device,
    DeviceUnavailable,
    DtypeUnsupported,
    MemoryWatch,
    device_kind,
    parse_device,
    software_versions,
)
from bench.distributed import (
    DistEnv,
    RankLost,
    World,
    comm_reason,
    is_comm_error,
    rank_records,
    summarize_ranks,
)
from bench.energy import EnergyRecorder
from bench.metrics import step_summary
from bench.results import ResultsDir, ResultsError, RunWriter, atomic_write_json
from bench.train import Trainer
from hwinfo import interrupts
from hwinfo.peaks import peak_for, user_peak
from model.dataset import CharDataset
from model.gpt import flops_per_iter, flops_per_token

LOST = "a rank died, stopped answering within --dist-timeout or fell out of step"


@dataclass(frozen=True)
class RunSpec:
    device: str
    dtype: str
    batch_size: int
    compile: str
    threads: int | None
    world_size: int | None = None  # under torchrun: the ranks of this data-parallel run

    @property
    def run_id(self) -> str:
        dev = self.device.replace(":", "")
        th = f"-t{self.threads}" if self.threads is not None else ""
        comp = {"off": "eager", "on": "compile"}.get(self.compile, f"compile-{self.compile}")
        ddp = f"-ddp{self.world_size}" if self.world_size is not None else ""
        return f"{dev}-{self.dtype}-b{self.batch_size}-{comp}{th}{ddp}"


def plan(cfg: BenchConfig, devices: dict[str, Device | None], world_size: int | None = None) -> list[RunSpec]:
    """Every combination of the sweep axes; the threads axis applies to devices whose parallelism is
    CPU threads. `devices` maps each requested name to its Device (None: not usable here); world_size:
    the ranks under torchrun (the batch sizes are global batches)."""
    runs = []
    s = cfg.sweep
    for name, dtype, bs, comp in itertools.product(devices, s.dtypes, s.batch_sizes, s.compile):
        dev = devices[name]
        threads = s.threads if dev is not None and dev.uses_cpu_threads else [None]
        for th in threads:
            runs.append(RunSpec(name, dtype, bs, comp, th, world_size))
    return runs


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during a sweep; the current run has been marked interrupted."""

    def __init__(self, run_id: str, signal_name: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id
        self.signal_name = signal_name


class DiskFull(RuntimeError):
    """The results directory's disk is full: the run is failed and the sweep ends (exit 1)."""

    exit_code = 1


def _disk_full(e: BaseException | None) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _cut_to_last_row(path: Path) -> None:
    """A CSV that a failed write left ending mid-row cut back to its last whole row (truncating needs no space)."""
    try:
        with open(path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)
    except OSError:
        pass


class Sweep:
    """Runs a plan into a results directory, one failing run never losing the others."""

    def __init__(
        self,
        cfg: BenchConfig,
        out: Path,
        hw: dict,
        argv: list[str],
        progress: bool = True,
        profile_steps: int = 0,
        dataset: CharDataset | None = None,
        world: World | None = None,
    ) -> None:
        self.cfg = cfg
        self.profile_steps = profile_steps
        self.results = ResultsDir(out)
        self.hw = hw
        self.argv = argv
        self.world = world
        self.writes = world is None or world.is_main  # rank 0 alone writes results and prints
        self.progress = progress and self.writes
        self.host = cfg.sweep.host or socket.gethostname()
        self._dataset = dataset
        self._roofs = None  # bench.profile.RoofMeter: the roofline's roofs, measured once per device
        self.init = None  # bench.checkpoint.Init: --init-from, put into every run's trainer
        self.save_checkpoint = False  # --save-checkpoint

    def prepare(self, resume: bool) -> None:
        if self.results.exists():
            if not resume:
                raise ResultsError(
                    f"{self.results.root} already holds a sweep: pass --resume to complete it, or choose another --out"
                )
            old = self.results.read_sweep()
            # A continued sweep (--init-from) resumes from its own checkpoint only, and a plain one from none.
            mine = self.init.src.record()["path"] if self.init is not None else None
            theirs = old.get("init_from") if isinstance(old.get("init_from"), dict) else {}
            if theirs.get("path") != mine:
                raise ResultsError(
                    f"{self.results.root} holds runs continued from another checkpoint (or none): resume it with "
                    f"the command in its sweep.json ('command') and --resume"
                )
            try:
                same = config_from_dict(old.get("spec") or {}).to_dict() == self.cfg.to_dict()
            except ConfigError:
                same = False
            if not same:
                raise ResultsError(
                    f"{self.results.root} holds a sweep with a different configuration: resume it with "
                    f"`bench run --out {self.results.root} --resume` alone, or the same flags as its sweep.json 'command'"
                )
            return
        self.results.write_sweep(
            {
                "sweep_id": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + self.host,
                "created": _now(),
                "host": self.host,
                "hwinfo": self.hw,
                "software": software_versions(),
                "project_version": __version__,
                "spec": self.cfg.to_dict(),
                "data": {
                    "source": getattr(self.dataset, "source", None),
                    "sha256": getattr(self.dataset, "sha256", None),
                },
                "command": " ".join(self.argv),
                **({"init_from": self.init.src.record()} if self.init is not None else {}),
            }
        )

    def run_all(self, specs: list[RunSpec], unavailable: dict[str, str], resume: bool) -> dict[str, str]:
        """Run every spec; returns {run_id: status}. Raises Interrupted on Ctrl-C or SIGTERM."""
        statuses: dict[str, str] = {}
        bar = tqdm(total=len(specs), desc="sweep", unit="run", file=sys.stderr, position=0,
                   disable=None if self.progress else True)  # fmt: skip
        done = set()
        if resume and self.writes:
            done = {s.run_id for s in specs if self.results.run_status(s.run_id) == "ok"}
        if self.world is not None:
            done = self.world.broadcast(done)  # rank 0's results directory decides, on every node
        try:
            for spec in specs:
                if spec.run_id in done:
                    statuses[spec.run_id] = "ok"
                    self._say(f"{spec.run_id}: already done (resume)")
                elif spec.device in unavailable:
                    if self.writes:
                        self.results.record_skipped(
                            spec.run_id, self._meta(spec, None), unavailable[spec.device]
                        )
                    statuses[spec.run_id] = "skipped"
                    self._say(f"{spec.run_id}: skipped: {unavailable[spec.device]}")
                else:
                    statuses[spec.run_id] = self.run_one(spec)
                bar.update(1)
        finally:
            bar.close()
        return statuses

    @property
    def dataset(self) -> CharDataset:
        if self._dataset is None:
            self._dataset = CharDataset.shakespeare()
        return self._dataset

    def _say(self, msg: str) -> None:
        if self.writes:
            _say(msg)

    def _peak(self, spec: RunSpec, device: Device | None) -> dict:
        """The peak MFU divides by: the user's (--peak-flops), else hwinfo's (spec, derived, measured); under
        torchrun, times the devices the ranks use (one per rank; one CPU per node, its ranks sharing it)."""
        override = self.cfg.sweep.peak_flops.get(spec.dtype)
        peak = (
            user_peak(override, spec.dtype, spec.device)
            if override
            else peak_for(self.hw, spec.device, spec.dtype)
        )
        env = self.world.env if self.world is not None else None
        if env is None or device is None:
            return peak
        n = env.nnodes if device.ranks_share_device else env.world_size
        what = (
            f"{n} x one {device.type} per node, shared by its {env.local_world_size} rank(s)"
            if device.ranks_share_device
            else f"{n} x one {device.type} device per rank"
        )
        scaled = {**peak, "devices": n, "per_device_value": peak.get("value")}
        if peak.get("value"):
            scaled["value"] = peak["value"] * n
            scaled["detail"] = f"{what}; each: {peak.get('detail') or 'the per-device peak'}"
        return scaled

    def _meta(self, spec: RunSpec, device: Device | None) -> dict:
        model = self.cfg.model
        env = self.world.env if self.world is not None else None
        return {
            "status": "running",
            "error": None,
            "source": "devicebench",
            "host": self.host,
            "device": spec.device,
            "device_type": device.type if device is not None else device_kind(spec.device),
            "device_name": device.display_name(self.hw) if device is not None else spec.device,
            "dtype": spec.dtype,
            "batch_size": spec.batch_size,
            "block_size": model.block_size,
            "compile": spec.compile,
            "threads": spec.threads,
            "seed": self.cfg.train.seed,
            "model": model.to_dict(),
            "train": self.cfg.train.to_dict(),
            "flops_per_token": flops_per_token(model),
            "flops_per_iter": flops_per_iter(model, spec.batch_size),
            "tokens_per_iter": spec.batch_size * model.block_size,
            "peak_flops": self._peak(spec, device),
            "world_size": env.world_size if env else 1,
            "backend": device.dist_backend if env and device is not None else None,
            "nnodes": env.nnodes if env else 1,
            "nproc_per_node": env.local_world_size if env else 1,
            **({"init_from": self.init.src.record()} if self.init is not None else {}),
        }

    def device_of(self, spec: RunSpec) -> Device:
        """The device this process trains a run on: under torchrun, this rank's (cuda:LOCAL_RANK, the CPU)."""
        device = parse_device(spec.device)
        if self.world is None:
            return device
        return rank_device(device, self.world.env)

    def run_one(self, spec: RunSpec) -> str:
        """Train one run to the end; its status: ok, failed, skipped. Ctrl-C/SIGTERM marks it interrupted."""
        device = self.device_of(spec)
        meta = self._meta(spec, device)
        with _cpu_threads(device, spec.threads) as threads:
            meta["threads"] = threads
            trainer = None
            outcome: tuple[str, str] | None = None
            try:
                device.make_current()
                trainer = Trainer(self.cfg.model, self.cfg.train, device, spec.dtype, spec.compile,
                                  spec.batch_size, self.dataset)  # fmt: skip
                if self.init is not None:
                    self.init.apply(trainer)
            except DtypeUnsupported as e:
                outcome = ("skipped", str(e))
            except Exception as e:  # noqa: BLE001 - a run that cannot be built fails alone; the sweep goes on
                reason = _oom_reason(spec, "building the model", e) if device.is_oom(e) else _describe(e)
                outcome = ("failed", f"could not start: {reason}")
            if self.world is not None:
                outcome = _merge_outcomes(self.world.gather(outcome))  # every rank skips or fails it alike
            if outcome is not None:
                status, reason = outcome
                if self.writes:
                    record = (
                        self.results.record_skipped if status == "skipped" else self.results.record_failed
                    )
                    record(spec.run_id, meta, reason)
                self._say(f"{spec.run_id}: {status}: {reason}")
                del trainer
                device.empty_cache()
                return status
            try:
                if self.world is not None:
                    self._distribute(spec, trainer, meta)
                return self._run_built(spec, device, trainer, meta)
            finally:
                del trainer
                device.empty_cache()

    def _distribute(self, spec: RunSpec, trainer: Trainer, meta: dict) -> None:
        """Wrap the run's model in DDP on every rank; a rank that cannot ends the sweep (the others are in the
        broadcast of the weights)."""
        try:
            trainer.distribute(self.world.for_run(trainer.device))
        except Exception as e:  # noqa: BLE001
            stop = interrupts.pending()
            if stop is not None:  # the peers left on the signal this rank holds too (see _run_built)
                raise Interrupted(spec.run_id, stop.signal_name) from None
            reason = f"rank {self.world.rank}: could not start data-parallel training: {_describe(e)}"
            if self.writes:
                self.results.record_failed(spec.run_id, meta, reason)
            raise RankLost(self._lost_message(spec, reason)) from None

    def _lost_message(self, spec: RunSpec, reason: str) -> str:
        return (
            f"{spec.run_id} failed and the ranks cannot go on together: {reason}; the later runs were not started "
            f"(finished runs are kept; complete the sweep with: {resume_hint(self.results.root, True)})"
        )

    def _run_built(self, spec: RunSpec, device: Device, trainer: Trainer, meta: dict) -> str:
        started = {**meta, "started": _now()}
        writer = self.results.new_run(spec.run_id, started) if self.writes else _NoWriter(started)
        writer.write_meta()
        loop = RunLoop(trainer, writer, self._run_bar(spec))
        status, error, cause = "ok", None, None
        try:
            with trainer:
                loop.run()
                status, error = loop.status, loop.error
                if status == "ok" and self.writes:
                    from bench.sample import finish_run

                    finish_run(trainer, writer, loop, self.save_checkpoint)
                if self.profile_steps and status == "ok":
                    loop.where = "profiling"
                    self._profile(trainer, spec, writer, meta, loop)
                meta["compile_stats"] = trainer.compile_stats() if trainer.compiled else None
        except KeyboardInterrupt as e:
            self._end_interrupted(spec, writer, loop, meta, getattr(e, "signal_name", None) or "Ctrl-C")
        except Exception as e:  # noqa: BLE001 - one broken run must not lose the sweep
            status, cause = "failed", e
            if device.is_oom(e):
                error = _oom_reason(spec, loop.where, e)
            elif self.world is not None and is_comm_error(e):
                error = f"{comm_reason(e)} during {loop.where}"
            elif _disk_full(e):
                error = f"the disk is full ({e.strerror or e}) during {loop.where}"
            else:
                error = f"{_describe(e)} during {loop.where}"
        finally:
            loop.close()
            try:
                writer.close()  # flushes what a full disk refused once more
            except OSError as e:
                if cause is None:
                    status, cause, error = (
                        "failed",
                        e,
                        f"the disk is full ({e.strerror or e}) at the end of the run",
                    )
        if _disk_full(cause):
            self._stop_on_full_disk(spec, writer, loop, meta, error)
        ranks, lost, agreed = None, None, False
        if self.world is not None:
            status, error, ranks, lost, agreed = self._agree(trainer, loop, status, error, cause)
            stop = interrupts.pending() if lost is not None else None
            if stop is not None:
                # A peer gone while this rank holds a signal: the launcher passed the same Ctrl-C/SIGTERM to every
                # rank and the peer acted on it first. The sweep was interrupted, not broken.
                self._end_interrupted(spec, writer, loop, meta, stop.signal_name)
        with _signals_deferred(reraise=lost is None, run_id=spec.run_id):
            extra = {"ranks": rank_records(ranks)} if ranks is not None else {}
            writer.write_meta(status=status, error=error, summary=summarize(loop, meta, ranks), finished=_now(),
                              compile_stats=meta.get("compile_stats"), **extra)  # fmt: skip
            line = f"{spec.run_id}: {status}"
            median = writer.meta["summary"].get("ms_median")
            if median is not None:
                line += f", {median:.2f} ms/iter median"
            if loop.losses.get("val") is not None:
                line += f", val loss {loop.losses['val']:.4f}"
            self._say(line + (f" ({error})" if error else ""))
        if lost is not None:
            _ignore_interrupts()  # the launcher's SIGTERM to every rank would only hide why the sweep ends
            raise RankLost(self._lost_message(spec, lost), agreed=agreed)
        return status

    def _end_interrupted(
        self, spec: RunSpec, writer: RunWriter, loop: RunLoop, meta: dict, how: str
    ) -> NoReturn:
        """The run ends `interrupted` by signal `how` (run.json written whole), and with it the sweep."""
        hint = TORCHRUN_SIGTERM if self.world is not None and how == "SIGTERM" else ""
        with _signals_deferred(reraise=False):
            writer.write_meta(status="interrupted", error=f"interrupted by {how} during {loop.where}{hint}",
                              summary=summarize(loop, meta), finished=_now())  # fmt: skip
        raise Interrupted(spec.run_id, how) from None

    def _stop_on_full_disk(
        self, spec: RunSpec, writer: RunWriter, loop: RunLoop, meta: dict, error: str
    ) -> None:
        """A full disk fails the run and ends the sweep (no later run could write either): steps.csv and
        evals.csv cut back to their last whole row, run.json marked failed if it still can be, one line."""
        resume = resume_hint(self.results.root, self.world is not None)
        recorded = "run.json says so"
        if self.writes:
            for name in ("steps.csv", "evals.csv"):
                _cut_to_last_row(writer.dir / name)
            try:
                with interrupts.critical():
                    writer.write_meta(
                        status="failed", error=error, summary=summarize(loop, meta), finished=_now()
                    )
            except OSError:
                recorded = "run.json could not be updated either (it still says running; --resume reruns it)"
        raise DiskFull(
            f"{spec.run_id} failed: {error}; the later runs were not started ({recorded}; finished runs and the "
            f"steps written are kept): free some space, then complete the sweep with: {resume}"
        )

    def _agree(
        self, trainer: Trainer, loop: RunLoop, status: str, error: str | None, cause: BaseException | None
    ) -> tuple[str, str | None, list[dict] | None, str | None, bool]:
        """How the run ended, agreed by every rank: (status, error, each rank's figures, why the ranks are
        lost or None, whether every rank knows that). Every rank reaches this once per run, after its last
        step or its failure."""
        world = self.world
        env = world.env
        mine: dict[str, Any] = {
            "rank": env.rank, "local_rank": env.local_rank, "node_rank": env.node_rank,
            "host": socket.gethostname(), "device": trainer.device.name,
            "error": error if cause is not None else None,
            "comm_error": cause is not None and is_comm_error(cause),
        }  # fmt: skip
        if cause is None:
            mine.update(loop.rank_figures())
            mine["params_sha256"] = trainer.params_sha256()
        if mine["comm_error"]:
            # this rank's own collective failed: a peer is gone or hung, and a gather would only wait out the
            # control group's timeout (twice --dist-timeout) for it as well
            why = f"{LOST}: rank {env.rank} lost contact with the others ({error})"
            return "failed", why, None, why, False
        try:
            ranks = world.gather(mine)
        except Exception as e:  # noqa: BLE001 - a peer that is gone cannot answer
            why = f"{LOST}: rank {env.rank} lost contact with the others ({error or comm_reason(e)})"
            return "failed", why, None, why, False
        failed = [r for r in ranks if r["error"] is not None]
        if not failed:
            return status, error, ranks, None, False
        error = _merge_reasons([(r["rank"], r["error"]) for r in failed], len(ranks))
        if any(r["comm_error"] for r in failed):
            error = f"{LOST}: {error}"
            return "failed", error, None, error, True
        return "failed", error, None, None, False

    def _run_bar(self, spec: RunSpec) -> tqdm:
        return tqdm(total=self.cfg.train.max_iters, desc=spec.run_id, unit="it", file=sys.stderr, position=1,
                    leave=False, disable=None if self.progress else True, mininterval=0.5)  # fmt: skip

    def _profile(self, trainer: Trainer, spec: RunSpec, writer: RunWriter, meta: dict, loop: RunLoop) -> None:
        """Extra steps under torch.profiler after the final eval, into profile.json.

        The profiled steps are not in steps.csv and not in any median; the trainer's state is restored.
        A profile that cannot be taken is skipped with a message; running out of memory fails the run, and
        so does a failed collective under torchrun (every rank profiles the same steps together).
        """
        from bench.profile import RoofMeter, profile_steps

        if self._roofs is None:
            self._roofs = RoofMeter(self.hw, progress=_say)
        try:
            roofs = self._roofs.roofs(spec.device, spec.dtype, meta["peak_flops"], meta.get("threads"))
            prof = profile_steps(
                trainer,
                n_steps=self.profile_steps,
                start_iter=loop.steps_done,
                unprofiled_ms_median=step_summary(loop.timed_ms, 1, 1, None)["ms_median"],
                peak_flops_per_s=meta["peak_flops"].get("value"),
                roofs=roofs,
            )
        except Exception as e:  # noqa: BLE001
            if trainer.device.is_oom(e) or (self.world is not None and is_comm_error(e)):
                raise
            self._say(f"{spec.run_id}: profile skipped: {_describe(e)}")
            return
        if not self.writes:
            return
        prof["run_id"] = spec.run_id
        atomic_write_json(writer.dir / "profile.json", prof)
        _say(f"{spec.run_id}: profiled {self.profile_steps} steps into {writer.dir / 'profile.json'}")


@dataclass
class RunLoop:
    """One run: an eval every eval_interval steps and one after the last, timed train steps between,
    every step and eval written as it happens. `where` says what the loop is doing (for error messages)."""

    trainer: Trainer
    writer: RunWriter
    bar: tqdm
    where: str = "setup"
    status: str = "ok"
    error: str | None = None
    timed_ms: list[float] = field(default_factory=list)
    timed_allreduce_ms: list[float] = field(default_factory=list)  # under DDP, for the timed steps
    losses: dict[str, float] = field(default_factory=dict)
    first_step_ms: float | None = None
    steps_done: int = 0
    eval_ms_total: float = 0.0

    def __post_init__(self) -> None:
        t = self.trainer.train_cfg
        self.start = self.trainer.start_iter  # 0, or the step a continued run (--init-from) starts at
        self.warmup = min(t.timing_warmup_iters, (t.max_iters - self.start) // 2)
        self.wall0 = time.perf_counter()
        self.memory: MemoryWatch = self.trainer.device.memory_watch()
        self.energy = EnergyRecorder(self.trainer.device.energy_meter())
        self.energy.measure_idle()
        self.host_load = HostLoad(psutil.Process())

    def run(self) -> None:
        t = self.trainer.train_cfg
        samplers = self.trainer.eval_samplers()
        for it in range(self.start, t.max_iters):
            interrupts.check()  # between steps: `where` still names the step (or eval) the signal came in
            if it % t.eval_interval == 0 and (it > self.start or self.trainer.eval_at_start):
                self._eval(it, samplers)
            self.where = f"step {it}"
            if it - self.start == self.warmup:
                self.energy.timed_begin()
            ms, loss_t, lr = self.trainer.train_step(it)
            loss = loss_t.item()
            if self.first_step_ms is None:
                self.first_step_ms = ms
            phase = "warmup" if it - self.start < self.warmup else "timed"
            self.writer.step(it, ms, loss, lr, phase)
            self.steps_done += 1
            if phase == "timed":
                self.timed_ms.append(ms)
                if self.trainer.last_allreduce_ms is not None:
                    self.timed_allreduce_ms.append(self.trainer.last_allreduce_ms)
            if not math.isfinite(loss):
                self.status, self.error = "failed", f"loss became {loss} at iter {it} (diverged)"
                return
            self.memory.sample()
            self.bar.update(1)
            if it % 10 == 0:
                self.bar.set_postfix_str(f"{ms:.1f} ms/it, loss {loss:.3f}", refresh=False)
        self.energy.timed_end()
        interrupts.check()
        # A checkpoint's eval generators: as a longer run holds them here (it evaluates at max_iters on schedule only)
        self.checkpoint_eval_states = {k: s.generator.get_state() for k, s in samplers.items()}
        self._eval(t.max_iters, samplers, last=True)
        if t.max_iters % t.eval_interval == 0:
            self.checkpoint_eval_states = {k: s.generator.get_state() for k, s in samplers.items()}
        self.where = "the end of the run"

    def _eval(self, it: int, samplers: dict, last: bool = False) -> None:
        """An eval, metered apart: the timed phase's energy pauses around it."""
        self.where = f"the eval at iter {it}"
        timed = it - self.start > self.warmup and not last
        if timed:
            self.energy.timed_end()
        self.energy.eval_begin()
        for split, (loss, ms) in self.trainer.evaluate(samplers).items():
            self.writer.eval(it, split, loss, ms)
            self.losses[split] = loss
            self.eval_ms_total += ms
        self.energy.eval_end()
        if timed:
            self.energy.timed_begin()

    def close(self) -> None:
        self.bar.close()
        self.energy.close()
        self.wall_s = time.perf_counter() - self.wall0

    def rank_figures(self) -> dict:
        """This rank's medians over the timed steps, for the gather at the end of a data-parallel run."""
        ms, ar = self.timed_ms, self.timed_allreduce_ms
        outside = [m - a for m, a in zip(ms, ar, strict=False)] if len(ar) == len(ms) else []
        timer = getattr(self.trainer.comm, "timer", None)
        return {
            "ms_median": statistics.median(ms) if ms else None,
            "allreduce_ms_median": statistics.median(ar) if ar else None,
            "outside_allreduce_ms_median": statistics.median(outside) if outside else None,
            "allreduce_bytes_per_step": timer.bytes_per_step if timer is not None else None,
            "cpu_cores": self.host_load.finish()["this_process_cpu_cores"],
        }


def summarize(loop: RunLoop, meta: dict, ranks: list[dict] | None = None) -> dict:
    """run.json's summary from what a run measured (complete or not); `ranks`: every rank's figures from
    the gather at the end of a data-parallel run (all-reduce share, stragglers, identical weights)."""
    summary = step_summary(loop.timed_ms, meta["tokens_per_iter"], meta["flops_per_iter"],
                           meta["peak_flops"].get("value"))  # fmt: skip
    summary.update(
        {
            "iters_done": loop.steps_done,
            "warmup_iters": loop.warmup,
            "first_step_ms": loop.first_step_ms,
            "final_train_loss": loop.losses.get("train"),
            "final_val_loss": loop.losses.get("val"),
            "eval_ms_total": loop.eval_ms_total,
            "wall_s": getattr(loop, "wall_s", None) or time.perf_counter() - loop.wall0,
            "peak_mem_bytes": loop.memory.peak(),
            "peak_mem_kind": loop.memory.kind,
            "host_load": loop.host_load.finish(),
            "energy": loop.energy.summary(len(loop.timed_ms), meta["tokens_per_iter"]),
        }
    )
    if ranks:
        summary.update(summarize_ranks(ranks))
        # The other ranks on this node are this job, not "other processes" loading the machine.
        node = ranks[0]["node_rank"]
        siblings = sum(r.get("cpu_cores") or 0.0 for r in ranks[1:] if r["node_rank"] == node)
        load = summary["host_load"]
        load["other_ranks_cpu_cores"] = siblings
        load["other_processes_cpu_cores"] = max(load["other_processes_cpu_cores"] - siblings, 0.0)
    return summary


class HostLoad:
    """What else ran on the machine during a run: the evidence for noisy timings.

    Cores' worth of CPU time used by this process, by other processes, and stolen by the hypervisor
    (a VM's noisy neighbours), averaged over the run; the 1-minute load average at start and end.
    """

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        self.t0 = time.perf_counter()
        self.sys0 = psutil.cpu_times()
        self.own0, self.kids0 = _own_cpu(proc)
        self.load0 = _loadavg()

    def finish(self) -> dict:
        wall = max(time.perf_counter() - self.t0, 1e-9)
        sys1 = psutil.cpu_times()
        own1, kids1 = _own_cpu(self.proc)
        busy = sum(getattr(sys1, f) - getattr(self.sys0, f) for f in ("user", "system", "nice", "irq", "softirq")
                   if hasattr(sys1, f))  # fmt: skip
        # this process and its children (torch.compile's worker processes): their CPU is the run's own work,
        # not a neighbour's. A child gone since the start (reaped) counts in own1 whole: its earlier part is
        # taken off again.
        mine = own1 - self.own0 + sum(t - self.kids0.get(pid, 0.0) for pid, t in kids1.items())
        mine = max(mine - sum(t for pid, t in self.kids0.items() if pid not in kids1), 0.0)
        steal = getattr(sys1, "steal", 0.0) - getattr(self.sys0, "steal", 0.0)
        return {
            "logical_cpus": psutil.cpu_count(logical=True),
            "this_process_cpu_cores": mine / wall,
            "other_processes_cpu_cores": max(busy - mine, 0.0) / wall,
            "steal_cpu_cores": max(steal, 0.0) / wall,
            "loadavg_1m_start": self.load0,
            "loadavg_1m_end": _loadavg(),
        }


def _own_cpu(proc: psutil.Process) -> tuple[float, dict[int, float]]:
    """(CPU seconds of this process and its reaped children, {pid: CPU seconds} of its live descendants)."""
    t = proc.cpu_times()
    own = t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
    kids: dict[int, float] = {}
    try:
        children = proc.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        children = []
    for c in children:
        try:
            ct = c.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        kids[c.pid] = ct.user + ct.system
    return own, kids


@contextlib.contextmanager
def _cpu_threads(device: Device, threads: int | None) -> Iterator[int | None]:
    """The run's intra-op thread count on a device whose parallelism is CPU threads; restored after."""
    prev = torch.get_num_threads()
    try:
        if device.uses_cpu_threads and threads is not None:
            torch.set_num_threads(threads)
        yield torch.get_num_threads() if device.uses_cpu_threads else None
    finally:
        torch.set_num_threads(prev)


class _NoWriter:
    """What a rank other than 0 writes: nothing (rank 0 alone writes the results directory)."""

    dir = None

    def __init__(self, meta: dict) -> None:
        self.meta = dict(meta)

    def write_meta(self, **updates: Any) -> None:
        self.meta.update(updates)

    def step(self, *args: Any) -> None:
        pass

    def eval(self, *args: Any) -> None:
        pass

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _signals_deferred(reraise: bool = True, run_id: str = "") -> Iterator[None]:
    """A run's outcome written whole (hwinfo.interrupts.critical); then a signal recorded meanwhile ends the sweep
    interrupted (reraise), or is dropped (it is ending anyway: torchrun sends SIGTERM to every rank as soon as
    one fails)."""
    with interrupts.critical():
        yield
    stop = interrupts.pending()
    if stop is not None and reraise:
        raise Interrupted(run_id, stop.signal_name)


TORCHRUN_SIGTERM = (
    " (under torchrun: the launcher stops every rank this way when one rank fails; see its output)"
)


def resume_hint(out: Path, distributed: bool) -> str:
    """The command that completes a sweep: `bench run --nproc N` when that started the ranks (it says so in
    DEVICEBENCH_NPROC), the user's own torchrun command, or plain `bench run`."""
    nproc = os.environ.get("DEVICEBENCH_NPROC")
    if nproc:
        return f"bench run --nproc {nproc} --out {out} --resume"
    if distributed:
        return f"the same torchrun command with `bench run --out {out} --resume`"
    return f"bench run --out {out} --resume"


def _ignore_interrupts() -> None:
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)


def _merge_reasons(items: list[tuple[int, str]], world_size: int) -> str:
    """'reason' when every rank gave it, else 'rank 1: reason; ranks 2, 3: other'."""
    by_reason: dict[str, list[int]] = {}
    for rank, reason in items:
        by_reason.setdefault(reason, []).append(rank)
    if len(by_reason) == 1 and len(items) == world_size:
        return next(iter(by_reason))
    parts = []
    for reason, ranks in by_reason.items():
        who = f"rank {ranks[0]}" if len(ranks) == 1 else "ranks " + ", ".join(map(str, ranks))
        parts.append(f"{who}: {reason}")
    return "; ".join(parts)


def _merge_outcomes(outcomes: list[tuple[str, str] | None]) -> tuple[str, str] | None:
    """One outcome for a run every rank tried to build: failed if any rank failed, skipped if any skipped."""
    bad = [(rank, o) for rank, o in enumerate(outcomes) if o is not None]
    if not bad:
        return None
    status = "failed" if any(o[0] == "failed" for _, o in bad) else "skipped"
    return status, _merge_reasons([(rank, o[1]) for rank, o in bad], len(outcomes))


def rank_device(device: Device, env: DistEnv) -> Device:
    """The device one rank trains on (see Device.for_local_rank), checked to have a torch.distributed backend."""
    device.check_distributed()
    return device.for_local_rank(env.local_rank, env.local_world_size)


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {_first_line(e)}"


def _oom_reason(spec: RunSpec, where: str, e: BaseException) -> str:
    return f"out of memory at batch size {spec.batch_size} during {where}: {_first_line(e)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _say(msg: str) -> None:
    tqdm.write(msg, file=sys.stderr)


def resolve_devices(
    requested: list[str], env: DistEnv | None = None
) -> tuple[dict[str, Device | None], dict[str, str]]:
    """({name: Device or None} in the order asked, {name: reason} for those that cannot run here).

    Nothing asked: every device PyTorch can use here (under torchrun, every kind: each rank takes its own
    cuda:LOCAL_RANK). Under torchrun (env) each device is also checked for this rank (rank_device).
    """
    from bench.devices import available_devices

    names = requested or available_devices()
    if env is not None and not requested:
        names = list(dict.fromkeys(device_kind(n) for n in names))
    devices: dict[str, Device | None] = {}
    unavailable: dict[str, str] = {}
    for name in names:
        try:
            device = parse_device(name)
            # Keyed by the normalised name ('CPU', ' cpu', 'cpu:0' -> 'cpu'): run ids, hwinfo's peaks and
            # --resume all look devices up by it; a device asked twice runs once.
            name = device.name
            if name in devices:
                continue
            devices[name] = device
            if env is not None:
                rank_device(device, env)
        except DeviceUnavailable as e:
            devices[name] = None
            unavailable[name] = str(e)
    return devices, unavailable
