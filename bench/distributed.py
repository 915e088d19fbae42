"""`bench run` on several ranks: under torchrun, or started on this machine with `bench run --nproc N`.

torchrun (PyTorch's own launcher) starts the ranks and sets their environment; `DistEnv` reads it. `World`
is this rank's share of the job: a gloo process group for agreeing on what to run (and for the CPU runs),
one group per accelerator backend (NCCL, XCCL) for the accelerator runs, each with a timeout so a dead or
hung rank ends the run within a bounded time. `RunComm` is what one run's Trainer asks: its slice of the
global batch, means over ranks, and the model wrapped in DistributedDataParallel with a communication hook
that times the gradient all-reduce. `launch_local` is `bench run --nproc N`: torch.distributed's elastic
launcher with a standalone rendezvous, as `torchrun --standalone --nproc-per-node N` does.

Torch is imported inside the functions that need it, so `bench run` checks its flags without it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from bench.devices import Device

# The variables torchrun sets for every rank (GROUP_* are the node's rank and the number of nodes).
ENV_INTS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE")
DEFAULT_TIMEOUT_S = 300.0
LAUNCH_SHUTDOWN_S = 10  # bench run --nproc: the ranks' grace after one failed or a signal, then SIGKILL
# Words in the errors gloo, NCCL and XCCL raise when a peer is gone or a collective timed out.
_COMM_WORDS = ("gloo", "nccl", "xccl", "connection closed", "connection reset", "timed out", "timeout",
               "processgroup", "broken pipe")  # fmt: skip


class DistError(RuntimeError):
    """A torchrun environment or --nproc request that cannot be used."""

    exit_code = 2


class RankLost(RuntimeError):
    """A rank died, hung past the timeout or fell out of step: the ranks can no longer run together.

    agreed: every rank that is left knows it (and rank 0 says it)."""

    exit_code = 1

    def __init__(self, message: str, agreed: bool = False) -> None:
        super().__init__(message)
        self.agreed = agreed


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    nnodes: int

    @property
    def is_main(self) -> bool:
        """Rank 0: the one rank that writes results and prints progress."""
        return self.rank == 0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> DistEnv | None:
        """The rank variables torchrun sets; None when not started by torchrun (no WORLD_SIZE)."""
        env = os.environ if environ is None else environ
        if "WORLD_SIZE" not in env:
            return None
        values: dict[str, int] = {}
        for key in ENV_INTS:
            text = env.get(key)
            if text is None and key.startswith("GROUP_"):
                continue
            if text is None:
                raise DistError(
                    f"WORLD_SIZE is set but {key} is not: start bench under torchrun, which sets every rank variable"
                )
            try:
                values[key] = int(text)
            except ValueError:
                raise DistError(f"{key}={text!r}: expected an integer (torchrun sets it)") from None
        ws, lws = values["WORLD_SIZE"], values["LOCAL_WORLD_SIZE"]
        if (
            ws < 1
            or lws < 1
            or not 0 <= values["RANK"] < ws
            or not 0 <= values["LOCAL_RANK"] < lws
            or lws > ws
        ):
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            raise DistError(f"inconsistent rank variables ({shown}): start bench under torchrun")
        nnodes = values.get("GROUP_WORLD_SIZE", max(ws // lws, 1))
        return cls(values["RANK"], ws, values["LOCAL_RANK"], lws, values.get("GROUP_RANK", 0), nnodes)


def is_comm_error(e: BaseException) -> bool:
    """Whether an exception is a collective that failed: a peer gone, a timeout, a broken process group."""
    import torch.distributed as dist

    if isinstance(e, getattr(dist, "DistError", ())):
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and any(w in text for w in _COMM_WORDS)


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def comm_reason(e: BaseException) -> str:
    """A failed collective in a few words: gloo's "[.../pair.cc:553] Connection closed by peer [10.0.0.2]:123.
    This is typically caused by ..." becomes "Connection closed by peer [10.0.0.2]:123"."""
    text = first_line(e)
    text = re.sub(
        r"^(?:\w*Error: )?Got the following error when running the callback: (?:\w+Error: )?", "", text
    )
    text = re.sub(r"^\[[^\]]*\.(?:cc|cpp|h|hpp):\d+\] ", "", text)
    return text.split(". This is typically", 1)[0].rstrip(". ")


