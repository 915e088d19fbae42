"""Parse nanoGPT train.py logs into what a devicebench run records. Pure Python and numpy: no torch.

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
the checkpoint printed just before it; iteration 0 also includes the step-0 eval, start-up and, when
compiled, the compilation. The printed mfu divides by an A100's 312 TFLOP/s on every device, is a
0.9/0.1 running average that starts at the 5th iteration (-100.00% before), and with log_interval > 1
reads the clock before the GPU has finished; the import recomputes MFU from the times instead and
keeps the printed one apart.

A log is read twice, streamed line by line (memory stays bounded whatever its size, lines longer
than MAX_LINE_CHARS are skipped unread): `parse_log` gathers the config and the figures, then
`run_rows` replays the file into steps.csv and evals.csv rows. Every pattern is linear in the line.
"""

from __future__ import annotations

import ast
import codecs
import math
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import TrainConfig
from bench.config import lr_at as schedule_lr_at
from hwinfo.peaks import A100_BF16_PEAK_FLOPS as NANOGPT_PEAK_FLOPS  # estimate_mfu's denominator
from model import flops
from model.config import GPTConfig

TRAIN_SCHEDULE_KEYS = ("learning_rate", "min_lr", "warmup_iters", "lr_decay_iters", "decay_lr", "max_iters")

TIMING_WARMUP_ITERS = 5  # nanoGPT starts its own MFU average at the 5th iteration of a process
GPT2_VOCAB_SIZE = 50304  # train.py's vocab_size when the dataset has no meta.pkl
MAX_LINE_CHARS = 10_000  # train.py prints no line near this long: longer ones are skipped unread
BINARY_SNIFF_BYTES = 65536
MAX_WHOLE = 10**12  # no real run has a size or count above this; bigger ones are typos or hostile
MAX_SPIKES_LISTED = 1000  # after-eval iterations listed one by one in run.json (all are counted)
MAX_CONFIG_FILES = 10

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
# What a log without a config echo cannot say and a wrong default would get badly wrong.
REQUIRED_WITHOUT_ECHO = ("device", "batch_size", "block_size", "n_layer", "n_head", "n_embd")

# Ranges of the values train.py would accept: (smallest, largest); None = no check.
_RANGES: dict[str, tuple[float, float]] = {
    **{k: (1, MAX_WHOLE) for k in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "batch_size",
                                   "gradient_accumulation_steps", "eval_interval", "log_interval", "eval_iters")},
    **{k: (0, MAX_WHOLE) for k in ("max_iters", "warmup_iters", "lr_decay_iters")},
    "dropout": (0.0, 1.0 - 1e-12), "beta1": (0.0, 1.0 - 1e-12), "beta2": (0.0, 1.0 - 1e-12),
    "learning_rate": (0.0, 1e6), "min_lr": (0.0, 1e6), "weight_decay": (0.0, 1e6), "grad_clip": (0.0, 1e12),
}  # fmt: skip

# A device train.py can run on: model.to(device) takes nothing else.
DEVICE_RE = re.compile(r"(cpu|mps|cuda(?::\d{1,3})?|xpu(?::\d{1,3})?)")

