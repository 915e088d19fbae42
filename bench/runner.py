"""A sweep: one run per (device, dtype, batch size, compile mode, threads), recorded as it goes."""

from __future__ import annotations

import gc
import itertools
import math
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
import torch
from tqdm import tqdm

from bench import __version__
from bench.config import BenchConfig
from bench.metrics import step_summary
from bench.results import ResultsDir, ResultsError, atomic_write_json
from bench.train import DeviceUnavailable, DtypeUnsupported, Trainer, parse_device
from hwinfo.peaks import peak_for
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
        comp = (
            "eager"
            if self.compile == "off"
            else f"compile-{self.compile}"
            if self.compile != "on"
            else "compile"
        )
        return f"{dev}-{self.dtype}-b{self.batch_size}-{comp}{th}"


def plan(cfg: BenchConfig, devices: list[str]) -> list[RunSpec]:
    """Every combination of the sweep axes; threads apply to the CPU only."""
    runs = []
    s = cfg.sweep
    for device, dtype, bs, comp in itertools.product(devices, s.dtypes, s.batch_sizes, s.compile):
        threads = s.threads if device.startswith("cpu") else [None]
        for th in threads:
            runs.append(RunSpec(device, dtype, bs, comp, th))
    return runs


def software_versions() -> dict:
    import numpy

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "hip": getattr(torch.version, "hip", None),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def device_name(device: torch.device, hw: dict) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for d in hw.get("devices", []):
        if d.get("kind") == device.type:
            return d.get("name") or device.type
    return hw.get("cpu", {}).get("model_name") or platform.processor() or device.type


