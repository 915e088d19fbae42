"""Configuration: the model, training and sweep dataclasses, one source of truth for every setting.

A field's type is its annotation; its help and rules are its metadata. From them come the TOML reader
(load_toml), the `bench run` flags (bench.run_cmd), the reader of a stored sweep's config
(config_from_dict, for --resume), the checks (Setting.check, BenchConfig.validate) and docs/config.md
(`python -m bench.config docs/config.md` rewrites its generated part). No exec.

Metadata keys:
  help              what the setting does (flag help, docs)
  ge, gt, le, lt    bounds on a number, or on each number of a list
  choices           the allowed strings, or the allowed items of a list
  none_word         in a list of `X | None`, the word that stands for None ("default")
  min_items         a list needs at least this many values
  what              how the docs and errors name an allowed string ("a file path or an http(s) URL")
  parse             callable(value) -> value for a check the type cannot say; raises ValueError(tail of
                    the error line)
  omit_default      to_dict() leaves the key out while it holds its default (settings added after
                    results schema devicebench/2, so older sweeps still resume and compare equal)
  flag, metavar     the `bench run` flag when not --<name-with-dashes>, and how its help shows the value
  default_text      how help and docs show the default when its value does not say it
"""

from __future__ import annotations

import datetime
import difflib
import functools
import json
import math
import operator
import re
import tomllib
import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from bench.results import safe_label
from bench.userfiles import read_user_text
from hwinfo.peaks import DTYPES, parse_peak_flops
from model.config import GPTConfig

COMPILE_MODES = ("off", "on", "reduce-overhead", "max-autotune")
SEED_MAX = 2**63 - 1  # torch.manual_seed's range (non-negative part)
MAX_ITERS = 10**9
CONFIG_MAX_BYTES = 2**20  # a sweep's TOML is a few hundred bytes


class ConfigError(ValueError):
    """A configuration the user wrote that cannot be used."""

    exit_code = 2


def _setting(default: Any = MISSING, *, help: str, default_factory: Any = MISSING, **rules: Any) -> Any:
    return field(default=default, default_factory=default_factory, metadata={"help": help, **rules})


# --- checks the types cannot say (each raises ValueError with the tail of the error line) ------------


