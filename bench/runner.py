"""A sweep: one run per (device, dtype, batch size, compile mode, threads), recorded as it goes.

`Sweep` runs a plan into a results directory so that one failing run never loses the others; `RunLoop`
is one run's loop (evals every eval_interval, timed steps between); `summarize` turns what a loop
measured into run.json's summary. Whatever differs between devices is asked of bench.devices.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

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
from bench.energy import EnergyRecorder
from bench.metrics import step_summary
from bench.results import ResultsDir, ResultsError, RunWriter, atomic_write_json
from bench.train import Trainer
from hwinfo.peaks import peak_for, user_peak
from model.dataset import CharDataset
from model.gpt import flops_per_iter, flops_per_token


@dataclass(frozen=True)
class RunSpec:
    device: str
    dtype: str
    batch_size: int
    compile: str
    threads: int | None

    @property
    def run_id(self) -> str:
        dev = self.device.replace(":", "")
        th = f"-t{self.threads}" if self.threads is not None else ""
        comp = {"off": "eager", "on": "compile"}.get(self.compile, f"compile-{self.compile}")
        return f"{dev}-{self.dtype}-b{self.batch_size}-{comp}{th}"


def plan(cfg: BenchConfig, devices: dict[str, Device | None]) -> list[RunSpec]:
    """Every combination of the sweep axes; the threads axis applies to devices whose parallelism is
    CPU threads. `devices` maps each requested name to its Device (None: not usable here)."""
    runs = []
    s = cfg.sweep
    for name, dtype, bs, comp in itertools.product(devices, s.dtypes, s.batch_sizes, s.compile):
        dev = devices[name]
        threads = s.threads if dev is not None and dev.uses_cpu_threads else [None]
        for th in threads:
            runs.append(RunSpec(name, dtype, bs, comp, th))
    return runs


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during a sweep; the current run has been marked interrupted."""

    def __init__(self, run_id: str, signal_name: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id
        self.signal_name = signal_name


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
    ) -> None:
        self.cfg = cfg
        self.profile_steps = profile_steps
        self.results = ResultsDir(out)
        self.hw = hw
        self.argv = argv
        self.progress = progress
        self.host = cfg.sweep.host or socket.gethostname()
        self._dataset = dataset
        self._roofs = None  # bench.profile.RoofMeter: the roofline's roofs, measured once per device

    def prepare(self, resume: bool) -> None:
        if self.results.exists():
            if not resume:
                raise ResultsError(
                    f"{self.results.root} already holds a sweep: pass --resume to complete it, or choose another --out"
                )
            old = self.results.read_sweep()
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
            }
        )

    def run_all(self, specs: list[RunSpec], unavailable: dict[str, str], resume: bool) -> dict[str, str]:
        """Run every spec; returns {run_id: status}. Raises Interrupted on Ctrl-C or SIGTERM."""
        statuses: dict[str, str] = {}
        bar = tqdm(total=len(specs), desc="sweep", unit="run", file=sys.stderr, position=0,
                   disable=None if self.progress else True)  # fmt: skip
        try:
            for spec in specs:
                if resume and self.results.run_status(spec.run_id) == "ok":
                    statuses[spec.run_id] = "ok"
                    _say(f"{spec.run_id}: already done (resume)")
                elif spec.device in unavailable:
                    self.results.record_skipped(spec.run_id, self._meta(spec, None), unavailable[spec.device])
                    statuses[spec.run_id] = "skipped"
                    _say(f"{spec.run_id}: skipped: {unavailable[spec.device]}")
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

    def _peak(self, spec: RunSpec) -> dict:
        """The peak MFU divides by: the user's (--peak-flops), else hwinfo's (spec, derived, measured)."""
        override = self.cfg.sweep.peak_flops.get(spec.dtype)
        if override:
            return user_peak(override, spec.dtype, spec.device)
        return peak_for(self.hw, spec.device, spec.dtype)

    def _meta(self, spec: RunSpec, device: Device | None) -> dict:
        model = self.cfg.model
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
            "peak_flops": self._peak(spec),
        }

    def run_one(self, spec: RunSpec) -> str:
        """Train one run to the end; its status: ok, failed, skipped. Ctrl-C/SIGTERM marks it interrupted."""
        device = parse_device(spec.device)
        meta = self._meta(spec, device)
        with _cpu_threads(device, spec.threads) as threads:
            meta["threads"] = threads
            try:
                trainer = Trainer(self.cfg.model, self.cfg.train, device, spec.dtype, spec.compile,
                                  spec.batch_size, self.dataset)  # fmt: skip
            except DtypeUnsupported as e:
                self.results.record_skipped(spec.run_id, meta, str(e))
                _say(f"{spec.run_id}: skipped: {e}")
                return "skipped"
            except Exception as e:  # noqa: BLE001 - a run that cannot be built fails alone; the sweep goes on
                reason = _oom_reason(spec, "building the model", e) if device.is_oom(e) else _describe(e)
                self.results.record_failed(spec.run_id, meta, f"could not start: {reason}")
                _say(f"{spec.run_id}: failed: could not start: {reason}")
                device.empty_cache()
                return "failed"
            try:
                return self._run_built(spec, device, trainer, meta)
            finally:
                del trainer
                device.empty_cache()

    def _run_built(self, spec: RunSpec, device: Device, trainer: Trainer, meta: dict) -> str:
        writer = self.results.new_run(spec.run_id, {**meta, "started": _now()})
        writer.write_meta()
        loop = RunLoop(trainer, writer, self._run_bar(spec))
        status, error = "ok", None
        try:
            with trainer:
                loop.run()
                status, error = loop.status, loop.error
                if self.profile_steps and status == "ok":
                    loop.where = "profiling"
                    self._profile(trainer, spec, writer, meta, loop)
                meta["compile_stats"] = trainer.compile_stats() if trainer.compiled else None
        except KeyboardInterrupt as e:
            how = getattr(e, "signal_name", None) or "Ctrl-C"
            writer.write_meta(status="interrupted", error=f"interrupted by {how} during {loop.where}",
                              summary=summarize(loop, meta), finished=_now())  # fmt: skip
            raise Interrupted(spec.run_id, how) from None
        except Exception as e:  # noqa: BLE001 - one broken run must not lose the sweep
            status = "failed"
            error = (
                _oom_reason(spec, loop.where, e)
                if device.is_oom(e)
                else f"{_describe(e)} during {loop.where}"
            )
        finally:
            loop.close()
            writer.close()
        writer.write_meta(status=status, error=error, summary=summarize(loop, meta), finished=_now(),
                          compile_stats=meta.get("compile_stats"))  # fmt: skip
        line = f"{spec.run_id}: {status}"
        median = writer.meta["summary"].get("ms_median")
        if median is not None:
            line += f", {median:.2f} ms/iter median"
        if loop.losses.get("val") is not None:
            line += f", val loss {loop.losses['val']:.4f}"
        _say(line + (f" ({error})" if error else ""))
        return status

    def _run_bar(self, spec: RunSpec) -> tqdm:
        return tqdm(total=self.cfg.train.max_iters, desc=spec.run_id, unit="it", file=sys.stderr, position=1,
                    leave=False, disable=None if self.progress else True, mininterval=0.5)  # fmt: skip

    def _profile(self, trainer: Trainer, spec: RunSpec, writer: RunWriter, meta: dict, loop: RunLoop) -> None:
        """Extra steps under torch.profiler after the final eval, into profile.json.

        The profiled steps are not in steps.csv and not in any median; the trainer's state is restored.
        A profile that cannot be taken is skipped with a message; running out of memory fails the run.
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
            if trainer.device.is_oom(e):
                raise
            _say(f"{spec.run_id}: profile skipped: {_describe(e)}")
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
    losses: dict[str, float] = field(default_factory=dict)
    first_step_ms: float | None = None
    steps_done: int = 0
    eval_ms_total: float = 0.0

    def __post_init__(self) -> None:
        t = self.trainer.train_cfg
        self.warmup = min(t.timing_warmup_iters, t.max_iters // 2)
        self.wall0 = time.perf_counter()
        self.memory: MemoryWatch = self.trainer.device.memory_watch()
        self.energy = EnergyRecorder(self.trainer.device.energy_meter())
        self.energy.measure_idle()
        self.host_load = HostLoad(psutil.Process())

    def run(self) -> None:
        t = self.trainer.train_cfg
        samplers = self.trainer.eval_samplers()
        for it in range(t.max_iters):
            if it % t.eval_interval == 0:
                self._eval(it, samplers)
            self.where = f"step {it}"
            if it == self.warmup:
                self.energy.timed_begin()
            ms, loss_t, lr = self.trainer.train_step(it)
            loss = loss_t.item()
            if self.first_step_ms is None:
                self.first_step_ms = ms
            phase = "warmup" if it < self.warmup else "timed"
            self.writer.step(it, ms, loss, lr, phase)
            self.steps_done += 1
            if phase == "timed":
                self.timed_ms.append(ms)
            if not math.isfinite(loss):
                self.status, self.error = "failed", f"loss became {loss} at iter {it} (diverged)"
                return
            self.memory.sample()
            self.bar.update(1)
            if it % 10 == 0:
                self.bar.set_postfix_str(f"{ms:.1f} ms/it, loss {loss:.3f}", refresh=False)
        self.energy.timed_end()
        self._eval(t.max_iters, samplers, last=True)
        self.where = "the end of the run"

    def _eval(self, it: int, samplers: dict, last: bool = False) -> None:
        """An eval, metered apart: the timed phase's energy pauses around it."""
        self.where = f"the eval at iter {it}"
        timed = it > self.warmup and not last
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