class World:
    """This rank's process groups for one `bench run`: control (gloo) plus one data group per backend."""

    def __init__(self, env: DistEnv, timeout_s: float) -> None:
        self.env = env
        self.timeout_s = timeout_s
        self._data_groups: dict[str, Any] = {}

    @classmethod
    def start(cls, env: DistEnv, timeout_s: float = DEFAULT_TIMEOUT_S) -> World:
        """Join the job's default process group (gloo, env:// rendezvous from torchrun's variables).

        Its timeout is twice the data groups': a rank that fails alone reaches the agreement at the end of
        its run while its peers still wait out a data collective."""
        from datetime import timedelta

        import torch.distributed as dist

        world = cls(env, timeout_s)
        try:
            dist.init_process_group("gloo", timeout=timedelta(seconds=2 * timeout_s))
        except Exception as e:  # noqa: BLE001 - a rendezvous that fails is one line
            raise RankLost(f"rank {env.rank}: could not join the other ranks: {first_line(e)}") from None
        return world

    @property
    def rank(self) -> int:
        return self.env.rank

    @property
    def world_size(self) -> int:
        return self.env.world_size

    @property
    def is_main(self) -> bool:
        return self.env.is_main

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's obj on every rank (agreement through the control group)."""
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's obj, in rank order, on every rank."""
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def data_group(self, device: Device) -> Any:
        """The process group a run on this device trains through (created on first use, by every rank in the
        same order, as new_group requires)."""
        from datetime import timedelta

        import torch.distributed as dist

        backend = device.dist_backend
        if backend not in self._data_groups:
            self._data_groups[backend] = dist.new_group(
                backend=backend, timeout=timedelta(seconds=self.timeout_s)
            )
        return self._data_groups[backend]

    def for_run(self, device: Device) -> RunComm:
        return RunComm(self, device, self.data_group(device))

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:  # noqa: BLE001 - a group broken by a lost rank cannot be torn down cleanly
                pass


class RunComm:
    """One run's view of the job: its slice of each global batch, means over ranks, the DDP wrapper."""

    def __init__(self, world: World, device: Device, group: Any) -> None:
        self.world = world
        self.device = device
        self.group = group
        self.timer: AllReduceTimer | None = None

    @property
    def rank(self) -> int:
        return self.world.rank

    @property
    def world_size(self) -> int:
        return self.world.world_size

    def shard(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch (dim 0); the batch size is a multiple of the world size."""
        n = t.shape[0] // self.world_size
        return t[self.rank * n : (self.rank + 1) * n]

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of t over the ranks (gloo has no AVG: a sum, then divided). t on this run's device or the CPU."""
        import torch.distributed as dist

        out = t.detach().clone()
        dist.all_reduce(out, group=self.group if out.device == self.device.torch_device else None)
        return out / self.world_size

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """module in DistributedDataParallel (rank 0's weights broadcast), its gradient all-reduce timed."""
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(module, device_ids=self.device.ddp_device_ids, process_group=self.group)
        self.timer = AllReduceTimer(self.device, self.group)
        ddp.register_comm_hook(self.timer, _timed_allreduce)
        return ddp


class AllReduceTimer:
    """The time a step has a gradient all-reduce in flight: from a bucket handed to DDP's hook until its
    all-reduce completes, the buckets' intervals merged (they overlap each other and the backward pass)."""

    def __init__(self, device: Device, group: Any) -> None:
        self.device = device
        self.group = group
        self._intervals: list[list[Any]] = []
        self.bytes_per_step = 0
        self._bytes = 0

    def start(self, nbytes: int) -> list[Any]:
        interval = [self.device.stamp(), None]
        self._intervals.append(interval)
        self._bytes += nbytes
        return interval

    def take_step_ms(self) -> float | None:
        """This step's all-reduce time in ms (call after the device is synchronised); resets for the next."""
        done = [iv for iv in self._intervals if iv[1] is not None]
        self._intervals = []
        if self._bytes:
            self.bytes_per_step, self._bytes = self._bytes, 0
        if not done:
            return None
        ref = done[0][0]
        spans = [(self.device.ms_between(ref, a), self.device.ms_between(ref, b)) for a, b in done]
        return union_ms(spans)


def _timed_allreduce(timer, bucket):  # noqa: ANN001, ANN202 - DDP rejects a hook whose annotations are strings
    """DDP's default all-reduce (mean over ranks), with the bucket's in-flight interval recorded."""
    import torch.distributed as dist

    tensor = bucket.buffer()
    interval = timer.start(tensor.numel() * tensor.element_size())
    tensor.div_(dist.get_world_size(timer.group))
    fut = dist.all_reduce(tensor, group=timer.group, async_op=True).get_future()

    def done(f):  # noqa: ANN001, ANN202
        interval[1] = timer.device.stamp()
        return f.value()[0]

    return fut.then(done)


def union_ms(spans: list[tuple[float, float]]) -> float:
    """Total length of the union of (start, end) intervals."""
    total, cur_start, cur_end = 0.0, None, None
    for a, b in sorted(spans):
        if cur_end is None or a > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = a, b
        else:
            cur_end = max(cur_end, b)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


# What run.json keeps of each rank's figures (gathered at the end of a run).
RANK_FIELDS = ("rank", "local_rank", "node_rank", "host", "device", "ms_median", "allreduce_ms_median",
               "outside_allreduce_ms_median", "cpu_cores")  # fmt: skip


def rank_records(ranks: list[dict]) -> list[dict]:
    """run.json's "ranks": each rank's place and medians over its timed steps."""
    return [{k: r.get(k) for k in RANK_FIELDS} for r in ranks]


def summarize_ranks(ranks: list[dict]) -> dict:
    """run.json summary figures from every rank's (rank 0 first): rank 0's all-reduce time per step and its
    share of rank 0's step, the bytes all-reduced per step, the straggler figure (the slowest rank's time
    outside the all-reduce over the median rank's: the others wait for it), and whether every rank ended
    with the same weights."""
    import statistics

    r0 = ranks[0]
    ar, ms = r0.get("allreduce_ms_median"), r0.get("ms_median")
    out: dict[str, Any] = {
        "allreduce_ms_median": ar,
        "allreduce_share": ar / ms if ar is not None and ms else None,
        "allreduce_bytes_per_step": r0.get("allreduce_bytes_per_step"),
        "straggler_ratio": None,
        "slowest_rank": None,
        "params_identical": len({r.get("params_sha256") for r in ranks}) == 1,
    }
    outside = [r.get("outside_allreduce_ms_median") for r in ranks]
    if outside and all(o is not None for o in outside):
        median = statistics.median(outside)
        slow = max(range(len(ranks)), key=lambda i: outside[i])
        out["straggler_ratio"] = outside[slow] / median if median > 0 else None
        out["slowest_rank"] = ranks[slow]["rank"]
    return out


# ---- bench run --nproc N ---------------------------------------------------------------------------------


def worker_argv(argv: list[str], out: str) -> list[str]:
    """The `bench` command line each rank runs: the user's without --nproc (in any spelling argparse accepts:
    --nproc N, --nproc=N, --np N), and with --out OUT last (the last one wins) so every rank names one directory."""
    kept: list[str] = []
    skip = False
    for tok in argv:
        if skip:
            skip = False
            continue
        name = tok.split("=", 1)[0]
        if len(name) > 3 and "--nproc".startswith(name):
            skip = "=" not in tok
            continue
        kept.append(tok)
    return [*kept, "--out", out]


def launch_local(nproc: int, argv: list[str], omp_threads: int | None) -> int:
    """Run `python -m bench <argv>` on nproc ranks of this machine through torch's elastic launcher
    (standalone c10d rendezvous on localhost, no restarts, as `torchrun --standalone --nproc-per-node N`).

    Returns the exit code: 0 when every rank succeeded, the ranks' own code otherwise (130/143 interrupted,
    2 bad input, 1 a failed run or a lost rank)."""
    import logging
    import signal
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if omp_threads is not None and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(omp_threads)
    # Once a rank has failed (or on Ctrl-C/SIGTERM) the agent signals the others and waits this long before
    # SIGKILL: enough for a rank to finish its step and write run.json; a hung (stopped) rank cannot use it.
    extra = (
        {"shutdown_timeout": LAUNCH_SHUTDOWN_S}
        if "shutdown_timeout" in LaunchConfig.__dataclass_fields__
        else {}
    )
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()), rdzv_backend="c10d",
        rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1, **extra,
    )  # fmt: skip
    logging.disable(logging.ERROR)  # the ranks say what went wrong; the agent's log lines would repeat it
    try:
        with _shutdown_within(LAUNCH_SHUTDOWN_S):
            elastic_launch(config, sys.executable)("-u", "-m", "bench", *argv)
    except ChildFailedError as e:
        return _exit_code(e)
    except SignalException as e:
        return 143 if e.sigval == signal.SIGTERM else 130
    finally:
        logging.disable(logging.NOTSET)
    return 0


