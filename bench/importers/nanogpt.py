"""Parse nanoGPT train.py logs into what a devicebench run records. No torch.

What train.py prints (karpathy/nanoGPT: train.py, configurator.py, model.py), in any version since 2023:

    python train.py config/train_shakespeare_char.py --device=mps     the command line, if the user kept it
    Overriding config with config/train_shakespeare_char.py:          then the file, echoed
    Overriding: max_iters = 2000                                      each --key=value of the command line
    tokens per iteration will be: 16,384
    found vocab_size = 65 (inside data/shakespeare_char/meta.pkl)
    Initializing from OpenAI GPT-2 weights: gpt2-medium              fine-tuning: the shape is GPT-2's
    forcing vocab_size=50257, block_size=1024, bias=True
    number of parameters: 10.65M
    compiling the model... (takes a ~minute)
    step 250: train loss 1.9641, val loss 2.0635                      an eval, every eval_interval iters
    saving checkpoint to out-shakespeare-char
    iter 250: loss 1.9927, time 479.12ms, mfu 9.98%                   every log_interval iters
    iter 1631: loss 3.1, time 563.21ms                                before Feb 2023: no mfu

Quote markers and timestamps pasted before lines are taken off first. The time of `iter N` includes the
eval and checkpoint printed just before it; a process's first iteration also holds start-up and compilation.
The printed mfu is nanoGPT's FLOPs per iteration of one process over an A100's 312 TFLOP/s, a 0.9/0.1 running
average from the 5th iteration: inverted over the log's lines, it checks the config worked out (`cross_check`).
A file may hold several attempts (a run started again). A log is read twice, streamed: `parse_log` gathers the
chosen attempt's figures, `run_rows` replays its lines into rows. Every pattern is linear in the line.
"""

from __future__ import annotations

import ast
import codecs
import copy
import math
import re
import statistics
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.config import TrainConfig
from bench.config import lr_at as schedule_lr_at
from bench.userfiles import open_user_file
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
MAX_ATTEMPTS = 1000  # runs started again in one file (each keeps its own figures while the file is read)
BLOWUP = 1.5  # a training loss this many times iter 0's (the untrained model's) has diverged
MFU_AGREE = 0.10  # the recomputed FLOPs may differ from nanoGPT's printed mfu by this much
MFU_PRINT_STEP = 0.005  # percentage points: train.py prints the mfu with two decimals
ACCUM_TOL = 0.1  # micro-batches the printed mfu may put gradient_accumulation_steps off a whole number

# train.py's defaults (GPT-2 124M on OpenWebText); `dtype` is machine-dependent and handled apart.
TRAIN_PY_DEFAULTS: dict[str, Any] = {
    "out_dir": "out", "eval_interval": 2000, "log_interval": 1, "eval_iters": 200, "eval_only": False,
    "always_save_checkpoint": True, "init_from": "scratch", "wandb_log": False, "wandb_project": "owt",
    "wandb_run_name": "gpt2", "dataset": "openwebtext", "gradient_accumulation_steps": 40, "batch_size": 12,
    "block_size": 1024, "n_layer": 12, "n_head": 12, "n_embd": 768, "dropout": 0.0, "bias": False,
    "learning_rate": 6e-4, "max_iters": 600000, "weight_decay": 1e-1, "beta1": 0.9, "beta2": 0.95,
    "grad_clip": 1.0, "decay_lr": True, "warmup_iters": 2000, "lr_decay_iters": 600000, "min_lr": 6e-5,
    "backend": "nccl", "device": "cuda", "dtype": "bfloat16", "compile": True,
}  # fmt: skip
# model.py's from_pretrained: the shape of each GPT-2 checkpoint
GPT2_SHAPES = {"gpt2": (12, 12, 768), "gpt2-medium": (24, 16, 1024), "gpt2-large": (36, 20, 1280),
               "gpt2-xl": (48, 25, 1600)}  # fmt: skip

MODEL_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "dropout", "bias")
TRAIN_KEYS = (
    "max_iters", "learning_rate", "min_lr", "warmup_iters", "lr_decay_iters", "decay_lr", "weight_decay",
    "beta1", "beta2", "grad_clip", "eval_interval", "eval_iters",
)  # fmt: skip
RUN_KEYS = ("batch_size", "device", "dtype", "compile", "gradient_accumulation_steps", "log_interval")
RECORDED_KEYS = MODEL_KEYS + TRAIN_KEYS + RUN_KEYS  # `assumed` lists those of them the log did not say
SETTABLE_KEYS = tuple(sorted(set(TRAIN_PY_DEFAULTS) | {"vocab_size"}))
DTYPE_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
# Keys every FLOP figure rests on; without a full config echo each must be in the log, derived, or --set.
FLOP_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "batch_size",
             "gradient_accumulation_steps")  # fmt: skip
REQUIRED_WITHOUT_ECHO = ("device",) + FLOP_KEYS

# Where a value came from, in the order of trust (the user's word first).
SET, LOG, DERIVED, FROM_MFU, HWINFO, DEFAULT = ("set", "log", "derived", "derived from the log's mfu", "hwinfo",
                                                "default")  # fmt: skip

_WHOLE = (*FLOP_KEYS, "eval_interval", "log_interval", "eval_iters")
_FRACTION = ("dropout", "beta1", "beta2")  # in [0, 1)

# A device train.py can run on: model.to(device) takes nothing else.
DEVICE_RE = re.compile(r"(cpu|mps|cuda(?::\d{1,3})?|xpu(?::\d{1,3})?)")

# Numbers as Python prints floats, with no ambiguous split of a digit run (linear time, never quadratic).
_NUM = r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf)"
_INT = r"\d{1,15}"
# A fork may print a unit after a loss (`loss 6.0659 BPC, time ...`): one short word, read past.
_UNIT = r"(?: [A-Za-z]{1,8})?"
ITER_RE = re.compile(
    rf"\biter ({_INT}): loss ({_NUM}){_UNIT}, time (\d+(?:\.\d*)?)ms(?:, mfu (-?\d+(?:\.\d*)?)%)?"
)
# An iteration line whose time or mfu cannot be read (nan, inf, negative, cut short): skipped and counted.
BAD_ITER_RE = re.compile(rf"\biter {_INT}: loss \S+{_UNIT}, time ")
STEP_RE = re.compile(rf"\bstep ({_INT}): train loss ({_NUM}){_UNIT}, val loss ({_NUM})")
OVERRIDE_RE = re.compile(r"(\w+) = (.*)")
TOKENS_RE = re.compile(r"tokens per iteration(?: will be)?: (\d{1,3}(?:,\d{3}){0,5}|\d{1,18})(?:\s|$)")
VOCAB_RE = re.compile(r"found vocab_size = (\d{1,12})(?:\s|$)")
VOCAB_DEFAULT_RE = re.compile(r"defaulting to vocab_size of GPT-2 to (\d{1,12})")
PARAMS_RE = re.compile(r"number of parameters: (\d{1,12}(?:\.\d*)?)M")
INIT_RE = re.compile(r"Initializing from OpenAI GPT-2 weights: (gpt2(?:-medium|-large|-xl)?)\b")
FORCING_RE = re.compile(r"forcing vocab_size=(\d{1,12}), block_size=(\d{1,12}), bias=(True|False)")
DROPOUT_RE = re.compile(rf"overriding dropout rate to ({_NUM})")
ASSIGN_RE = re.compile(r"([A-Za-z_]\w*)\s*=\s*(.+)")
EXCEPTION_RE = re.compile(r"(?:[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Failed)\b|KeyboardInterrupt)")
# the command line the user kept above the output: `python train.py config/x.py --device=mps`
COMMAND_RE = re.compile(r"(?:^|[\s/\\])train\.py(?:\s|$)")
ARG_RE = re.compile(r"--(\w+)=(\S+)")
NPROC_RE = re.compile(r"--nproc[_-]per[_-]node[= ](\d{1,4})\b")
TIME_REPORT_RE = re.compile(r"\d[\d.:]*s user\b")  # the shell's `time` after the run: `... 12.3s user`
# What comes before a line pasted into an issue or a post: quote markers, then a timestamp.
QUOTE_RE = re.compile(r"(?:[ \t]*>[ \t]?)+")
STAMP_RE = re.compile(
    r"\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?\]?[ \t]+"
    r"|\[?\d\d:\d\d:\d\d(?:[.,]\d{1,9})?\]?[ \t]+"  # a time of day alone
)
RANK_RE = re.compile(r"\[(?:rank|default)\d{1,5}\]:[ \t]?")  # torchrun's --tee / log prefix
PREAMBLE = ("num decayed parameter tensors", "num non-decayed parameter tensors", "using fused AdamW")
OTHER_TRAIN_PY = ("Initializing a new model", "loading weights from pretrained gpt", *PREAMBLE)


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
    with open_user_file(path, what="", error=NanoGPTLogError, hint="pass a nanoGPT train.py log") as f:
        try:
            head = f.read(BINARY_SNIFF_BYTES)
        except OSError as e:
            raise NanoGPTLogError(f"{path} cannot be read ({e.strerror or e})") from None
    # a crash or power loss can leave blocks of NUL bytes in a log being written: padding, not binary content
    core = re.sub(rb"\0{16,}", b"", head)
    if not core.strip():
        what = "holds only NUL bytes (what a crash can leave of a file)" if b"\0" in head else "is empty"
        raise NanoGPTLogError(f"{path} {what}: pass the file train.py's output was saved to")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif (enc := _bomless_utf16(head)) is not None:
        encoding = enc
    elif b"\0" in core or len(core) - len(core.translate(None, _CONTROL_BYTES)) > 0.01 * len(core):
        raise NanoGPTLogError(f"{path} is a binary file, not a nanoGPT train.py log")
    else:
        encoding = "utf-8-sig"
    return _stream(Path(path), encoding)


