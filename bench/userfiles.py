"""Reading a file a user named, where every way it can fail is one line in the caller's error type.

Used by every reader of user input in bench/ (TOML configs, results JSON, gate baselines, nanoGPT logs,
hwinfo JSON), so "missing", "a directory", "permission denied" and "not text" read the same everywhere.
hwinfo/ and model/ keep their own readers: they never import bench/.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from hwinfo.units import nbytes


def _label(what: str, path: Path) -> str:
    return f"{what} {path}" if what else str(path)


def open_user_file(path: str | Path, *, what: str, error: type[Exception], hint: str = "") -> BinaryIO:
    """The file opened for reading in binary; a missing, directory or unreadable path raises `error`."""
    p = Path(path)
    where = _label(what, p)
    suffix = f": {hint}" if hint else ""
    try:
        if p.is_dir():
            raise IsADirectoryError
        return open(p, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise error(f"{where}: no such file (not found){suffix}") from None
    except IsADirectoryError:
        raise error(f"{where} is a directory, not a file{suffix}") from None
    except PermissionError:
        raise error(f"{where}: permission denied: ask its owner for read access") from None
    except OSError as e:
        raise error(f"{where} cannot be read ({e.strerror or e})") from None


def read_user_bytes(
    path: str | Path, *, what: str, error: type[Exception], max_bytes: int | None = None, hint: str = ""
) -> bytes:
    """The whole file (at most max_bytes: a device or a pipe never ends)."""
    with open_user_file(path, what=what, error=error, hint=hint) as f:
        try:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        except OSError as e:
            raise error(f"{_label(what, Path(path))} cannot be read ({e.strerror or e})") from None
    if max_bytes is not None and len(data) > max_bytes:
        suffix = f": {hint}" if hint else ""
        raise error(
            f"{_label(what, Path(path))} is larger than {nbytes(max_bytes)}: is it the right file?{suffix}"
        )
    return data


def read_user_text(
    path: str | Path, *, what: str, error: type[Exception], max_bytes: int | None = None, hint: str = ""
) -> str:
    """The file as UTF-8 text; anything else is `error`."""
    data = read_user_bytes(path, what=what, error=error, max_bytes=max_bytes, hint=hint)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        suffix = f": {hint}" if hint else ""
        raise error(f"{_label(what, Path(path))} is not a text file (not UTF-8){suffix}") from None