@contextlib.contextmanager
def _shutdown_within(seconds: int) -> Iterator[None]:
    """The launcher's grace for the other ranks once one has failed: `seconds` instead of a fixed 30. torch's
    SubprocessContext._poll closes the ranks with PContext.close()'s default timeout, whatever shutdown_timeout
    says, so a hung (stopped) rank, which cannot act on SIGTERM, kept `bench run --nproc` alive 30 s after its
    peer had given up on it."""
    from torch.distributed.elastic.multiprocessing.api import PContext

    real = PContext.__dict__.get("close")
    if real is None:
        yield
        return

    def close(self, death_sig=None, timeout=30):  # noqa: ANN001, ANN202
        return real(self, death_sig, min(timeout, seconds))

    PContext.close = close
    try:
        yield
    finally:
        PContext.close = real


def _exit_code(e: Any) -> int:
    """One exit code for a failed launch: 1 when a rank was killed (said on stderr: it could not say so itself),
    else bad input (2), a failed run (1), then an interrupt (130, 143)."""
    import signal

    codes, killed = [], False
    for rank, failure in sorted(e.failures.items()):
        code = failure.exitcode
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            if -code not in (signal.SIGTERM, signal.SIGINT):
                killed = True
                print(f"bench run: rank {rank} was killed by {name}", file=sys.stderr)
            code = {signal.SIGTERM: 143, signal.SIGINT: 130}.get(-code, 1)
        codes.append(code)
    if killed:
        return 1
    # A rank that ended on its own with an error (2, 1) is the cause: once it exits the launcher ends the
    # other ranks with SIGTERM, and their 143 is not an interrupt (a real Ctrl-C or SIGTERM reaches the
    # launcher itself: SignalException).
    for wanted in (2, 1, 130, 143):
        if wanted in codes:
            return wanted
    return 1 if codes else 0
