"""The training step every device shares: model, optimizer, lr schedule, precision, one timed step.

Whatever differs between devices is asked of bench.devices.Device; this module never branches on a
device string.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch.profiler import record_function

from bench.config import TrainConfig, lr_at
from bench.devices import Device, DeviceUnavailable, DtypeUnsupported, parse_device
from hwinfo.interrupts import check
from model.dataset import BatchSampler, CharDataset
from model.gpt import GPT, GPTConfig

if TYPE_CHECKING:
    from bench.distributed import RunComm

__all__ = ["MARK", "DeviceUnavailable", "DtypeUnsupported", "StepResult", "Trainer", "lr_at"]

# Prefix of the record_function markers around each phase of a step ("devicebench.forward", ...): the
# profiler finds them in its trace; without the profiler they are not entered at all.
MARK = "devicebench."
PHASES = ("data", "forward", "backward", "clip", "optimizer")


class StepResult(NamedTuple):
    ms: float  # the whole step, device synchronised before and after
    loss: torch.Tensor  # detached, read (.item()) after the clock stops; under DDP the global batch's
    lr: float


def _compile_counters() -> dict[str, int]:
    from torch._dynamo.utils import counters

    return {
        "frames_compiled": int(counters["frames"]["ok"]),
        "graphs": int(counters["stats"]["unique_graphs"]),
        "cudagraph_skips": int(counters["inductor"]["cudagraph_skips"]),
    }


class Trainer:
    """One model on one device in one precision: build it, take timed train steps, evaluate.

    The weights are initialised on the CPU from the seed and then moved, so every device starts from
    the same model; batches come from BatchSampler's seeded CPU generator. Use it as a context manager:
    the run's matmul precision (and, when compiled, a clean compiler state) hold inside it and are
    restored after.

    Data-parallel (`distribute`): every rank draws the same seeded global batch and trains its slice;
    DistributedDataParallel averages the gradients, and the loss a step returns and the eval losses are
    means over the ranks, so N ranks reproduce one process at the same global batch.
    """

    def __init__(
        self,
        model_cfg: GPTConfig,
        train_cfg: TrainConfig,
        device: Device | torch.device | str,
        dtype: str = "fp32",
        compile_mode: str = "off",
        batch_size: int = 12,
        dataset: CharDataset | None = None,
        fused_adamw: bool | None = None,
    ) -> None:
        self.device = device if isinstance(device, Device) else parse_device(str(device))
        self.device.check_dtype(dtype)
        self.device.check_compile_mode(compile_mode)
        self.dtype = dtype
        self.compile_mode = compile_mode
        self.train_cfg = train_cfg
        self.batch_size = batch_size
        self.dataset = dataset if dataset is not None else CharDataset.shakespeare()
        if self.dataset.tokenizer.vocab_size > model_cfg.vocab_size:
            raise ValueError(
                f"vocab_size {model_cfg.vocab_size} is smaller than the data's {self.dataset.tokenizer.vocab_size} "
                "characters"
            )
        torch.manual_seed(train_cfg.seed)
        self.model = GPT(model_cfg).to(self.device.torch_device)
        self.fused_adamw = self.device.fused_adamw_default if fused_adamw is None else fused_adamw
        betas = (train_cfg.beta1, train_cfg.beta2)
        self.optimizer = self.model.configure_optimizer(
            train_cfg.weight_decay, train_cfg.learning_rate, betas, fused=self.fused_adamw
        )
        self.forward: Callable = self.model
        self._compiled = compile_mode != "off"
        if self._compiled:
            self.forward = torch.compile(self.model, mode=None if compile_mode == "on" else compile_mode)
        self.comm: RunComm | None = None
        self.scaler = self.device.grad_scaler(dtype)
        self.train_sampler = BatchSampler(
            self.dataset.train, model_cfg.block_size, batch_size, train_cfg.seed
        )
        self.marks = False  # True while the profiler records: the phases of each step are marked
        self.last_host_ms: float | None = None  # the last step's time until all its work was queued
        self.last_allreduce_ms: float | None = None  # under DDP: the last step's gradient all-reduce time
        self._stack: contextlib.ExitStack | None = None
        # Where training starts (bench.checkpoint.Init: a continued run), and its eval generators' states.
        self.start_iter = 0
        self.eval_at_start = True
        self.eval_states: dict[str, torch.Tensor] = {}

    @property
    def compiled(self) -> bool:
        return self._compiled

    def distribute(self, comm: RunComm) -> None:
        """Train data-parallel from here on: the (compiled) model inside DistributedDataParallel, whose
        construction broadcasts rank 0's weights; a collective, so every rank calls it together."""
        if self.batch_size % comm.world_size:
            raise ValueError(f"batch size {self.batch_size} is not a multiple of the {comm.world_size} ranks")
        self.forward = comm.wrap(self.forward)
        self.comm = comm

    def _batch(self, sampler: BatchSampler) -> tuple[torch.Tensor, ...]:
        """The next batch on this device: under DDP, this rank's slice of the global batch."""
        x, y = sampler.next_cpu()
        if self.comm is not None:
            x, y = self.comm.shard(x), self.comm.shard(y)
        return self.device.to_device(x, y)

    def params_sha256(self) -> str:
        """SHA-256 of every parameter's bytes, in order: equal on two ranks exactly when their weights are."""
        digest = hashlib.sha256()
        with torch.no_grad():
            for p in self.model.parameters():
                digest.update(p.detach().reshape(-1).cpu().contiguous().view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def autocast(self) -> contextlib.AbstractContextManager:
        return self.device.autocast(self.dtype)

    def __enter__(self) -> Trainer:
        stack = contextlib.ExitStack()
        stack.enter_context(self.device.matmul_precision(self.dtype))
        if self.compiled:
            stack.enter_context(self.device.clean_compiler_state())
            self._counters0 = _compile_counters()
        self._stack = stack
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def compile_stats(self) -> dict[str, int]:
        """What Dynamo and Inductor did since this run began: frames compiled, graphs, CUDA-graph skips."""
        now, before = _compile_counters(), getattr(self, "_counters0", {})
        return {k: now[k] - before.get(k, 0) for k in now}

    def _mark(self, phase: str) -> contextlib.AbstractContextManager:
        return record_function(MARK + phase) if self.marks else contextlib.nullcontext()

    def train_step(self, it: int) -> StepResult:
        """One optimizer step (batch, forward, backward, clip, update), timed with the device synchronised.

        With `marks` on (the profiler), each phase is inside a record_function marker and the whole step
        inside "devicebench.step", the final synchronisation included. A signal (hwinfo.interrupts) recorded
        since the last step ends the loop here, before the step: every loop that trains checks this way.
        """
        check()
        lr = lr_at(it, self.train_cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.device.synchronize()
        t0 = time.perf_counter()
        with self._mark("step"):
            with self._mark("data"):
                x, y = self._batch(self.train_sampler)
            with self._mark("forward"), self.autocast():
                _, loss = self.forward(x, y)
            with self._mark("backward"):
                self.scaler.scale(loss).backward()
            if self.train_cfg.grad_clip > 0.0:
                with self._mark("clip"):
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.train_cfg.grad_clip)
            with self._mark("optimizer"):
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
            self.last_host_ms = (time.perf_counter() - t0) * 1e3
            self.device.synchronize()
        ms = (time.perf_counter() - t0) * 1e3
        if self.comm is None:
            return StepResult(ms, loss.detach(), lr)
        # Bookkeeping after the clock: this step's all-reduce time, and the global batch's loss.
        self.last_allreduce_ms = self.comm.timer.take_step_ms() if self.comm.timer is not None else None
        return StepResult(ms, self.comm.mean(loss.detach().float()), lr)

    @torch.no_grad()
    def evaluate(self, samplers: dict[str, BatchSampler]) -> dict[str, tuple[float, float]]:
        """Mean loss over eval_iters batches per split, each split timed: {split: (loss, ms)}.

        Under DDP each rank evaluates its slice of every global eval batch; the mean over ranks is the
        figure every rank returns (its time includes that one all-reduce per split)."""
        self.model.eval()
        out = {}
        try:
            for split, sampler in samplers.items():
                self.device.synchronize()
                t0 = time.perf_counter()
                losses = torch.zeros(self.train_cfg.eval_iters)
                for k in range(self.train_cfg.eval_iters):
                    check()
                    x, y = self._batch(sampler)
                    with self.autocast():
                        _, loss = self.model(x, y)
                    losses[k] = loss.item()
                mean = losses.mean() if self.comm is None else self.comm.mean(losses.mean())
                self.device.synchronize()
                out[split] = (mean.item(), (time.perf_counter() - t0) * 1e3)
        finally:
            self.model.train()
        return out

    def eval_samplers(self) -> dict[str, BatchSampler]:
        """Eval batches from their own seeded generators, so every device is evaluated on the same data."""
        bs, seed = self.model.config.block_size, self.train_cfg.seed
        samplers = {
            "train": BatchSampler(self.dataset.train, bs, self.batch_size, seed + 1),
            "val": BatchSampler(self.dataset.val, bs, self.batch_size, seed + 2),
        }
        for split, state in self.eval_states.items():
            samplers[split].generator.set_state(state)
        return samplers
