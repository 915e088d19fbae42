"""Data pipeline: the packaged text, downloads against a local HTTP server, tokenizer, seeded batches."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from functools import partial

import pytest
import torch

from model.dataset import (
    SHAKESPEARE_CHARS,
    BatchSampler,
    CharDataset,
    CharTokenizer,
    DataError,
    download,
    load_shakespeare,
)


def test_packaged_shakespeare_is_complete_and_verified():
    text = load_shakespeare()
    assert len(text) == SHAKESPEARE_CHARS
    assert text.startswith("First Citizen:")


def test_tokenizer_and_split(shakespeare):
    assert shakespeare.tokenizer.vocab_size == 65
    assert len(shakespeare.train) == int(0.9 * SHAKESPEARE_CHARS)
    assert len(shakespeare.train) + len(shakespeare.val) == SHAKESPEARE_CHARS
    tok = shakespeare.tokenizer
    assert tok.decode(tok.encode("To be, or not to be")) == "To be, or not to be"
    assert tok.chars == sorted(tok.chars)
    with pytest.raises(DataError, match="not in the vocabulary"):
        CharTokenizer("abc").encode("abd")


def test_same_seed_same_batches_different_seed_differs(shakespeare):
    a = BatchSampler(shakespeare.train, 64, 12, seed=1337)
    b = BatchSampler(shakespeare.train, 64, 12, seed=1337)
    c = BatchSampler(shakespeare.train, 64, 12, seed=1338)
    for _ in range(5):
        (xa, ya), (xb, yb), (xc, _) = a.next(), b.next(), c.next()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert not torch.equal(xa, xc)
    assert torch.equal(xa[:, 1:], ya[:, :-1])  # targets are inputs shifted by one
    assert xa.shape == (12, 64) and xa.dtype == torch.int64


def test_batches_do_not_depend_on_thread_count_or_global_rng(shakespeare):
    prev = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        torch.manual_seed(0)
        one = BatchSampler(shakespeare.train, 32, 4, seed=7).next()[0]
        torch.set_num_threads(2)
        torch.manual_seed(12345)
        two = BatchSampler(shakespeare.train, 32, 4, seed=7).next()[0]
    finally:
        torch.set_num_threads(prev)
    assert torch.equal(one, two)


def test_text_too_short_is_a_clear_error():
    ds = CharDataset.from_text("hello world")
    with pytest.raises(DataError, match="too short for block_size 64"):
        BatchSampler(ds.train, 64, 2, seed=1)


@pytest.fixture
def http_root(tmp_path):
    """A local http.server on 127.0.0.1 serving tmp_path/www; yields (base_url, www_dir)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = partial(_QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", www
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_good_file_is_cached_atomically(http_root, tmp_path):
    base, www = http_root
    body = b"tiny corpus\n" * 100
    (www / "corpus.txt").write_bytes(body)
    cache = tmp_path / "cache"
    path = download(f"{base}/corpus.txt", hashlib.sha256(body).hexdigest(), directory=cache)
    assert path.read_bytes() == body
    assert [p.name for p in cache.iterdir()] == ["corpus.txt"]  # no temp file left behind
    (www / "corpus.txt").unlink()  # a second call uses the cache, not the network
    assert download(f"{base}/corpus.txt", hashlib.sha256(body).hexdigest(), directory=cache) == path


def test_download_uses_env_cache_dir(http_root, tmp_path, monkeypatch):
    base, www = http_root
    (www / "a.txt").write_bytes(b"abc")
    monkeypatch.setenv("DEVICEBENCH_CACHE", str(tmp_path / "envcache"))
    path = download(f"{base}/a.txt", hashlib.sha256(b"abc").hexdigest())
    assert path == tmp_path / "envcache" / "a.txt"


def test_download_corrupt_file_is_refused_and_not_saved(http_root, tmp_path):
    base, www = http_root
    (www / "corpus.txt").write_bytes(b"tampered")
    with pytest.raises(DataError, match="checksum mismatch"):
        download(f"{base}/corpus.txt", hashlib.sha256(b"original").hexdigest(), directory=tmp_path / "c")
    assert not (tmp_path / "c" / "corpus.txt").exists()


def test_download_404(http_root, tmp_path):
    base, _ = http_root
    with pytest.raises(DataError, match="HTTP 404"):
        download(f"{base}/missing.txt", "0" * 64, directory=tmp_path)


def test_download_connection_refused(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="cannot reach"):
        download(f"http://127.0.0.1:{port}/x.txt", "0" * 64, directory=tmp_path, timeout_s=5)