# Numbers as Python prints floats, with no ambiguous split of a digit run (linear time, never quadratic).
_NUM = r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf)"
_INT = r"\d{1,15}"
ITER_RE = re.compile(rf"\biter ({_INT}): loss ({_NUM}), time (\d+(?:\.\d*)?)ms, mfu (-?\d+(?:\.\d*)?)%")
# An iteration line whose time or mfu cannot be read (nan, inf, negative, garbled): skipped and counted.
BAD_ITER_RE = re.compile(rf"\biter {_INT}: loss \S+, time ")
STEP_RE = re.compile(rf"\bstep ({_INT}): train loss ({_NUM}), val loss ({_NUM})")
OVERRIDE_RE = re.compile(r"(\w+) = (.*)")
TOKENS_RE = re.compile(r"tokens per iteration will be: (\d{1,3}(?:,\d{3}){0,5}|\d{1,18})(?:\s|$)")
VOCAB_RE = re.compile(r"found vocab_size = (\d{1,12}) \(inside ")
VOCAB_DEFAULT_RE = re.compile(r"defaulting to vocab_size of GPT-2 to (\d{1,12})")
PARAMS_RE = re.compile(r"number of parameters: (\d{1,12}(?:\.\d*)?)M")
ASSIGN_RE = re.compile(r"([A-Za-z_]\w*)\s*=\s*(.+)")
EXCEPTION_RE = re.compile(r"(?:[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)\b|KeyboardInterrupt)")
OTHER_TRAIN_PY = (
    "Initializing a new model", "Resuming training", "Initializing from OpenAI GPT-2 weights",
    "num decayed parameter tensors", "num non-decayed parameter tensors", "using fused AdamW",
    "compiling the model",
)  # fmt: skip


class NanoGPTLogError(ValueError):
    """A log that cannot be imported (not nanoGPT's, or a config that cannot be worked out)."""

    exit_code = 2


# ---------------------------------------------------------------------------------------------------
# Reading


def read_lines(path: str | Path) -> Iterator[str | None]:
    """The lines of a log file, streamed (None for a line longer than MAX_LINE_CHARS, skipped unread).

    Checks the file first, so a missing, unreadable or binary file fails here with one clear line.
    UTF-8 (with or without BOM) and UTF-16 with a BOM (PowerShell's `>`) are read; CR, LF and CRLF end lines.
    """
    from bench.userfiles import open_user_file

    with open_user_file(path, what="", error=NanoGPTLogError, hint="pass a nanoGPT train.py log") as f:
        try:
            head = f.read(BINARY_SNIFF_BYTES)
        except OSError as e:
            raise NanoGPTLogError(f"{path} cannot be read ({e.strerror or e})") from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\0" in head:
        raise NanoGPTLogError(f"{path} is a binary file, not a nanoGPT train.py log")
    else:
        encoding = "utf-8-sig"
    return _stream(Path(path), encoding)


def _stream(path: Path, encoding: str) -> Iterator[str | None]:
    with open(path, encoding=encoding, errors="replace", newline=None) as f:
        while line := f.readline(MAX_LINE_CHARS + 1):
            if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
                while line and not line.endswith("\n"):  # skip the rest of it, a bounded piece at a time
                    line = f.readline(MAX_LINE_CHARS)
                yield None
            else:
                yield line


def text_lines(text: str) -> Iterator[str | None]:
    """A log held in a string, as read_lines gives it (for tests and callers that have the text)."""
    for line in text.splitlines():
        yield None if len(line) > MAX_LINE_CHARS else line


# ---------------------------------------------------------------------------------------------------
# Scanning: one event per line train.py printed


