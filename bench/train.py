"""The training step every device shares: model, optimizer, lr schedule, precision, one timed step."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import torch

from bench.config import TrainConfig, lr_at
from model.dataset import BatchSampler, CharDataset
from model.gpt import GPT, GPTConfig

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceUnavailable(RuntimeError):
    """The device asked for cannot be used on this machine."""

    exit_code = 2


class DtypeUnsupported(RuntimeError):
    """The dtype asked for is not supported on this device."""


def parse_device(name: str) -> torch.device:
    """'cpu', 'cuda', 'cuda:1', 'mps', 'xpu', 'xpu:0' -> torch.device, checked to be usable here."""
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DeviceUnavailable(f"unknown device {name!r}: use cpu, cuda, cuda:N, mps or xpu") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable(
                f"{name}: this PyTorch ({torch.__version__}) sees no CUDA GPU"
                + (
                    "; it is a CPU-only build"
                    if torch.version.cuda is None and torch.version.hip is None
                    else ""
                )
            )
        index = dev.index or 0
        if index >= torch.cuda.device_count():
            raise DeviceUnavailable(f"{name}: only {torch.cuda.device_count()} CUDA device(s) here")
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise DeviceUnavailable(f"{name}: Apple MPS is not available on this machine")
        return dev
    if dev.type == "xpu":
        if not (hasattr(torch, "xpu") and torch.xpu.is_available()):
            raise DeviceUnavailable(f"{name}: no Intel XPU is available to this PyTorch")
        return torch.device("xpu", dev.index or 0)
    raise DeviceUnavailable(f"device type {dev.type!r} is not supported: use cpu, cuda, cuda:N, mps or xpu")


def available_devices() -> list[str]:
    """Every device PyTorch can use here, CPU first."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += (
            [f"cuda:{i}" for i in range(torch.cuda.device_count())]
            if torch.cuda.device_count() > 1
            else ["cuda"]
        )
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        devices.append("mps")
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        devices.append("xpu")
    return devices


def synchronize(device: torch.device) -> None:
    """Wait until the device has finished all queued work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
    elif device.type == "xpu":
        torch.xpu.synchronize(device)


def check_dtype(device: torch.device, dtype: str) -> None:
    """Raise DtypeUnsupported with the reason when this device cannot train in dtype."""
    if dtype == "tf32" and device.type != "cuda":
        raise DtypeUnsupported(f"tf32 is a CUDA tensor-core mode; {device.type} has none")
    if dtype == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DtypeUnsupported(f"{torch.cuda.get_device_name(device)} does not support bf16")
    if dtype in _AUTOCAST and device.type == "mps":
        try:
            torch.zeros(1, device=device, dtype=_AUTOCAST[dtype])
        except (RuntimeError, TypeError) as e:
            raise DtypeUnsupported(f"mps: {dtype} not supported ({e})") from None


class Trainer:
    """One model on one device in one precision: build it, take timed train steps, evaluate.

    The weights are initialised on the CPU from the seed and then moved, so every device starts from
    the same model; batches come from BatchSampler's seeded CPU generator.
    """

    def __init__(
        self,
        model_cfg: GPTConfig,
        train_cfg: TrainConfig,
        device: torch.device,
        dtype: str = "fp32",
        compile_mode: str = "off",
        batch_size: int = 12,
        dataset: CharDataset | None = None,
    ) -> None:
        check_dtype(device, dtype)
        if compile_mode in ("reduce-overhead",) and device.type != "cuda":
            raise DtypeUnsupported(f"compile mode {compile_mode} uses CUDA graphs: CUDA only")
        self.device = device
        self.dtype = dtype
        self.train_cfg = train_cfg
        self.batch_size = batch_size
        self.dataset = dataset if dataset is not None else CharDataset.shakespeare()
        if self.dataset.tokenizer.vocab_size > model_cfg.vocab_size:
            raise ValueError(
                f"vocab_size {model_cfg.vocab_size} is smaller than the data's {self.dataset.tokenizer.vocab_size}"
            )
        torch.manual_seed(train_cfg.seed)
        self.model = GPT(model_cfg).to(device)
        self.optimizer = self.model.configure_optimizer(
            train_cfg.weight_decay, train_cfg.learning_rate, (train_cfg.beta1, train_cfg.beta2), device.type
        )
        self.forward: Callable = self.model
        if compile_mode != "off":
            mode = None if compile_mode == "on" else compile_mode
            self.forward = torch.compile(self.model, mode=mode)
        self.scaler = torch.amp.GradScaler(device.type, enabled=(dtype == "fp16"))
        self.train_sampler = BatchSampler(
            self.dataset.train, model_cfg.block_size, batch_size, train_cfg.seed
        )
        self._tf32_prev: tuple[bool, bool] | None = None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype in _AUTOCAST:
            return torch.autocast(device_type=self.device.type, dtype=_AUTOCAST[self.dtype])
        return contextlib.nullcontext()

    def __enter__(self) -> Trainer:
        if self.device.type == "cuda":
            self._tf32_prev = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            tf32 = self.dtype == "tf32"
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tf32_prev is not None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self._tf32_prev

    def train_step(self, it: int) -> tuple[float, torch.Tensor, float]:
        """One optimizer step (batch, forward, backward, clip, update), timed with the device synchronised.

        Returns (ms, loss tensor, lr). The loss is read by the caller after the clock has stopped.
        """
        lr = lr_at(it, self.train_cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        synchronize(self.device)
        t0 = time.perf_counter()
        x, y = self.train_sampler.next(self.device)
        with self.autocast():
            _, loss = self.forward(x, y)
        self.scaler.scale(loss).backward()
        if self.train_cfg.grad_clip > 0.0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.train_cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        synchronize(self.device)
        ms = (time.perf_counter() - t0) * 1e3
        return ms, loss.detach(), lr

    @torch.no_grad()
    def evaluate(self, samplers: dict[str, BatchSampler]) -> dict[str, tuple[float, float]]:
        """Mean loss over eval_iters batches per split, each split timed: {split: (loss, ms)}."""
        self.model.eval()
        out = {}
        for split, sampler in samplers.items():
            synchronize(self.device)
            t0 = time.perf_counter()
            losses = torch.zeros(self.train_cfg.eval_iters)
            for k in range(self.train_cfg.eval_iters):
                x, y = sampler.next(self.device)
                with self.autocast():
                    _, loss = self.model(x, y)
                losses[k] = loss.item()
            synchronize(self.device)
            out[split] = (losses.mean().item(), (time.perf_counter() - t0) * 1e3)
        self.model.train()
        return out

    def eval_samplers(self) -> dict[str, BatchSampler]:
        """Eval batches from their own seeded generators, so every device is evaluated on the same data."""
        bs, seed = self.model.config.block_size, self.train_cfg.seed
        return {
            "train": BatchSampler(self.dataset.train, bs, self.batch_size, seed + 1),
            "val": BatchSampler(self.dataset.val, bs, self.batch_size, seed + 2),
        }

    def peak_mem_bytes(self) -> int | None:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        if self.device.type == "mps":
            return int(torch.mps.driver_allocated_memory())
        return None
