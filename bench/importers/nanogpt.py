"""Parse nanoGPT train.py logs into what a devicebench run records. Pure Python: no torch.

What train.py prints (karpathy/nanoGPT: train.py, configurator.py, model.py):

    Overriding config with config/train_shakespeare_char.py:     then the file, echoed
    Overriding: max_iters = 2000                                 each --key=value of the command line
    tokens per iteration will be: 16,384
    found vocab_size = 65 (inside data/shakespeare_char/meta.pkl)
    number of parameters: 10.65M
    step 250: train loss 1.9641, val loss 2.0635                 an eval, every eval_interval iters
    saving checkpoint to out-shakespeare-char
    iter 250: loss 1.9927, time 479.12ms, mfu 9.98%              every log_interval iters

The time of `iter N` runs from the end of iter N-1 to the end of iter N, so it includes the eval and
the checkpoint printed just before it, and at the first iteration the compilation and start-up.
The printed mfu divides by an A100's 312 TFLOP/s on every device, is a 0.9/0.1 running average that
starts at the 5th iteration (-100.00% before), and with log_interval > 1 reads the clock before the
GPU has finished; the import recomputes MFU from the times instead and keeps the printed one apart.
"""

from __future__ import annotations

import ast
import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.config import TrainConfig
from bench.config import lr_at as schedule_lr_at
from hwinfo.peaks import A100_BF16_PEAK_FLOPS as NANOGPT_PEAK_FLOPS  # estimate_mfu's denominator
from model import flops
from model.config import GPTConfig

TRAIN_SCHEDULE_KEYS = ("learning_rate", "min_lr", "warmup_iters", "lr_decay_iters", "decay_lr", "max_iters")

TIMING_WARMUP_ITERS = 5  # nanoGPT starts its own MFU average at the 5th iteration of a process
GPT2_VOCAB_SIZE = 50304  # train.py's vocab_size when the dataset has no meta.pkl

# train.py's defaults (GPT-2 124M on OpenWebText); `dtype` is machine-dependent and handled apart.
TRAIN_PY_DEFAULTS: dict[str, Any] = {
    "out_dir": "out",
    "eval_interval": 2000,
    "log_interval": 1,
    "eval_iters": 200,
    "eval_only": False,
    "always_save_checkpoint": True,
    "init_from": "scratch",
    "wandb_log": False,
    "wandb_project": "owt",
    "wandb_run_name": "gpt2",
    "dataset": "openwebtext",
    "gradient_accumulation_steps": 40,
    "batch_size": 12,
    "block_size": 1024,
    "n_layer": 12,
    "n_head": 12,
    "n_embd": 768,
    "dropout": 0.0,
    "bias": False,
    "learning_rate": 6e-4,
    "max_iters": 600000,
    "weight_decay": 1e-1,
    "beta1": 0.9,
    "beta2": 0.95,
    "grad_clip": 1.0,
    "decay_lr": True,
    "warmup_iters": 2000,
    "lr_decay_iters": 600000,
    "min_lr": 6e-5,
    "backend": "nccl",
    "device": "cuda",
    "dtype": "bfloat16",
    "compile": True,
}