def _literal(text: str) -> Any:
    """A value as configurator.py reads it: a Python literal, else the string itself."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text.strip()


_UNPARSED = object()


def _echo_value(rhs: str) -> Any:
    """The value of `key = <rhs>  # comment` in an echoed config file, or _UNPARSED for an expression."""
    cuts = [len(rhs)] + [i for i, ch in enumerate(rhs) if ch == "#"][:3]
    for cut in cuts:
        try:
            return ast.literal_eval(rhs[:cut].strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return _UNPARSED


def _tail_after(line: str, keyword: str) -> int:
    """Where the text after the first `keyword` in line starts, or -1."""
    at = line.find(keyword)
    return -1 if at < 0 else at + len(keyword)


def _scan(lines: Iterable[str | None]) -> Iterator[tuple]:
    """(kind, ...) for each line: iter, eval, checkpoint, config_file, override, echo, tokens, vocab, params,
    compiling, train_py, other, long. Each line costs time linear in its length."""
    in_echo = False
    for n, raw in enumerate(lines, 1):
        if raw is None:
            yield ("long", n)
            continue
        line = raw.strip()
        if not line:
            continue
        if "iter " in line and (m := ITER_RE.search(line)):
            it, loss, ms, mfu = m.groups()
            ms = float(ms)
            if math.isfinite(ms):
                mfu = float(mfu)
                yield ("iter", int(it), float(loss), ms, None if mfu < 0 else mfu, n)
                in_echo = False
                continue
        if "iter " in line and BAD_ITER_RE.search(line):
            yield ("bad_iter", n)
            in_echo = False
            continue
        if "step " in line and (m := STEP_RE.search(line)):
            yield ("eval", int(m.group(1)), float(m.group(2)), float(m.group(3)), n)
            in_echo = False
            continue
        if line.startswith("saving checkpoint to"):
            yield ("checkpoint", n)
            continue
        if (at := _tail_after(line, "Overriding config with ")) >= 0 and line.endswith(":"):
            yield ("config_file", line[at:-1])
            in_echo = True
            continue
        if (at := _tail_after(line, "Overriding: ")) >= 0 and (m := OVERRIDE_RE.match(line, at)):
            yield ("override", m.group(1), m.group(2))
            in_echo = False
            continue
        if (at := _tail_after(line, "tokens per iteration will be: ")) >= 0:
            m = TOKENS_RE.match(line, at - len("tokens per iteration will be: "))
            if m:
                yield ("tokens", int(m.group(1).replace(",", "")))
                in_echo = False
                continue
        if (at := line.find("found vocab_size = ")) >= 0 and (m := VOCAB_RE.match(line, at)):
            yield ("vocab", int(m.group(1)))
            in_echo = False
            continue
        if (at := line.find("defaulting to vocab_size")) >= 0 and (m := VOCAB_DEFAULT_RE.match(line, at)):
            yield ("vocab", int(m.group(1)))
            in_echo = False
            continue
        if (at := line.find("number of parameters: ")) >= 0 and (m := PARAMS_RE.match(line, at)):
            yield ("params", float(m.group(1)))
            in_echo = False
            continue
        if line.startswith(OTHER_TRAIN_PY):
            yield ("compiling",) if line.startswith("compiling the model") else ("train_py",)
            in_echo = False
            continue
        if in_echo:
            # the echoed config file: top-level assignments only (indented ones are conditional)
            if not raw[0].isspace() and (m := ASSIGN_RE.fullmatch(raw.rstrip())):
                yield ("echo", m.group(1), m.group(2))
            continue
        yield ("other", line, n)


# ---------------------------------------------------------------------------------------------------
# Pass 1: what the log says


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
    """What a train.py log says: its config and running figures, never its lines (memory stays bounded)."""

    source: str
    config: dict[str, Any] = field(default_factory=dict)  # config echo and Overriding lines, in order
    config_files: list[str] = field(default_factory=list)
    unparsed_config: list[str] = field(default_factory=list)  # echoed keys whose value is an expression
    tokens_per_iter: int | None = None
    vocab_size: int | None = None
    params_m: float | None = None  # "number of parameters: X M"
    compiling: bool = False
    n_iters: int = 0
    first: IterLine | None = None
    last: IterLine | None = None
    iter_step: int = 0  # gcd of the gaps between logged iterations
    ms_sum: float = 0.0
    timed_ms: array = field(default_factory=lambda: array("d"))  # times of the `timed` iterations
    zero_ms: int = 0  # iterations printed with time 0.00ms (impossible; kept out of the medians)
    printed_mfu_last: float | None = None  # percent
    n_evals: int = 0
    first_eval: EvalLine | None = None
    last_eval: EvalLine | None = None
    eval_step: int = 0
    best_val: EvalLine | None = None
    # after_eval iterations: their iter, printed ms, and whether a checkpoint was saved after the eval
    spike_iters: array = field(default_factory=lambda: array("q"))
    spike_ms: array = field(default_factory=lambda: array("d"))
    spike_checkpoint: array = field(default_factory=lambda: array("b"))
    diverged: tuple[int, str, float] | None = None  # (iter, where, value) of the first NaN/inf loss
    tail_error: str | None = None  # last exception line of a traceback after the last iteration
    other_lines: int = 0  # lines that are not train.py's (warnings, tracebacks, progress)
    long_lines: int = 0  # lines over MAX_LINE_CHARS, skipped unread
    bad_iter_lines: int = 0  # iteration lines whose time or mfu is not a number train.py prints
    first_bad_iter_line: int | None = None

    @property
    def has_config(self) -> bool:
        return bool(self.config_files or self.config)


class _Phases:
    """The phase of each iteration line as the log goes: after_eval (its time includes the eval, and any
    checkpoint, printed just before it: iteration 0 included), warmup (the first iterations of the process),
    or timed. Used by both passes, so they agree."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.eval_at: int | None = None
        self.checkpoint = False

    def eval(self, it: int) -> None:
        self.eval_at, self.checkpoint = it, False

    def saved(self) -> None:
        if self.eval_at is not None:
            self.checkpoint = True

    def of(self, it: int) -> str:
        if self.first is None:
            self.first = it
        if it == self.eval_at:
            return "after_eval"
        return "warmup" if it < self.first + TIMING_WARMUP_ITERS else "timed"