# bytes no text log holds more than a few of (tab, newlines, form feed, ESC of colours and backspace are text)
_CONTROL_BYTES = bytes([*range(0, 8), *range(14, 27), *range(28, 32), 127])


def _bomless_utf16(head: bytes) -> str | None:
    """UTF-16 written without a BOM (some Windows tools): text whose every other byte is (nearly always) NUL."""
    even, odd = head[0 : len(head) - len(head) % 2 : 2], head[1 : len(head) - len(head) % 2 : 2]
    for text, zeros, encoding in ((even, odd, "utf-16-le"), (odd, even, "utf-16-be")):
        if len(text) >= 8 and zeros.count(0) >= 0.9 * len(zeros) and text.count(0) <= 0.01 * len(text):
            return encoding
    return None


def _stream(path: Path, encoding: str) -> Iterator[str | None]:
    with open(path, encoding=encoding, errors="replace", newline=None) as f:
        while line := f.readline(MAX_LINE_CHARS + 1):
            if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
                while line and not line.endswith("\n"):  # skip the rest of it, a bounded piece at a time
                    line = f.readline(MAX_LINE_CHARS)
                yield None
            else:
                yield line


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


def unprefixed(raw: str) -> str:
    """A line without the quote markers and the timestamp pasted before it (indentation after them kept)."""
    at = m.end() if (m := QUOTE_RE.match(raw)) else 0
    for prefix in (STAMP_RE, RANK_RE):
        if m := prefix.match(raw, at):
            at = m.end()
    return raw[at:]


def _command(text: str) -> tuple:
    """("command", {key: value}, nproc, config files, after) of a `... train.py config/x.py --key=value` line;
    after: the shell's `time` report that follows a run (it names the command too)."""
    tail = text[COMMAND_RE.search(text).end() :]
    args = {k: _literal(v) for k, v in ARG_RE.findall(tail) if k in SETTABLE_KEYS}
    files = [w for w in tail.split() if not w.startswith("-") and w.endswith(".py")][:MAX_CONFIG_FILES]
    nproc = int(m.group(1)) if (m := NPROC_RE.search(text)) else None
    return ("command", args, nproc, files, bool(TIME_REPORT_RE.search(tail)))


def _scan(lines: Iterable[str | None]) -> Iterator[tuple]:
    """(kind, ...) for each line: iter, bad_iter, eval, checkpoint, config_file, override, echo, command,
    tokens, vocab, params, init_from, forcing, dropout, resume, compiling, train_py, traceback, exception,
    other, long. Each line costs time linear in its length."""
    in_echo = in_traceback = False
    command: str | None = None  # a command line continued with a trailing backslash
    for n, raw in enumerate(lines, 1):
        if raw is None:
            yield ("long", n)
            continue
        body = unprefixed(raw.rstrip("\r\n"))
        line = body.strip()
        if command is not None:
            command += " " + line.rstrip("\\")
            if not line.endswith("\\") or len(command) > MAX_LINE_CHARS:
                yield _command(command)
                command = None
            continue
        if not line:
            continue
        if "iter " in line and (m := ITER_RE.search(line)):
            it, loss, ms, mfu = m.groups()
            yield ("iter", int(it), float(loss), float(ms), None if mfu is None else float(mfu), n)
            in_echo = in_traceback = False
            continue
        if "iter " in line and BAD_ITER_RE.search(line):
            yield ("bad_iter", n)
            in_echo = False
            continue
        if "step " in line and (m := STEP_RE.search(line)):
            yield ("eval", int(m.group(1)), float(m.group(2)), float(m.group(3)), n)
            in_echo = in_traceback = False
            continue
        if line.startswith("saving checkpoint to"):
            yield ("checkpoint", n)
            continue
        if line.startswith("Overriding config with ") and line.endswith(":"):
            yield ("config_file", line[len("Overriding config with ") : -1])
            in_echo = True
            continue
        if line.startswith("Overriding: ") and (m := OVERRIDE_RE.match(line, len("Overriding: "))):
            yield ("override", m.group(1), m.group(2))
            in_echo = False
            continue
        event = _train_py_line(line)
        if event is not None:
            in_echo = False
            yield event
            continue
        if "Traceback (most recent call last)" in line:
            in_traceback = True
            yield ("traceback", n)
            continue
        if in_traceback and not body[0].isspace() and EXCEPTION_RE.match(line):
            yield ("exception", line[:200])
            continue
        after_traceback = not in_traceback or TIME_REPORT_RE.search(line)
        if after_traceback and not (in_echo or line.startswith(("#", "File "))) and COMMAND_RE.search(line):
            if line.endswith("\\"):
                command = line.rstrip("\\")
            else:
                yield _command(line)
            continue
        # the echoed config file (or its assignments pasted without the header): top-level ones only
        top = not body[0].isspace()
        if top and (m := ASSIGN_RE.fullmatch(body.rstrip())) and (in_echo or m.group(1) in TRAIN_PY_DEFAULTS):
            yield ("echo", m.group(1), m.group(2))
            continue
        if not in_echo:
            yield ("other", line, n)


# (event, text to find first ("": the line's start), pattern matched there, its value)
_TRAIN_PY_LINES = (
    ("tokens", "tokens per iteration", TOKENS_RE, lambda m: int(m[1].replace(",", ""))),
    ("vocab", "found vocab_size = ", VOCAB_RE, lambda m: int(m[1])),
    ("vocab", "defaulting to vocab_size", VOCAB_DEFAULT_RE, lambda m: int(m[1])),
    ("params", "number of parameters: ", PARAMS_RE, lambda m: float(m[1])),
    ("init_from", "", INIT_RE, lambda m: m[1]),
    ("forcing", "", FORCING_RE, lambda m: (int(m[1]), int(m[2]), m[3] == "True")),
    ("dropout", "", DROPOUT_RE, lambda m: float(m[1])),
)


def _train_py_line(line: str) -> tuple | None:
    """The event of one of train.py's own informational lines, or None."""
    for kind, needle, pattern, value in _TRAIN_PY_LINES:
        if (at := line.find(needle)) >= 0 and (m := pattern.match(line, at)):
            return (kind, value(m))
    if line.startswith("Resuming training from"):
        return ("resume", True)
    if line.startswith("compiling the model"):
        return ("compiling", True)
    if line.startswith(OTHER_TRAIN_PY):
        return ("train_py", line.startswith(PREAMBLE))
    return None


