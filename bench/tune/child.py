"""Variants that must start in a process of their own: a memory allocator preloaded (LD_PRELOAD jemalloc or
tcmalloc) and OpenMP thread affinity (OMP_PROC_BIND, OMP_PLACES) are read once, when the process (or its
OpenMP runtime) starts, so they cannot be switched on between two blocks of one process.

The variant's Trainer lives in a child process started with that environment; ChildTrainer is its stand-in in
`bench tune`'s process, with the Trainer's interface (train_step, eval_samplers, evaluate), so the default's
blocks and the child's alternate exactly as two in-process sides do. Each step is timed inside the child, as
Trainer times it (the pipe's round trip is not in it). The child exits when its stdin closes (the parent
ended it or died) and, on Linux, when its parent dies (PR_SET_PDEATHSIG): it never outlives the tune.

Protocol: one JSON object per line each way. The parent sends {"config", "knobs", "device"}; the child
answers {"ok", "compiled", "loaded"} or {"error"}; then {"op": "step", "it"} -> {"ms", "loss", "lr"} and
{"op": "evaluate"} -> {"losses": {split: [loss, ms]}}.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from bench.config import config_from_dict
from bench.run_cmd import _load_data
from bench.tune.levers import LAUNCHERS, OMP_AFFINITY
from bench.tune.plan import Knobs

if TYPE_CHECKING:
    from bench.config import BenchConfig
    from bench.devices import Device


def child_env(knobs: Knobs, library: str | None) -> dict[str, str]:
    """The environment variables a variant's child process starts with."""
    env: dict[str, str] = {}
    if knobs.allocator != "system" and library:
        env["LD_PRELOAD"] = library
    env.update(OMP_AFFINITY.get(knobs.omp_affinity or "", {}))
    return env


class ChildTrainer:
    """A Trainer in a child process, behind the Trainer's interface."""

    def __init__(self, cfg: BenchConfig, knobs: Knobs, device: Device, env: dict[str, str]) -> None:
        self.device, self.dtype, self.batch_size, self.knobs = device, knobs.dtype, knobs.batch_size, knobs
        self.train_cfg = cfg.train
        self.model = SimpleNamespace(config=SimpleNamespace(block_size=cfg.model.block_size))
        self.env = env
        self._err = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty child never blocks on it
        self.proc = subprocess.Popen(
            [*LAUNCHERS.get(knobs.omp_affinity or "", ()), sys.executable, "-m", "bench.tune.child"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, text=True, bufsize=1,
            env={**os.environ, **env},
        )  # fmt: skip
        hello = self._call({"config": cfg.to_dict(), "knobs": knobs.to_dict(), "device": device.name})
        self.compiled = bool(hello.get("compiled"))
        self.loaded = hello.get("loaded")

    def _call(self, msg: dict) -> dict:
        if self.proc.poll() is not None or self.proc.stdin is None or self.proc.stdout is None:
            raise RuntimeError(f"the variant's process ended ({self._stderr_tail()})")
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self.proc.wait(timeout=30)
            raise RuntimeError(
                f"the variant's process ended (exit {self.proc.returncode}; {self._stderr_tail()})"
            )
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def _stderr_tail(self) -> str:
        try:
            self._err.seek(0)
            lines = [x for x in self._err.read().strip().splitlines() if x.strip()]
        except (OSError, ValueError):
            lines = []
        return lines[-1][:200] if lines else "no message"

    def train_step(self, it: int) -> tuple[float, Any, float]:
        import torch

        r = self._call({"op": "step", "it": it})
        return float(r["ms"]), torch.tensor(float(r["loss"])), float(r["lr"])

    def eval_samplers(self) -> None:
        return None  # the child keeps its own

    def evaluate(self, samplers: object) -> dict[str, tuple[float, float]]:
        return {k: (float(v[0]), float(v[1])) for k, v in self._call({"op": "evaluate"})["losses"].items()}

    def close(self) -> None:
        """End the child (its stdin closed: it exits), killed if it does not within 10 s."""
        if self.proc.poll() is None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self._err):
            if f is not None and not f.closed:
                f.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110 - at interpreter exit the pipes may be gone already
            pass


def _die_with_parent() -> None:
    if sys.platform == "linux":
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _loaded(env_preload: str | None) -> str | None:
    """The preloaded library as this process mapped it (/proc/self/maps), or None when it is not mapped."""
    if not env_preload:
        return None
    name = Path(env_preload).name.split(".so")[0]
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        if name + ".so" in line or name + "-" in line:
            return line.split()[-1]
    return None


def main() -> int:
    """The child: build the Trainer from the first line, then answer each request until stdin closes."""
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:
        return 1
    out = sys.stdout

    def say(obj: dict) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    try:
        first = json.loads(sys.stdin.readline() or "{}")
        preload = os.environ.get("LD_PRELOAD")
        loaded = _loaded(preload)
        if preload and loaded is None:  # checked before torch is imported: a failure costs no time
            say({"error": f"LD_PRELOAD={preload} was not loaded into the variant's process"})
            return 1
        from bench.runner import resolve_devices
        from bench.train import Trainer
        from bench.tune.measure import Side

        cfg = config_from_dict(first["config"])
        knobs = Knobs.from_dict(first["knobs"])
        devices, unavailable = resolve_devices([first["device"]])
        device = devices.get(first["device"])
        if device is None:
            say({"error": "; ".join(unavailable.values()) or f"no device {first['device']}"})
            return 1
        trainer = Trainer(cfg.model, cfg.train, device, knobs.dtype, knobs.compile, knobs.batch_size,
                          _load_data(cfg), fused_adamw=knobs.fused_adamw)  # fmt: skip
        side = Side(trainer, knobs)
        samplers = trainer.eval_samplers()
        say({"ok": True, "compiled": bool(trainer.compiled), "loaded": loaded})
    except Exception as e:  # noqa: BLE001 - said to the parent, which records the variant as failed
        say({"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"})
        return 1
    for line in sys.stdin:
        req = json.loads(line)
        try:
            with side.active():
                if req.get("op") == "step":
                    ms, loss, lr = trainer.train_step(int(req["it"]))
                    say({"ms": ms, "loss": loss.item(), "lr": lr})
                elif req.get("op") == "evaluate":
                    say({"losses": {k: list(v) for k, v in trainer.evaluate(samplers).items()}})
                else:
                    say({"error": f"unknown request {req!r:.80}"})
        except Exception as e:  # noqa: BLE001
            say({"error": f"{type(e).__name__}: {str(e).strip()[:200]}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