def _check_order(source: str, prev: int | None, it: int, n: int, what: str) -> None:
    if prev is not None and it <= prev:
        raise NanoGPTLogError(
            f"{source} holds more than one training run ({what} {it} at line {n} follows {what} {prev}): "
            "split it into one file per run"
        )


def parse_log(lines: Iterable[str | None], source: str = "<log>") -> ParsedLog:
    """Read what train.py printed (read_lines or text_lines). Raises NanoGPTLogError for a file that is not
    a nanoGPT log."""
    log = ParsedLog(source=source)
    phases = _Phases()
    in_traceback = False
    unparsed: set[str] = set()
    last: tuple | None = None  # the latest iter event (an IterLine per line would cost memory and time)
    for ev in _scan(lines):
        kind = ev[0]
        if kind == "iter":
            _, it, loss, ms, mfu, n = ev
            if last is not None:
                _check_order(source, last[1], it, n, "iter")
                log.iter_step = math.gcd(log.iter_step, it - last[1])
            else:
                log.first = IterLine(it, loss, ms, mfu, n)
            last = ev
            phase = phases.of(it)
            log.n_iters += 1
            log.ms_sum += ms
            if phase == "after_eval":
                log.spike_iters.append(it)
                log.spike_ms.append(ms)
                log.spike_checkpoint.append(phases.checkpoint)
            elif phase == "timed":
                if ms > 0:
                    log.timed_ms.append(ms)
                else:
                    log.zero_ms += 1
            if mfu is not None:
                log.printed_mfu_last = mfu
            if log.diverged is None and not math.isfinite(loss):
                log.diverged = (it, "training loss", loss)
            log.tail_error = None
            in_traceback = False
        elif kind == "eval":
            _, it, train, val, n = ev
            _check_order(source, log.last_eval.it if log.last_eval else None, it, n, "step")
            line = EvalLine(it, train, val, n)
            phases.eval(it)
            if log.first_eval is None:
                log.first_eval = line
            elif log.last_eval is not None:
                log.eval_step = math.gcd(log.eval_step, it - log.last_eval.it)
            log.last_eval = line
            log.n_evals += 1
            if math.isfinite(val) and (log.best_val is None or val < log.best_val.val_loss):
                log.best_val = line
            if log.diverged is None and not (math.isfinite(train) and math.isfinite(val)):
                log.diverged = (it, "eval", train if not math.isfinite(train) else val)
        elif kind == "checkpoint":
            phases.saved()
        elif kind == "config_file":
            if len(log.config_files) < MAX_CONFIG_FILES:
                log.config_files.append(ev[1])
        elif kind == "override":
            if ev[1] in SETTABLE_KEYS:
                log.config[ev[1]] = _literal(ev[2])
                unparsed.discard(ev[1])
        elif kind == "echo":
            key = ev[1]
            if key in SETTABLE_KEYS:
                value = _echo_value(ev[2])
                if value is _UNPARSED:
                    unparsed.add(key)
                    log.config.pop(key, None)
                else:
                    log.config[key] = value
                    unparsed.discard(key)
        elif kind == "tokens":
            log.tokens_per_iter = ev[1]
        elif kind == "vocab":
            log.vocab_size = ev[1]
        elif kind == "params":
            log.params_m = ev[1]
        elif kind == "compiling":
            log.compiling = True
        elif kind == "long":
            log.long_lines += 1
        elif kind == "bad_iter":
            log.bad_iter_lines += 1
            if log.first_bad_iter_line is None:
                log.first_bad_iter_line = ev[1]
        elif kind == "other":
            log.other_lines += 1
            text = ev[1]
            if "Traceback (most recent call last)" in text:
                in_traceback = True
            elif in_traceback and last is not None and EXCEPTION_RE.match(text):
                log.tail_error = text[:200]
    log.unparsed_config = sorted(unparsed)
    if last is not None:
        log.last = IterLine(*last[1:])
    if log.first is None:
        what = "only eval lines" if log.n_evals else "no 'iter N: loss X, time Y ms, mfu Z%' lines"
        raise NanoGPTLogError(f"{source} is not a nanoGPT train.py training log ({what})")
    return log