class _Attempts:
    """Which attempt (0, 1, ...) each event belongs to: a config echo, Overriding, tokens or command line after
    an iteration, an eval or a traceback, or an iteration or eval count going back, starts a new one. Repeats
    before the first step are one run (under torchrun every rank prints the echo and the tokens line). Used by
    both passes, so they agree."""

    STARTS = ("config_file", "override", "command", "tokens")

    def __init__(self) -> None:
        self.n = -1
        self._new()

    def _new(self, same_config: bool = False) -> None:
        self.same_config = same_config  # a count going back with no new echo: the run's own output goes on
        self.n += 1
        self.progress = self.crashed = False
        self.last: dict[str, int | None] = {"iter": None, "eval": None}  # the last iteration and eval numbers

    def repeats(self, ev: tuple) -> bool:
        """An iteration (or eval) line with the number of the one before: another rank printing the same step."""
        last = self.last.get(ev[0])
        return last is not None and ev[1] == last and not self.crashed

    def of(self, ev: tuple) -> int:
        kind = ev[0]
        if kind == "command" and ev[4]:
            return self.n  # the shell's `time` report of the run just printed, not a new run
        if kind in self.STARTS and (self.progress or self.crashed):
            self._new()
        elif kind in self.last:
            if self.last[kind] is not None and ev[1] <= self.last[kind]:
                self._new(same_config=not self.crashed)
            self.last[kind] = ev[1]
            self.progress = True
        elif kind == "traceback":
            self.crashed = True
        return self.n


# ---------------------------------------------------------------------------------------------------
# Pass 1: what the log says


@dataclass
class IterLine:
    it: int
    loss: float
    ms: float
    mfu_pct: float | None  # None: not printed (old train.py) or -100.00% (not measured yet)
    line_no: int


@dataclass
class EvalLine:
    it: int
    train_loss: float
    val_loss: float
    line_no: int


@dataclass
class ParsedLog:
    """What one attempt of a train.py log says: its config and running figures, never its lines."""

    source: str
    attempt: int = 1  # 1-based, in the file
    attempts: list[str] = field(default_factory=list)  # one line per attempt in the file, when several
    config: dict[str, Any] = field(default_factory=dict)  # config echo and Overriding lines, in order
    overridden: set[str] = field(default_factory=set)  # keys of the Overriding lines
    command: dict[str, Any] = field(default_factory=dict)  # --key=value of a command line in the log
    command_seen: bool = False
    nproc: int | None = None  # torchrun --nproc_per_node on that command line
    config_files: list[str] = field(default_factory=list)  # `Overriding config with FILE:` (a full echo)
    command_files: list[str] = field(default_factory=list)  # config files named on the command line only
    unparsed_config: list[str] = field(default_factory=list)  # echoed keys whose value is an expression
    tokens_per_iter: int | None = None
    vocab_size: int | None = None
    params_m: float | None = None  # "number of parameters: X M"
    init_from: str | None = None  # "Initializing from OpenAI GPT-2 weights: gpt2-medium"
    forcing: tuple[int, int, bool] | None = None  # vocab_size, block_size, bias of a GPT-2 checkpoint
    dropout: float | None = None  # "overriding dropout rate to X"
    resumed: bool = False
    compiling: bool = False
    preamble: bool = False  # train.py's optimizer lines, printed just before `compiling the model`
    n_iters: int = 0
    first: IterLine | None = None
    last: IterLine | None = None
    iter_step: int = 0  # gcd of the gaps between logged iterations
    ms_sum: float = 0.0
    timed_ms: array = field(default_factory=lambda: array("d"))  # times of the `timed` iterations
    zero_ms: int = 0  # iterations printed with time 0.00ms (impossible; kept out of the medians)
    after_nan: int = 0  # iterations from the first NaN/inf loss on, kept out of the medians
    has_mfu: bool = False  # iteration lines print an mfu (train.py since Feb 2023)
    mfu_skipped_start: bool = False  # an excerpt's first mfu line followed an eval: not replayed
    printed_mfu_last: float | None = None  # percent
    # nanoGPT's running mfu replayed with a FLOP count of 1: sum of printed values and of replayed values
    mfu_sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # printed, replayed, count
    _ema: float | None = None
    n_evals: int = 0
    last_eval: EvalLine | None = None
    eval_step: int = 0
    best_val: EvalLine | None = None
    # after_eval iterations: their iter, printed ms, and whether a checkpoint was saved after the eval
    spike_iters: array = field(default_factory=lambda: array("q"))
    spike_ms: array = field(default_factory=lambda: array("d"))
    spike_checkpoint: array = field(default_factory=lambda: array("b"))
    diverged: tuple[int, str, float] | None = None  # (iter, where, value) of the first NaN/inf loss
    tracebacks: int = 0
    errors: list[str] = field(default_factory=list)  # the exception line of each traceback (up to 5)
    tail_error: str | None = None  # the exception of a traceback after the last iteration
    other_lines: int = 0  # lines that are not train.py's (warnings, tracebacks, progress)
    long_lines: int = 0  # lines over MAX_LINE_CHARS, skipped unread
    bad_iter_lines: int = 0  # iteration lines whose time or mfu is not a number train.py prints
    inherited_config: bool = False  # the config is the attempt before's (see _inherit_config)
    repeated_iters: int = 0  # lines repeating the iteration number just printed (several ranks printing)
    first_bad_iter_line: int | None = None
    said: str | None = None  # the last of train.py's own lines seen, for messages

    @property
    def full_echo(self) -> bool:
        """The log shows the whole config (the echo of the config file, or the Overriding lines or a command
        line of a run without a config file), so a key it does not name is train.py's default."""
        if self.config_files:
            return True
        shown = not self.command_files and (self.overridden or (self.command_seen and self.from_start))
        return bool(shown) and self._fits_defaults()

    def _fits_defaults(self) -> bool:
        """Overriding lines with no `Overriding config with` header may be a run without a config file, or
        one whose header (and the config file's echo) the author cut: the tokens line tells which, when the
        defaults of the keys not overridden cannot make it (16,384 tokens from a batch of 12 x 1024)."""
        if self.tokens_per_iter is None:
            return True
        value = {**TRAIN_PY_DEFAULTS, **self.config, **self.command}
        per_micro = value["batch_size"] * value["block_size"]
        return isinstance(per_micro, int) and per_micro > 0 and self.tokens_per_iter % per_micro == 0

    @property
    def from_start(self) -> bool:
        """The first iteration line is the first step of the process (not an excerpt that starts mid-run)."""
        return self.first is not None and (self.first.it == 0 or self.resumed)

    def mfu_flops_per_iter(self) -> float | None:
        """nanoGPT's FLOPs per iteration of one process, from its printed running mfu (None without)."""
        printed, replayed, count = self.mfu_sums
        return printed / 100 * NANOGPT_PEAK_FLOPS / replayed if count and printed > 0 else None

    def mfu_resolution(self) -> float:
        """How far the printed mfu's two decimals can move the figure above, relatively."""
        printed, _, count = self.mfu_sums
        return MFU_PRINT_STEP * count / printed if printed > 0 else math.inf


class _Phases:
    """The phase of each iteration line as the log goes: after_eval (its time includes the eval, and any
    checkpoint, printed just before it), warmup (the first iterations of the process, and every one from the
    first NaN loss on: kept out of the medians), or timed. Used by both passes, so they agree."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.eval_at: int | None = None
        self.from_start = self.resumed = self.checkpoint = self.diverged = False

    def take(self, ev: tuple) -> str | None:
        """An iteration's phase; None for other events (an eval, checkpoint or resume moves the state)."""
        kind = ev[0]
        if kind == "eval":
            self.eval_at, self.checkpoint = ev[1], False
            self.diverged |= not (math.isfinite(ev[2]) and math.isfinite(ev[3]))
        elif kind == "checkpoint":
            self.checkpoint = self.eval_at is not None
        elif kind == "resume":
            self.resumed = True
        if kind != "iter":
            return None
        it, loss = ev[1], ev[2]
        if self.first is None:
            self.first, self.from_start = it, it == 0 or self.resumed
        self.diverged |= not math.isfinite(loss)
        if self.diverged:
            return "warmup"
        if it == self.eval_at:
            return "after_eval"
        return "warmup" if self.from_start and it < self.first + TIMING_WARMUP_ITERS else "timed"