def _host_label(value: str) -> str:
    if safe_label(value) != value:
        raise ValueError(
            f"expected a label of letters, digits, '.', '_' and '-' (at most 100), e.g. {safe_label(value)!r}"
        )
    return value


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _data_source(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a file path or an http(s) URL")
    m = _SCHEME.match(value)
    if m and m.group(1).lower() not in ("http", "https"):
        raise ValueError(f"expected a file path or an http(s) URL, not {m.group(1)}://")
    path = Path(value).expanduser()
    if not m and path.exists() and not path.is_file() and not path.is_dir():
        # A device or a pipe (/dev/zero, /dev/stdin) never ends or is gone on --resume and on other ranks.
        raise ValueError("expected a regular text file or an http(s) URL, not a device or a pipe")
    return value


def _sha256(value: str) -> str:
    if not re.fullmatch(r"[0-9A-Fa-f]{64}", value.strip()):
        raise ValueError("expected a SHA-256 digest: 64 hex digits (as `sha256sum FILE` prints)")
    return value.strip().lower()


def _peak_flops(value: Mapping[str, Any] | list[str]) -> dict[str, float]:
    """{dtype: FLOP/s} from a TOML table / stored dict or from --peak-flops DTYPE=VALUE items."""
    if isinstance(value, Mapping):
        value = [f"{k}={v if isinstance(v, str) else repr(v)}" for k, v in value.items()]
    return parse_peak_flops(list(value))


# --- the configuration dataclasses ----------------------------------------------------------------


@dataclass
class TrainConfig:
    """Optimisation and evaluation. Defaults: nanoGPT's Shakespeare-char CPU recipe."""

    max_iters: int = _setting(
        2000, help="train steps per run", ge=1, le=MAX_ITERS, flag="--iters", metavar="N"
    )
    learning_rate: float = _setting(1e-3, help="peak learning rate (AdamW)", gt=0.0)
    min_lr: float = _setting(
        1e-4, help="learning rate at the end of the cosine decay; <= learning_rate", ge=0.0
    )
    warmup_iters: int = _setting(
        100, help="learning-rate warm-up steps (linear, then cosine decay)", ge=0, le=MAX_ITERS,
        flag="--lr-warmup-iters", metavar="N",
    )  # fmt: skip
    lr_decay_iters: int | None = _setting(
        None, help="step where the cosine decay reaches min_lr", ge=1, le=MAX_ITERS, metavar="N",
        default_text="max_iters",
    )  # fmt: skip
    decay_lr: bool = _setting(True, help="warm-up and cosine decay; off: a constant learning_rate")
    weight_decay: float = _setting(0.1, help="AdamW weight decay (2-D weights only)", ge=0.0)
    beta1: float = _setting(0.9, help="AdamW beta1", ge=0.0, lt=1.0)
    beta2: float = _setting(0.99, help="AdamW beta2", ge=0.0, lt=1.0)
    grad_clip: float = _setting(1.0, help="gradient norm clip; 0: no clipping", ge=0.0)
    eval_interval: int = _setting(250, help="evaluate every N steps", ge=1, le=MAX_ITERS, metavar="N")
    eval_iters: int = _setting(20, help="batches per split and eval", ge=1, le=10**6, metavar="N")
    seed: int = _setting(1337, help="seed for the weights and the batches", ge=0, le=SEED_MAX, metavar="N")
    timing_warmup_iters: int = _setting(
        10, help="first steps of a run, recorded but kept out of the ms/iter medians", ge=0, le=10**6,
        metavar="N",
    )  # fmt: skip
    data: str | None = _setting(
        None, help="text to train on, instead of the bundled data", parse=_data_source,
        what="a file path or an http(s) URL", metavar="PATH_OR_URL", omit_default=True,
        default_text="the bundled Tiny Shakespeare",
    )  # fmt: skip
    data_sha256: str | None = _setting(
        None, help="SHA-256 the data must have, checked before training", parse=_sha256, what="64 hex digits",
        flag="--sha256", metavar="HEX", omit_default=True, default_text="not checked",
    )  # fmt: skip

    def effective_lr_decay_iters(self) -> int:
        return self.max_iters if self.lr_decay_iters is None else self.lr_decay_iters

    def to_dict(self) -> dict:
        d = _to_dict(self)
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
    """The axes of a sweep; one run per combination. Duplicate values on an axis run once."""

    devices: list[str] = _setting(
        default_factory=list, help="cpu, cuda, cuda:N, mps, xpu", default_text="every device PyTorch can use"
    )
    batch_sizes: list[int] = _setting(
        default_factory=lambda: [12], help="batch sizes (global batch)", ge=1, le=1 << 20, min_items=1
    )
    dtypes: list[str] = _setting(
        default_factory=lambda: ["fp32"],
        help="number formats to train in; tf32 is CUDA only",
        choices=DTYPES,
        min_items=1,
    )
    compile: list[str] = _setting(
        default_factory=lambda: ["off"], help="torch.compile modes (reduce-overhead: CUDA graphs)",
        choices=COMPILE_MODES, min_items=1,
    )  # fmt: skip
    threads: list[int | None] = _setting(
        default_factory=lambda: [None], help='CPU threads per run, CPU runs only; "default": PyTorch\'s choice', ge=1,
        le=4096, none_word="default", min_items=1, default_text="PyTorch's choice",
    )  # fmt: skip
    host: str | None = _setting(
        None, help="label for this machine in reports", parse=_host_label,
        what="a label of letters, digits, '.', '_' and '-'", default_text="the hostname",
    )  # fmt: skip
    peak_flops: dict[str, float] = _setting(
        default_factory=dict, help="peak FLOP/s per dtype for MFU, over hwinfo's (DTYPE=VALUE, e.g. fp32=1.35e12, "
        "bf16=2.7T); repeatable", parse=_peak_flops, what="a table of DTYPE = FLOP/s, e.g. {fp32 = 1.35e12}",
        metavar="DTYPE=VALUE", omit_default=True, default_text="hwinfo's peaks",
    )  # fmt: skip

    def to_dict(self) -> dict:
        return _to_dict(self)


SECTIONS: dict[str, type] = {"model": GPTConfig, "train": TrainConfig, "sweep": SweepConfig}


@dataclass
class BenchConfig:
    model: GPTConfig = field(default_factory=GPTConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "train": self.train.to_dict(), "sweep": self.sweep.to_dict()}

    def validate(self) -> list[str]:
        """Raise ConfigError for a value or combination that cannot run; return warning lines."""
        for s in settings():
            s.check(getattr(getattr(self, s.section), s.name))
        m, t = self.model, self.train
        _check_shape(m.n_embd, m.n_head)
        if t.decay_lr and t.min_lr > t.learning_rate:
            raise ConfigError(
                f"[train] min_lr = {t.min_lr!r}: expected at most learning_rate = {t.learning_rate!r} "
                "(lower min_lr, --min-lr, with the learning rate)"
            )
        if t.data_sha256 is not None and t.data is None:
            raise ConfigError(
                "[train] data_sha256 is set but data is not: --sha256 checks the file given with --data"
            )
        warnings = []
        if t.max_iters <= t.timing_warmup_iters:
            kept_out = min(t.timing_warmup_iters, t.max_iters // 2)  # what the runner keeps out of the median
            warnings.append(
                f"--iters {t.max_iters} is at or below the timing warm-up of {t.timing_warmup_iters} steps: only "
                f"{kept_out} step(s) are kept out of the median, so the median ms/iter may be a warm-up step "
                "(allocator, caches, compilation); raise --iters or lower --timing-warmup-iters"
            )
        return warnings


def _check_shape(n_embd: int, n_head: int) -> None:
    if n_embd % n_head:
        raise ConfigError(f"[model] n_embd = {n_embd}: expected a multiple of n_head = {n_head}")


def _to_dict(obj: Any) -> dict:
    d = asdict(obj)
    for f in fields(obj):
        if f.metadata.get("omit_default") and d[f.name] == _default(f):
            del d[f.name]
    return d


def _default(f: Any) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


# --- one setting: its type, rules, flag and checks --------------------------------------------------


class _Invalid(Exception):
    """A value a setting cannot take; the message is the tail of the error line ("expected ...")."""


def _split_optional(tp: Any) -> tuple[Any, bool]:
    if get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp):
        (inner,) = (a for a in get_args(tp) if a is not type(None))  # only `X | None` is used
        return inner, True
    return tp, False


_BOUND_OPS = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _show(value: Any) -> str:
    """A value as the error line shows it: TOML's true/false, strings quoted, long values cut."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, (datetime.date, datetime.time)):  # TOML dates and times
        text = value.isoformat()
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _toml(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else json.dumps(value)


@dataclass(frozen=True)
class Setting:
    """One field of a config dataclass, as TOML key, flag and check."""

    section: str  # "model", "train" or "sweep": the TOML table and the BenchConfig attribute
    name: str  # the field and the TOML key
    type: Any
    default: Any
    meta: Mapping[str, Any]

    @property
    def key(self) -> str:
        return f"[{self.section}] {self.name}"

    @property
    def flag(self) -> str:
        return self.meta.get("flag") or "--" + self.name.replace("_", "-")

    @property
    def help(self) -> str:
        return self.meta["help"]

    @property
    def is_bool(self) -> bool:
        return self.type is bool

    @property
    def is_list(self) -> bool:
        return get_origin(_split_optional(self.type)[0]) is list

    @property
    def is_table(self) -> bool:
        return get_origin(_split_optional(self.type)[0]) is dict

    @property
    def metavar(self) -> str:
        """How the flag's help and the docs show its value."""
        if "metavar" in self.meta:
            return self.meta["metavar"]
        if self.is_list:
            return "A,B,..."
        return "N" if _split_optional(self.type)[0] in (int, float) else "TEXT"

    def default_text(self) -> str:
        if "default_text" in self.meta:
            return self.meta["default_text"]
        if isinstance(self.default, list):
            nw = self.meta.get("none_word", "")
            return ",".join(nw if v is None else _toml(v).strip('"') for v in self.default)
        return _toml(self.default).strip('"') if not isinstance(self.default, float) else _num(self.default)

    # -- what is allowed, in words --

    def _range(self) -> str:
        ge, gt, le, lt = (self.meta.get(k) for k in ("ge", "gt", "le", "lt"))
        lo, hi = (ge if ge is not None else gt), (le if le is not None else lt)
        if lo is not None and hi is not None:
            if ge is not None and le is not None:
                return f" from {_num(ge)} to {_num(hi)}"
            return (
                f" in {'[' if ge is not None else '('}{_num(lo)}, {_num(hi)}{']' if le is not None else ')'}"
            )
        if lo is not None:
            return f" {'>=' if ge is not None else '>'} {_num(lo)}"
        if hi is not None:
            return f" {'<=' if le is not None else '<'} {_num(hi)}"
        return ""

    def _noun(self, tp: Any, plural: bool) -> str:
        tp, optional = _split_optional(tp)
        if self.meta.get("choices"):
            text = ("values from " if plural else "one of ") + ", ".join(self.meta["choices"])
        elif tp is bool:
            text = "true or false"
        elif tp is int:
            text = ("integers" if plural else "an integer") + self._range()
        elif tp is float:
            text = ("numbers" if plural else "a number") + self._range()
        else:
            text = self.meta.get("what") or ("non-empty strings" if plural else "a non-empty string")
        if optional and self.meta.get("none_word"):
            text += f' or "{self.meta["none_word"]}"'
        return text

    def expected(self) -> str:
        """What the setting takes, in words: "an integer from 1 to 1024", "a non-empty list of ..."."""
        tp, _ = _split_optional(self.type)
        if get_origin(tp) is list:
            return f"a {'non-empty ' if self.meta.get('min_items') else ''}list of " + self._noun(
                get_args(tp)[0], plural=True
            )
        return self._noun(tp, plural=False)

    # -- checks --

    def check(self, value: Any, label: str | None = None) -> Any:
        """The value as the config holds it (ints as floats where a float is due, lists without
        duplicates), or ConfigError: one line naming the key (or `label`), the value and what is allowed."""
        try:
            return self._coerce(value)
        except _Invalid as e:
            lhs = label if label is not None else f"{self.key} = {_show(value)}"
            tail = str(e) or f"expected {self.expected()}"
            raise ConfigError(f"{lhs}: {tail}") from None

    def from_text(self, text: str | list[str]) -> Any:
        """A flag's text ("4,8", "fp32=1e12") parsed and checked; errors name the flag."""
        label = f"{self.flag} {text if isinstance(text, str) else ' '.join(text)}"
        if self.is_table:
            try:
                return self._parse([text] if isinstance(text, str) else list(text))
            except _Invalid as e:
                raise ConfigError(f"{label}: {e}" if not str(e).startswith(self.flag) else str(e)) from None
        if self.is_list:
            items = [x.strip() for x in text.split(",") if x.strip()]
            if not items:
                raise ConfigError(
                    f"{label}: expected a comma-separated list of {self._noun(self._item_type(), True)}"
                )
            return self.check([self._from_word(self._item_type(), x) for x in items], label)
        return self.check(self._from_word(self.type, text.strip()), label)

    def _item_type(self) -> Any:
        return get_args(_split_optional(self.type)[0])[0]

    def _from_word(self, tp: Any, word: str) -> Any:
        """A flag's word as the type's value; a word that is not one stays a string for check() to refuse."""
        tp, optional = _split_optional(tp)
        if optional and word.lower() in self._none_words():
            return None
        try:
            return int(word) if tp is int else float(word) if tp is float else word
        except ValueError:
            return word

    def _none_words(self) -> tuple[str, ...]:
        nw = self.meta.get("none_word")
        return (nw, "auto") if nw == "default" else (nw,) if nw else ()

    def _coerce(self, value: Any) -> Any:
        tp, optional = _split_optional(self.type)
        if value is None:
            if optional:
                return None
            raise _Invalid()
        if get_origin(tp) is list:
            if not isinstance(value, list):
                hint = ""
                try:
                    self._item(self._item_type(), value)
                    hint = f"; write {self.name} = [{_toml(value)}]"
                except _Invalid:
                    pass
                raise _Invalid(f"expected {self.expected()}{hint}")
            out: list = []
            for v in value:
                try:
                    v = self._item(self._item_type(), v)
                except _Invalid as e:
                    raise _Invalid(
                        str(e) or f"{_show(v)} is not {self._noun(self._item_type(), False)}"
                    ) from None
                if v not in out:
                    out.append(v)
            if len(out) < self.meta.get("min_items", 0):
                raise _Invalid()
            return out
        if get_origin(tp) is dict:
            if not isinstance(value, Mapping):
                raise _Invalid()
            return self._parse(value)
        return self._item(tp, value)

    def _item(self, tp: Any, v: Any) -> Any:
        tp, optional = _split_optional(tp)
        if optional and (v is None or (isinstance(v, str) and v.lower() in self._none_words())):
            return None
        if tp is bool:
            if isinstance(v, bool):
                return v
        elif tp is int:
            if type(v) is int and self._in_range(v):
                return v
        elif tp is float:
            if (
                isinstance(v, (int, float))
                and not isinstance(v, bool)
                and math.isfinite(v)
                and self._in_range(v)
            ):
                return float(v)
        elif tp is str and isinstance(v, str) and v.strip():
            choices = self.meta.get("choices")
            if choices is None or v in choices:
                return self._parse(v)
        raise _Invalid()

    def _parse(self, v: Any) -> Any:
        parse: Callable[[Any], Any] | None = self.meta.get("parse")
        if parse is None:
            return v
        try:
            return parse(v)
        except ValueError as e:
            raise _Invalid(str(e)) from None

    def _in_range(self, x: float) -> bool:
        return all(op(x, self.meta[k]) for k, op in _BOUND_OPS.items() if self.meta.get(k) is not None)


@functools.cache
def settings() -> tuple[Setting, ...]:
    """Every setting of every section, in declaration order."""
    out = []
    for section, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        out += [Setting(section, f.name, hints[f.name], _default(f), f.metadata) for f in fields(cls)]
    return tuple(out)


# --- readers: TOML, a stored sweep's config, flags --------------------------------------------------


def apply_values(base: BenchConfig, tables: Mapping[str, Any], where: str = "") -> BenchConfig:
    """base with {section: {key: value}} checked and applied (TOML tables, a stored spec).

    Unknown sections or keys are refused; `where` prefixes every error ("sweep.toml: ")."""
    by_key = {(s.section, s.name): s for s in settings()}
    parts = {}
    for section in SECTIONS:
        values = tables.get(section, {})
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where}[{section}] must be a table of settings, got {_show(values)}")
        known = [s.name for s in settings() if s.section == section]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{where}{_unknown_keys(section, unknown, known)}")
        try:
            checked = {k: by_key[section, k].check(v) for k, v in values.items()}
            if section == "model":
                shape = {"n_embd": base.model.n_embd, "n_head": base.model.n_head} | checked
                _check_shape(shape["n_embd"], shape["n_head"])
            parts[section] = replace(getattr(base, section), **checked)
        except ConfigError as e:
            raise ConfigError(f"{where}{e}") from None
        except ValueError as e:  # GPTConfig's own checks, e.g. n_embd not a multiple of n_head
            raise ConfigError(f"{where}[{section}] {e}") from None
    return BenchConfig(**parts)