def summarize(loop: RunLoop, meta: dict) -> dict:
    """run.json's summary from what a run measured (complete or not)."""
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
        self.proc0 = proc.cpu_times()
        self.load0 = _loadavg()

    def finish(self) -> dict:
        wall = max(time.perf_counter() - self.t0, 1e-9)
        sys1, proc1 = psutil.cpu_times(), self.proc.cpu_times()
        busy = sum(getattr(sys1, f) - getattr(self.sys0, f) for f in ("user", "system", "nice", "irq", "softirq")
                   if hasattr(sys1, f))  # fmt: skip
        mine = (proc1.user - self.proc0.user) + (proc1.system - self.proc0.system)
        steal = getattr(sys1, "steal", 0.0) - getattr(self.sys0, "steal", 0.0)
        return {
            "logical_cpus": psutil.cpu_count(logical=True),
            "this_process_cpu_cores": mine / wall,
            "other_processes_cpu_cores": max(busy - mine, 0.0) / wall,
            "steal_cpu_cores": max(steal, 0.0) / wall,
            "loadavg_1m_start": self.load0,
            "loadavg_1m_end": _loadavg(),
        }


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


def resolve_devices(requested: list[str]) -> tuple[dict[str, Device | None], dict[str, str]]:
    """({name: Device or None} in the order asked, {name: reason} for those that cannot run here).

    Nothing asked: every device PyTorch can use here.
    """
    from bench.devices import available_devices

    devices: dict[str, Device | None] = {}
    unavailable: dict[str, str] = {}
    for name in requested or available_devices():
        try:
            devices[name] = parse_device(name)
        except DeviceUnavailable as e:
            devices[name] = None
            unavailable[name] = str(e)
    return devices, unavailable