def _events(lines: Iterable[str | None]) -> Iterator[tuple[int, tuple]]:
    attempts = _Attempts()
    for ev in _scan(lines):
        if attempts.repeats(ev):
            yield attempts.n, ("repeat_iter", ev[-1])
            continue
        n = attempts.n
        a = attempts.of(ev)
        if a != n and attempts.same_config:
            yield a, ("same_config",)
        yield a, ev


def parse_log(lines: Iterable[str | None], source: str = "<log>", attempt: int | None = None) -> ParsedLog:
    """Read what train.py printed (read_lines): the chosen attempt (1-based; default the last
    one with iteration lines). Raises NanoGPTLogError for a file that is not a nanoGPT log or holds no step."""
    logs: list[ParsedLog] = []
    phases: list[_Phases] = []
    spans: list[list[int]] = []
    for a, ev in _events(lines):
        if a == len(logs):
            if a == MAX_ATTEMPTS:
                raise NanoGPTLogError(
                    f"{source} holds more than {MAX_ATTEMPTS:,} runs started again: split it into one file per run"
                )
            logs.append(ParsedLog(source=source, attempt=a + 1))
            phases.append(_Phases())
            spans.append([0, 0])
        if ev[0] == "same_config":
            _inherit_config(logs[a], logs[a - 1])
            continue
        if len(ev) > 1 and isinstance(ev[-1], int) and ev[0] in ("iter", "eval", "other"):
            spans[a] = [spans[a][0] or ev[-1], ev[-1]]
        _take(logs[a], phases[a], ev)
    for log in logs:
        if log.last is not None:
            it, loss, ms, mfu, n = log.last  # kept as a tuple while reading (an object per line costs)
            log.last = IterLine(it, loss, ms, mfu if mfu is not None and mfu >= 0 else None, n)
    trained = [log for log in logs if log.n_iters]
    if attempt is not None:
        if not 1 <= attempt <= len(logs):
            raise NanoGPTLogError(f"--attempt {attempt}: {source} holds {len(logs)} attempt(s)")
        chosen = logs[attempt - 1]
        if not chosen.n_iters:
            raise NanoGPTLogError(f"{source}: attempt {attempt} {_stopped(chosen)}")
    elif trained:
        chosen = trained[-1]
    elif any(log.last_eval is not None and log.last_eval.it > 0 for log in logs):
        last = max(log.last_eval.it for log in logs if log.last_eval is not None)
        raise NanoGPTLogError(
            f"{source} has eval lines up to step {last:,} but no iteration lines ('iter N: loss X, time Y ms', "
            "printed every log_interval): the times to import are in the lines left out"
        )
    elif any(log.said or log.n_evals for log in logs):
        raise NanoGPTLogError(f"{source}: {_stopped(logs[-1])}")
    else:
        raise NanoGPTLogError(
            f"{source} is not a nanoGPT train.py training log (no 'iter N: loss X, time Y ms' lines)"
        )
    if len(logs) > 1:
        chosen.attempts = [_describe_attempt(log, span) for log, span in zip(logs, spans, strict=True)]
    return chosen


_CONFIG_FIELDS = ("config", "overridden", "command", "command_seen", "nproc", "config_files", "command_files",
                  "unparsed_config", "tokens_per_iter", "vocab_size", "params_m", "init_from", "forcing", "dropout",
                  "compiling", "preamble")  # fmt: skip


def _inherit_config(log: ParsedLog, before: ParsedLog) -> None:
    """An attempt that starts by going back (iter 300, then iter 250) with no echo of its own: the same
    process's output resumed or pasted again, so what the attempt before it said about the config holds."""
    for name in _CONFIG_FIELDS:
        value = getattr(before, name)
        setattr(log, name, copy.copy(value))
    log.inherited_config = True


def _stopped(log: ParsedLog) -> str:
    if log.config.get("eval_only") is True or log.command.get("eval_only") is True:
        return "is an eval_only run: it evaluates and stops, with no training iteration to import"
    after = f" (its last train.py line: {log.said!r})" if log.said else ""
    error = f"; it ended in {log.errors[-1]}" if log.errors else ""
    return f"has no iteration lines: the run stopped before iter 0{after}{error}"


def _describe_attempt(log: ParsedLog, span: list[int]) -> str:
    lines = f"lines {span[0]}-{span[1]}" if span[0] else "no step lines"
    what = f"iters {log.first.it}-{log.last.it}" if log.n_iters else "stopped before iter 0"
    error = f", ended in {log.errors[-1]}" if log.errors else ""
    if log.inherited_config:
        what += f" (going back with no echo of its own: attempt {log.attempt - 1}'s config)"
    return f"attempt {log.attempt} ({lines}): {what}{error}"


def _take(log: ParsedLog, phases: _Phases, ev: tuple) -> None:
    """One event into the attempt's figures."""
    kind, phase = ev[0], phases.take(ev)
    if kind == "iter":
        _, it, loss, ms, mfu, n = ev
        if log.last is not None:
            log.iter_step = math.gcd(log.iter_step, it - log.last[0])
        else:
            log.first = IterLine(it, loss, ms, mfu if mfu is not None and mfu >= 0 else None, n)
        log.last = (it, loss, ms, mfu, n)
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
        elif phases.diverged:
            log.after_nan += 1
        if mfu is not None:
            log.has_mfu = True
            # nanoGPT's running average, replayed with 1 FLOP per iteration and no peak. An excerpt's replay
            # does not start on an after-eval line: its printed value is mostly the unseen lines before it.
            if log._ema is None and phase == "after_eval" and not phases.from_start:
                log.mfu_skipped_start = True
                log.printed_mfu_last = mfu if mfu >= 0 else log.printed_mfu_last
            elif mfu >= 0 and ms > 0:
                inst = 1e3 / ms  # 1 / dt
                log._ema = inst if log._ema is None else 0.9 * log._ema + 0.1 * inst
                log.mfu_sums[0] += mfu
                log.mfu_sums[1] += log._ema
                log.mfu_sums[2] += 1
                log.printed_mfu_last = mfu
        if log.diverged is None and not math.isfinite(loss):
            log.diverged = (it, "training loss", loss)
        elif log.diverged is None and log.first.it == 0 and loss > BLOWUP * log.first.loss > 0:
            # worse than the untrained model it started as: a blow-up short of NaN (fp32 runs rarely reach it)
            log.diverged = (it, "training loss", loss)
        log.tail_error = None
    elif kind == "eval":
        _, it, train, val, n = ev
        line = EvalLine(it, train, val, n)
        if log.last_eval is not None:
            log.eval_step = math.gcd(log.eval_step, it - log.last_eval.it)
        log.last_eval = line
        log.n_evals += 1
        if math.isfinite(val) and (log.best_val is None or val < log.best_val.val_loss):
            log.best_val = line
        if log.diverged is None and not (math.isfinite(train) and math.isfinite(val)):
            log.diverged = (it, "eval", train if not math.isfinite(train) else val)
    elif kind == "config_file":
        if len(log.config_files) < MAX_CONFIG_FILES:
            log.config_files.append(ev[1])
    elif kind in ("override", "echo"):
        key = ev[1]
        if key in SETTABLE_KEYS:
            value = _literal(ev[2]) if kind == "override" else _echo_value(ev[2])
            if value is _UNPARSED:
                log.unparsed_config.append(key)
                log.config.pop(key, None)
            else:
                log.config[key] = value
                if kind == "override":
                    log.overridden.add(key)
    elif kind == "command":
        log.command.update(ev[1])
        log.command_seen = True
        log.nproc = ev[2] or log.nproc
        log.command_files = ev[3]
    elif kind in _FIELD:  # a value train.py prints once
        setattr(log, _FIELD[kind], ev[1])
    elif kind == "train_py":
        log.preamble |= ev[1] and log.first is None
    elif kind == "bad_iter" and log.first_bad_iter_line is None:
        log.first_bad_iter_line = ev[1]
    elif kind == "exception":
        if len(log.errors) < 5:
            log.errors.append(ev[1])
        if log.last is not None:
            log.tail_error = ev[1]
    for name in _COUNTED.get(kind, ()):
        setattr(log, name, getattr(log, name) + 1)
    log.said = _SAID.get(kind, log.said)


_FIELD = {"tokens": "tokens_per_iter", "vocab": "vocab_size", "params": "params_m", "init_from": "init_from",
          "forcing": "forcing", "dropout": "dropout", "resume": "resumed", "compiling": "compiling"}  # fmt: skip