def _unknown_keys(section: str, unknown: list[str], known: list[str]) -> str:
    hints = []
    for k in unknown:
        close = difflib.get_close_matches(k.replace("-", "_"), known, n=1)
        if close:
            hints.append(f"{k} -> {close[0]}?")
    text = f"unknown key(s) in [{section}]: {', '.join(unknown)}"
    if hints:
        text += f" (did you mean: {'; '.join(hints)})"
    return f"{text}; known: {', '.join(sorted(known))}"


def load_toml(path: str | Path, base: BenchConfig | None = None) -> BenchConfig:
    """Read a TOML file with [model], [train] and [sweep] tables over the defaults (each value checked)."""
    base = base or BenchConfig()
    text = read_user_text(
        path, what="config file", error=ConfigError, max_bytes=CONFIG_MAX_BYTES, hint="give a .toml file"
    )  # a cap: /dev/zero or a pipe never ends
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        homes = {s.name: s.key for s in settings()}
        moved = [f"{k} belongs in {homes[k].split()[0]}" for k in unknown if k in homes]
        raise ConfigError(
            f"{path}: unknown table(s) or key(s) {', '.join(unknown)}; settings go in [model], [train], [sweep]"
            + (f" ({'; '.join(moved)})" if moved else "")
        )
    return apply_values(base, data, where=f"{path}: ")


