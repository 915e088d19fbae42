"""One signal policy for every command (bench run, tune, gate, report, import; hwinfo; each rank under torchrun).

The handler only records the signal; it never raises. Raising from a handler surfaces wherever the
interpreter happens to be: inside torch's backward, a lazy import, a `except Exception` that records the
run as failed, or compiled code that discards the error: `bench gate` measured on after SIGTERM when the
handler's exception was raised inside `abc.register`, called by the initialisation of numpy.random's
compiled module (imported lazily by torch._dynamo, itself imported by the first optimizer), which dropped it
and the signal with it. Instead:

- `checked()`: a command whose loops call `check()` at known points (between steps, eval batches,
  gate trials, kernel repeats) holds the signal until the next check, which raises `Stop` there; the
  command ends that run `interrupted`, keeps the finished work and exits 143 (SIGTERM) or 130 (Ctrl-C).
- Elsewhere (`bench report`, `import`, start-up before any loop), nothing worth keeping is half done:
  the handler ends the process at once with the same code and line, unless inside `critical()` (a file
  being written), which holds the exit until the write is done.
- A second Ctrl-C ends the process at once, whatever it is doing.
- A check point that is never reached (a collective waiting on a hung peer, a deadlock) cannot keep the
  process alive: GRACE_S after the signal a watchdog thread ends it at once (DEVICEBENCH_STOP_GRACE_S).

hwinfo holds this module because hwinfo never imports bench, and bench may import hwinfo.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

GRACE_S = 60.0  # the longest a signal may wait for a check point (a compile of a big model is one step)
GRACE_ENV = "DEVICEBENCH_STOP_GRACE_S"
EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}
NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C"}


class Stop(KeyboardInterrupt):
    """Raised by check() (never by a handler): a signal asked the command to end. A KeyboardInterrupt, so that
    `except Exception` never records it as a failure."""

    def __init__(self, signum: int) -> None:
        super().__init__(NAMES.get(signum, f"signal {signum}"))
        self.signum = signum
        self.signal_name = NAMES.get(signum, f"signal {signum}")
        self.exit_code = EXIT_CODES.get(signum, 128 + signum)


class _State:
    """What the handler records; one per process (signals are per process)."""

    def __init__(self) -> None:
        self.prog = "bench"
        self.signum: int | None = None
        self.checked = 0  # > 0: loops will check(); the handler only records
        self.critical = 0  # > 0: a file is being written; an exit waits for its end
        self.installed = False
        self.watchdog: threading.Thread | None = None


_state = _State()


def _exit_now(signum: int, why: str = "") -> None:
    """End the process at once with the signal's code and one line (os.write: nothing buffered, no lock that
    the interrupted main thread may hold)."""
    code = EXIT_CODES.get(signum, 128 + signum)
    line = f"{_state.prog}: interrupted by {NAMES.get(signum, f'signal {signum}')}{why}\n"
    with contextlib.suppress(OSError):
        os.write(2, line.encode())
    os._exit(code)


def _handler(signum: int, frame: object) -> None:
    if _state.signum is not None and signum == signal.SIGINT == _state.signum:
        _exit_now(signum, " twice: stopped at once")
    if _state.signum is None:
        _state.signum = signum
    if _state.checked == 0 and _state.critical == 0:
        _exit_now(_state.signum)


@contextlib.contextmanager
def installed(prog: str) -> Iterator[None]:
    """The policy for one command: SIGTERM and SIGINT recorded by the handler; the previous handlers after.
    Outside the main thread (a test calling main() from a thread) signals are left as they are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in EXIT_CODES}
    old = (_state.prog, _state.signum, _state.checked, _state.critical, _state.installed)
    _state.prog, _state.signum, _state.checked, _state.critical, _state.installed = prog, None, 0, 0, True
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _state.prog, _state.signum, _state.checked, _state.critical, _state.installed = old


def pending() -> Stop | None:
    """The Stop a recorded signal asks for, or None."""
    return Stop(_state.signum) if _state.signum is not None else None


def check() -> None:
    """A known point: raise Stop here if a signal came since the command began."""
    if _state.signum is not None:
        raise Stop(_state.signum)


def grace_s() -> float:
    """Seconds a held signal waits for a check point before the watchdog ends the process."""
    try:
        value = float(os.environ.get(GRACE_ENV, GRACE_S))
    except ValueError:
        return GRACE_S
    return value if value > 0 else GRACE_S


def _watch(grace: float) -> None:
    """Polls (the handler takes no lock, so it cannot deadlock with the thread it interrupted): a signal held
    longer than `grace` ends the process, once any file being written is whole."""
    since = None
    while True:
        time.sleep(0.25)
        if _state.signum is None or not _state.installed:
            since = None
            continue
        since = since or time.monotonic()
        if time.monotonic() - since > grace and _state.critical == 0:
            _exit_now(_state.signum, f": no check point was reached within {grace:g} s, stopped at once")


@contextlib.contextmanager
def checked() -> Iterator[None]:
    """Inside, the loops call check(): a signal is held until the next one. Checks once on entry."""
    if _state.installed and _state.watchdog is None:
        _state.watchdog = threading.Thread(
            target=_watch, args=(grace_s(),), name="stop-watchdog", daemon=True
        )
        _state.watchdog.start()
    _state.checked += 1
    try:
        check()
        yield
    finally:
        _state.checked -= 1
    if _state.checked == 0:  # leaving the loops normally with a signal held: this is their last check point
        check()


@contextlib.contextmanager
def unchecked() -> Iterator[None]:
    """Inside, no loop checks (a launcher waiting on its ranks, which stop on their own): a signal ends the
    process at once, one already held included."""
    saved, _state.checked = _state.checked, 0
    try:
        if _state.signum is not None and _state.installed and _state.critical == 0:
            _exit_now(_state.signum)
        yield
    finally:
        _state.checked = saved


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """A write that must finish whole: an exit the handler would make waits for its end."""
    _state.critical += 1
    try:
        yield
    finally:
        _state.critical -= 1
        if _state.critical == 0 and _state.checked == 0 and _state.signum is not None and _state.installed:
            _exit_now(_state.signum)


def exit_code() -> int | None:
    """The code a recorded signal asks the command to end with (for the dispatcher, after a command returned)."""
    return EXIT_CODES.get(_state.signum, 128 + _state.signum) if _state.signum is not None else None


def end_process(code: int) -> None:
    """After a signal, once everything is written: end now, skipping the interpreter's finalisation (torch's
    teardown takes seconds on a loaded machine). atexit handlers run and stdio is flushed first."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


# --- no process outlives its command ------------------------------------------------------------------

PR_SET_PDEATHSIG = 1
LAUNCHER_PID_ENV = "DEVICEBENCH_LAUNCHER_PID"


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """This process gets `sig` when its parent (the launcher) dies (Linux prctl PR_SET_PDEATHSIG); if the
    parent is already gone (re-parented), it ends now. Returns whether the death signal could be set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    expected = os.environ.get(LAUNCHER_PID_ENV)
    # The launcher may have died before prctl: then this process already has another parent.
    if expected and expected.isdigit() and os.getppid() != int(expected):
        os._exit(EXIT_CODES.get(sig, 128 + sig) if sig in EXIT_CODES else 1)
    return True