MODEL_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "dropout", "bias")
TRAIN_KEYS = (
    "max_iters", "learning_rate", "min_lr", "warmup_iters", "lr_decay_iters", "decay_lr", "weight_decay",
    "beta1", "beta2", "grad_clip", "eval_interval", "eval_iters",
)  # fmt: skip
RUN_KEYS = ("batch_size", "device", "dtype", "compile", "gradient_accumulation_steps", "log_interval")
# Keys a run records; `assumed` lists those of them the log did not say.
RECORDED_KEYS = MODEL_KEYS + TRAIN_KEYS + RUN_KEYS
SETTABLE_KEYS = tuple(sorted(set(TRAIN_PY_DEFAULTS) | {"vocab_size"}))
DTYPE_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf)"
ITER_RE = re.compile(rf"\biter (\d+): loss ({_NUM}), time (\d+(?:\.\d*)?)ms, mfu (-?\d+(?:\.\d*)?)%")
STEP_RE = re.compile(rf"\bstep (\d+): train loss ({_NUM}), val loss ({_NUM})")
CONFIG_FILE_RE = re.compile(r"\bOverriding config with (.+):$")
OVERRIDE_RE = re.compile(r"\bOverriding: (\w+) = (.*)$")
TOKENS_RE = re.compile(r"tokens per iteration will be: ([\d,]+)")
VOCAB_RE = re.compile(r"found vocab_size = (\d+) \(inside (.*)\)")
VOCAB_DEFAULT_RE = re.compile(r"defaulting to vocab_size of GPT-2 to (\d+)")
PARAMS_RE = re.compile(r"number of parameters: (\d+(?:\.\d*)?)M")
CHECKPOINT_RE = re.compile(r"saving checkpoint to (.*)$")
ASSIGN_RE = re.compile(r"^([A-Za-z_]\w*)\s*=\s*(.+)$")
EXCEPTION_RE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)\b|KeyboardInterrupt)")
OTHER_TRAIN_PY_RE = re.compile(
    r"^(Initializing a new model|Resuming training|num (non-)?decayed parameter tensors|using fused AdamW"
    r"|compiling the model)"
)


class NanoGPTLogError(ValueError):
    """A log that cannot be imported (not nanoGPT's, or a config that cannot be worked out)."""

    exit_code = 2


@dataclass
class IterLine:
    it: int
    loss: float
    ms: float
    mfu_pct: float | None  # None: printed as -100.00%, not measured yet
    line_no: int


@dataclass
class EvalLine:
    it: int
    train_loss: float
    val_loss: float
    line_no: int


@dataclass
class ParsedLog:
    """Everything a train.py log says, line by line, before defaults are filled in."""

    source: str
    config: dict[str, Any] = field(default_factory=dict)  # config echo and Overriding lines, in order
    config_files: list[str] = field(default_factory=list)
    unparsed_config: list[str] = field(default_factory=list)  # echoed keys whose value is an expression
    tokens_per_iter: int | None = None
    vocab_size: int | None = None
    params_m: float | None = None  # "number of parameters: X M"
    compiling: bool = False
    iters: list[IterLine] = field(default_factory=list)
    evals: list[EvalLine] = field(default_factory=list)
    checkpoints: list[int] = field(default_factory=list)  # iters whose eval saved a checkpoint
    tail_error: str | None = None  # last exception line of a traceback after the last iteration
    other_lines: int = 0  # lines that are not train.py's (warnings, tracebacks, progress)

    @property
    def has_config(self) -> bool:
        return bool(self.config_files or self.config)


def _float(text: str) -> float:
    return float(text)