class Interrupted(Exception):
    """Ctrl-C during a sweep; the current run has been marked interrupted."""


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
    ) -> None:
        self.cfg = cfg
        self.profile_steps = profile_steps
        self.results = ResultsDir(out)
        self.hw = hw
        self.argv = argv
        self.progress = progress
        self.host = cfg.sweep.host or socket.gethostname()
        self._dataset: CharDataset | None = None

    def prepare(self, resume: bool) -> None:
        if self.results.exists():
            if not resume:
                raise ResultsError(
                    f"{self.results.root} already holds a sweep: pass --resume to complete it, or choose another --out"
                )
            old = self.results.read_sweep()
            if old.get("spec") != self.cfg.to_dict():
                raise ResultsError(
                    f"{self.results.root} holds a sweep with a different configuration: resume it with "
                    f"`bench run --out {self.results.root} --resume` alone, or the same flags as its sweep.json 'command'"
                )
            return
        self.results.write_sweep(
            {
                "sweep_id": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + self.host,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "host": self.host,
                "hwinfo": self.hw,
                "software": software_versions(),
                "project_version": __version__,
                "spec": self.cfg.to_dict(),
                "command": " ".join(self.argv),
            }
        )

    def run_all(self, specs: list[RunSpec], unavailable: dict[str, str], resume: bool) -> dict[str, str]:
        """Run every spec; returns {run_id: status}. Raises Interrupted on Ctrl-C."""
        statuses: dict[str, str] = {}
        bar = tqdm(
            total=len(specs),
            desc="sweep",
            unit="run",
            file=sys.stderr,
            position=0,
            disable=None if self.progress else True,
        )
        try:
            for spec in specs:
                if resume and self.results.run_status(spec.run_id) == "ok":
                    statuses[spec.run_id] = "ok"
                    _say(f"{spec.run_id}: already done (resume)")
                    bar.update(1)
                    continue
                if spec.device in unavailable:
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

    def _meta(self, spec: RunSpec, device: torch.device | None) -> dict:
        cfg = self.cfg
        model = cfg.model
        fpi = flops_per_iter(model, spec.batch_size)
        return {
            "status": "running",
            "error": None,
            "source": "devicebench",
            "host": self.host,
            "device": spec.device,
            "device_type": spec.device.split(":")[0],
            "device_name": device_name(device, self.hw) if device is not None else spec.device,
            "dtype": spec.dtype,
            "batch_size": spec.batch_size,
            "block_size": model.block_size,
            "compile": spec.compile,
            "threads": spec.threads,
            "seed": cfg.train.seed,
            "model": model.to_dict(),
            "train": cfg.train.to_dict(),
            "flops_per_token": flops_per_token(model),
            "flops_per_iter": fpi,
            "tokens_per_iter": spec.batch_size * model.block_size,
            "peak_flops": peak_for(self.hw, spec.device, spec.dtype),
        }

    def run_one(self, spec: RunSpec) -> str:
        """Train one run to the end; its status: ok, failed, skipped. Ctrl-C marks it interrupted."""
        device = parse_device(spec.device)
        meta = self._meta(spec, device)
        prev_threads = torch.get_num_threads()
        if device.type == "cpu":
            if spec.threads is not None:
                torch.set_num_threads(spec.threads)
            meta["threads"] = torch.get_num_threads()
        trainer = None
        try:
            try:
                trainer = Trainer(
                    self.cfg.model,
                    self.cfg.train,
                    device,
                    spec.dtype,
                    spec.compile,
                    spec.batch_size,
                    self.dataset,
                )
            except DtypeUnsupported as e:
                self.results.record_skipped(spec.run_id, meta, str(e))
                _say(f"{spec.run_id}: skipped: {e}")
                return "skipped"
            writer = self.results.new_run(spec.run_id, {**meta, "started": _now()})
            writer.write_meta()
            try:
                with trainer:
                    status, error, summary = self._train(trainer, spec, writer, meta)
            except KeyboardInterrupt:
                writer.write_meta(status="interrupted", error="interrupted by Ctrl-C", finished=_now())
                raise Interrupted(spec.run_id) from None
            except Exception as e:  # noqa: BLE001 - one broken run must not lose the sweep
                writer.write_meta(
                    status="failed", error=f"{type(e).__name__}: {_first_line(e)}", finished=_now()
                )
                _say(f"{spec.run_id}: failed: {type(e).__name__}: {_first_line(e)}")
                return "failed"
            finally:
                writer.close()
            writer.write_meta(status=status, error=error, summary=summary, finished=_now())
            line = f"{spec.run_id}: {status}"
            if summary.get("ms_median") is not None:
                line += f", {summary['ms_median']:.2f} ms/iter median"
            if summary.get("final_val_loss") is not None:
                line += f", val loss {summary['final_val_loss']:.4f}"
            _say(line + (f" ({error})" if error else ""))
            return status
        finally:
            torch.set_num_threads(prev_threads)
            del trainer
            if device.type == "cuda":
                gc.collect()
                torch.cuda.empty_cache()

    def _train(self, trainer: Trainer, spec: RunSpec, writer, meta: dict) -> tuple[str, str | None, dict]:
        t = self.cfg.train
        warmup = min(t.timing_warmup_iters, t.max_iters // 2)
        proc = psutil.Process()
        rss_peak = proc.memory_info().rss
        eval_samplers = trainer.eval_samplers()
        timed_ms: list[float] = []
        losses: dict[str, float] = {}
        eval_ms_total = 0.0
        status, error = "ok", None
        first_step_ms = None
        steps_done = 0
        load = HostLoad(proc)
        wall0 = time.perf_counter()
        if device_is_cuda := trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.device)

        def do_eval(it: int) -> None:
            nonlocal eval_ms_total
            for split, (loss, ms) in trainer.evaluate(eval_samplers).items():
                writer.eval(it, split, loss, ms)
                losses[split] = loss
                eval_ms_total += ms

        bar = tqdm(total=t.max_iters, desc=spec.run_id, unit="it", file=sys.stderr, position=1, leave=False,
                   disable=None if self.progress else True, mininterval=0.5)  # fmt: skip
        it = 0
        try:
            for it in range(t.max_iters):
                if it % t.eval_interval == 0:
                    do_eval(it)
                try:
                    ms, loss_t, lr = trainer.train_step(it)
                except torch.OutOfMemoryError as e:
                    status, error = (
                        "failed",
                        f"out of memory at batch size {spec.batch_size}: {_first_line(e)}",
                    )
                    break
                except RuntimeError as e:
                    if "out of memory" in str(e).lower():
                        status, error = (
                            "failed",
                            f"out of memory at batch size {spec.batch_size}: {_first_line(e)}",
                        )
                        break
                    raise
                loss = loss_t.item()
                if first_step_ms is None:
                    first_step_ms = ms
                phase = "warmup" if it < warmup else "timed"
                writer.step(it, ms, loss, lr, phase)
                steps_done += 1
                if phase == "timed":
                    timed_ms.append(ms)
                if not math.isfinite(loss):
                    status, error = "failed", f"loss became {loss} at iter {it}"
                    break
                if not device_is_cuda:
                    rss_peak = max(rss_peak, proc.memory_info().rss)
                bar.update(1)
                if it % 10 == 0:
                    bar.set_postfix_str(f"{ms:.1f} ms/it, loss {loss:.3f}", refresh=False)
            else:
                it = t.max_iters
                do_eval(it)
        finally:
            bar.close()
        summary = step_summary(
            timed_ms, meta["tokens_per_iter"], meta["flops_per_iter"], meta["peak_flops"]["value"]
        )
        summary.update(
            {
                "iters_done": steps_done,
                "warmup_iters": warmup,
                "first_step_ms": first_step_ms,
                "final_train_loss": losses.get("train"),
                "final_val_loss": losses.get("val"),
                "eval_ms_total": eval_ms_total,
                "wall_s": time.perf_counter() - wall0,
                "peak_mem_bytes": trainer.peak_mem_bytes() if device_is_cuda else rss_peak,
                "peak_mem_kind": "cuda_max_memory_allocated" if device_is_cuda else "process_rss",
                "host_load": load.finish(),
            }
        )
        if self.profile_steps and status == "ok":
            self._profile(trainer, spec, writer, meta, summary, start_iter=steps_done)
        return status, error, summary

    def _profile(
        self, trainer: Trainer, spec: RunSpec, writer, meta: dict, summary: dict, start_iter: int
    ) -> None:
        """Extra steps under torch.profiler after the final eval, into profile.json; never fails the run.

        The profiled steps are not in steps.csv and not in any median; the trainer's state is restored.
        """
        from bench.profile import profile_steps, summarize_profile

        try:
            prof = profile_steps(
                trainer,
                n_steps=self.profile_steps,
                start_iter=start_iter,
                unprofiled_ms_median=summary.get("ms_median"),
                peak_flops_per_s=meta["peak_flops"].get("value"),
            )
        except Exception as e:  # noqa: BLE001 - a profile that cannot be taken must not lose the run
            _say(f"{spec.run_id}: profile skipped: {type(e).__name__}: {_first_line(e)}")
            return
        prof["run_id"] = spec.run_id
        prof["sentence"] = summarize_profile(prof)
        atomic_write_json(writer.dir / "profile.json", prof)
        _say(f"{spec.run_id}: {prof['sentence']}")


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


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _say(msg: str) -> None:
    tqdm.write(msg, file=sys.stderr)


def resolve_devices(requested: list[str]) -> tuple[list[str], dict[str, str]]:
    """(devices to plan, {device: reason} for those that cannot run here)."""
    from bench.train import available_devices

    devices = requested or available_devices()
    unavailable = {}
    for d in devices:
        try:
            parse_device(d)
        except DeviceUnavailable as e:
            unavailable[d] = str(e)
    return devices, unavailable
