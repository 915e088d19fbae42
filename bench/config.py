"""Configuration dataclasses (model, training, sweep), loaded from TOML and CLI flags. No exec."""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from model.config import GPTConfig

DTYPES = ("fp32", "tf32", "bf16", "fp16")
COMPILE_MODES = ("off", "on", "reduce-overhead", "max-autotune")


class ConfigError(ValueError):
    """A configuration the user wrote that cannot be used."""

    exit_code = 2


@dataclass
class TrainConfig:
    """Optimisation and evaluation. Defaults: nanoGPT's Shakespeare-char CPU recipe."""

    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # None: max_iters
    decay_lr: bool = True
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 20
    seed: int = 1337
    timing_warmup_iters: int = 10  # first steps of a run, recorded but kept out of the medians

    def effective_lr_decay_iters(self) -> int:
        return self.max_iters if self.lr_decay_iters is None else self.lr_decay_iters

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lr_decay_iters"] = self.effective_lr_decay_iters()
        return d


def lr_at(it: int, t: TrainConfig) -> float:
    """nanoGPT's schedule: linear warm-up, cosine decay to min_lr at lr_decay_iters, then min_lr."""
    if not t.decay_lr:
        return t.learning_rate
    if it < t.warmup_iters:
        return t.learning_rate * (it + 1) / (t.warmup_iters + 1)
    decay_iters = t.effective_lr_decay_iters()
    if it > decay_iters:
        return t.min_lr
    ratio = (it - t.warmup_iters) / max(1, decay_iters - t.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))
    return t.min_lr + coeff * (t.learning_rate - t.min_lr)


@dataclass
class SweepConfig:
    """The axes of a sweep; one run per combination."""

    devices: list[str] = field(default_factory=list)  # empty: every device PyTorch can use
    batch_sizes: list[int] = field(default_factory=lambda: [12])
    dtypes: list[str] = field(default_factory=lambda: ["fp32"])
    compile: list[str] = field(default_factory=lambda: ["off"])
    threads: list[int | None] = field(default_factory=lambda: [None])  # None: PyTorch's default
    host: str | None = None  # label for this machine in reports; None: the hostname

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BenchConfig:
    model: GPTConfig = field(default_factory=GPTConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "train": self.train.to_dict(), "sweep": self.sweep.to_dict()}

    def validate(self) -> None:
        t = self.train
        if t.max_iters < 1:
            raise ConfigError(f"iters must be >= 1, got {t.max_iters}")
        if t.eval_interval < 1 or t.eval_iters < 1:
            raise ConfigError("eval-interval and eval-iters must be >= 1")
        if t.timing_warmup_iters < 0:
            raise ConfigError("timing_warmup_iters must be >= 0")
        s = self.sweep
        for dt in s.dtypes:
            if dt not in DTYPES:
                raise ConfigError(f"unknown dtype {dt!r}: choose from {', '.join(DTYPES)}")
        for c in s.compile:
            if c not in COMPILE_MODES:
                raise ConfigError(f"unknown compile mode {c!r}: choose from {', '.join(COMPILE_MODES)}")
        for b in s.batch_sizes:
            if b < 1:
                raise ConfigError(f"batch sizes must be >= 1, got {b}")
        for th in s.threads:
            if th is not None and th < 1:
                raise ConfigError(f"threads must be >= 1, got {th}")
        if not (s.batch_sizes and s.dtypes and s.compile and s.threads):
            raise ConfigError("every sweep axis needs at least one value")


def config_from_dict(spec: dict) -> BenchConfig:
    """The BenchConfig a sweep.json 'spec' was written from (for --resume)."""
    train = dict(spec.get("train", {}))
    try:
        return BenchConfig(
            GPTConfig(**spec.get("model", {})), TrainConfig(**train), SweepConfig(**spec.get("sweep", {}))
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(f"the stored sweep configuration cannot be read: {e}") from None


def _update(obj, values: dict, section: str):
    known = {f.name for f in fields(obj)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in [{section}]: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return replace(obj, **values)


def load_toml(path: str | Path, base: BenchConfig | None = None) -> BenchConfig:
    """Read a TOML file with [model], [train] and [sweep] tables over the defaults."""
    base = base or BenchConfig()
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    unknown = sorted(set(data) - {"model", "train", "sweep"})
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {', '.join(unknown)}; use [model], [train], [sweep]")
    try:
        model = _update(base.model, data.get("model", {}), "model")
        train = _update(base.train, data.get("train", {}), "train")
        sweep = _update(base.sweep, data.get("sweep", {}), "sweep")
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: {e}") from None
    return BenchConfig(model, train, sweep)