def _literal(text: str) -> Any:
    """A value as configurator.py reads it: a Python literal, else the string itself."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text.strip()


_UNPARSED = object()


def _echo_value(rhs: str) -> Any:
    """The value of `key = <rhs>  # comment` in an echoed config file, or _UNPARSED for an expression."""
    cuts = [len(rhs)] + [i for i, ch in enumerate(rhs) if ch == "#"]
    for cut in cuts:
        try:
            return ast.literal_eval(rhs[:cut].strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return _UNPARSED


def parse_log(text: str, source: str = "<log>") -> ParsedLog:
    """Read what train.py printed. Raises NanoGPTLogError for a file that is not a nanoGPT log."""
    log = ParsedLog(source=source)
    in_echo = False
    in_traceback = False
    last_eval: int | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if m := ITER_RE.search(line):
            it = int(m.group(1))
            if log.iters and it <= log.iters[-1].it:
                raise NanoGPTLogError(
                    f"{source} holds more than one training run (iter {it} at line {n} follows iter "
                    f"{log.iters[-1].it}): split it into one file per run"
                )
            mfu = float(m.group(4))
            log.iters.append(IterLine(it, _float(m.group(2)), float(m.group(3)), None if mfu < 0 else mfu, n))
            log.tail_error = None
            in_echo = in_traceback = False
            continue
        if m := STEP_RE.search(line):
            last_eval = int(m.group(1))
            log.evals.append(EvalLine(last_eval, _float(m.group(2)), _float(m.group(3)), n))
            in_echo = False
            continue
        if m := CHECKPOINT_RE.match(line):
            if last_eval is not None:
                log.checkpoints.append(last_eval)
            continue
        if m := CONFIG_FILE_RE.search(line):
            log.config_files.append(m.group(1))
            in_echo = True
            continue
        if m := OVERRIDE_RE.search(line):
            log.config[m.group(1)] = _literal(m.group(2))
            in_echo = False
            continue
        if m := TOKENS_RE.search(line):
            log.tokens_per_iter = int(m.group(1).replace(",", ""))
            in_echo = False
            continue
        if m := VOCAB_RE.search(line) or VOCAB_DEFAULT_RE.search(line):
            log.vocab_size = int(m.group(1))
            in_echo = False
            continue
        if m := PARAMS_RE.search(line):
            log.params_m = float(m.group(1))
            in_echo = False
            continue
        if OTHER_TRAIN_PY_RE.match(line):
            log.compiling = log.compiling or line.startswith("compiling the model")
            in_echo = False
            continue
        if in_echo:
            # the echoed config file: top-level assignments only (indented ones are conditional)
            if (m := ASSIGN_RE.match(raw.rstrip())) and not raw[0].isspace():
                value = _echo_value(m.group(2))
                if value is _UNPARSED:
                    log.unparsed_config.append(m.group(1))
                    log.config.pop(m.group(1), None)
                else:
                    log.config[m.group(1)] = value
            continue
        log.other_lines += 1
        if "Traceback (most recent call last)" in line:
            in_traceback = True
        elif in_traceback and EXCEPTION_RE.match(line) and log.iters:
            log.tail_error = line[:200]
    if not log.iters:
        what = "only eval lines" if log.evals else "no 'iter N: loss X, time Y ms, mfu Z%' lines"
        raise NanoGPTLogError(f"{source} is not a nanoGPT train.py training log ({what})")
    return log


@dataclass
class EffectiveConfig:
    """The config a run used: the log's values over train.py's defaults, with --set on top."""

    values: dict[str, Any]
    source: dict[str, str]  # key -> "log" | "set" | "default" | "derived"
    assumed: list[str]
    notes: list[str]
    device_type: str
    dtype: str  # devicebench's name: fp32, tf32, bf16, fp16
    compile: str  # "on" | "off"
    tokens_per_iter: int


def parse_set(items: list[str]) -> dict[str, Any]:
    """`--set key=value` pairs, values read as configurator.py reads them."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().removeprefix("--")
        if not sep or not key:
            raise NanoGPTLogError(f"--set {item!r}: expected key=value, e.g. --set batch_size=12")
        if key not in SETTABLE_KEYS:
            raise NanoGPTLogError(
                f"--set {key}: not a nanoGPT train.py config key; known: {', '.join(SETTABLE_KEYS)}"
            )
        out[key] = _literal(value)
    return out


def _check_type(key: str, value: Any, where: str) -> Any:
    default = GPT2_VOCAB_SIZE if key == "vocab_size" else TRAIN_PY_DEFAULTS.get(key)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise NanoGPTLogError(f"{where}: {key} = {value!r} should be True or False")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise NanoGPTLogError(f"{where}: {key} = {value!r} should be a whole number")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise NanoGPTLogError(f"{where}: {key} = {value!r} should be a number")
        value = float(value)
    return value


