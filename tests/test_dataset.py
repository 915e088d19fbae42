"""Data pipeline: the packaged text, downloads against a local HTTP server, tokenizer, seeded batches."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
import time
import urllib.request
from functools import partial

import pytest
import torch

from model.dataset import (
    SHAKESPEARE_CHARS,
    SHAKESPEARE_SHA256,
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


# --- download: an overall deadline, a size cap, http(s) only, every failure a DataError ---------------


class _Misbehaving(http.server.BaseHTTPRequestHandler):
    """/trickle: a byte every 0.3 s; /short: Content-Length 1000, 500 bytes sent; /big: a body over the
    cap with no Content-Length; /huge: a Content-Length over the cap; /to-file, /to-ftp: redirects."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass
        elif self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"y" * 500)
            self.wfile.flush()
            self.close_connection = True
        elif self.path == "/big":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(64):
                    self.wfile.write(b"z" * 4096)
            except OSError:
                pass
            self.close_connection = True
        elif self.path == "/huge":
            self.send_response(200)
            self.send_header("Content-Length", str(10**12))
            self.end_headers()
        elif self.path in ("/to-file", "/to-ftp"):
            self.send_response(302)
            self.send_header(
                "Location", "file:///etc/passwd" if self.path == "/to-file" else "ftp://example.com/x"
            )
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)


@pytest.fixture
def bad_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Misbehaving)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


SHA0 = "0" * 64


def test_download_deadline_is_overall_not_per_read(bad_server, tmp_path):
    start = time.monotonic()
    with pytest.raises(DataError, match="did not finish within 1 s"):
        download(f"{bad_server}/trickle", SHA0, directory=tmp_path, timeout_s=1)
    # a per-read timeout would run 30 s here (10: room for a loaded machine)
    assert time.monotonic() - start < 10


def test_download_short_body_is_a_data_error(bad_server, tmp_path):
    with pytest.raises(DataError, match="ended early"):
        download(f"{bad_server}/short", SHA0, directory=tmp_path, timeout_s=5)
    assert list(tmp_path.iterdir()) == []


def test_download_size_cap(bad_server, tmp_path):
    with pytest.raises(DataError, match="over the 1,000,000-byte limit"):
        download(f"{bad_server}/huge", SHA0, directory=tmp_path, max_bytes=1_000_000)
    with pytest.raises(DataError, match="more than the 100,000-byte limit"):
        download(f"{bad_server}/big", SHA0, directory=tmp_path, max_bytes=100_000, timeout_s=5)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/passwd", "only http:// and https://"),
        ("ftp://example.com/data.txt", "only http:// and https://"),
        ("data:text/plain,hello", "only http:// and https://"),
        ("http://", "has no host"),
        ("http://[::1", "not a valid URL"),
        ("/just/a/path", "only http:// and https://"),
    ],
)
def test_download_refuses_other_schemes(url, words, tmp_path):
    with pytest.raises(DataError, match=words):
        download(url, SHA0, directory=tmp_path)


def test_download_redirect_off_http_is_refused(bad_server, tmp_path):
    for path in ("/to-file", "/to-ftp"):
        with pytest.raises(DataError):
            download(f"{bad_server}{path}", SHA0, directory=tmp_path, timeout_s=5)


def test_download_url_ending_in_dotdot_stays_in_the_cache(http_root, tmp_path):
    base, www = http_root
    listing = urllib.request.urlopen(f"{base}/sub/..", timeout=5).read()  # the server's answer for it
    cache = tmp_path / "cache"
    path = download(f"{base}/sub/..", hashlib.sha256(listing).hexdigest(), directory=cache)
    assert path.parent == cache and path.name == "download" and path.read_bytes() == listing
    with pytest.raises(DataError, match="checksum mismatch"):
        download(f"{base}/..", SHA0, directory=cache)
    assert sorted(p.name for p in cache.iterdir()) == ["download"]
    (www / "x").write_bytes(b"xyz")
    evil = download(f"{base}/x", hashlib.sha256(b"xyz").hexdigest(), filename="../../evil", directory=cache)
    assert evil.parent == cache and evil.name == "evil"