def config_from_dict(spec: Any) -> BenchConfig:
    """The BenchConfig a sweep.json 'spec' was written from (for --resume), checked as TOML is."""
    where = "the stored sweep configuration (sweep.json 'spec'): "
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}expected a table with model, train and sweep, got {_show(spec)}")
    cfg = apply_values(BenchConfig(), {k: spec.get(k, {}) for k in SECTIONS}, where=where)
    try:
        cfg.validate()
    except ConfigError as e:
        raise ConfigError(f"{where}{e}") from None
    return cfg


# `bench run`'s own options (not config settings); docs/config.md's table of them is made from this.
RUN_OPTIONS: tuple[tuple[str, dict], ...] = (
    ("--config", {"metavar": "FILE.toml", "help": "TOML file with [model], [train], [sweep] tables"}),
    ("--out", {"metavar": "DIR", "help": "results directory (default results/<date-time>)"}),
    ("--resume", {"action": "store_true", "help": "complete the runs of --out that did not finish"}),
    ("--dry-run", {"action": "store_true", "help": "print the plan and an estimated time, run nothing"}),
    ("--profile", {"nargs": "?", "const": 5, "default": 0, "metavar": "N",
                   "help": "after each run's final eval, profile N extra steps (default 5, at most 200) into runs/<id>/profile.json"}),
    ("--save-checkpoint", {"action": "store_true",
                           "help": "keep each run's final model, optimizer, data position and RNG in runs/<id>/checkpoint.pt"}),
    ("--init-from", {"metavar": "RUN_DIR|ckpt.pt",
                     "help": "continue a run saved with --save-checkpoint (or a nanoGPT ckpt.pt) for --iters N more steps, "
                     "on the sweep's devices, dtypes and threads (docs/checkpoint.md)"}),
    ("--trust-checkpoint", {"action": "store_true",
                            "help": "let --init-from load a checkpoint the safe loader refuses (it can run code from the file)"}),
    ("--no-progress", {"action": "store_true", "help": "no progress bars (one line per run still)"}),
    ("--nproc", {"metavar": "N",
                 "help": "train every run data-parallel on N ranks of this machine, started by torch.distributed's "
                 "launcher as `torchrun --standalone --nproc-per-node N` does; N must divide each (global) batch size"}),
    ("--dist-timeout", {"metavar": "S",
                        "help": "under torchrun or --nproc: seconds a collective waits for the other ranks before the "
                        "run fails, so a dead or hung rank ends it (default 300)"}),
)  # fmt: skip