def effective_config(log: ParsedLog, user_set: dict[str, Any] | None = None) -> EffectiveConfig:
    """Fill in what the log does not say. A key is `assumed` when it comes from --set, or from
    train.py's defaults in a log that has no config echo at all (then the defaults are a guess)."""
    user_set = dict(user_set or {})
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    notes: list[str] = []
    for key in TRAIN_PY_DEFAULTS:
        if key in user_set:
            values[key], source[key] = user_set[key], "set"
            if key in log.config and log.config[key] != user_set[key]:
                notes.append(f"--set {key}={user_set[key]!r} replaces the log's {log.config[key]!r}")
        elif key in log.config:
            values[key], source[key] = log.config[key], "log"
        else:
            values[key], source[key] = TRAIN_PY_DEFAULTS[key], "default"
    for key in TRAIN_PY_DEFAULTS:
        where = "--set" if source[key] == "set" else log.source
        values[key] = _check_type(key, values[key], where)
    if log.unparsed_config:
        notes.append(
            f"config echo: could not read {', '.join(log.unparsed_config)} (an expression, not a value)"
        )

    if "vocab_size" in user_set:
        values["vocab_size"], source["vocab_size"] = (
            _check_type("vocab_size", user_set["vocab_size"], "--set"),
            "set",
        )
    elif log.vocab_size is not None:
        values["vocab_size"], source["vocab_size"] = log.vocab_size, "log"
    else:
        values["vocab_size"], source["vocab_size"] = GPT2_VOCAB_SIZE, "default"

    # Read off the log itself where the config is silent.
    if source["eval_interval"] == "default" and len(log.evals) >= 2:
        values["eval_interval"], source["eval_interval"] = _gcd_step([e.it for e in log.evals]), "derived"
    if source["log_interval"] == "default" and len(log.iters) >= 2:
        values["log_interval"], source["log_interval"] = _gcd_step([i.it for i in log.iters]), "derived"
    if source["max_iters"] == "default" and not log.has_config:
        values["max_iters"], source["max_iters"] = log.iters[-1].it, "derived"
        notes.append(f"max_iters not in the log: taken as the last iteration logged ({log.iters[-1].it})")

    device = str(values["device"])
    device_type = "cuda" if "cuda" in device else device.split(":")[0]
    if device_type != "cuda":
        # train.py autocasts only on CUDA: elsewhere the run is float32 whatever dtype says.
        dtype, source["dtype"] = "fp32", "derived"
    else:
        name = str(values["dtype"])
        if name not in DTYPE_NAMES:
            raise NanoGPTLogError(
                f"{log.source}: unknown dtype {name!r}: train.py takes {', '.join(DTYPE_NAMES)}"
            )
        # train.py sets allow_tf32 on CUDA, so a float32 run does its matmuls in TF32.
        dtype = "tf32" if name == "float32" else DTYPE_NAMES[name]
        if source["dtype"] == "default":
            notes.append("dtype not in the log: assumed bfloat16 (train.py's default on a GPU with bf16)")

    batch, block = values["batch_size"], values["block_size"]
    if log.tokens_per_iter is not None:
        per_micro = batch * block
        if log.tokens_per_iter % per_micro:
            raise NanoGPTLogError(
                f"{log.source}: 'tokens per iteration will be: {log.tokens_per_iter:,}' is not a multiple of "
                f"batch_size {batch} x block_size {block} ({_said(source, 'batch_size', 'block_size')}): "
                "pass the log's values with --set batch_size=N --set block_size=N"
            )
        values["gradient_accumulation_steps"] = log.tokens_per_iter // per_micro
        source["gradient_accumulation_steps"] = "derived"  # DDP world size folded in
        tokens_per_iter = log.tokens_per_iter
    else:
        tokens_per_iter = values["gradient_accumulation_steps"] * batch * block

    if values["n_embd"] % values["n_head"]:
        raise NanoGPTLogError(
            f"{log.source}: n_embd {values['n_embd']} is not a multiple of n_head {values['n_head']} "
            f"({_said(source, 'n_embd', 'n_head')})"
        )
    if log.params_m is not None:
        model = {k: values[k] for k in MODEL_KEYS}
        counted_m = count_params(model) / 1e6
        if abs(counted_m - log.params_m) > 0.0051:
            shape = " ".join(
                f"{k}={values[k]}" for k in ("n_layer", "n_head", "n_embd", "vocab_size", "bias")
            )
            if any(source[k] not in ("log", "derived") for k in MODEL_KEYS):
                raise NanoGPTLogError(
                    f"{log.source}: the log says 'number of parameters: {log.params_m:.2f}M' but {shape} "
                    f"({_said(source, *MODEL_KEYS)}) gives {counted_m:.2f}M: pass the model's shape with "
                    "--set n_layer=N --set n_head=N --set n_embd=N"
                )
            notes.append(
                f"the log's {log.params_m:.2f}M parameters differ from {counted_m:.2f}M for {shape}: "
                "a modified model.py? FLOPs are counted for the standard GPT"
            )

    recorded = [*RECORDED_KEYS]
    assumed = [k for k in recorded if source[k] == "set" or (source[k] == "default" and not log.has_config)]
    if device_type == "cuda" and source["dtype"] == "default" and "dtype" not in assumed:
        assumed.append("dtype")
    if source["vocab_size"] == "default" and "vocab_size" not in assumed:
        assumed.append("vocab_size")
        notes.append(f"no 'found vocab_size' line: assumed {GPT2_VOCAB_SIZE}, train.py's default")
    if source["max_iters"] == "derived" and "max_iters" not in assumed:
        assumed.append("max_iters")
    return EffectiveConfig(
        values=values,
        source=source,
        assumed=assumed,
        notes=notes,
        device_type=device_type,
        dtype=dtype,
        compile="on" if values["compile"] else "off",
        tokens_per_iter=tokens_per_iter,
    )