def test_download_bad_checksum_text(tmp_path):
    with pytest.raises(DataError, match="64 hex digits"):
        download("http://127.0.0.1:1/x", "abc", directory=tmp_path)


def test_download_file_honours_umask(http_root, tmp_path):
    base, www = http_root
    (www / "a.txt").write_bytes(b"abc")
    old = os.umask(0o022)
    try:
        path = download(f"{base}/a.txt", hashlib.sha256(b"abc").hexdigest(), directory=tmp_path / "c")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# --- CharDataset.load: a path, an http(s) URL, or the bundled text, checked against a SHA-256 ----------


def test_load_bundled_by_default(shakespeare):
    ds = CharDataset.load()
    assert ds.source == "Tiny Shakespeare (bundled)" and ds.sha256 == SHAKESPEARE_SHA256
    assert torch.equal(ds.train, shakespeare.train)
    assert CharDataset.load(None, SHAKESPEARE_SHA256.upper()).sha256 == SHAKESPEARE_SHA256
    with pytest.raises(DataError, match="checksum mismatch for Tiny Shakespeare"):
        CharDataset.load(None, SHA0)


def test_load_a_local_file_checked(tmp_path):
    text = "hello world, a tiny corpus\n" * 20
    path = tmp_path / "corpus.txt"
    path.write_text(text)
    ds = CharDataset.load(str(path))
    assert ds.source == str(path) and ds.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert ds.tokenizer.decode(ds.train.tolist() + ds.val.tolist()) == text
    assert CharDataset.load(str(path), ds.sha256).sha256 == ds.sha256
    with pytest.raises(DataError, match="checksum mismatch"):
        CharDataset.load(str(path), SHA0)


def test_load_a_url_with_and_without_checksum(http_root, tmp_path, monkeypatch):
    base, www = http_root
    body = b"To be, or not to be\n" * 50
    (www / "play.txt").write_bytes(body)
    monkeypatch.setenv("DEVICEBENCH_CACHE", str(tmp_path / "cache"))
    sha = hashlib.sha256(body).hexdigest()
    ds = CharDataset.load(f"{base}/play.txt", sha)
    assert ds.sha256 == sha and ds.source == f"{base}/play.txt"
    assert (tmp_path / "cache" / "play.txt").read_bytes() == body  # cached for the next run
    (www / "play.txt").unlink()
    assert CharDataset.load(f"{base}/play.txt", sha).sha256 == sha  # from the cache
    (www / "other.txt").write_bytes(b"ab" * 100)
    assert CharDataset.load(f"{base}/other.txt").sha256 == hashlib.sha256(b"ab" * 100).hexdigest()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: str(d / "missing.txt"), "no such file"),
        (lambda d: str(d), "is a directory"),
        (lambda d: _write_bytes(d / "bin.dat", b"\xff\xfe\x00abc"), "not UTF-8 text"),
        (lambda d: _write_bytes(d / "empty.txt", b""), "not a text to train on"),
        (lambda d: _write_bytes(d / "one.txt", b"aaaa"), "not a text to train on"),
        (lambda d: "", "the data source is empty"),
        (lambda d: "file:///etc/hostname", "only http:// and https://"),
    ],
)
def test_load_errors_are_one_line_data_errors(tmp_path, make, words):
    with pytest.raises(DataError, match=words) as exc:
        CharDataset.load(make(tmp_path))
    assert "\n" not in str(exc.value)


def test_load_bad_checksum_text():
    with pytest.raises(DataError, match="64 hex digits"):
        CharDataset.load(None, "not-a-sha")


def _write_bytes(path, data):
    path.write_bytes(data)
    return str(path)