# ---------------------------------------------------------------------------------------------------
# The config the run used


@dataclass
class EffectiveConfig:
    """The config a run used: the log's values over train.py's defaults, with --set on top."""

    values: dict[str, Any]
    source: dict[str, str]  # key -> "log" | "set" | "default" | "derived" | "hwinfo"
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
        out[key] = _check_value(key, _literal(value), "--set")
    return out


def _check_value(key: str, value: Any, where: str) -> Any:
    """value of the type train.py's default has, inside the range train.py could run with."""
    default = GPT2_VOCAB_SIZE if key == "vocab_size" else TRAIN_PY_DEFAULTS.get(key)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise NanoGPTLogError(f"{where}: {key} = {value!r} should be True or False")
    elif isinstance(default, int):
        if isinstance(value, str) and value.lstrip("+-").isdigit():  # past the int() digit limit
            raise NanoGPTLogError(f"{where}: {key} = {_short(value)} is far too large for train.py")
        if isinstance(value, bool) or not isinstance(value, int):
            raise NanoGPTLogError(f"{where}: {key} = {_short(value)} should be a whole number")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise NanoGPTLogError(f"{where}: {key} = {_short(value)} should be a number")
        value = float(value)
    elif isinstance(default, str) and not isinstance(value, str):
        value = str(value)
    if key in _RANGES:
        lo, hi = _RANGES[key]
        if not lo <= value <= hi:
            what = "at least 1" if lo == 1 else f"between {lo:g} and {'1' if hi < 1 else f'{hi:g}'}"
            if lo == 0 and hi == MAX_WHOLE:
                what = "0 or more"
            raise NanoGPTLogError(f"{where}: {key} = {_short(value)} is impossible: it must be {what}")
    return value