def _said(source: dict[str, str], *keys: str) -> str:
    """Where the values of keys came from, for error messages."""
    by = {k: source[k] for k in keys}
    if all(v in ("log", "derived") for v in by.values()):
        return "as the log says"
    parts = [
        f"{k} from {'--set' if v == 'set' else 'train.py defaults'}"
        for k, v in by.items()
        if v in ("set", "default")
    ]
    return ", ".join(parts)


def _gcd_step(its: list[int]) -> int:
    step = 0
    for a, b in zip(its, its[1:], strict=False):
        step = math.gcd(step, b - a)
    return max(step, 1)


def count_params(model: dict) -> int:
    """Non-embedding parameter count as nanoGPT's get_num_params counts it."""
    return flops.count_params(GPTConfig(**model))


def flops_per_token(model: dict) -> int:
    """6N + 12*L*H*Q*T for one training token."""
    return flops.flops_per_token(GPTConfig(**model))


def lr_at(it: int, c: dict) -> float:
    """train.py's get_lr (the same schedule devicebench trains with)."""
    train = TrainConfig(**{k: c[k] for k in TRAIN_SCHEDULE_KEYS})
    return schedule_lr_at(it, train)


@dataclass
class ImportedRun:
    """One log as a devicebench run: run.json fields, steps.csv rows and evals.csv rows."""

    meta: dict
    steps: list[tuple[int, float, float, float, str]]  # iter, ms, loss, lr, phase
    evals: list[tuple[int, str, float, float]]  # iter, split, loss, ms (nan: not timed by train.py)


def step_phases(log: ParsedLog) -> list[str]:
    """warmup (the first iterations of the process), after_eval (time includes an eval or a checkpoint)
    or timed, for each iter line."""
    first = log.iters[0].it
    after = {e.it for e in log.evals} | set(log.checkpoints)
    return [
        "warmup" if i.it < first + TIMING_WARMUP_ITERS else "after_eval" if i.it in after else "timed"
        for i in log.iters
    ]