_COUNTED = {"long": ("long_lines",), "repeat_iter": ("repeated_iters",), "bad_iter": ("bad_iter_lines",),
            "traceback": ("tracebacks", "other_lines"), "exception": ("other_lines",),
            "other": ("other_lines",)}  # fmt: skip
_SAID = {"tokens": "tokens per iteration", "vocab": "found vocab_size", "params": "number of parameters",
         "init_from": "Initializing from OpenAI GPT-2 weights", "compiling": "compiling the model",
         "train_py": "train.py's model and optimizer lines", "eval": "step N: train loss",
         "config_file": "Overriding config with"}  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# The config the run used


@dataclass
class EffectiveConfig:
    """The config a run used: --set over the log's own lines over train.py's defaults."""

    values: dict[str, Any]
    source: dict[str, str]  # key -> set | log | derived | derived from the log's mfu | hwinfo | default
    assumed: list[str]
    notes: list[str]
    device_type: str
    dtype: str  # devicebench's name: fp32, tf32, bf16, fp16
    compile: str  # "on" | "off" | "unknown" (the log neither shows nor sets it)
    tokens_per_iter: int
    world_size: int = 1  # processes of a DDP run (the log is rank 0's)
    world_source: str = DEFAULT


def _check_value(key: str, value: Any, where: str) -> Any:
    """value of the type train.py's default has, inside the range train.py could run with."""
    default = GPT2_VOCAB_SIZE if key == "vocab_size" else TRAIN_PY_DEFAULTS.get(key)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise NanoGPTLogError(f"{where}: {key} = {value!r} should be True or False")
        return value
    if isinstance(default, str):
        return value if isinstance(value, str) else str(value)
    if isinstance(value, str) and value.lstrip("+-").isdigit():  # past the int() digit limit
        raise NanoGPTLogError(f"{where}: {key} = {_short(value)} is far too large for train.py")
    if isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int)):
        raise NanoGPTLogError(f"{where}: {key} = {_short(value)} should be a whole number")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise NanoGPTLogError(f"{where}: {key} = {_short(value)} should be a number")
    lo, hi, what = 0, MAX_WHOLE, "0 or more"
    if key in _WHOLE:
        lo, what = 1, "at least 1"
    elif key in _FRACTION:
        hi, what = 1 - 1e-12, "between 0 and 1"
    elif isinstance(default, float):
        hi = 1e12 if key == "grad_clip" else 1e6
        what = f"between 0 and {hi:g}"
    if not lo <= value <= hi:
        raise NanoGPTLogError(f"{where}: {key} = {_short(value)} is impossible: it must be {what}")
    return float(value) if isinstance(default, float) else value


def _short(value: Any) -> str:
    """repr(value), cut to 60 characters (a value from a hostile log can be any length)."""
    if isinstance(value, int) and abs(value) >= 10**30:
        return f"a number of about {int(value.bit_length() * math.log10(2))} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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


def device_hint(log: ParsedLog, name: str | None = None) -> str | None:
    """The device a log ran on as far as something says it (for a refusal's example): None if nothing."""
    if "device" in log.config or "device" in log.command:
        return str(log.command.get("device", log.config.get("device")))
    low = (name or "").lower()
    if low:
        return "mps" if "apple" in low or re.search(r"\bm\d\b", low) else "cpu" if "cpu" in low else "cuda"
    return "cuda" if log.nproc else None


def effective_config(
    log: ParsedLog,
    user_set: dict[str, Any] | None = None,
    bf16_supported: bool | None = None,
    device_name: str | None = None,
) -> EffectiveConfig:
    """Fill in what the log does not say, in the order of trust: --set, then the log's own lines (echo,
    Overriding and command-line values, tokens, vocab, GPT-2 checkpoint and parameter lines, the printed
    mfu), then train.py's defaults. A log that does not show the whole config is refused, in one line that
    names every key a figure needs and neither the log nor --set gives. bf16_supported: what hwinfo says of
    the GPU (decides train.py's default dtype); device_name: --device-name, for the refusal's example."""
    user_set = dict(user_set or {})
    values: dict[str, Any] = dict(TRAIN_PY_DEFAULTS, vocab_size=GPT2_VOCAB_SIZE)
    source = dict.fromkeys(values, DEFAULT)
    notes: list[str] = []

    def put(key: str, value: Any, how: str) -> None:
        values[key], source[key] = _check_value(key, value, log.source), how

    for key, value in log.config.items():
        put(key, value, LOG)
    for key, value in log.command.items():
        if key not in log.overridden:  # train.py echoes each --key=value as an Overriding line
            put(key, value, LOG)
    if log.unparsed_config:
        notes.append(
            f"config echo: could not read {', '.join(log.unparsed_config)} (an expression, not a value)"
        )
    shape = GPT2_SHAPES.get(log.init_from or str(values["init_from"]))
    if shape is not None:  # fine-tuning a GPT-2 checkpoint: model.py takes its shape, not the config's
        for key, value in zip(("n_layer", "n_head", "n_embd"), shape, strict=True):
            put(key, value, LOG)
        vocab, block, bias = log.forcing or (50257, 1024, True)
        put("vocab_size", vocab, LOG)
        put("bias", bias, LOG)
        put("block_size", min(values["block_size"], block), LOG)  # train.py crops a smaller block_size
        if log.dropout is not None:
            put("dropout", log.dropout, LOG)
    elif log.vocab_size is not None:
        put("vocab_size", log.vocab_size, LOG)
    for key, value in user_set.items():
        if source[key] == LOG and values[key] != value:
            notes.append(f"--set {key}={value!r} replaces the log's {_short(values[key])}")
        values[key], source[key] = value, SET

    # Read off the log itself where the config is silent.
    for key, step in (("eval_interval", log.eval_step), ("log_interval", log.iter_step)):
        if source[key] == DEFAULT and step:
            values[key], source[key] = step, DERIVED
    if source["max_iters"] == DEFAULT and not log.full_echo:
        values["max_iters"], source["max_iters"] = log.last.it, DERIVED
        notes.append(f"max_iters not in the log: taken as the last iteration logged ({log.last.it})")
    if log.tokens_per_iter is not None and source["gradient_accumulation_steps"] != SET:
        source["gradient_accumulation_steps"] = DERIVED  # from the tokens line, checked below
    _refuse_if_unknown(log, source, values, device_name)

    device = str(values["device"]).strip()
    if not DEVICE_RE.fullmatch(device):
        where = "--set" if source["device"] == SET else log.source
        raise NanoGPTLogError(
            f"{where}: device = {_short(device)} is not a device train.py runs on (cpu, cuda, cuda:N, mps, xpu): "
            "pass the right one with --set device=cpu"
        )
    values["device"] = device
    device_type = device.split(":")[0]
    dtype = _dtype(log, values, source, notes, device_type, bf16_supported)

    batch, block = values["batch_size"], values["block_size"]
    world, world_source = (log.nproc, LOG) if log.nproc else (1, DEFAULT)
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
        if source["gradient_accumulation_steps"] != SET:
            values["gradient_accumulation_steps"] = log.tokens_per_iter // per_micro  # DDP world folded in
        tokens_per_iter = log.tokens_per_iter
    elif source["gradient_accumulation_steps"] == DEFAULT and not log.full_echo:
        tokens_per_iter = _tokens_from_mfu(log, values, world)
        values["gradient_accumulation_steps"] = tokens_per_iter // (batch * block)
        source["gradient_accumulation_steps"] = FROM_MFU
        notes.append(
            f"tokens per iteration {tokens_per_iter:,} ({values['gradient_accumulation_steps']} x batch_size "
            f"{batch} x block_size {block}): derived from the log's mfu, which counts nanoGPT's FLOPs"
        )
    else:
        tokens_per_iter = values["gradient_accumulation_steps"] * batch * block

    if values["n_embd"] % values["n_head"]:
        raise NanoGPTLogError(
            f"{log.source}: n_embd {values['n_embd']} is not a multiple of n_head {values['n_head']} "
            f"({_said(source, 'n_embd', 'n_head')})"
        )
    _check_params(log, values, source, notes)
    compile_ = _compile(log, values, source, notes)
    for count, what in (
        (log.long_lines, f"line(s) longer than {MAX_LINE_CHARS:,} characters skipped (train.py prints none)"),
        (log.bad_iter_lines, "iteration line(s) with a time or mfu that is not a number train.py prints skipped "
         f"(the first at line {log.first_bad_iter_line}): those iterations are missing"),
        (log.zero_ms, "iteration(s) printed with time 0.00ms kept out of the medians"),
        (log.repeated_iters, "iteration or eval line(s) repeating the number of the one before (several ranks "
         "printing) skipped: the first of each kept"),
        (log.after_nan, "iteration(s) from the first NaN loss on kept out of the medians"),
    ):  # fmt: skip
        if count:
            notes.append(f"{count} {what}")
    if not log.from_start:
        notes.append(
            f"the log starts at iter {log.first.it}: an excerpt, so its first line is not the run's first step"
        )
    if log.attempts:
        picked = "--attempt" if log.attempt != len(log.attempts) else "the last with iteration lines"
        notes.append(
            f"{len(log.attempts)} attempts in one file, {sum(1 for a in log.attempts if 'ended in' in a)} ended in a "
            f"traceback; importing attempt {log.attempt} ({picked}; --attempt N for another): "
            + "; ".join(log.attempts[:10])
            + (f"; and {len(log.attempts) - 10} more" if len(log.attempts) > 10 else "")
        )
    elif log.tracebacks:
        notes.append(
            f"{log.tracebacks} traceback(s) in the log: {'; '.join(log.errors) or 'no exception line'}"
        )
    assumed = [k for k in RECORDED_KEYS if source[k] == SET or (source[k] == DEFAULT and not log.full_echo)]
    if device_type == "cuda" and source["dtype"] == DEFAULT and "dtype" not in assumed:
        assumed.append("dtype")
    if source["vocab_size"] == DEFAULT and "vocab_size" not in assumed:
        assumed.append("vocab_size")
        notes.append(f"no 'found vocab_size' line: assumed {GPT2_VOCAB_SIZE}, train.py's default")
    if source["max_iters"] == DERIVED and "max_iters" not in assumed:
        assumed.append("max_iters")
    return EffectiveConfig(values, source, assumed, notes, device_type, dtype, compile_, tokens_per_iter,
                           world, world_source)  # fmt: skip