def _short(value: Any) -> str:
    """repr(value), cut to 60 characters (a value from a hostile log can be any length)."""
    if isinstance(value, int) and abs(value) >= 10**30:
        return f"a number of about {int(value.bit_length() * math.log10(2))} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def effective_config(
    log: ParsedLog, user_set: dict[str, Any] | None = None, bf16_supported: bool | None = None
) -> EffectiveConfig:
    """Fill in what the log does not say. A key is `assumed` when it comes from --set, or from train.py's
    defaults in a log that has no config echo. A log without one is refused unless --set gives the keys of
    REQUIRED_WITHOUT_ECHO. bf16_supported: what hwinfo says of the GPU (decides train.py's default dtype)."""
    user_set = dict(user_set or {})
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    notes: list[str] = []
    if not log.has_config:
        missing = [k for k in REQUIRED_WITHOUT_ECHO if k not in user_set]
        if missing:
            said = [
                f"'number of parameters: {log.params_m:.2f}M'" if log.params_m is not None else "",
                f"'tokens per iteration will be: {log.tokens_per_iter:,}' (batch_size x block_size x "
                "gradient_accumulation_steps)"
                if log.tokens_per_iter is not None
                else "",
            ]
            said_text = f" (the log says {' and '.join(s for s in said if s)})" if any(said) else ""
            raise NanoGPTLogError(
                f"{log.source} has no config echo (no 'Overriding config with' or 'Overriding:' lines), so its "
                f"model, batch and device are unknown{said_text}: pass "
                + " ".join(f"--set {k}={'cpu' if k == 'device' else 'N'}" for k in missing)
            )
    for key in TRAIN_PY_DEFAULTS:
        if key in user_set:
            values[key], source[key] = user_set[key], "set"
            if key in log.config and log.config[key] != user_set[key]:
                notes.append(f"--set {key}={user_set[key]!r} replaces the log's {_short(log.config[key])}")
        elif key in log.config:
            values[key], source[key] = _check_value(key, log.config[key], log.source), "log"
        else:
            values[key], source[key] = TRAIN_PY_DEFAULTS[key], "default"
    if log.unparsed_config:
        notes.append(
            f"config echo: could not read {', '.join(log.unparsed_config)} (an expression, not a value)"
        )

    if "vocab_size" in user_set:
        values["vocab_size"], source["vocab_size"] = user_set["vocab_size"], "set"
    elif log.vocab_size is not None:
        values["vocab_size"], source["vocab_size"] = (
            _check_value("vocab_size", log.vocab_size, log.source),
            "log",
        )
    else:
        values["vocab_size"], source["vocab_size"] = GPT2_VOCAB_SIZE, "default"

    # Read off the log itself where the config is silent.
    if source["eval_interval"] == "default" and log.eval_step:
        values["eval_interval"], source["eval_interval"] = log.eval_step, "derived"
    if source["log_interval"] == "default" and log.iter_step:
        values["log_interval"], source["log_interval"] = log.iter_step, "derived"
    if source["max_iters"] == "default" and not log.has_config:
        values["max_iters"], source["max_iters"] = log.last.it, "derived"
        notes.append(f"max_iters not in the log: taken as the last iteration logged ({log.last.it})")

    device = str(values["device"]).strip()
    if not DEVICE_RE.fullmatch(device):
        where = "--set" if source["device"] == "set" else log.source
        raise NanoGPTLogError(
            f"{where}: device = {_short(device)} is not a device train.py runs on (cpu, cuda, cuda:N, mps, xpu): "
            "pass the right one with --set device=cpu"
        )
    values["device"] = device
    device_type = device.split(":")[0]
    if device_type != "cuda":
        # train.py autocasts only on CUDA: elsewhere the run is float32 whatever dtype says.
        dtype, source["dtype"] = "fp32", "derived"
    else:
        name = str(values["dtype"])
        if name not in DTYPE_NAMES:
            raise NanoGPTLogError(
                f"{log.source}: unknown dtype {_short(name)}: train.py takes {', '.join(DTYPE_NAMES)}"
            )
        if source["dtype"] == "default" and bf16_supported is not None:
            name = "bfloat16" if bf16_supported else "float16"
            values["dtype"], source["dtype"] = name, "hwinfo"
            notes.append(
                f"dtype not in the log: {name}, train.py's choice for this GPU "
                f"({'compute capability 8.0 or newer supports bfloat16' if bf16_supported else 'no bfloat16'}, "
                "from --hwinfo)"
            )
        elif source["dtype"] == "default":
            notes.append("dtype not in the log: assumed bfloat16 (train.py's default on a GPU with bf16)")
        # train.py sets allow_tf32 on CUDA, so a float32 run does its matmuls in TF32.
        dtype = "tf32" if name == "float32" else DTYPE_NAMES[name]

    batch, block = values["batch_size"], values["block_size"]
    if log.tokens_per_iter is not None:
        per_micro = batch * block
        if log.tokens_per_iter == 0:
            raise NanoGPTLogError(
                f"{log.source}: 'tokens per iteration will be: 0' is impossible: a training run reads tokens"
            )
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
    if log.long_lines:
        notes.append(
            f"{log.long_lines} line(s) longer than {MAX_LINE_CHARS:,} characters skipped (train.py prints none)"
        )
    if log.bad_iter_lines:
        notes.append(
            f"{log.bad_iter_lines} iteration line(s) with a time or mfu that is not a number train.py prints "
            f"skipped (the first at line {log.first_bad_iter_line}): those iterations are missing"
        )
    if log.zero_ms:
        notes.append(f"{log.zero_ms} iteration(s) printed with time 0.00ms kept out of the medians")

    assumed = [
        k for k in RECORDED_KEYS if source[k] == "set" or (source[k] == "default" and not log.has_config)
    ]
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