def build_run(
    log: ParsedLog,
    cfg: EffectiveConfig,
    peak_flops: dict,
    summarise: Callable[..., dict],
    source_file: str,
    host: str,
    device_name: str | None,
) -> ImportedRun:
    """The run record of a parsed log. `summarise` is bench.metrics.step_summary."""
    v = cfg.values
    model = {k: v[k] for k in MODEL_KEYS}
    train = {k: v[k] for k in TRAIN_KEYS}
    train["seed"] = 1337  # train.py: torch.manual_seed(1337 + seed_offset)
    train["timing_warmup_iters"] = TIMING_WARMUP_ITERS
    fpt = flops_per_token(model)
    fpi = fpt * cfg.tokens_per_iter

    phases = step_phases(log)
    steps = [
        (i.it, i.ms, i.loss, lr_at(i.it, v) if v["decay_lr"] else v["learning_rate"], ph)
        for i, ph in zip(log.iters, phases, strict=True)
    ]
    timed_ms = [i.ms for i, ph in zip(log.iters, phases, strict=True) if ph == "timed"]
    summary = summarise(timed_ms, cfg.tokens_per_iter, fpi, peak_flops.get("value"))
    median = summary.get("ms_median")
    spikes = []
    for i, ph in zip(log.iters, phases, strict=True):
        if ph == "after_eval" and median is not None:
            what = "eval + checkpoint" if i.it in log.checkpoints else "eval"
            spikes.append(
                {"iter": i.it, "ms": i.ms, "eval_ms_est": max(0.0, i.ms - median), "includes": what}
            )

    evals = []
    for e in log.evals:
        evals.append((e.it, "train", e.train_loss, math.nan))
        evals.append((e.it, "val", e.val_loss, math.nan))

    last = log.iters[-1]
    printed = [i.mfu_pct for i, ph in zip(log.iters, phases, strict=True) if i.mfu_pct is not None]
    status, error = _status(log, v)
    every_iter_logged = v["log_interval"] == 1
    summary.update(
        {
            "final_train_loss": log.evals[-1].train_loss if log.evals else None,
            "final_val_loss": log.evals[-1].val_loss if log.evals else None,
            "iters_done": last.it + 1,
            "warmup_iters": TIMING_WARMUP_ITERS,
            "first_step_ms": log.iters[0].ms,
            "eval_ms_total": sum(s["eval_ms_est"] for s in spikes) if spikes else None,
            "eval_ms_source": "estimated: time of the iteration after each eval minus the median iteration",
            "eval_spikes": spikes,
            "eval_spike_ms": [s["eval_ms_est"] for s in spikes],
            "wall_s": sum(i.ms for i in log.iters) / 1e3 if every_iter_logged else None,
            "peak_mem_bytes": None,
            "peak_mem_kind": None,
            "nanogpt_mfu_printed": printed[-1] / 100 if printed else None,
            "nanogpt_achieved_flops_per_s": printed[-1] / 100 * NANOGPT_PEAK_FLOPS if printed else None,
            "nanogpt_mfu_printed_median": statistics.median(printed) / 100 if printed else None,
        }
    )
    meta = {
        "status": status,
        "error": error,
        "source": "nanogpt-log",
        "source_file": source_file,
        "host": host,
        "device": str(v["device"]),
        "device_type": cfg.device_type,
        "device_name": device_name or str(v["device"]),
        "dtype": cfg.dtype,
        "batch_size": v["batch_size"],
        "block_size": v["block_size"],
        "compile": cfg.compile,
        "threads": None,
        "seed": 1337,
        "model": model,
        "train": train,
        "flops_per_token": fpt,
        "flops_per_iter": fpi,
        "tokens_per_iter": cfg.tokens_per_iter,
        "peak_flops": peak_flops,
        "started": None,
        "finished": None,
        "assumed": cfg.assumed,
        "nanogpt": {
            "config_files": log.config_files,
            "config": {k: v[k] for k in TRAIN_PY_DEFAULTS} | {"vocab_size": v["vocab_size"]},
            "config_source": dict(cfg.source),
            "gradient_accumulation_steps": v["gradient_accumulation_steps"],
            "log_interval": v["log_interval"],
            "params_printed_m": log.params_m,
            "notes": cfg.notes,
            "other_lines": log.other_lines,
        },
        "summary": summary,
    }
    return ImportedRun(meta=meta, steps=steps, evals=evals)


def _status(log: ParsedLog, v: dict) -> tuple[str, str | None]:
    last = log.iters[-1].it
    if log.tail_error:
        status = "interrupted" if "KeyboardInterrupt" in log.tail_error else "failed"
        return status, f"{log.tail_error} after iter {last} of {v['max_iters']}"
    # train.py runs iters 0..max_iters; with log_interval N the last one logged may be up to N-1 short
    if last + v["log_interval"] > v["max_iters"]:
        return "ok", None
    return "interrupted", f"log ends at iter {last} of {v['max_iters']} (cut off mid-run)"


def run_id(cfg: EffectiveConfig) -> str:
    """devicebench's run id for the run's axes: cpu-fp32-b12-eager, cuda-bf16-b64-compile."""
    device = str(cfg.values["device"]).replace(":", "")
    return f"{device}-{cfg.dtype}-b{cfg.values['batch_size']}-{'compile' if cfg.compile == 'on' else 'eager'}"