def _refuse_if_unknown(log: ParsedLog, source: dict, values: dict, device_name: str | None) -> None:
    """One line naming every key a figure needs that neither the log nor --set gives (one round)."""
    if log.full_echo:
        return
    missing = [k for k in REQUIRED_WITHOUT_ECHO if source[k] == DEFAULT]
    if not missing or (missing == ["gradient_accumulation_steps"] and log.mfu_flops_per_iter()):
        return  # (the printed mfu gives the tokens per iteration)
    hint = device_hint(log, device_name)
    example = {"device": hint or "cuda|mps|cpu", "vocab_size": "N (65 for shakespeare_char)"}
    said = [f"'{s}'" for s in (
        f"number of parameters: {log.params_m:.2f}M" if log.params_m is not None else "",
        f"tokens per iteration will be: {log.tokens_per_iter:,}" if log.tokens_per_iter is not None else "",
        f"found vocab_size = {log.vocab_size}" if log.vocab_size is not None else "",
        f"device={values['device']}" if source["device"] != DEFAULT else "",
    ) if s]  # fmt: skip
    told = f"; the log says {', '.join(said)}" if said else ""
    files = log.config_files or log.command_files
    ran = f"; it ran {', '.join(files)}" if files else ""
    raise NanoGPTLogError(
        f"{log.source} does not show the whole config (no 'Overriding config with' echo{ran}), so the figures "
        f"need {', '.join(missing)}{told}: pass "
        + " ".join(f"--set {k}={example.get(k, 'N')}" for k in missing)
    )


def _tokens_from_mfu(log: ParsedLog, values: dict, world: int) -> int:
    """Tokens per iteration (all processes) from nanoGPT's printed mfu and the model's FLOPs per token."""
    fpt = flops_per_token({k: values[k] for k in MODEL_KEYS})
    per_micro = values["batch_size"] * values["block_size"]
    accum = log.mfu_flops_per_iter() / fpt / per_micro
    # The printed digits move the ratio by `spread` steps: they pin a whole number only when that is well
    # under one step; then it must be within ACCUM_TOL steps of one (a relative bound would let any ratio
    # above 5 pass: 6.4 from a fork's own FLOP count is no accumulation of 6).
    spread = accum * log.mfu_resolution()
    if spread >= 0.5:
        raise NanoGPTLogError(
            f"{log.source}: the log's mfu (last printed {log.printed_mfu_last:.2f}%) has too few digits to give "
            f"gradient_accumulation_steps (about {accum:,.0f}, give or take {spread:,.0f}): "
            "pass --set gradient_accumulation_steps=N"
        )
    if round(accum) < 1 or abs(accum - round(accum)) > max(ACCUM_TOL, spread):
        raise NanoGPTLogError(
            f"{log.source}: the log's mfu gives {accum:.2f} x batch_size x block_size ({per_micro:,}) tokens per "
            "iteration per process, not a whole number: its FLOPs are not those of nanoGPT's GPT with this "
            "config (a modified model, or a --set value): pass --set gradient_accumulation_steps=N"
        )
    return round(accum) * world * per_micro


def _dtype(
    log: ParsedLog, values: dict, source: dict, notes: list, device_type: str, bf16: bool | None
) -> str:
    if device_type != "cuda":
        source["dtype"] = DERIVED  # train.py autocasts only on CUDA: elsewhere the run is float32
        return "fp32"
    name = str(values["dtype"])
    if name not in DTYPE_NAMES:
        raise NanoGPTLogError(
            f"{log.source}: unknown dtype {_short(name)}: train.py takes {', '.join(DTYPE_NAMES)}"
        )
    if source["dtype"] == DEFAULT and bf16 is not None:
        name = "bfloat16" if bf16 else "float16"
        values["dtype"], source["dtype"] = name, HWINFO
        notes.append(
            f"dtype not in the log: {name}, train.py's choice for this GPU "
            f"({'compute capability 8.0 or newer supports bfloat16' if bf16 else 'no bfloat16'}, from --hwinfo)"
        )
    elif source["dtype"] == DEFAULT:
        notes.append("dtype not in the log: assumed bfloat16 (train.py's default on a GPU with bf16)")
    return "tf32" if name == "float32" else DTYPE_NAMES[name]  # train.py sets allow_tf32 on CUDA


def _compile(log: ParsedLog, values: dict, source: dict, notes: list) -> str:
    """on only with evidence: train.py's `compiling the model` line, a compile=True the log or --set gives."""
    if source["compile"] == SET:
        return "on" if values["compile"] else "off"
    if log.compiling:
        values["compile"], source["compile"] = True, LOG
        return "on"
    if source["compile"] == LOG and not values["compile"]:
        return "off"
    if log.preamble:  # the lines just before `compiling the model` are there, and it is not
        if values["compile"]:
            notes.append("compile = True, but the log has no 'compiling the model' line: taken as off")
        values["compile"], source["compile"] = False, DERIVED
        return "off"
    return "on" if source["compile"] == LOG else "unknown"


def _check_params(log: ParsedLog, values: dict, source: dict, notes: list) -> None:
    """'number of parameters' against the model's shape."""
    if log.params_m is None:
        return
    model = {k: values[k] for k in MODEL_KEYS}
    counted_m = count_params(model) / 1e6
    if abs(counted_m - log.params_m) <= 0.0051:
        return
    shape = " ".join(f"{k}={values[k]}" for k in ("n_layer", "n_head", "n_embd", "vocab_size", "bias"))
    if any(source[k] not in (LOG, DERIVED) for k in MODEL_KEYS if k != "dropout"):
        raise NanoGPTLogError(
            f"{log.source}: the log says 'number of parameters: {log.params_m:.2f}M' but {shape} "
            f"({_said(source, *MODEL_KEYS)}) gives {counted_m:.2f}M: pass the model's shape with "
            "--set n_layer=N --set n_head=N --set n_embd=N --set vocab_size=N"
        )
    notes.append(
        f"the log's {log.params_m:.2f}M parameters differ from {counted_m:.2f}M for {shape}: "
        "a modified model.py? FLOPs are counted for the standard GPT"
    )