# ---------------------------------------------------------------------------------------------------
# The run record


@dataclass
class ImportedRun:
    """One log as a devicebench run: run.json fields; steps.csv and evals.csv rows come from run_rows."""

    meta: dict


def order_stats(values: array) -> dict[str, float | None]:
    """Median, p10, p90 (bench.metrics.percentile's linear interpolation) and mean of an array('d'),
    sorted in place without a copy, so a log of any length needs 8 bytes per timed iteration."""
    import numpy as np

    n = len(values)
    if not n:
        return {"ms_median": None, "ms_p10": None, "ms_p90": None, "ms_mean": None}
    view = np.frombuffer(values, dtype=np.float64)  # the array's own memory: sorted in place
    view.sort()
    out = {"ms_mean": math.fsum(values) / n}
    for name, q in (("ms_median", 50), ("ms_p10", 10), ("ms_p90", 90)):
        pos = (n - 1) * q / 100.0
        lo = int(pos)
        hi = min(lo + 1, n - 1)
        out[name] = float(view[lo] + (view[hi] - view[lo]) * (pos - lo))
    return out  # the view goes with this frame, releasing the array's buffer


def eval_spikes(log: ParsedLog, cfg: EffectiveConfig, median: float | None) -> list[dict]:
    """Every after_eval iteration with the eval's (and checkpoint's) estimated cost.

    Later ones: the iteration's time minus the median step. Iteration 0 (the first of the process, whose
    time also holds start-up and any compilation): the typical eval cost of the later evals, else one
    estimated from eval_iters (a forward pass is about a third of a train step); the rest is start-up.
    """
    if median is None:
        return []
    out = []
    for it, ms, saved in zip(log.spike_iters, log.spike_ms, log.spike_checkpoint, strict=True):
        out.append({"iter": it, "ms": ms, "eval_ms_est": max(0.0, ms - median),
                    "includes": "eval + checkpoint" if saved else "eval"})  # fmt: skip
    if out and log.first is not None and out[0]["iter"] == log.first.it:
        first = out[0]
        later = [s["eval_ms_est"] for s in out[1:] if s["includes"] == "eval"] or [
            s["eval_ms_est"] for s in out[1:]
        ]
        if later:
            eval_ms = _median(later)
            how = f"the median eval cost of the {len(later)} later eval(s)"
        else:
            v = cfg.values
            eval_ms = 2 * v["eval_iters"] * median / (3 * v["gradient_accumulation_steps"])
            how = (
                f"2 x eval_iters ({v['eval_iters']}) forward passes at a third of a train step each "
                "(no later eval to measure it)"
            )
        eval_ms = min(eval_ms, max(0.0, first["ms"] - median))
        startup = "compilation and start-up" if cfg.compile == "on" and log.compiling else "start-up"
        first.update(
            {
                "first": True,
                "eval_ms_est": eval_ms,
                "eval_ms_source": how,
                "startup_ms_est": max(0.0, first["ms"] - median - eval_ms),
                "includes": f"eval + {startup}",
            }
        )
    return out


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def build_run(
    log: ParsedLog,
    cfg: EffectiveConfig,
    peak_flops: dict,
    summarise: Any,
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

    stats = order_stats(log.timed_ms)
    median = stats["ms_median"]
    # tokens/s, FLOP/s and MFU from the median by bench.metrics' one formula; the spread from all timed steps
    summary = summarise(
        [median] if median is not None else [], cfg.tokens_per_iter, fpi, peak_flops.get("value")
    )
    summary.update(stats)
    spikes = eval_spikes(log, cfg, median)
    first = spikes[0] if spikes and spikes[0].get("first") else None
    status, error = _status(log, v)
    last = log.last
    # the printed times sum to the wall time only when every iteration is there (a skipped line makes it short)
    every_iter_logged = v["log_interval"] == 1 and log.n_iters == last.it - log.first.it + 1
    summary.update(
        {
            "final_train_loss": log.last_eval.train_loss if log.last_eval else None,
            "final_val_loss": log.last_eval.val_loss if log.last_eval else None,
            "best_val_loss": log.best_val.val_loss if log.best_val else None,
            "best_val_iter": log.best_val.it if log.best_val else None,
            "iters_done": last.it + 1,
            "warmup_iters": TIMING_WARMUP_ITERS,
            # the first step without the step-0 eval that train.py's timer put inside it
            "first_step_ms": log.first.ms - first["eval_ms_est"] if first else log.first.ms,
            "first_iter_printed_ms": log.first.ms,
            "eval_ms_total": sum(s["eval_ms_est"] for s in spikes) if spikes else None,
            "eval_ms_source": "estimated: time of the iteration after each eval minus the median iteration",
            "eval_spikes": spikes[:MAX_SPIKES_LISTED],
            "eval_spikes_count": len(spikes),
            "eval_spike_ms": [s["eval_ms_est"] for s in spikes[:MAX_SPIKES_LISTED]],
            "wall_s": log.ms_sum / 1e3 if every_iter_logged else None,
            "peak_mem_bytes": None,
            "peak_mem_kind": None,
            "nanogpt_mfu_printed": log.printed_mfu_last / 100 if log.printed_mfu_last is not None else None,
            "nanogpt_achieved_flops_per_s": log.printed_mfu_last / 100 * NANOGPT_PEAK_FLOPS
            if log.printed_mfu_last is not None
            else None,
        }
    )
    if log.diverged:
        it, where, value = log.diverged
        summary["diverged"] = {"iter": it, "where": where, "loss": str(value)}
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
        "params": count_params(model),
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
            "long_lines_skipped": log.long_lines,
            "bad_iter_lines_skipped": log.bad_iter_lines,
        },
        "summary": summary,
    }
    return ImportedRun(meta=meta)


