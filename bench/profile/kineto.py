"""A PyTorch profiler (Kineto) Chrome-trace JSON file, plain or gzipped, read as TraceEvents. No torch.

Streamed one event at a time (memory grows with the kept events, not the file); both the current and the
2021 layouts, CUDA and ROCm alike; a kernel's launch by `args.correlation`, else the `ac2g` flow arrow.
docs/profile.md has the details.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import sys
import zlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from bench.profile.trace import TraceEvent
from bench.userfiles import open_user_file

CHUNK_CHARS = 1 << 20
_WS = re.compile(r"[ \t\n\r]*")
_SEP = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")
_DECODER = json.JSONDecoder()

# category -> (kept as, on the device). The 2021 layout's names map onto today's.
_CATEGORIES = {
    "cpu_op": ("cpu_op", False),
    "operator": ("cpu_op", False),
    "user_annotation": ("user_annotation", False),
    "cuda_runtime": ("cuda_runtime", False),
    "runtime": ("cuda_runtime", False),
    "cuda_driver": ("cuda_driver", False),
    "hip_runtime": ("hip_runtime", False),
    "hip_driver": ("hip_driver", False),
    "xpu_runtime": ("xpu_runtime", False),
    "xpu_driver": ("xpu_driver", False),
    "privateuse1_runtime": ("privateuse1_runtime", False),
    "kernel": ("kernel", True),
    "gpu_memcpy": ("gpu_memcpy", True),
    "memcpy": ("gpu_memcpy", True),
    "gpu_memset": ("gpu_memset", True),
    "memset": ("gpu_memset", True),
    "gpu_user_annotation": ("gpu_user_annotation", True),
}
# Host ops whose shapes and types the analyses read (FLOPs from shapes, the dtype of the matmuls).
_SHAPED = re.compile(r"(mm|matmul|linear|gemm|einsum|attention|conv)", re.I)


class TraceError(ValueError):
    """A file that is not a readable profiler trace: the message is one line that says what to do."""

    exit_code = 2


@dataclass
class KinetoTrace:
    """What one trace file holds, as read."""

    path: str
    events: list[TraceEvent]
    meta: dict[str, Any]  # the top-level keys other than traceEvents (deviceProperties, distributedInfo...)
    truncated: str | None = None  # why the file ended early (the events before it are kept)
    n_events: int = 0  # every event in the file, kept or not
    dropped: dict[str, int] = field(default_factory=dict)  # category -> events not kept
    without_time: int = 0  # kept-kind events left out: no finite numeric `ts`
    without_duration: int = 0  # kept events whose `dur` is missing, negative or not finite: read as 0 us

    @property
    def rank(self) -> int | None:
        info = self.meta.get("distributedInfo")
        r = info.get("rank") if isinstance(info, dict) else None
        return r if isinstance(r, int) and not isinstance(r, bool) else None


class _Truncated(Exception):
    pass


class _Gunzip:
    """gzip members decompressed as they are read; a stream that ends early keeps what came before it
    (`truncated`), where gzip.GzipFile would drop the last read's data and raise."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.truncated = False
        self.done = False

    def read(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n and not self.done:
            chunk = self.d.unused_data or self.raw.read(1 << 16)
            if self.d.eof:  # the next gzip member, or the end
                if not chunk.strip(b"\0"):
                    self.done = True
                    break
                self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            elif not chunk:
                self.truncated = self.done = True
                break
            out += self.d.decompress(chunk)
        return bytes(out)


class _Stream:
    """A JSON text read chunk by chunk; `value()` decodes the next value whole, reading more as needed."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.buf = ""
        self.pos = 0
        self.eof = False

    def _more(self) -> bool:
        if self.eof:
            return False
        data = self.source.read(CHUNK_CHARS)
        chunk = self.decoder.decode(data, final=not data)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next character that is not white space ("" at the end)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if c == "":
            raise _Truncated()
        if c not in chars:
            raise TraceError(
                f"expected {' or '.join(repr(x) for x in chars)} at character {self.pos}, found {c!r}"
            )
        self.pos += 1
        return c

    def value(self) -> Any:
        self.pos = _WS.match(self.buf, self.pos).end()
        if self.pos >= len(self.buf) and self.peek() == "":
            raise _Truncated()
        while True:
            try:
                v, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                near_end = e.pos >= len(self.buf) - 8 or "Unterminated" in e.msg
                if near_end and self._more():
                    continue
                if near_end:
                    raise _Truncated() from None
                raise TraceError(f"{e.msg} at character {e.pos}") from None
            except RecursionError:
                raise TraceError(f"nesting too deep at character {self.pos}") from None
            if end == len(self.buf) and self._more():  # a number may go on in the next chunk
                continue
            self.pos = end
            return v


def _open(path: str) -> tuple[BinaryIO, Any]:
    raw = open_user_file(path, what="trace", error=TraceError, hint="pass a *.pt.trace.json(.gz) file")
    head = raw.read(2)
    raw.seek(0)
    return raw, (_Gunzip(raw) if head == b"\x1f\x8b" else raw)


def read_trace(path: str | Path) -> KinetoTrace:
    """The trace at `path` (plain or gzipped JSON). Raises TraceError for a file that is not a trace; a file
    that ends early (a truncated gzip or JSON text) is read up to its last whole event, `truncated` says so."""
    path = str(path)
    raw, source = _open(path)
    meta: dict[str, Any] = {}
    events: list[TraceEvent] = []
    dropped: dict[str, int] = defaultdict(int)
    flows: dict[tuple, int] = {}  # (phase, pid, tid, ts) of an ac2g arrow end -> its id (the correlation)
    counts = {"n": 0, "no_ts": 0, "no_dur": 0}
    truncated = None
    first = ""
    hint = "it is not a PyTorch profiler trace (export_chrome_trace / tensorboard_trace_handler writes one)"
    try:
        with raw:
            s = _Stream(source)
            first = s.peek()
            if first == "" and isinstance(source, _Gunzip) and source.truncated:
                raise TraceError(f"trace {path} is a gzip file that ends before any text (a truncated .gz)")
            if first == "":
                raise TraceError(f"trace {path} is empty: {hint}")
            if first == "[":
                _read_events(s, events, dropped, flows, counts)
            elif first == "{":
                s.pos += 1
                if s.peek() != "}":
                    while True:
                        key = s.value()
                        if not isinstance(key, str):
                            raise TraceError("a key that is not a string")
                        s.expect(":")
                        if key == "traceEvents":
                            if s.peek() != "[":
                                raise TraceError("traceEvents is not a list")
                            _read_events(s, events, dropped, flows, counts)
                        else:
                            meta[key] = s.value()
                        if s.expect(",}") == "}":
                            break
                else:
                    s.pos += 1
            else:
                raise TraceError(f"trace {path} is not JSON (it starts with {first!r}): {hint}")
    except _Truncated:
        if isinstance(source, _Gunzip) and source.truncated:
            truncated = f"the gzip stream ends early (a truncated .gz), after {counts['n']} events"
        else:
            truncated = f"the file ends inside its JSON text, after {counts['n']} events"
    except zlib.error as e:
        if not counts["n"]:
            raise TraceError(f"trace {path} is not a readable gzip file ({e}): {hint}") from None
        truncated = f"the gzip stream is corrupt after {counts['n']} events ({e})"
    except UnicodeDecodeError:
        raise TraceError(f"trace {path} is not text (nor gzip): {hint}") from None
    except TraceError as e:
        if str(e).startswith("trace "):
            raise
        raise TraceError(f"trace {path} is not valid JSON ({e}): {hint}") from None
    except OSError as e:
        raise TraceError(f"trace {path} cannot be read ({e.strerror or e})") from None
    if truncated is None and isinstance(source, _Gunzip) and source.truncated:
        truncated = f"the gzip stream ends early (a truncated .gz), after {counts['n']} events"
    if truncated is not None and not counts["n"]:
        raise TraceError(f"trace {path} ends before its first whole event ({truncated.split(',')[0]})")
    if "traceEvents" not in meta and not counts["n"] and first == "{" and truncated is None:
        raise TraceError(f"trace {path} has no traceEvents: {hint}")
    events = _link_flows(events, flows)
    flows.clear()
    if not any(e.on_device for e in events):  # self times serve the host view only (a CPU-only trace)
        events = with_self_times(events)
    events.sort(key=lambda e: e.start)
    return KinetoTrace(
        path, events, meta, truncated, counts["n"], dict(dropped), counts["no_ts"], counts["no_dur"]
    )


def _read_events(s: _Stream, events: list, dropped: dict, flows: dict, counts: dict) -> None:
    s.expect("[")
    if s.peek() == "]":
        s.pos += 1
        return
    while True:
        ev = s.value()
        counts["n"] += 1
        if isinstance(ev, dict):
            kept = _event(ev, flows, counts)
            if kept is not None:
                events.append(kept)
            else:
                dropped[str(ev.get("cat") or ev.get("ph") or "?")] += 1
        m = _SEP.match(s.buf, s.pos)  # the common case, without a call per character class
        if m and m.end() < len(s.buf):
            s.pos = m.end()
            if m.group(1) == "]":
                return
            continue
        if s.expect(",]") == "]":
            return


def _num(v: Any) -> float | None:
    """A finite JSON number (Python's json also reads NaN and Infinity), else None."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    return float(v) if math.isfinite(v) else None


def _key(v: Any) -> Any:
    """A pid or tid as a dict key: a list or object (no profiler writes one) as its JSON text."""
    try:
        hash(v)
        return v
    except TypeError:
        return json.dumps(v, sort_keys=True, default=str)


def _int(v: Any) -> int:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else 0


_THREADS: dict[tuple, tuple] = {}


def _thread(pid: Any, tid: Any) -> tuple:
    return _THREADS.setdefault((pid, tid), (pid, tid))


def _event(ev: dict, flows: dict, counts: dict) -> TraceEvent | None:
    ph = ev.get("ph")
    cat = str(ev.get("cat") or "").lower()
    if ph in ("s", "f") and cat == "ac2g":
        ts = _num(ev.get("ts"))
        if ts is not None:
            flows[(ph, _key(ev.get("pid")), _key(ev.get("tid")), ts)] = _int(ev.get("id"))
        return None
    if ph != "X" or cat not in _CATEGORIES:
        return None
    ts, dur = _num(ev.get("ts")), _num(ev.get("dur"))
    if ts is None:
        counts["no_ts"] += 1
        return None
    if dur is None or dur < 0:
        counts["no_dur"] += 1
    activity, on_device = _CATEGORIES[cat]
    name = sys.intern(str(ev.get("name") or ""))  # a trace repeats a few thousand names millions of times
    args = ev.get("args") if isinstance(ev.get("args"), dict) else {}
    shaped = activity == "cpu_op" and _SHAPED.search(name) is not None
    dims = args.get("Input Dims", args.get("Input dims")) if shaped else None
    types = args.get("Input type") if shaped else None
    return TraceEvent(
        name=name,
        start=ts,
        end=ts + max(0.0, dur or 0.0),
        on_device=on_device,
        activity=activity,
        id=_int(args.get("correlation")),
        flops=_int(args.get("flops")),
        input_shapes=dims if isinstance(dims, list) else [],
        input_types=types if isinstance(types, list) else [],
        is_annotation=activity in ("user_annotation", "gpu_user_annotation"),
        thread=_thread(_key(ev.get("pid")), _key(ev.get("tid"))),
        external_id=_int(args.get("External id")),
    )


def _link_flows(events: list[TraceEvent], flows: dict) -> list[TraceEvent]:
    """Give a kernel or launch without args.correlation the id of the ac2g arrow that ends on it."""
    if not flows:
        return events
    out = []
    for e in events:
        if e.id == 0 and isinstance(e.thread, tuple):
            ph = "f" if e.on_device else "s"
            fid = flows.get((ph, *e.thread, e.start))
            if fid:
                e = replace(e, id=fid)
        out.append(e)
    return out


def with_self_times(events: list[TraceEvent]) -> list[TraceEvent]:
    """Each host op's self time: its duration less its direct child ops' on the same thread (a trace holds
    inclusive durations only)."""
    by_thread: dict[Any, list[int]] = defaultdict(list)
    for i, e in enumerate(events):
        if not e.on_device and e.activity in ("cpu_op", "user_annotation"):
            by_thread[e.thread].append(i)
    child_us = [0.0] * len(events)
    for idx in by_thread.values():
        idx.sort(key=lambda i: (events[i].start, -events[i].us))
        stack: list[int] = []
        for i in idx:
            e = events[i]
            while stack and events[stack[-1]].end <= e.start:
                stack.pop()
            if stack and e.end <= events[stack[-1]].end:
                child_us[stack[-1]] += e.us
            stack.append(i)
    return [
        replace(e, self_us=max(0.0, e.us - child_us[i])) if e.activity in ("cpu_op", "user_annotation") else e
        for i, e in enumerate(events)
    ]