def _said(source: dict[str, str], *keys: str) -> str:
    """Where the values of keys came from, for error messages."""
    by = {k: source[k] for k in keys}
    if all(v in (LOG, DERIVED) for v in by.values()):
        return "as the log says"
    return ", ".join(f"{k} from {'--set' if v == SET else 'train.py defaults'}" for k, v in by.items()
                     if v in (SET, DEFAULT))  # fmt: skip


def count_params(model: dict) -> int:
    """Non-embedding parameter count as nanoGPT's get_num_params counts it."""
    return flops.count_params(GPTConfig(**model))


def flops_per_token(model: dict) -> int:
    """6N + 12*L*H*Q*T for one training token."""
    return flops.flops_per_token(GPTConfig(**model))


def lr_at(it: int, c: dict) -> float:
    """train.py's get_lr (the same schedule devicebench trains with)."""
    return schedule_lr_at(it, TrainConfig(**{k: c[k] for k in TRAIN_SCHEDULE_KEYS}))


# ---------------------------------------------------------------------------------------------------
# The run record


@dataclass
class ImportedRun:
    """One log as a devicebench run: run.json fields; steps.csv and evals.csv rows come from run_rows."""

    meta: dict
    warnings: list[str] = field(default_factory=list)  # one line each, for stderr


def order_stats(values: array) -> dict[str, float | None]:
    """Median, p10, p90 (linear interpolation, as bench.metrics) and mean of an array('d'), computed in the
    array's own memory (8 bytes per timed iteration, whatever the log's length)."""
    if not values:
        return {"ms_median": None, "ms_p10": None, "ms_p90": None, "ms_mean": None}
    view = np.frombuffer(values, dtype=np.float64)
    p10, median, p90 = (float(x) for x in np.percentile(view, [10, 50, 90], overwrite_input=True))
    return {"ms_median": median, "ms_p10": p10, "ms_p90": p90, "ms_mean": float(view.mean())}


def eval_spikes(log: ParsedLog, cfg: EffectiveConfig, median: float | None) -> list[dict]:
    """Every after_eval iteration with the eval's (and checkpoint's) estimated cost.

    Later ones: the iteration's time minus the median step. The first iteration of the process (whose time
    also holds start-up and any compilation): the typical eval cost of the later evals, else one estimated
    from eval_iters (a forward pass is about a third of a train step); the rest is start-up.
    """
    if median is None:
        return []
    out = [{"iter": it, "ms": ms, "eval_ms_est": max(0.0, ms - median),
            "includes": "eval + checkpoint" if saved else "eval"}
           for it, ms, saved in zip(log.spike_iters, log.spike_ms, log.spike_checkpoint, strict=True)]  # fmt: skip
    if not (out and log.from_start and out[0]["iter"] == log.first.it):
        return out
    first, later = out[0], [s for s in out[1:] if s["includes"] == "eval"] or out[1:]
    if later:
        eval_ms = statistics.median(s["eval_ms_est"] for s in later)
        how = f"the median eval cost of the {len(later)} later eval(s)"
    else:
        v = cfg.values
        eval_ms = 2 * v["eval_iters"] * median / (3 * v["gradient_accumulation_steps"])
        how = (f"2 x eval_iters ({v['eval_iters']}) forward passes at a third of a train step each "
               "(no later eval to measure it)")  # fmt: skip
    if eval_ms > first["ms"] - median:  # the later evals took longer than all of iter 0: start-up unknown
        eval_ms = max(0.0, first["ms"] - median)
        how += ", capped at iter 0's own time (start-up then unknown, shown as 0)"
    startup = "compilation and start-up" if cfg.compile == "on" and log.compiling else "start-up"
    first.update({"first": True, "eval_ms_est": eval_ms, "eval_ms_source": how,
                  "startup_ms_est": max(0.0, first["ms"] - median - eval_ms), "includes": f"eval + {startup}"})  # fmt: skip
    return out


def cross_check(log: ParsedLog, cfg: EffectiveConfig, flops_per_iter: float) -> dict:
    """The import's FLOPs per iteration against nanoGPT's own, from the mfu train.py printed.

    `agree` within MFU_AGREE (or the printed digits' resolution); a ratio close to a whole number k >= 2 with
    no world size in the log is a DDP run on k processes (nanoGPT counts one). Otherwise `differ`, with the
    keys that were assumed (train.py defaults the log did not confirm) named as the likely cause."""
    theirs = log.mfu_flops_per_iter()
    if theirs is None:
        if log.mfu_skipped_start:
            return {"status": "unchecked: the excerpt's only mfu lines follow an eval (their running average is "
                              "mostly the iterations before the excerpt)"}  # fmt: skip
        return {"status": "no printed mfu" if not log.has_mfu else "no mfu printed after iter 5"}
    per_process = flops_per_iter / cfg.world_size
    ratio = per_process / theirs
    tol = max(MFU_AGREE, log.mfu_resolution())
    out = {"nanogpt_flops_per_iter": theirs, "flops_per_iter_per_process": per_process, "ratio": ratio,
           "tolerance": tol}  # fmt: skip
    if log.mfu_resolution() > 0.5:
        return out | {"status": "unchecked: the printed mfu has too few digits"}
    if abs(ratio - 1) <= tol:
        return out | {"status": "agree"}
    k = round(ratio)
    ddp_possible = cfg.device_type == "cuda" and cfg.world_source == DEFAULT  # nccl: GPUs only
    if ddp_possible and 2 <= k <= 4096 and abs(ratio / k - 1) <= tol:
        return out | {"status": "agree", "world_size": k}
    keys = [k for k in FLOP_KEYS if cfg.source.get(k) == DEFAULT]
    return out | {"status": "differ", "keys": keys}


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
    train = {k: v[k] for k in TRAIN_KEYS} | {"seed": 1337, "timing_warmup_iters": TIMING_WARMUP_ITERS}
    fpt = flops_per_token(model)
    fpi = fpt * cfg.tokens_per_iter
    check = cross_check(log, cfg, fpi)
    if check.get("world_size"):
        cfg.world_size, cfg.world_source = check["world_size"], FROM_MFU
        cfg.notes.append(
            f"nanoGPT's mfu counts {1 / check['world_size']:.3g} of the FLOPs computed here: a DDP run on "
            f"{cfg.world_size} processes (derived from the log's mfu); MFUs are per process"
        )

    stats = order_stats(log.timed_ms)
    median = stats["ms_median"]
    peak = peak_flops.get("value")
    summary = summarise([median] if median is not None else [], cfg.tokens_per_iter, fpi,
                        peak * cfg.world_size if peak else peak)  # fmt: skip
    summary.update(stats)
    if summary.get("mfu_vs_a100") is not None:
        summary["mfu_vs_a100"] /= cfg.world_size
    withheld = _withheld(log, cfg, check, summary)
    spikes = eval_spikes(log, cfg, median)
    first = spikes[0] if spikes and spikes[0].get("first") else None
    status, error = _status(log, v)
    last = log.last
    # the printed times sum to the wall time only when every iteration is there (a skipped line makes it short)
    every_iter_logged = (
        log.from_start and v["log_interval"] == 1 and log.n_iters == last.it - log.first.it + 1
    )
    final = log.last_eval if log.last_eval is not None and log.last_eval.it > 0 else None
    if log.last_eval is not None and final is None:
        cfg.notes.append("the only eval is at step 0, before any training: no final loss")
    printed = log.printed_mfu_last
    summary.update({
        "final_train_loss": final.train_loss if final else None,
        "final_val_loss": final.val_loss if final else None,
        "final_loss_iter": final.it if final else None,
        "best_val_loss": log.best_val.val_loss if log.best_val and log.best_val.it > 0 else None,
        "best_val_iter": log.best_val.it if log.best_val and log.best_val.it > 0 else None,
        "iters_done": last.it + 1,
        "warmup_iters": TIMING_WARMUP_ITERS if log.from_start else 0,
        # the first step without the step-0 eval that train.py's timer put inside it; unknown in an excerpt
        "first_step_ms": (log.first.ms - first["eval_ms_est"] if first else log.first.ms) if log.from_start else None,
        "first_iter_printed_ms": log.first.ms if log.from_start else None,
        "eval_ms_total": sum(s["eval_ms_est"] for s in spikes) if spikes else None,
        "eval_ms_source": "estimated: time of the iteration after each eval minus the median iteration",
        "eval_spikes": spikes[:MAX_SPIKES_LISTED],
        "eval_spikes_count": len(spikes),
        "eval_spike_ms": [s["eval_ms_est"] for s in spikes[:MAX_SPIKES_LISTED]],
        "wall_s": log.ms_sum / 1e3 if every_iter_logged else None,
        "peak_mem_bytes": None,
        "peak_mem_kind": None,
        "nanogpt_mfu_printed": printed / 100 if printed is not None else None,
        "nanogpt_achieved_flops_per_s": printed / 100 * NANOGPT_PEAK_FLOPS if printed is not None else None,
        "mfu_check": check,
    })  # fmt: skip
    if withheld and withheld["figures"]:
        summary["withheld"] = withheld
    elif withheld:
        summary["mfu_check"]["warning"] = withheld["reason"]
    if log.diverged:
        it, where, value = log.diverged
        summary["diverged"] = {"iter": it, "where": where, "loss": str(value)}
        if math.isfinite(value):
            summary["diverged"]["iter0_loss"] = log.first.loss
    figure_inputs = {k: {"value": v[k], "source": cfg.source[k]} for k in ("device", *FLOP_KEYS)}
    figure_inputs |= {
        "tokens_per_iter": {"value": cfg.tokens_per_iter,
                            "source": LOG if log.tokens_per_iter is not None else cfg.source["gradient_accumulation_steps"]},
        "world_size": {"value": cfg.world_size, "source": cfg.world_source},
        "compile": {"value": cfg.compile, "source": cfg.source["compile"]},
        "dtype": {"value": cfg.dtype, "source": cfg.source["dtype"]},
    }  # fmt: skip
    meta = {
        "status": status, "error": error, "source": "nanogpt-log", "source_file": source_file, "host": host,
        "device": str(v["device"]), "device_type": cfg.device_type, "device_name": device_name or str(v["device"]),
        "dtype": cfg.dtype, "batch_size": v["batch_size"], "block_size": v["block_size"], "compile": cfg.compile,
        "threads": None, "seed": 1337, "model": model, "train": train, "params": count_params(model),
        "flops_per_token": fpt, "flops_per_iter": fpi, "tokens_per_iter": cfg.tokens_per_iter,
        "peak_flops": peak_flops, "started": None, "finished": None, "assumed": cfg.assumed,
        "nanogpt": {
            "attempt": log.attempt, "attempts": log.attempts, "tracebacks": log.tracebacks, "errors": log.errors,
            "excerpt": not log.from_start, "config_files": log.config_files or log.command_files,
            "config": {k: v[k] for k in TRAIN_PY_DEFAULTS} | {"vocab_size": v["vocab_size"]},
            "config_source": dict(cfg.source), "figure_inputs": figure_inputs,
            "gradient_accumulation_steps": v["gradient_accumulation_steps"], "log_interval": v["log_interval"],
            "params_printed_m": log.params_m, "notes": cfg.notes, "other_lines": log.other_lines,
            "long_lines_skipped": log.long_lines, "bad_iter_lines_skipped": log.bad_iter_lines,
            "repeated_iter_lines_skipped": log.repeated_iters,
        },
        "summary": summary,
    }  # fmt: skip
    return ImportedRun(meta=meta, warnings=[f"{log.source}: {withheld['reason']}"] if withheld else [])