def run_rows(lines: Iterable[str | None], cfg: EffectiveConfig) -> Iterator[tuple[str, tuple]]:
    """("step", (iter, ms, loss, lr, phase)) and ("eval", (iter, split, loss, ms)) in the log's order,
    from a second reading of the log (the same phases as parse_log). train.py does not time its evals:
    their ms is NaN. NaN and inf losses are kept as they are."""
    v = cfg.values
    phases = _Phases()
    for ev in _scan(lines):
        if ev[0] == "iter":
            _, it, loss, ms, _mfu, _n = ev
            lr = lr_at(it, v) if v["decay_lr"] else v["learning_rate"]
            yield "step", (it, ms, loss, lr, phases.of(it))
        elif ev[0] == "eval":
            _, it, train, val, _n = ev
            phases.eval(it)
            yield "eval", (it, "train", train, math.nan)
            yield "eval", (it, "val", val, math.nan)
        elif ev[0] == "checkpoint":
            phases.saved()


def _status(log: ParsedLog, v: dict) -> tuple[str, str | None]:
    last = log.last.it
    if log.diverged:
        it, where, value = log.diverged
        went_on = f"; train.py went on to iter {last}, training nothing" if last > it else ""
        return (
            "failed",
            f"diverged: {where} {'loss ' if where == 'eval' else ''}became {value} at iter {it}{went_on}",
        )
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
