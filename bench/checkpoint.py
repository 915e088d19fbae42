"""Checkpoints: save a run's final state, and continue a run (or a nanoGPT ckpt.pt) from it (docs/checkpoint.md).

Everything a user can get wrong is checked before anything is written (`open_source`), each as one line
(CheckpointError, exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from bench.config import BenchConfig, ConfigError, TrainConfig, apply_values, config_from_dict, settings
from bench.results import ResultsError, read_json
from hwinfo.units import nbytes
from model.config import GPTConfig
from model.flops import count_params
from model.gpt import GPT
from model.nanogpt import CheckpointMismatch, config_from_model_args, map_state_dict

if TYPE_CHECKING:
    from bench.train import Trainer
    from model.dataset import CharDataset

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "devicebench-checkpoint/1"
# Train settings of a nanoGPT config that mean the same in devicebench's [train].
NANOGPT_TRAIN_KEYS = ("learning_rate", "min_lr", "warmup_iters", "lr_decay_iters", "decay_lr", "weight_decay",
                      "beta1", "beta2", "grad_clip", "eval_interval", "eval_iters")  # fmt: skip
# Optimizer hyperparameters a checkpoint carries on; the rest of a param group (fused, foreach, capturable) is
# how this device runs the update, kept from the optimizer being loaded into.
_OPT_HYPER = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "initial_lr")


class CheckpointError(ValueError):
    """A checkpoint or --init-from that cannot be used; one line, exit 2."""

    exit_code = 2


def estimate_bytes(model: GPTConfig) -> int:
    """checkpoint.pt's size: fp32 weights and AdamW's two moments (12 bytes per parameter) plus ~64 KiB."""
    params = count_params(model) + model.block_size * model.n_embd  # count_params leaves out wpe
    return 12 * params + 65536


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def atomic_torch_save(obj: Any, path: Path) -> int:
    """torch.save to a temp file beside path (mode 0o666 less the umask), fsync, rename; returns the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        size = tmp.stat().st_size
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size


def save(trainer: Trainer, run_dir: Path, iter_num: int, eval_states: dict[str, torch.Tensor],
         run: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """runs/<run_id>/checkpoint.pt from a run that finished; run.json's `checkpoint` record.

    eval_states: the eval generators as an uninterrupted longer run would hold them at iter_num (see
    RunLoop.checkpoint_eval_states)."""
    t0 = time.perf_counter()
    ckpt = {
        "format": FORMAT,
        "model": _to_cpu(trainer.model.state_dict()),
        "optimizer": _to_cpu(trainer.optimizer.state_dict()),
        "scaler": _to_cpu(trainer.scaler.state_dict()) if trainer.scaler.is_enabled() else {},
        "model_args": trainer.model.config.to_dict(),
        "train": trainer.train_cfg.to_dict(),
        "iter_num": iter_num,
        "batch_size": trainer.batch_size,
        "vocab": "".join(trainer.dataset.tokenizer.chars),
        "data": {"source": getattr(trainer.dataset, "source", None), "sha256": getattr(trainer.dataset, "sha256", None)},
        "rng": {
            "torch_cpu": torch.get_rng_state(),
            "train_batches": trainer.train_sampler.generator.get_state(),
            "eval_batches": {k: v.clone() for k, v in eval_states.items()},
        },
        "run": run,
    }  # fmt: skip
    size = atomic_torch_save(ckpt, run_dir / CHECKPOINT_NAME)
    return {"file": CHECKPOINT_NAME, "bytes": size, "iter": iter_num, "format": FORMAT,
            "save_ms": (time.perf_counter() - t0) * 1e3}  # fmt: skip


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:160]


