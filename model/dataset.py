"""Data pipeline: Tiny Shakespeare shipped in the package, a text from a path or an http(s) URL (with a
checksum, a deadline and a size cap), a char tokenizer, and batches drawn from a seeded CPU generator so
every device sees the same data in the same order."""

from __future__ import annotations

import hashlib
import http.client
import lzma
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

import torch

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_CHARS = 1_115_394
_PACKAGED = "data/tinyshakespeare.txt.xz"


class DataError(RuntimeError):
    """A data problem the user can act on: bad checksum, no network, text too short."""

    exit_code = 2


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_shakespeare() -> str:
    """Tiny Shakespeare from the copy shipped inside the package, checksum verified. No network."""
    raw = lzma.decompress(resources.files("model").joinpath(_PACKAGED).read_bytes())
    if sha256_bytes(raw) != SHAKESPEARE_SHA256:
        raise DataError(
            f"the packaged Tiny Shakespeare is corrupt (SHA-256 {sha256_bytes(raw)[:12]}..., expected "
            f"{SHAKESPEARE_SHA256[:12]}...): reinstall devicebench"
        )
    return raw.decode("utf-8")


def cache_dir() -> Path:
    """$DEVICEBENCH_CACHE, else $XDG_CACHE_HOME/devicebench, else ~/.cache/devicebench."""
    if os.environ.get("DEVICEBENCH_CACHE"):
        return Path(os.environ["DEVICEBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "devicebench"


MAX_DOWNLOAD_BYTES = 256 * 2**20  # a char-level corpus: each byte becomes an int64 token (8x in memory)
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SCHEMES = ("http", "https")


def check_sha256(sha256: str) -> str:
    """The checksum in lower case; DataError unless it is 64 hex digits."""
    text = str(sha256).strip().lower()
    if not _SHA256_RE.match(text):
        raise DataError(f"a SHA-256 checksum is 64 hex digits; got {str(sha256)[:80]!r}")
    return text


def check_url(url: str) -> str:
    """The URL when it is http(s) with a host; DataError otherwise (file://, ftp://, no host)."""
    try:
        parts = urllib.parse.urlsplit(str(url))
        host = parts.hostname
    except ValueError as e:
        raise DataError(f"{str(url)[:200]!r} is not a valid URL ({e})") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise DataError(
            f"only http:// and https:// URLs are downloaded, not {parts.scheme or 'no scheme'}:// "
            f"({str(url)[:200]!r}); give a local file as a path"
        )
    if not host:
        raise DataError(f"the URL {str(url)[:200]!r} has no host")
    return str(url)


def _cache_name(url: str, filename: str | None) -> str:
    """A file name inside the cache directory: the URL's last path part, never '..' or a path."""
    raw = filename or PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    name = _UNSAFE.sub("_", raw).strip("._-")
    return name[:120] or "download"


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only (urllib also follows ftp://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urllib.parse.urlsplit(newurl).scheme.lower() not in _SCHEMES:
            raise DataError(f"{req.full_url} redirects to {newurl[:200]}, which is not an http(s) URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _set_read_timeout(response: object, seconds: float) -> None:
    """Bound the next socket read by the time left before the deadline."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.01))


def fetch(url: str, timeout_s: float = 30.0, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """The body of an http(s) URL, within an overall deadline of `timeout_s` and at most `max_bytes`.

    Every failure (network, HTTP status, a short body, too slow, too big, a redirect off http(s)) is a
    DataError with one line that says what happened.
    """
    check_url(url)
    deadline = time.monotonic() + timeout_s
    too_slow = f"download of {url} did not finish within {timeout_s:g} s"
    opener = urllib.request.build_opener(_HttpOnlyRedirects)
    try:
        with opener.open(url, timeout=timeout_s) as response:
            length_text = response.headers.get("Content-Length") or ""
            length = int(length_text) if length_text.strip().isdigit() else None
            if length is not None and length > max_bytes:
                raise DataError(f"{url} is {length:,} bytes, over the {max_bytes:,}-byte limit")
            chunks: list[bytes] = []
            got = 0
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DataError(f"{too_slow} (got {got:,} bytes)")
                _set_read_timeout(response, left)
                chunk = response.read1(1 << 16)
                if not chunk:
                    break
                got += len(chunk)
                if got > max_bytes:
                    raise DataError(f"{url} sent more than the {max_bytes:,}-byte limit")
                chunks.append(chunk)
    except DataError:
        raise
    except urllib.error.HTTPError as e:
        raise DataError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except http.client.IncompleteRead as e:
        raise DataError(
            f"download of {url} ended early: got {len(e.partial):,} bytes, expected more"
        ) from None
    except TimeoutError:
        raise DataError(too_slow) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise DataError(too_slow) from None
        raise DataError(f"cannot reach {url} ({e.reason}): check the network") from None
    except (http.client.HTTPException, OSError, ValueError) as e:
        raise DataError(f"download of {url} failed: {type(e).__name__}: {e}") from None
    if length is not None and got != length:
        raise DataError(f"download of {url} ended early: got {got:,} of {length:,} bytes")
    return b"".join(chunks)


def download(
    url: str,
    sha256: str,
    filename: str | None = None,
    directory: Path | None = None,
    timeout_s: float = 30.0,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> Path:
    """Fetch url into the cache (atomic write), verify its SHA-256, and return the path.

    A cached file with the right checksum is reused without touching the network. Only http(s);
    `timeout_s` is an overall deadline; at most `max_bytes`. Every failure is a DataError.
    """
    check_url(url)
    sha256 = check_sha256(sha256)
    directory = Path(directory) if directory is not None else cache_dir()
    target = directory / _cache_name(url, filename)
    try:
        if target.is_file() and sha256_bytes(target.read_bytes()) == sha256:
            return target
    except OSError:
        pass  # unreadable cache entry: fetch again
    data = fetch(url, timeout_s=timeout_s, max_bytes=max_bytes)
    got = sha256_bytes(data)
    if got != sha256:
        raise DataError(
            f"checksum mismatch for {url}: got SHA-256 {got}, expected {sha256}; the file was not saved"
        )
    try:
        _atomic_write_bytes(target, data)
    except OSError as e:
        raise DataError(
            f"cannot save {url} into {directory} ({e.strerror or e}): set DEVICEBENCH_CACHE"
        ) from None
    return target


def _atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write beside the target, fsync, rename; the file honours the umask."""
    # Deliberate copy of the results module's atomic write: model/ imports neither bench nor hwinfo.
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_local(path_text: str, max_bytes: int) -> bytes:
    path = Path(path_text).expanduser()
    try:
        if path.is_dir():
            raise DataError(f"{path_text} is a directory; give a text file (or an http(s) URL)")
        size = path.stat().st_size
        if size > max_bytes:
            raise DataError(f"{path_text} is {size:,} bytes, over the {max_bytes:,}-byte limit")
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"no such file: {path_text}") from None
    except OSError as e:
        raise DataError(f"cannot read {path_text}: {e.strerror or e}") from None


def load_text(
    source: str | None = None,
    sha256: str | None = None,
    timeout_s: float = 30.0,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> tuple[str, str, str]:
    """(text, label, SHA-256 of its bytes) from a path, an http(s) URL, or None (the bundled Tiny
    Shakespeare), checked against `sha256` when given. Every problem is a DataError."""
    wanted = check_sha256(sha256) if sha256 is not None else None
    if source is None:
        text, label, got = load_shakespeare(), "Tiny Shakespeare (bundled)", SHAKESPEARE_SHA256
        if wanted is not None and wanted != got:
            raise DataError(f"checksum mismatch for {label}: its SHA-256 is {got}, expected {wanted}")
        return text, label, got
    source = str(source)
    if not source.strip():
        raise DataError(
            "the data source is empty: give a path or an http(s) URL, or leave it out for Tiny Shakespeare"
        )
    if "://" in source:
        check_url(source)
        if wanted is not None:
            data = download(source, wanted, timeout_s=timeout_s, max_bytes=max_bytes).read_bytes()
        else:
            data = fetch(source, timeout_s=timeout_s, max_bytes=max_bytes)
    else:
        data = _read_local(source, max_bytes)
    got = sha256_bytes(data)
    if wanted is not None and got != wanted:
        raise DataError(f"checksum mismatch for {source}: got SHA-256 {got}, expected {wanted}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{source} is not UTF-8 text (byte {e.start} is 0x{data[e.start]:02x})") from None
    if len(set(text)) < 2:
        raise DataError(
            f"{source} holds {len(text)} characters of {len(set(text))} kind(s): not a text to train on"
        )
    return text, source, got


class CharTokenizer:
    """Character-level tokenizer: the vocabulary is the sorted set of characters of the text."""

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError as e:
            raise DataError(f"character {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


@dataclass
class CharDataset:
    """A text tokenized and split into train and val token tensors (int64, on the CPU)."""

    tokenizer: CharTokenizer
    train: torch.Tensor
    val: torch.Tensor
    source: str = "text"  # where the text came from: a path, a URL, or the bundled Tiny Shakespeare
    sha256: str | None = None  # of the text's bytes, to record with the results

    @classmethod
    def from_text(cls, text: str, train_fraction: float = 0.9) -> CharDataset:
        tok = CharTokenizer(text)
        ids = torch.tensor(tok.encode(text), dtype=torch.int64)
        n = int(train_fraction * len(ids))
        return cls(tok, ids[:n], ids[n:])

    @classmethod
    def shakespeare(cls) -> CharDataset:
        return cls.load()

    @classmethod
    def load(cls, source: str | None = None, sha256: str | None = None) -> CharDataset:
        """The dataset from a text file path or an http(s) URL (downloaded once into the cache when
        `sha256` is given), or the bundled Tiny Shakespeare when `source` is None; the bytes are
        checked against `sha256` when given. Raises DataError (one line) for every problem."""
        text, label, digest = load_text(source, sha256)
        dataset = cls.from_text(text)
        dataset.source, dataset.sha256 = label, digest
        return dataset

    def split(self, name: str) -> torch.Tensor:
        if name not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {name!r}")
        return self.train if name == "train" else self.val


class BatchSampler:
    """Random (x, y) batches whose offsets come from a seeded CPU torch.Generator.

    The same seed gives the same batches on every device and at any thread count: no device RNG is
    used, and the batch is built on the CPU and only then moved to the device.
    """

    def __init__(self, data: torch.Tensor, block_size: int, batch_size: int, seed: int) -> None:
        if len(data) < block_size + 1:
            raise DataError(
                f"the text has {len(data)} tokens, too short for block_size {block_size}: "
                f"it needs at least {block_size + 1}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.data = data
        self.block_size = block_size
        self.batch_size = batch_size
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(seed)
        self._offsets = torch.arange(block_size + 1)

    def next_indices(self) -> torch.Tensor:
        high = len(self.data) - self.block_size
        return torch.randint(high, (self.batch_size,), generator=self.generator)

    def next_cpu(self) -> tuple[torch.Tensor, torch.Tensor]:
        chunk = self.data[self.next_indices()[:, None] + self._offsets]
        return chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous()

    def next(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """A batch on `device` (a plain copy; the trainer's copies are the device layer's: pinned, async)."""
        x, y = self.next_cpu()
        return x.to(device), y.to(device)
