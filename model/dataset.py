"""Data pipeline: Tiny Shakespeare shipped in the package, downloads with checksums, a char tokenizer,
and batches drawn from a seeded CPU generator so every device sees the same data in the same order."""

from __future__ import annotations

import hashlib
import lzma
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

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


def download(
    url: str, sha256: str, filename: str | None = None, directory: Path | None = None, timeout_s: float = 30.0
) -> Path:
    """Fetch url into the cache (atomic write), verify its SHA-256, and return the path.

    A cached file with the right checksum is reused without touching the network.
    """
    directory = Path(directory) if directory is not None else cache_dir()
    name = filename or url.rstrip("/").rsplit("/", 1)[-1] or "download"
    target = directory / name
    if target.exists() and sha256_bytes(target.read_bytes()) == sha256:
        return target
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            data = response.read()
    except urllib.error.HTTPError as e:
        raise DataError(f"download of {url} failed: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(
            f"cannot reach {url} ({reason}): check the network, or place the file at {target}"
        ) from e
    got = sha256_bytes(data)
    if got != sha256:
        raise DataError(
            f"checksum mismatch for {url}: got SHA-256 {got}, expected {sha256}; the file was not saved"
        )
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


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

    @classmethod
    def from_text(cls, text: str, train_fraction: float = 0.9) -> CharDataset:
        tok = CharTokenizer(text)
        ids = torch.tensor(tok.encode(text), dtype=torch.int64)
        n = int(train_fraction * len(ids))
        return cls(tok, ids[:n], ids[n:])

    @classmethod
    def shakespeare(cls) -> CharDataset:
        return cls.from_text(load_shakespeare())

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