# --- docs/config.md -------------------------------------------------------------------------------

DOC_BEGIN = "<!-- generated by `python -m bench.config docs/config.md` from bench/config.py: do not edit -->"
DOC_END = "<!-- end of generated part -->"


def reference_markdown() -> str:
    """docs/config.md's generated part: `bench run`'s own options, then one table per TOML table."""
    lines = ["### `bench run`'s own options", "", "| flag | what |", "|---|---|"]
    for flag, kw in RUN_OPTIONS:
        shown = f"{flag} [{kw['metavar']}]" if kw.get("nargs") == "?" else f"{flag} {kw.get('metavar', '')}"
        lines.append(f"| `{shown.strip()}` | {kw['help']} |")
    lines.append("")
    titles = {"model": "[model]: the GPT's shape", "train": "[train]: optimisation, evaluation, data",
              "sweep": "[sweep]: the axes of the sweep, labels, peaks"}  # fmt: skip
    for section in SECTIONS:
        lines += [
            f"### {titles[section]}",
            "",
            "| TOML key | flag | takes | default | what |",
            "|---|---|---|---|---|",
        ]
        for s in settings():
            if s.section != section:
                continue
            flag = f"`{s.flag}`, `--no-{s.flag[2:]}`" if s.is_bool else f"`{s.flag} {s.metavar}`"
            row = [f"`{s.name}`", flag, s.expected(), s.default_text(), s.help]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _rewrite_doc(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    head, sep1, rest = text.partition(DOC_BEGIN)
    _, sep2, tail = rest.partition(DOC_END)
    if not (sep1 and sep2):
        raise SystemExit(f"{path}: the markers {DOC_BEGIN!r} and {DOC_END!r} are missing")
    path.write_text(f"{head}{DOC_BEGIN}\n\n{reference_markdown()}\n{DOC_END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        print("usage: python -m bench.config docs/config.md", file=sys.stderr)
        raise SystemExit(2)
    _rewrite_doc(Path(sys.argv[1]))