DEPENDENT = ("tokens_per_s", "achieved_flops_per_s", "mfu", "mfu_vs_a100")


def _withheld(log: ParsedLog, cfg: EffectiveConfig, check: dict, summary: dict) -> dict | None:
    """Take out of `summary` the figures that rest on values the log contradicts, and say why."""
    a100 = summary.get("mfu_vs_a100")
    if check.get("status") == "differ":
        keys = check["keys"]
        given = [k for k in FLOP_KEYS if cfg.source[k] == SET]
        ours, printed = (a100 or 0) * 100, log.printed_mfu_last
        said = (f"nanoGPT printed mfu {printed:.2f}% but this config gives {ours:.3g}% of an A100 "
                f"({check['ratio']:.3g}x nanoGPT's FLOPs per iteration)")  # fmt: skip
        if not keys and given:  # the user's word stands, said once
            return {"reason": f"{said}: check --set {', '.join(given)}", "keys": given, "figures": {}}
        why = (f"assumed {', '.join(f'{k}={cfg.values[k]}' for k in keys)} (train.py defaults the log does not "
               f"confirm): pass {' '.join(f'--set {k}=N' for k in keys)}") if keys else (
               "every FLOP input is from the log: a DDP run, or a model.py or train.py other than nanoGPT's")  # fmt: skip
        reason = f"{said}: {why}; tokens/s, FLOP/s and both MFUs withheld"
        out = {"reason": reason, "keys": keys, "figures": {k: summary.get(k) for k in DEPENDENT}}
        for k in DEPENDENT:
            summary[k] = None
        return out
    if a100 is not None and a100 > 1:
        summary["mfu_vs_a100"] = None
        assumed = [k for k in FLOP_KEYS if cfg.source[k] in (DEFAULT, SET)]
        if check.get("status") == "agree":  # nanoGPT counted the same: a GPU faster than an A100
            why = "nanoGPT's printed mfu agrees, so this ran on a GPU faster than an A100: read the own-peak MFU"
        else:
            why = f"more than an A100 can do, so unless a faster GPU ran it, {', '.join(assumed) or 'the config'} is wrong"
        reason = (
            f"the recomputed MFU would be {a100 * 100:,.0f}% of an A100: {why}; the A100 figure is withheld"
        )
        return {"reason": reason, "keys": assumed, "figures": {"mfu_vs_a100": a100}}
    return None


def run_rows(
    lines: Iterable[str | None], cfg: EffectiveConfig, attempt: int = 1
) -> Iterator[tuple[str, tuple]]:
    """("step", (iter, ms, loss, lr, phase)) and ("eval", (iter, split, loss, ms)) of one attempt in the log's
    order, from a second reading of the log (the same phases as parse_log). train.py does not time its
    evals: their ms is NaN. NaN and inf losses are kept as they are."""
    v = cfg.values
    phases = _Phases()
    for a, ev in _events(lines):
        if a != attempt - 1:
            continue
        phase = phases.take(ev)
        if ev[0] == "iter":
            _, it, loss, ms, _mfu, _n = ev
            yield "step", (it, ms, loss, lr_at(it, v) if v["decay_lr"] else v["learning_rate"], phase)
        elif ev[0] == "eval":
            _, it, train, val, _n = ev
            yield "eval", (it, "train", train, math.nan)
            yield "eval", (it, "val", val, math.nan)


def _status(log: ParsedLog, v: dict) -> tuple[str, str | None]:
    last = log.last.it
    if log.diverged:
        it, where, value = log.diverged
        finite = math.isfinite(value)
        went_on = (
            f"; train.py went on to iter {last}{'' if finite else ', training nothing'}" if last > it else ""
        )
        start = f", {log.first.loss:g} at iter 0," if finite else ""  # rose past the untrained model's loss
        return (
            "failed",
            f"diverged: {where}{start} {'loss ' if where == 'eval' else ''}became {value} at iter {it}{went_on}",
        )
    if log.tail_error:
        status = "interrupted" if "KeyboardInterrupt" in log.tail_error else "failed"
        return status, f"{log.tail_error} after iter {last} of {v['max_iters']}"
    # train.py runs iters 0..max_iters; with log_interval N the last one logged may be up to N-1 short
    if last + v["log_interval"] > v["max_iters"]:
        return "ok", None
    return "interrupted", f"log ends at iter {last} of {v['max_iters']} (cut off mid-run)"


def run_id(cfg: EffectiveConfig) -> str:
    """devicebench's run id for the run's axes: cpu-fp32-b12-eager, cuda-bf16-b64-compile (compile unknown:
    no suffix)."""
    device = str(cfg.values["device"]).replace(":", "")
    suffix = {"on": "-compile", "off": "-eager"}.get(cfg.compile, "")
    return f"{device}-{cfg.dtype}-b{cfg.values['batch_size']}{suffix}"