def load_file(path: Path, trust: bool = False) -> dict:
    """A checkpoint file as a dict: torch.load(weights_only=True); the unsafe path only with trust."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or run directory")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty: not a checkpoint (a save that never finished?)")
    broken = f"{path} is truncated or not a PyTorch checkpoint"
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic != b"PK" and magic[:1] != b"\x80":  # torch.save's zip archive, or its older pickle format
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (torch.save writes a zip archive or a pickle)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "Weights only load failed" not in text or "truncated" in text or "EOF" in text:
            raise CheckpointError(f"{broken} ({_first_line(e)})") from None
        if not trust:
            raise CheckpointError(
                f"{path} holds Python objects beyond tensors and plain data, so the safe loader "
                "(torch.load weights_only=True) refused it; loading it would run code from the file: pass "
                "--trust-checkpoint only if you trust where it came from"
            ) from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e2:  # noqa: BLE001 - any failure of an untrusted pickle is a bad file
            raise CheckpointError(f"{broken} ({_first_line(e2)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, AttributeError) as e:
        raise CheckpointError(f"{broken} ({_first_line(e)})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    return obj


def _lock_holder(root: Path) -> dict | None:
    """Who holds RESULTS/.lock (a dict naming them), or None when nobody does. Opens it read-only: writes nothing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock to ask
        return None
    path = root / ".lock"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                data = json.loads(os.read(fd, 65536).decode("utf-8", "replace") or "{}")
            except ValueError:
                data = {}
            return data if isinstance(data, dict) else {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _check_run_dir(run_dir: Path) -> dict:
    """run.json of a run that may be continued: finished ok, not being written, with a checkpoint.pt."""
    if not (run_dir / "run.json").is_file():
        if (run_dir / "runs").is_dir():
            raise CheckpointError(
                f"{run_dir} is a results directory: give one of its runs, {run_dir}/runs/<run_id>"
            )
        raise CheckpointError(
            f"{run_dir} has no run.json: give a run directory (RESULTS/runs/<run_id>) or a ckpt.pt"
        )
    try:
        meta = read_json(run_dir / "run.json")
    except ResultsError as e:
        raise CheckpointError(str(e)) from None
    status = meta.get("status")
    if status == "running":
        holder = _lock_holder(run_dir.parent.parent)
        if holder is not None:
            who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
            raise CheckpointError(
                f"{run_dir} is still being written ({who}): wait for it to finish, then continue it"
            )
        raise CheckpointError(
            f"{run_dir} never finished (status running, its process gone): continue a run that ended ok"
        )
    if status != "ok":
        why = f": {meta.get('error')}" if meta.get("error") else ""
        raise CheckpointError(
            f"{run_dir} is a {status} run{why}; only a run that finished ok can be continued"
        )
    if not (run_dir / CHECKPOINT_NAME).is_file():
        raise CheckpointError(
            f"{run_dir} has no {CHECKPOINT_NAME}: rerun it with `bench run --save-checkpoint`"
        )
    return meta


def _sweep_id(results_dir: Path) -> str | None:
    try:
        return read_json(results_dir / "sweep.json").get("sweep_id")
    except (ResultsError, OSError):
        return None


@dataclass
class Source:
    """A loaded checkpoint, checked: the model it holds, where its training stood, what run.json records."""

    kind: str  # "devicebench" or "nanogpt"
    path: Path
    model_cfg: GPTConfig
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict | None
    iter_num: int
    train_values: dict[str, Any]  # [train] settings the checkpoint carries
    batch_size: int | None
    vocab: str | None  # the characters the model's ids stand for (devicebench checkpoints)
    ckpt: dict = field(repr=False)
    run_meta: dict | None = None  # run.json of a run directory

    def record(self) -> dict[str, Any]:
        """run.json's `init_from`."""
        out: dict[str, Any] = {"kind": self.kind, "path": str(self.path.resolve()), "iter": self.iter_num}
        if self.kind == "devicebench":
            run = self.ckpt.get("run") or {}
            meta = self.run_meta or {}
            out.update({k: run.get(k) for k in ("run_id", "host", "device", "dtype", "threads", "compile")})
            out["results_dir"] = str(self.path.resolve().parent.parent) if self.run_meta is not None else None
            out["sweep_id"] = _sweep_id(self.path.parent.parent) if self.run_meta is not None else None
            out["final_val_loss"] = (meta.get("summary") or {}).get("final_val_loss")
            out["data_order"] = "carried on"
        else:
            best = self.ckpt.get("best_val_loss")
            out["best_val_loss"] = float(best) if isinstance(best, (int, float, torch.Tensor)) else None
            out["dataset"] = (self.ckpt.get("config") or {}).get("dataset")
            out["data_order"] = "restarted: a nanoGPT checkpoint holds no data position"
        out["optimizer"] = "carried on" if self.optimizer_state is not None else "fresh AdamW"
        return out


def _optimizer_check(state: Any, model: GPT, where: str) -> dict | None:
    """The AdamW state dict when it fits the model's parameter groups, else CheckpointError."""
    if state is None:
        return None
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not isinstance(groups, list) or not isinstance(state.get("state"), dict):
        raise CheckpointError(f"{where}: its optimizer state is not a torch.optim state dict")
    opt = model.configure_optimizer(0.0, 1e-3, (0.9, 0.99))
    current = opt.param_groups
    if len(groups) != len(current) or any(
        len(g.get("params", ())) != len(c["params"]) for g, c in zip(groups, current, strict=False)
    ):
        raise CheckpointError(
            f"{where}: its optimizer groups ({[len(g.get('params', ())) for g in groups]} tensors) do not match the "
            f"shared GPT's AdamW groups ({[len(c['params']) for c in current]})"
        )
    params = {
        pid: p
        for g, c in zip(groups, current, strict=True)
        for pid, p in zip(g["params"], c["params"], strict=True)
    }
    for pid, st in state["state"].items():
        p = params.get(pid)
        if p is None or not isinstance(st, dict):
            raise CheckpointError(f"{where}: its optimizer state names a parameter the model does not have")
        for k in ("exp_avg", "exp_avg_sq"):
            if k in st and tuple(st[k].shape) != tuple(p.shape):
                raise CheckpointError(
                    f"{where}: optimizer {k} of shape {list(st[k].shape)} for a {list(p.shape)} weight"
                )
    return state


def adapt_optimizer_state(saved: dict, optimizer: torch.optim.Optimizer) -> dict:
    """saved with each group's hyperparameters carried on and this optimizer's implementation flags kept."""
    groups = []
    for g, c in zip(saved["param_groups"], optimizer.state_dict()["param_groups"], strict=True):
        new = {k: v for k, v in c.items() if k != "params"}
        new.update({k: g[k] for k in _OPT_HYPER if k in g})
        new["params"] = g["params"]
        groups.append(new)
    return {"state": saved["state"], "param_groups": groups}


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def open_source(text: str, trust: bool = False) -> Source:
    """A run directory or a checkpoint file, loaded and checked (shape, weights, optimizer state)."""
    path = Path(text).expanduser()
    run_meta = None
    if path.is_dir():
        run_meta = _check_run_dir(path)
        ckpt = load_file(path / CHECKPOINT_NAME, trust)
        where = str(path / CHECKPOINT_NAME)
    else:
        ckpt = load_file(path, trust)
        where = str(path)
    if ckpt.get("format") == FORMAT:
        kind = "devicebench"
    elif "model" in ckpt and "model_args" in ckpt:
        kind = "nanogpt"
    elif isinstance(ckpt.get("format"), str) and ckpt["format"].startswith("devicebench-checkpoint/"):
        raise CheckpointError(
            f"{where} was written by a newer devicebench ({ckpt['format']}): upgrade devicebench"
        )
    else:
        keys = ", ".join(sorted(map(str, ckpt))[:6])
        raise CheckpointError(
            f"{where} is neither a devicebench checkpoint nor a nanoGPT train.py ckpt.pt (keys: {keys})"
        )
    try:
        model_cfg = config_from_model_args(ckpt.get("model_args"), where)
        model = GPT(model_cfg)
        state = map_state_dict(ckpt.get("model"), model, where)
    except CheckpointMismatch as e:
        raise CheckpointError(str(e)) from None
    iter_num = _positive_int(ckpt.get("iter_num"))
    if iter_num is None:
        raise CheckpointError(f"{where}: iter_num {ckpt.get('iter_num')!r} is not a step number")
    optimizer_state = _optimizer_check(ckpt.get("optimizer"), model, where)
    if kind == "devicebench":
        train_values = dict(ckpt.get("train") or {})
        batch = _positive_int(ckpt.get("batch_size"))
        vocab = ckpt.get("vocab") if isinstance(ckpt.get("vocab"), str) else None
    else:
        config = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
        train_values = {k: config[k] for k in NANOGPT_TRAIN_KEYS if k in config}
        micro, accum = (
            _positive_int(config.get("batch_size")),
            _positive_int(config.get("gradient_accumulation_steps")),
        )
        batch = micro * (accum or 1) if micro else None
        vocab = None
    return Source(
        kind, path, model_cfg, state, optimizer_state, iter_num, train_values, batch, vocab, ckpt, run_meta
    )


def continuation_config(args: argparse.Namespace, cfg: BenchConfig, src: Source) -> BenchConfig:
    """The sweep's config for `--init-from`: the checkpoint's model and [train], the flags' sweep axes; --iters
    is the number of steps to train on from the checkpoint's step. [train] flags given override the
    checkpoint's (said in run.json's `train`); a model flag that differs from the checkpoint's shape is refused."""
    if getattr(args, "max_iters", None) is None:
        raise CheckpointError(
            f"--init-from needs --iters N: the number of steps to train on from the checkpoint's iter {src.iter_num}"
        )
    for s in settings():
        given = getattr(args, s.name, None)
        if s.section == "model" and given is not None:
            mine, theirs = getattr(cfg.model, s.name), getattr(src.model_cfg, s.name)
            if mine != theirs:
                raise CheckpointError(
                    f"{s.flag} {given}: the checkpoint's model has {s.name} = {theirs}; with --init-from the model "
                    "shape comes from the checkpoint: leave the model flags out"
                )
    where = f"{src.path}: "
    try:
        if src.kind == "devicebench":
            base = config_from_dict(
                {"model": src.model_cfg.to_dict(), "train": src.train_values, "sweep": {}}
            )
        else:
            base = apply_values(BenchConfig(model=src.model_cfg), {"train": src.train_values},
                                where=where + "its nanoGPT config: ")  # fmt: skip
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    given_train = {s.name: getattr(cfg.train, s.name) for s in settings()
                   if s.section == "train" and s.name != "max_iters" and getattr(args, s.name, None) is not None}  # fmt: skip
    train: TrainConfig = replace(base.train, **given_train, max_iters=src.iter_num + cfg.train.max_iters)
    if base.train.lr_decay_iters is None and "lr_decay_iters" not in given_train:
        train = replace(train, lr_decay_iters=base.train.effective_lr_decay_iters())
    sweep = cfg.sweep
    if getattr(args, "batch_sizes", None) is None and src.batch_size:
        sweep = replace(sweep, batch_sizes=[src.batch_size])
    out = BenchConfig(model=src.model_cfg, train=train, sweep=sweep)
    out.validate()
    return out


def check_data(src: Source, dataset: CharDataset) -> None:
    """The checkpoint's ids must mean the data's characters."""
    chars = "".join(dataset.tokenizer.chars)
    if src.vocab is not None and src.vocab != chars:
        raise CheckpointError(
            f"{src.path} was trained on text with another character set ({len(src.vocab)} characters) than the "
            f"data given ({len(chars)}): continue it with the same --data"
        )
    if src.kind == "nanogpt" and src.model_cfg.vocab_size != len(chars):
        raise CheckpointError(
            f"{src.path}: its vocab_size {src.model_cfg.vocab_size} is not the {len(chars)} characters of the data: "
            "devicebench maps character-level nanoGPT checkpoints (shakespeare_char) trained on the same text"
        )


@dataclass
class Init:
    """What `--init-from` puts into each run's freshly built Trainer."""

    src: Source

    def apply(self, trainer: Trainer) -> None:
        """The checkpoint's weights, AdamW state, data position and RNG into trainer (weights before DDP wraps it)."""
        src = self.src
        trainer.model.load_state_dict(src.model_state)
        if src.optimizer_state is not None:
            trainer.optimizer.load_state_dict(adapt_optimizer_state(src.optimizer_state, trainer.optimizer))
        scaler = src.ckpt.get("scaler") if src.kind == "devicebench" else None
        if scaler and trainer.scaler.is_enabled():
            trainer.scaler.load_state_dict(scaler)
        trainer.start_iter = src.iter_num
        rng = src.ckpt.get("rng") if src.kind == "devicebench" else None
        if rng:
            trainer.train_sampler.generator.set_state(rng["train_batches"])
            trainer.eval_states = dict(rng.get("eval_batches") or {})
            torch.set_rng_state(rng["torch_cpu"])
            trainer.eval_at_start = False  # the run it continues made that eval

    def check(self, dataset: CharDataset) -> None:
        check_data(self.src, dataset)


def continue_from(args: argparse.Namespace, cfg: BenchConfig) -> tuple[BenchConfig, Init]:
    """`bench run --init-from`: the checkpoint loaded and checked, and the sweep's config for it."""
    src = open_source(args.init_from, getattr(args, "trust_checkpoint", False))
    return continuation_config(args, cfg, src), Init(src)


def plan_lines(cfg: BenchConfig, runs: int, init: Init | None, save_checkpoint: bool) -> list[str]:
    """--dry-run's lines for --init-from (where the runs start) and --save-checkpoint (its size)."""
    out = []
    if init is not None:
        start = init.src.iter_num
        out.append(f"--init-from {init.src.path}: each run starts at iter {start} ({init.src.kind} checkpoint) and "
                   f"trains {cfg.train.max_iters - start} more steps, to iter {cfg.train.max_iters}")  # fmt: skip
    if save_checkpoint:
        each = estimate_bytes(cfg.model)
        out.append(
            f"--save-checkpoint: ~{nbytes(each)} per run (checkpoint.pt), ~{nbytes(each * runs)} in all"
        )
    return out
